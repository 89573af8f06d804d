"""Entry point: train an RNN encoder-decoder on a prepared dataset.

    python -m nmt.train prepared_dir=OUT model=gru|lstm|rnn train.max_epochs=N [train.resume=RUN_DIR]
    torchrun --nproc-per-node=2 -m nmt.train prepared_dir=OUT ...
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from nmt.config import CONF_DIR, check_config
from nmt.batching import LengthBatchSampler
from nmt.checkpoint import (CheckpointError, load_checkpoint, remove_stale_temporaries, resolve_resume,
                            rng_states_for_rank, rng_states_of_all_ranks, save_checkpoint, set_rng_states,
                            vocab_files)
from nmt.collate import make_loader
from nmt.divergence import DivergedError, divergence_message, loss_problem, weight_problem
from nmt.distributed import DistInfo, agree_on_run_dir, init_distributed
from nmt.model import build_model
from nmt.plots import learning_curves
from nmt.store import VOCAB_DIR, PreparedDataError, load_prepared
from nmt.translator import Translator
from nmt.validate import validate


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_score: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    last_validation_step: int = -1
    train_seconds: float = 0.0


def keep_step_checkpoint(ckpt_dir: Path, step: int, keep: int) -> None:
    """Keep `last.pt` also as `step_NNNNNNNN.pt` (a hard link: no copy) and delete all but the
    newest `keep` of those: the inputs of `nmt.average last_n=K`."""
    kept = ckpt_dir / f"step_{step:08d}.pt"
    kept.unlink(missing_ok=True)
    try:
        os.link(ckpt_dir / "last.pt", kept)
    except OSError:  # a file system without hard links
        shutil.copyfile(ckpt_dir / "last.pt", kept)
    for old in sorted(ckpt_dir.glob("step_*.pt"))[:-keep]:
        old.unlink()


def pick_device(name: str, dist: DistInfo) -> torch.device:
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("train.device=cuda but CUDA is not available. Fix: train.device=auto or cpu")
    return torch.device("cuda", dist.local_rank)


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(cfg.optimizer)
    if cls is None:
        raise ValueError(f"train.optimizer={cfg.optimizer!r}: use adam or adamw")
    # fused: one kernel over all parameters (CPU and CUDA); the per-parameter loop costs about a
    # twentieth of a training step on a 2-core CPU
    return cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


class BudgetCosine:
    """Linear warmup for `warmup_steps`, then cosine decay from `lr` to `min_lr` over the training
    budget. `position()` returns (optimizer steps taken, fraction of the budget used in 0..1: by
    steps, epochs or minutes, whichever ends first); both live in the training Progress, so the
    schedule keeps no state of its own. Sets every parameter group's lr on each `step()`."""

    def __init__(self, opt: torch.optim.Optimizer, cfg, position):
        self.opt, self.position = opt, position
        self.peak, self.floor, self.warmup = cfg.lr, min(cfg.min_lr, cfg.lr), cfg.warmup_steps
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


def make_scheduler(opt: torch.optim.Optimizer, cfg, higher_is_better: bool, position):
    """plateau: cut the lr when the validation metric stalls; warmup_decay: linear warmup then
    inverse square-root decay (per step); cosine: warmup then cosine decay to min_lr over the
    budget (`position()`: see BudgetCosine); constant. Call `step()` after each optimizer step."""
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max" if higher_is_better else "min", factor=cfg.plateau_factor,
            patience=cfg.plateau_patience, min_lr=cfg.min_lr)
    if cfg.schedule == "warmup_decay":
        w = max(cfg.warmup_steps, 1)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / w, math.sqrt(w / (s + 1))))
    if cfg.schedule == "cosine":
        return BudgetCosine(opt, cfg, position)
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    raise ValueError(f"train.schedule={cfg.schedule!r}: use plateau, warmup_decay, cosine or constant")


def budget_fraction(cfg, progress: "Progress", total_steps: int) -> float:
    """How far training is through its budget, 0..1: the furthest of steps (max_steps, or
    max_epochs x steps per epoch) and time (max_minutes)."""
    fractions = [progress.step / total_steps] if total_steps > 0 else [0.0]
    if cfg.max_minutes:
        fractions.append(progress.train_seconds / (cfg.max_minutes * 60))
    return min(max(fractions), 1.0)


def teacher_forcing_ratio(cfg, step: int, total_steps: int) -> float:
    if not cfg.teacher_forcing_decay or total_steps <= 0:
        return cfg.teacher_forcing
    frac = min(step / total_steps, 1.0)
    return cfg.teacher_forcing + frac * (cfg.teacher_forcing_min - cfg.teacher_forcing)


def autocast_context(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        if device.type != "cuda":
            raise ValueError("train.precision=fp16 needs CUDA. Fix: precision=bf16 or fp32 on CPU")
        return torch.autocast("cuda", dtype=torch.float16)
    raise ValueError(f"train.precision={precision!r}: use fp32, bf16 or fp16")


class MetricsLog:
    """metrics.jsonl (+ TensorBoard events when tensorboard is installed); rank 0 only."""

    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.file = run_dir / "metrics.jsonl"
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                pass

    def write(self, kind: str, step: int, **values) -> None:
        if not self.enabled:
            return
        with open(self.file, "a") as f:
            f.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Train as `cfg` says, writing checkpoints and metrics under `run_dir`; return a summary."""
    check_config(cfg)
    tc = cfg.train
    if tc.early_stopping_metric == "bleu" and not tc.val_bleu:
        raise ValueError("train.early_stopping_metric=bleu needs train.val_bleu=true. Fix: one or the other")
    dist = init_distributed()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(tc.device, dist)
    torch.set_num_threads(tc.threads or max(1, (os.cpu_count() or 1) // dist.world_size))
    torch.use_deterministic_algorithms(tc.deterministic)
    torch.manual_seed(tc.seed + dist.rank)
    dd, meta, (src_vocab, tgt_vocab) = load_prepared(Path(cfg.prepared_dir))
    for split in ("train", "valid"):
        if split not in dd:
            raise PreparedDataError(
                f"{cfg.prepared_dir}: no `{split}` split. Fix: prepare it with the {split} files: "
                f"data.splits.{split}=PREFIX (multi30k, hf) or data.files.{split}.src=A data.files.{split}.tgt=B (files)")

    model = build_model(cfg.model, src_vocab.size, tgt_vocab.size, tgt_vocab.pad_id).to(device)
    validator = Translator(model, src_vocab, tgt_vocab, meta["config"]["preprocess"], decode="greedy", device=device)
    higher_is_better = tc.early_stopping_metric == "bleu"
    optimizer = make_optimizer(model, tc)
    progress = Progress()
    sampler = LengthBatchSampler.from_config(dd["train"], tc.batching, dist.rank, dist.world_size)
    steps_per_epoch = len(sampler.epoch_batches(0))
    total_steps = tc.max_steps or tc.max_epochs * steps_per_epoch
    scheduler = make_scheduler(optimizer, tc, higher_is_better,
                               lambda: (progress.step, budget_fraction(tc, progress, total_steps)))
    scaler = torch.amp.GradScaler("cuda", enabled=tc.precision == "fp16")
    loader = make_loader(dd["train"], sampler, tgt_vocab.pad_id, tc.batching.num_workers)

    ckpt_dir = run_dir / "checkpoints"
    if dist.is_main:
        remove_stale_temporaries(ckpt_dir)
    loss_limit = tc.max_loss_factor * math.log(max(tgt_vocab.size, 2))
    saved: dict[str, int] = {}  # good checkpoint file in ckpt_dir -> its step, for the divergence message
    resume_from = resolve_resume(tc.resume, run_dir)
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from)
        if "optimizer" not in ckpt:
            raise CheckpointError(f"{resume_from}: holds weights only (an averaged checkpoint?), no optimizer or "
                                  "sampler state to resume from. Fix: train.resume=RUN_DIR (its checkpoints/last.pt)")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        sampler.load_state_dict(ckpt["sampler"])
        progress = Progress(**ckpt["progress"])
        states, note = rng_states_for_rank(ckpt, dist.rank, dist.world_size)
        set_rng_states(states)
        if note and dist.is_main:
            print(f"train: note: {note}", file=sys.stderr)
        if resume_from.parent.resolve() == ckpt_dir.resolve():
            saved[resume_from.name] = progress.step
            if (ckpt_dir / "best.pt").is_file() and progress.best_score is not None:
                saved["best.pt"] = progress.best_step
        if dist.is_main:
            print(f"train: resumed from {resume_from} at step {progress.step} (epoch {progress.epoch}, "
                  f"batch {progress.batch_in_epoch})")

    net = model
    if dist.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    log = MetricsLog(run_dir, dist.is_main, tc.tensorboard)
    n_params = sum(p.numel() for p in model.parameters())
    if dist.is_main:
        print(f"train: {n_params:,} parameters; {len(dd['train'])} training pairs; device {device}; "
              f"{dist.world_size} process(es); run dir {run_dir}")
    static = {"model_cfg": OmegaConf.to_container(cfg.model, resolve=True),
              "train_cfg": OmegaConf.to_container(tc, resolve=True),
              "prepared": {"dir": str(cfg.prepared_dir), "format_version": meta["format_version"],
                           "special_ids": meta["special_ids"], "vocab": meta["vocab"]},
              "preprocess": meta["config"]["preprocess"],
              "languages": {"src": meta["config"]["data"]["src_lang"], "tgt": meta["config"]["data"]["tgt_lang"]},
              "vocab_files": vocab_files(Path(cfg.prepared_dir) / VOCAB_DIR), "n_params": n_params}

    def check_weights() -> None:
        problem = weight_problem(model, tc.max_weight)
        if problem:
            raise DivergedError(divergence_message(problem, progress.step, tc, saved, ckpt_dir))

    def checkpoint(name: str) -> None:
        """Save on rank 0, with every rank's RNG states (all ranks call this: it gathers them)."""
        check_weights()  # every rank holds the same weights, so every rank stops together
        saved[name] = progress.step
        rng = rng_states_of_all_ranks()
        if dist.is_main:
            save_checkpoint(ckpt_dir / name, {
                **static, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                "sampler": {**sampler.state_dict(), "epoch": progress.epoch, "start_batch": progress.batch_in_epoch},
                "progress": asdict(progress), "rng": rng[0], "rng_per_rank": rng})
            if name == "last.pt" and tc.keep_last:
                keep_step_checkpoint(ckpt_dir, progress.step, tc.keep_last)

    def run_validation() -> bool:
        """Validate, keep the best checkpoint, step the plateau schedule; True = stop early."""
        check_weights()
        result = validate(validator, dd["valid"], cfg)
        problem = loss_problem(result["loss"], loss_limit)
        if problem:
            raise DivergedError(divergence_message(problem.replace("training", "validation"), progress.step, tc,
                                                   saved, ckpt_dir))
        progress.last_validation_step = progress.step
        score = result[tc.early_stopping_metric]
        better = progress.best_score is None or (score > progress.best_score if higher_is_better
                                                  else score < progress.best_score)
        if dist.enabled:  # rank 0 decides, so that every rank takes the same path (checkpoint() gathers)
            decided = [better]
            torch.distributed.broadcast_object_list(decided, src=0)
            better = decided[0]
        if better:
            progress.best_score, progress.best_step, progress.bad_validations = score, progress.step, 0
        else:
            progress.bad_validations += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(score)
        log.write("valid", progress.step, epoch=progress.epoch, **result, lr=optimizer.param_groups[0]["lr"])
        if dist.is_main:
            print(f"valid step {progress.step}: loss {result['loss']:.3f} ppl {result['ppl']:.2f}"
                  + (f" BLEU {result['bleu']:.2f}" if "bleu" in result else "")
                  + (" (best)" if better else f" (best {progress.best_score:.3f} at step {progress.best_step})"))
        if better:
            checkpoint("best.pt")
        return progress.bad_validations >= tc.patience

    started = time.time() - progress.train_seconds
    stop_reason = None
    while progress.epoch < tc.max_epochs and stop_reason is None:
        sampler.set_epoch(progress.epoch, progress.batch_in_epoch)
        net.train()
        bar = tqdm(loader, desc=f"epoch {progress.epoch + 1}", total=len(sampler), disable=not dist.is_main,
                   file=sys.stderr, dynamic_ncols=True)
        t_log, tokens_since, loss_sum, loss_tokens = time.time(), 0, 0.0, 0
        for batch in bar:
            batch = batch.to(device)
            ratio = teacher_forcing_ratio(tc, progress.step, total_steps)
            with autocast_context(device, tc.precision):
                logits = net(batch.src, batch.src_lengths, batch.tgt_in, ratio)
            loss = model.loss(logits, batch.tgt_out, tc.label_smoothing) / batch.n_tokens
            loss_value = loss.item()
            diverged = loss_problem(loss_value, loss_limit)
            if diverged and not dist.enabled:  # under DDP every rank first reaches the all_reduce below
                raise DivergedError(divergence_message(diverged, progress.step + 1, tc, saved, ckpt_dir))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if tc.clip_grad_norm > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            progress.step += 1
            progress.batch_in_epoch += 1
            progress.train_seconds = time.time() - started
            if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step()
            tokens_since += batch.n_tokens
            loss_sum += loss_value * batch.n_tokens
            loss_tokens += batch.n_tokens
            if progress.step % tc.log_every == 0:
                now = time.time()
                tok_s = tokens_since / max(now - t_log, 1e-9)
                lr = optimizer.param_groups[0]["lr"]
                bar.set_postfix(loss=f"{loss_sum / loss_tokens:.3f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:.2e}")
                log.write("train", progress.step, epoch=progress.epoch, loss=loss_sum / loss_tokens,
                          tokens_per_s=tok_s, lr=lr, teacher_forcing=ratio)
                t_log, tokens_since, loss_sum, loss_tokens = now, 0, 0.0, 0
            if tc.validate_every and progress.step % tc.validate_every == 0 and run_validation():
                stop_reason = f"no {tc.early_stopping_metric} improvement in {tc.patience} validations"
            if tc.max_steps and progress.step >= tc.max_steps:
                stop_reason = stop_reason or f"train.max_steps={tc.max_steps} reached"
            if tc.max_minutes and progress.train_seconds >= tc.max_minutes * 60:
                stop_reason = stop_reason or f"train.max_minutes={tc.max_minutes} reached"
            if dist.enabled:  # every rank stops at the same step, or DDP hangs
                flags = torch.tensor([1.0 if stop_reason else 0.0, 1.0 if diverged else 0.0], device=device)
                torch.distributed.all_reduce(flags)
                if flags[1].item() > 0:
                    raise DivergedError(divergence_message(diverged or "the training loss diverged on another rank",
                                                           progress.step, tc, saved, ckpt_dir))
                if flags[0].item() > 0 and stop_reason is None:
                    stop_reason = "another rank stopped"
            if stop_reason:
                break
            if progress.step % tc.checkpoint_every == 0:
                checkpoint("last.pt")
        bar.close()
        if stop_reason is None:  # the epoch ran to its end
            progress.epoch += 1
            progress.batch_in_epoch = 0
            if not tc.validate_every and run_validation():
                stop_reason = f"no {tc.early_stopping_metric} improvement in {tc.patience} validations"
    stop_reason = stop_reason or f"train.max_epochs={tc.max_epochs} reached"
    if progress.last_validation_step != progress.step:
        run_validation()  # so best.pt also considers the final weights
    checkpoint("last.pt")  # after the validation, so its progress holds the final best score
    log.close()
    summary = {"stop_reason": stop_reason, "steps": progress.step, "epochs": progress.epoch,
               "best_" + tc.early_stopping_metric: progress.best_score, "best_step": progress.best_step,
               "train_minutes": round(progress.train_seconds / 60, 2), "run_dir": str(run_dir),
               "n_params": n_params}
    if dist.is_main:
        if (run_dir / "metrics.jsonl").is_file():
            learning_curves(run_dir / "metrics.jsonl", run_dir / "learning_curves.png")
        (run_dir / "train_summary.json").write_text(json.dumps(summary, indent=2))
        print(f"train: stopped: {stop_reason}; best {tc.early_stopping_metric} {progress.best_score:.3f} "
              f"at step {progress.best_step}; checkpoints in {ckpt_dir}")
    return summary


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (PreparedDataError, DivergedError, CheckpointError, FileNotFoundError, ValueError) as err:
        sys.exit(f"train: error: {err}")
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def cli() -> None:
    """`nmt-train` and `python -m nmt.train`: under torchrun the ranks first agree on one run dir."""
    agree_on_run_dir()
    main()


if __name__ == "__main__":
    cli()
