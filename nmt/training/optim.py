"""Optimisation pieces of a training run: the optimizer, learning-rate schedules, the
teacher-forcing ratio over training, and mixed-precision autocast."""
from __future__ import annotations

import math
from typing import Callable

import torch

from nmt.compat import cpu_has_native_bf16
from nmt.config.choices import OptimizerKind, Precision, Schedule

OPTIMIZERS = {OptimizerKind.adam: torch.optim.Adam, OptimizerKind.adamw: torch.optim.AdamW}


def make_optimizer(model: torch.nn.Module, tcfg) -> torch.optim.Optimizer:
    """Adam or AdamW over every parameter (`tcfg`: the train config)."""
    # fused: one kernel over all parameters (CPU and CUDA); the per-parameter loop costs about a
    # twentieth of a training step on a 2-core CPU
    return OPTIMIZERS[tcfg.optimizer](model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay, fused=True)


class BudgetCosine:
    """Linear warmup for `warmup_steps`, then cosine decay from `lr` to `min_lr` over the training
    budget. `position()` returns (optimizer steps taken, fraction of the budget used in 0..1: by
    steps, epochs or minutes, whichever ends first); both live in the training Progress, so the
    schedule keeps no state of its own. Sets every parameter group's lr on each `step()`."""

    def __init__(self, opt: torch.optim.Optimizer, lr: float, min_lr: float, warmup_steps: int,
                 position: Callable[[], tuple[int, float]]):
        self.opt, self.position = opt, position
        self.peak, self.floor, self.warmup = lr, min(min_lr, lr), warmup_steps
        self.step()

    def lr(self) -> float:
        steps, fraction = self.position()
        if steps < self.warmup:
            return self.peak * (steps + 1) / self.warmup
        f = min(max(fraction, 0.0), 1.0)
        return self.floor + (self.peak - self.floor) * 0.5 * (1.0 + math.cos(math.pi * f))

    def step(self) -> None:
        lr = self.lr()
        for group in self.opt.param_groups:
            group["lr"] = lr

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def make_scheduler(opt: torch.optim.Optimizer, tcfg, position: Callable[[], tuple[int, float]]):
    """plateau: cut the lr when the validation metric stalls (`step(score)` after validating);
    warmup_decay: linear warmup then inverse square-root decay; cosine: warmup then cosine decay
    to min_lr over the budget (`position()`: see BudgetCosine); constant. The others: `step()`
    after each optimizer step."""
    if tcfg.schedule == Schedule.plateau:
        higher_is_better = tcfg.early_stopping_metric == "bleu"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max" if higher_is_better else "min", factor=tcfg.plateau_factor,
            patience=tcfg.plateau_patience, min_lr=tcfg.min_lr)
    if tcfg.schedule == Schedule.warmup_decay:
        w = max(tcfg.warmup_steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / w, math.sqrt(w / (s + 1))))
    if tcfg.schedule == Schedule.cosine:
        return BudgetCosine(opt, tcfg.lr, tcfg.min_lr, tcfg.warmup_steps, position)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)  # constant


def is_plateau(scheduler) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


DEFAULT_MAX_EPOCHS = 30  # the epoch limit of a run without a time budget, when train.max_epochs is unset


def epoch_limit(tcfg) -> int | None:
    """`train.max_epochs`, or when it is unset: 30 without a time budget, none within one. A
    time-budgeted run ends on its clock, `max_steps` or early stopping, never on a default epoch
    count (one did at 26 of 30 minutes)."""
    if tcfg.max_epochs is not None:
        return int(tcfg.max_epochs)
    return None if tcfg.max_minutes else DEFAULT_MAX_EPOCHS


def budget_fraction(step: int, train_seconds: float, total_steps: int, max_minutes: float) -> float:
    """How far training is through its budget, 0..1: the furthest of steps (of `total_steps`)
    and time (of `max_minutes`; 0 = no time budget)."""
    fractions = [step / total_steps] if total_steps > 0 else [0.0]
    if max_minutes:
        fractions.append(train_seconds / (max_minutes * 60))
    return min(max(fractions), 1.0)


def teacher_forcing_ratio(tcfg, step: int, total_steps: int) -> float:
    """train.teacher_forcing, or with teacher_forcing_decay a linear decay to teacher_forcing_min."""
    if not tcfg.teacher_forcing_decay or total_steps <= 0:
        return tcfg.teacher_forcing
    frac = min(step / total_steps, 1.0)
    return tcfg.teacher_forcing + frac * (tcfg.teacher_forcing_min - tcfg.teacher_forcing)


AUTOCAST_DTYPES = {Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}


def resolve_precision(precision: Precision, device: torch.device) -> Precision:
    """train.precision=auto: bf16 where `device` computes it natively, else fp32; others as given."""
    if precision != Precision.auto:
        return Precision(precision)
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
    return Precision.bf16 if native else Precision.fp32


def autocast_context(device: torch.device, precision: Precision):
    """Autocast for bf16/fp16 (fp16 only on CUDA: check_config refuses it elsewhere); fp32: off."""
    if precision == Precision.fp32:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])
