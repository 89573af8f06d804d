"""The end of a training run, after the loop (rank 0 only): average the last saves into avg.pt,
recommend best.pt or avg.pt by their val score with the search translate will use, then choose
the length penalty on val and store it in both. Everything it reads is handed to it
(`EndOfRun`'s fields); it writes only into the checkpoint folder and the metrics log."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from nmt.config.choices import SearchKind, StopMetric
from nmt.inference.translator import Translator, best_length_penalty, search_options
from nmt.model import build_model
from nmt.runs.average import average_checkpoints
from nmt.runs.checkpoint import Checkpoint
from nmt.runs.run_folder import Averaging, LengthPenaltyChoice, Selection, step_copies, step_of
from nmt.training.metrics_log import MetricsLog
from nmt.training.validation import validate


@dataclass
class EndOfRun:
    """The end-of-run choices of one run: `cfg` is its composed config (model, train, decode),
    `valid` its prepared val split, `vocabs` (source, target), `preprocess` the cleaning of its
    data; `say` prints on the terminal."""

    cfg: Any
    ckpt_dir: Path
    valid: Any
    vocabs: tuple
    preprocess: Any
    device: torch.device
    log: MetricsLog
    say: Callable[[str], None]

    @property
    def metric(self) -> StopMetric:
        return self.cfg.train.early_stopping_metric

    def search_name(self) -> str:
        decode = self.cfg.decode
        return f"beam {decode.beam_size}" if decode.kind == SearchKind.beam else "greedy"

    def average_final(self, step: int, best_score: float | None) -> Averaging | None:
        """train.average_last=K: average the newest K step_N.pt copies into checkpoints/avg.pt,
        validate it as best.pt was validated (greedy), then score both on val with the search
        that translate will use (the decode group: beam 5 by default). None when off or fewer
        than 2 copies."""
        t = self.cfg.train
        k, metric = t.average_last, self.metric
        paths = step_copies(self.ckpt_dir)[-k:] if k else []
        if len(paths) < 2:
            if k:
                self.say(f"train: note: {len(paths)} step checkpoint(s), so no avg.pt (train.average_last={k} "
                         f"averages the saves made every train.checkpoint_every={t.checkpoint_every} steps)")
            return None
        averaged = average_checkpoints(paths)
        averaged.save(self.ckpt_dir / "avg.pt")
        steps = [step_of(p) for p in paths]
        greedy = self.score_weights(averaged.weights, "greedy")
        self.log.write("valid_avg", step, **greedy, averaged_steps=steps)
        candidates = {"avg.pt": averaged.weights}
        if (self.ckpt_dir / "best.pt").is_file():
            candidates["best.pt"] = Checkpoint.load(self.ckpt_dir / "best.pt").weights
        scores = {name: self.score_weights(weights, self.cfg.decode)[metric] for name, weights in candidates.items()}
        selection = Selection(search=self.search_name(), metric=str(metric), scores=scores)
        self.say(f"train: averaged {len(paths)} checkpoints (steps {steps[0]}-{steps[-1]}) into avg.pt: val {metric} "
                 f"{greedy[metric]:.3f} greedy (best.pt {best_score:.3f}); with {selection.search}: "
                 + ", ".join(f"{n} {v:.3f}" for n, v in scores.items())
                 + f"; recommended: {self.ckpt_dir / recommend(selection)}")
        return Averaging(score=greedy[metric], steps=steps, selection=selection)

    def choose_length_penalty(self, recommended: str, averaging: Averaging | None) -> LengthPenaltyChoice | None:
        """train.length_penalties: beam search on val with each penalty for the recommended
        checkpoint; the best BLEU (ties: the penalty nearer 1.0) goes into best.pt's and avg.pt's
        decode defaults, which translate, serve and Translator use while decode.length_penalty
        is unset. None when off: greedy search, no val BLEU, a length penalty fixed in the decode
        group, or no checkpoint to score."""
        grid, decode, path = list(self.cfg.train.length_penalties), self.cfg.decode, self.ckpt_dir / recommended
        if (not grid or decode.kind != SearchKind.beam or not self.cfg.train.val_bleu
                or decode.length_penalty is not None or not path.is_file()):
            return None
        weights = Checkpoint.load(path).weights
        known = averaging.selection.scores.get(recommended) \
            if averaging is not None and averaging.selection.metric == "bleu" else None
        scores = {}
        for lp in grid:  # the selection above already scored the recommended checkpoint at 1.0
            scores[lp] = known if known is not None and lp == 1.0 else self.score_weights(
                weights, search_options(decode, length_penalty=lp))["bleu"]
        chosen = best_length_penalty(scores)
        search = f"beam {decode.beam_size}"
        stored = []
        for name in ("best.pt", "avg.pt"):
            if (self.ckpt_dir / name).is_file():
                ckpt = Checkpoint.load(self.ckpt_dir / name)
                ckpt.decode_defaults = {"length_penalty": chosen, "chosen_on": f"val BLEU, {search}, {recommended}"}
                ckpt.save(self.ckpt_dir / name)
                stored.append(name)
        self.say(f"train: length penalty on val ({search}, {recommended}): "
                 + ", ".join(f"{lp:g} {v:.2f}" for lp, v in scores.items())
                 + f"; chosen {chosen:g}, stored in {' and '.join(stored)} (decode.length_penalty=X overrides it)")
        return LengthPenaltyChoice(chosen=chosen, search=search, checkpoint=recommended,
                                   val_bleu={f"{lp:g}": v for lp, v in scores.items()})

    def score_weights(self, weights: dict, decode) -> dict:
        """{loss, ppl[, bleu]} on val of this run's model with `weights`, BLEU with the search `decode`."""
        src_vocab, tgt_vocab = self.vocabs
        model = build_model(self.cfg.model, src_vocab.size, tgt_vocab.size, tgt_vocab.pad_id)
        model.load_state_dict(weights)
        translator = Translator(model.to(self.device), src_vocab, tgt_vocab, self.preprocess, decode=decode,
                                device=self.device)
        t = self.cfg.train
        return validate(translator, self.valid, t.val_max_sentences, t.val_bleu)


def recommend(selection: Selection | None) -> str:
    """The checkpoint file to recommend: the better of best.pt and avg.pt on val (loss: the
    lower), or best.pt when nothing was averaged."""
    if selection is None:
        return "best.pt"
    pick = max if selection.metric == StopMetric.bleu else min
    return pick(selection.scores, key=selection.scores.get)
