"""A confidence per translated sentence: a number in [0, 1] that predicts the sentence's chrF,
fitted on val (`python -m nmt.calibrate`) and stored beside the checkpoint or in the model folder.

Signals, from one teacher-forced pass of the model over its own output (cheap next to the search):

    mean_logp      the output's mean log-probability per piece (EOS included): length-normalised
    min_logp       its least probable piece
    mean_entropy   the mean entropy of the model's next-piece distribution along the output
    length_ratio   log((output pieces + 1) / (source pieces + 1))
    attention      the mean entropy of the attention rows, over log(source pieces) (when the search
                   returns attention at no cost: the RNN family; the Transformer computes it only
                   on request, so it is left out there)
    disagreement   an ensemble's members: the spread (std) of their mean log-probabilities

The fit is two steps: a least-squares line from the standardised signals to sentence chrF / 100,
then isotonic (monotone) regression from that line's value to chrF / 100 (scipy), so the number
reads as "the chrF this translation is expected to have", and a higher one never means worse.
A model without a calibration file gives None: no number is made up.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from nmt.data.vocab import EOS_ID, PAD_ID, SOS_ID

CALIBRATION_FORMAT = "nmt-confidence-1"
MAX_KNOTS = 64  # points kept of the isotonic map (it is piecewise linear between them)


def weights_fingerprint(weights: dict) -> str:
    """sha256 of a model's tensors (names and bytes, in name order): the same for a checkpoint and
    the model folder exported from it, other for any other weights."""
    h = hashlib.sha256()
    for name in sorted(weights):
        value = weights[name]
        if isinstance(value, torch.Tensor):
            h.update(name.encode())
            h.update(value.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()


def calibration_file(paths: Sequence[Path]) -> Path:
    """Where the calibration of what `paths` load lives: a model folder's calibration.json, a
    checkpoint's STEM.calibration.json beside it, an ensemble's beside its first member's."""
    first = Path(paths[0])
    if first.is_dir():
        return first / "calibration.json"
    if len(paths) == 1:
        return first.with_name(f"{first.stem}.calibration.json")
    return first.with_name(f"{first.stem}.ensemble{len(paths)}.calibration.json")


@torch.no_grad()
def signals(model, sources: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]],
            attention: Sequence[torch.Tensor | None] | None = None, device="cpu", batch_size: int = 64) -> np.ndarray:
    """(N, 6) signals (module docstring order, attention NaN where unknown) of N outputs (piece ids
    without SOS/EOS) of N sources. Empty sources give a row of NaN."""
    from nmt.model.ensemble import Ensemble

    members = list(model.members) if isinstance(model, Ensemble) else [model]
    rows = np.full((len(sources), 6), np.nan)
    todo = [i for i, s in enumerate(sources) if len(s)]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            S, T = max(len(sources[i]) for i in chunk), max(len(outputs[i]) for i in chunk) + 1
            src = torch.full((len(chunk), S), PAD_ID, dtype=torch.long)
            tgt_in = torch.full((len(chunk), T), PAD_ID, dtype=torch.long)
            tgt_out = torch.full((len(chunk), T), PAD_ID, dtype=torch.long)
            for row, i in enumerate(chunk):
                s, o = list(sources[i]), list(outputs[i])
                src[row, :len(s)] = torch.as_tensor(s)
                tgt_in[row, :len(o) + 1] = torch.as_tensor([SOS_ID] + o)
                tgt_out[row, :len(o) + 1] = torch.as_tensor(o + [EOS_ID])
            lengths = torch.as_tensor([len(sources[i]) for i in chunk])
            src, tgt_in, tgt_out, mask = src.to(device), tgt_in.to(device), tgt_out.to(device), tgt_out != PAD_ID
            logps = [torch.log_softmax(m(src, lengths.to(device), tgt_in).float(), dim=-1) for m in members]
            logp = torch.log_softmax(torch.stack(logps).mean(0), dim=-1) if len(logps) > 1 else logps[0]
            n = mask.sum(1)
            piece = logp.gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1).masked_fill(~mask, 0.0)
            entropy = -(logp.exp() * logp).sum(-1).masked_fill(~mask, 0.0)
            member_means = torch.stack([(lp.gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1).masked_fill(~mask, 0.0)
                                         .sum(1) / n) for lp in logps])
            values = torch.stack([piece.sum(1) / n, piece.masked_fill(~mask, math.inf).min(1).values,
                                  entropy.sum(1) / n,
                                  torch.log((n.float()) / (lengths.to(device).float() + 1)),
                                  torch.full_like(n, float("nan"), dtype=torch.float),
                                  member_means.std(0, unbiased=False) if len(logps) > 1 else torch.zeros_like(n.float())],
                                 1).cpu().numpy()
            rows[chunk] = values
    finally:
        model.train(was_training)
    if attention is not None:
        for i, att in enumerate(attention):
            if att is not None and len(sources[i]) > 1:
                a = att.float().clamp_min(1e-12)
                rows[i, 4] = float((-(a * a.log()).sum(-1)).mean()) / math.log(len(sources[i]))
            elif att is not None and len(sources[i]) == 1:
                rows[i, 4] = 0.0  # one source piece: nothing to spread over
    return rows


FEATURES = ("mean_logp", "min_logp", "mean_entropy", "length_ratio", "attention", "disagreement")
ATTENTION = FEATURES.index("attention")


def attention_is_free(model) -> bool:
    """Whether search returns attention without extra work: every model (member) of the RNN family."""
    from nmt.model.ensemble import Ensemble
    from nmt.model.transformer import Transformer

    members = list(model.members) if isinstance(model, Ensemble) else [model]
    return not any(isinstance(m, Transformer) for m in members)


@dataclass
class Calibration:
    """The fitted map from signals to confidence, and where it came from (`meta`)."""

    features: list[int]  # the columns of `signals` used
    mean: list[float]
    std: list[float]
    weights: list[float]
    bias: float
    knots_x: list[float]
    knots_y: list[float]
    fingerprints: list[str]  # of the weights it was fitted for
    meta: dict = field(default_factory=dict)

    @property
    def needs_attention(self) -> bool:
        return ATTENTION in self.features

    @classmethod
    def fit(cls, rows: np.ndarray, chrf: np.ndarray, fingerprints: list[str], meta: dict | None = None) -> "Calibration":
        """Fit on `rows` (N, 6) signals and the sentences' chrF (N,) in [0, 100]. Columns that are
        unknown or constant are left out."""
        from scipy.optimize import isotonic_regression

        ok = ~np.isnan(rows).any(axis=0) | (np.isnan(rows).mean(axis=0) < 0.05)
        keep = [j for j in range(rows.shape[1]) if ok[j] and np.nanstd(rows[:, j]) > 1e-9]
        usable = ~np.isnan(rows[:, keep]).any(axis=1)
        x, y = rows[usable][:, keep], chrf[usable] / 100.0
        mean, std = x.mean(0), x.std(0)
        z = (x - mean) / std
        coef, *_ = np.linalg.lstsq(np.c_[z, np.ones(len(z))], y, rcond=None)
        line = np.c_[z, np.ones(len(z))] @ coef
        order = np.argsort(line)
        fitted = isotonic_regression(y[order], increasing=True).x
        idx = np.unique(np.linspace(0, len(order) - 1, min(MAX_KNOTS, len(order))).round().astype(int))
        return cls([int(j) for j in keep], mean.tolist(), std.tolist(), coef[:-1].tolist(), float(coef[-1]),
                   line[order][idx].tolist(), np.clip(fitted[idx], 0.0, 1.0).tolist(), fingerprints, meta or {})

    def predict(self, rows: np.ndarray) -> list[float | None]:
        """Confidence in [0, 1] per row of signals (None where a signal it uses is unknown)."""
        x = rows[:, self.features]
        line = ((x - np.asarray(self.mean)) / np.asarray(self.std)) @ np.asarray(self.weights) + self.bias
        conf = np.interp(line, self.knots_x, self.knots_y)
        return [None if np.isnan(v) else round(float(v), 4) for v in np.where(np.isnan(x).any(1), np.nan, conf)]

    def save(self, path: Path) -> None:
        from nmt.files import atomic_file

        with atomic_file(Path(path)) as tmp:
            tmp.write_text(json.dumps({"format": CALIBRATION_FORMAT, **asdict(self),
                                       "feature_names": [FEATURES[j] for j in self.features]}, indent=1) + "\n")

    @classmethod
    def load(cls, path: Path, fingerprints: list[str]) -> "Calibration | None":
        """The calibration at `path` if there is one fitted for these weights; else None (a file for
        other weights, e.g. of an earlier best.pt, is ignored with a note)."""
        import sys

        path = Path(path)
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        if data.get("format") != CALIBRATION_FORMAT:
            return None
        if data.get("fingerprints") != fingerprints:
            print(f"translate: note: {path} was fitted for other weights; no confidence until "
                  "python -m nmt.calibrate runs again", file=sys.stderr)
            return None
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)
