"""Divergence checks for training: a loss or weights that went non-finite or exploded, and the
one-line message that names the good checkpoints and the fixes that apply to the run."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from nmt.errors import NmtError


class DivergedError(NmtError, RuntimeError):
    """Training diverged (non-finite or exploding loss or weights); nothing after it was saved."""


def loss_problem(loss: float, limit: float) -> str | None:
    """Why a batch's per-token loss shows divergence, or None: not finite, or above `limit`."""
    if not math.isfinite(loss):
        return f"the training loss is {loss}"
    if limit and loss > limit:
        return f"the training loss {loss:.4g} exceeds {limit:.3g} (train.max_loss_factor x ln(target vocab))"
    return None


def weight_problem(model: torch.nn.Module, limit: float) -> str | None:
    """Why the weights show divergence, or None: a NaN/inf, or a magnitude above `limit`."""
    with torch.no_grad():
        peaks = torch.stack([p.detach().abs().max().float() for p in model.parameters() if p.numel()])
    worst = float(peaks.max())
    if not math.isfinite(worst):
        names = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
        return f"the weights {names[:3]} hold NaN/inf"
    if limit and worst > limit:
        return f"a weight has magnitude {worst:.3g}, above train.max_weight={limit:.3g}"
    return None


def divergence_message(problem: str, step: int, saved: dict[str, int], ckpt_dir: Path, *, lr: float,
                       clip_grad_norm: float, warmup_steps: int, schedule: str, precision: str,
                       checkpoint_every: int) -> str:
    """One line: what diverged, which checkpoints are good (`saved`: file name -> step) and the
    fixes that apply to this run's settings."""
    kept = ", ".join(f"{ckpt_dir / name} (step {s})" for name, s in sorted(saved.items())) \
        or f"none (no checkpoint was due before it; train.checkpoint_every={checkpoint_every})"
    fixes = [f"lower train.lr (now {lr:g}), e.g. train.lr={lr / 10:g}"]
    if clip_grad_norm <= 0:
        fixes.append("clip gradients, e.g. train.clip_grad_norm=1.0")
    if warmup_steps < 100 and schedule in ("cosine", "warmup_decay"):
        fixes.append(f"a longer train.warmup_steps (now {warmup_steps})")
    if precision != "fp32":
        fixes.append(f"train.precision=fp32 (now {precision})")
    return (f"training diverged at step {step}: {problem}; stopped without saving anything from it. "
            f"Good checkpoints: {kept}. Fix: {'; '.join(fixes)}")
