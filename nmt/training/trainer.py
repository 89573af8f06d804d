"""The Trainer: a training run as named steps — build, resume, train_step, validate, save,
should_stop, finish — around one loop (`fit`); the end-of-run averaging and length-penalty
choice are `training.end_of_run`. Teacher forcing, gradient clipping, validation with
early stopping, divergence checks, resumable checkpoints; one CPU, one GPU or DDP ranks."""
from __future__ import annotations

import math
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from nmt.config.choices import Precision, StopMetric
from nmt.config.schema import plain
from nmt.data.batching import LengthBatchSampler
from nmt.data.collate import make_loader
from nmt.data.store import VOCAB_DIR, load_training_data
from nmt.data.subword_sampling import resegmenter_from_config
from nmt.errors import NmtError
from nmt.inference.translator import Translator
from nmt.model import build_model
from nmt.runs.checkpoint import Checkpoint, TrainingState, vocab_files
from nmt.runs.run_folder import RunSummary, keep_step_copy, resolve_resume
from nmt.training.distributed import cpu_threads, init_distributed, pick_device
from nmt.training.divergence import DivergedError, divergence_message, loss_problem, weight_problem
from nmt.training.end_of_run import EndOfRun, recommend
from nmt.training.metrics_log import MetricsLog
from nmt.training.optim import (autocast_context, budget_fraction, epoch_limit, is_plateau, make_optimizer, make_scheduler,
                                resolve_precision, teacher_forcing_ratio)
from nmt.training.rng import rng_states_for_rank, rng_states_of_all_ranks, set_rng_states
from nmt.training.validation import validate


class Interrupted(NmtError, RuntimeError):
    """Training stopped by a signal (a scheduler's SIGTERM before preemption) after saving last.pt."""


class OtherRankFailed(NmtError, RuntimeError):
    """Under torchrun: rank 0 failed in the end-of-run work that it alone does."""


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


@dataclass
class LossMeter:
    """Training loss and tokens/s since the last log line."""

    since: float
    tokens: int = 0
    loss_sum: float = 0.0

    def add(self, loss: float, tokens: int) -> None:
        self.tokens += tokens
        self.loss_sum += loss * tokens

    def read_and_reset(self) -> tuple[float, float]:
        """(mean loss per token, tokens per second) since the last call."""
        now = time.time()
        result = self.loss_sum / max(self.tokens, 1), self.tokens / max(now - self.since, 1e-9)
        self.since, self.tokens, self.loss_sum = now, 0, 0.0
        return result


class Trainer:
    """One training run of `cfg` (the composed config) into `run_dir`.

    Construction builds everything (process group, device, data, model, optimizer, schedule,
    sampler); `fit()` resumes if asked and runs the loop. Checkpoints go to
    `run_dir/checkpoints/{last,best}.pt`; under torchrun every rank runs a Trainer and rank 0
    writes."""

    def __init__(self, cfg, run_dir: Path):
        self.cfg, self.tcfg = cfg, cfg.train
        self.run_dir, self.ckpt_dir = Path(run_dir), Path(run_dir) / "checkpoints"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dist = init_distributed()
        self.device = pick_device(self.tcfg.device, self.dist)
        self.precision = resolve_precision(self.tcfg.precision, self.device)
        if self.tcfg.precision == Precision.auto:
            self.say(f"train: precision=auto: {self.precision} on {self.device.type} "
                     f"({'native bf16' if self.precision == Precision.bf16 else 'no native bf16'})", file=sys.stderr)
        torch.set_num_threads(cpu_threads(self.tcfg.threads, self.dist.world_size))
        torch.use_deterministic_algorithms(self.tcfg.deterministic)
        torch.manual_seed(self.tcfg.seed + self.dist.rank)
        self.data, self.meta, (src_vocab, self.tgt_vocab) = load_training_data(Path(cfg.prepared_dir))
        self.model = build_model(cfg.model, src_vocab.size, self.tgt_vocab.size, self.tgt_vocab.pad_id).to(self.device)
        self.net = self.model  # the DDP wrapper under torchrun (after resuming)
        self.validator = Translator(self.model, src_vocab, self.tgt_vocab, self.meta.preprocess,
                                    decode="greedy", device=self.device)
        self.optimizer = make_optimizer(self.model, self.tcfg)
        self.progress = Progress()
        self.resegment = resegmenter_from_config(self.tcfg.subword_sampling, (src_vocab, self.tgt_vocab),
                                                 self.meta.preprocess["max_len"], self.tcfg.seed)
        self.sampler = LengthBatchSampler.from_config(self.data["train"], self.tcfg.batching, self.dist.rank,
                                                      self.dist.world_size, resegment=self.resegment)
        self.max_epochs = epoch_limit(self.tcfg)  # None: the time budget ends the run
        self.total_steps = self.tcfg.max_steps or (self.max_epochs or 0) * len(self.sampler.epoch_batches(0))
        self.scheduler = make_scheduler(self.optimizer, self.tcfg, self.schedule_position)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == Precision.fp16)
        self.loader = make_loader(self.data["train"], self.sampler, self.tgt_vocab.pad_id,
                                  self.tcfg.batching.num_workers, self.resegment)
        self.loss_limit = self.tcfg.max_loss_factor * math.log(max(self.tgt_vocab.size, 2))
        self.saved: dict[str, int] = {}  # good checkpoint file in ckpt_dir -> its step, for the divergence message
        self.log = MetricsLog(self.run_dir, self.dist.is_main, self.tcfg.tensorboard)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.started = time.time()
        self.signal_received: str | None = None  # SIGTERM: save and stop after the current step

    def schedule_position(self) -> tuple[int, float]:
        """(optimizer steps taken, fraction of the budget used): the cosine schedule's clock."""
        p = self.progress
        return p.step, budget_fraction(p.step, p.train_seconds, self.total_steps, self.tcfg.max_minutes)

    # ------------------------------------------------------------------ the loop

    def fit(self) -> dict:
        """Train until a budget, early stopping or divergence ends the run (or SIGTERM: last.pt
        is saved and Interrupted raised); return a summary. One run at a time per run dir."""
        from nmt.files import run_dir_lock

        with run_dir_lock(self.run_dir, "train", enabled=self.dist.is_main), self.catch_sigterm():
            try:
                summary = self._fit()
            except (DivergedError, Interrupted):  # every rank raises these at the same step
                self.dist.leave_together()
                raise
            self.dist.leave_together()
            return summary

    def _fit(self) -> dict:
        if self.dist.is_main:
            from nmt.files import remove_stale_scratch

            remove_stale_scratch(self.ckpt_dir / "*.pt")
        self.resume(resolve_resume(self.tcfg.resume, self.run_dir))
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.say(f"train: {self.n_params:,} parameters; {len(self.data['train'])} training pairs; device "
                 f"{self.device}; {self.dist.world_size} process(es); run dir {self.run_dir}")
        self.started = time.time() - self.progress.train_seconds
        stop = None
        while (self.max_epochs is None or self.progress.epoch < self.max_epochs) and stop is None:
            stop = self.train_epoch()
        if self.signal_received:
            self.save("last.pt")
            raise Interrupted(f"stopped by {self.signal_received} at step {self.progress.step}; "
                              f"{self.ckpt_dir / 'last.pt'} holds it. Fix: resume with the same command and "
                              f"train.resume=auto hydra.run.dir={self.run_dir}")
        return self.finish(stop or f"train.max_epochs={self.max_epochs} reached")

    def catch_sigterm(self):
        """While training: SIGTERM (a cluster scheduler's warning before preemption) finishes the
        current step, saves last.pt and stops, instead of killing the process at once."""
        import contextlib
        import threading

        @contextlib.contextmanager
        def handler():
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = signal.signal(signal.SIGTERM, lambda signum, frame: setattr(self, "signal_received", "SIGTERM"))
            try:
                yield
            finally:
                signal.signal(signal.SIGTERM, previous)
        return handler()

    def train_epoch(self) -> str | None:
        """The rest of the current epoch; why training stops, or None to go on."""
        p, tcfg = self.progress, self.tcfg
        self.sampler.set_epoch(p.epoch, p.batch_in_epoch)
        self.loader.dataset.set_epoch(p.epoch)
        self.net.train()
        bar = tqdm(self.loader, desc=f"epoch {p.epoch + 1}", total=len(self.sampler), disable=not self.dist.is_main,
                   file=sys.stderr, dynamic_ncols=True)
        meter, stop = LossMeter(time.time()), None
        for batch in bar:
            loss, tokens, diverged = self.train_step(batch)
            meter.add(loss, tokens)
            if p.step % tcfg.log_every == 0:
                self.log_progress(bar, meter)
            if tcfg.validate_every and p.step % tcfg.validate_every == 0 and self.validate():
                stop = self.patience_message()
            stop = self.should_stop(stop, diverged)
            if stop:
                break
            if p.step % tcfg.checkpoint_every == 0:
                self.save("last.pt")
        bar.close()
        if stop is None:  # the epoch ran to its end
            p.epoch, p.batch_in_epoch = p.epoch + 1, 0
            if not tcfg.validate_every and self.validate():
                stop = self.patience_message()
        return stop

    # ------------------------------------------------------------------ the named steps

    def resume(self, path: Path | None) -> None:
        """Continue from a training checkpoint: weights, optimizer, schedule, scaler, sampler
        position, progress and this rank's RNG states. None: start fresh."""
        if path is None:
            return
        ckpt = Checkpoint.load(path, for_training=True)
        ckpt.check_compatible(path, plain(self.cfg.model), Path(self.cfg.prepared_dir) / VOCAB_DIR)
        state = ckpt.training
        self.model.load_state_dict(ckpt.weights)
        self.optimizer.load_state_dict(state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        self.scaler.load_state_dict(state.scaler)
        self.sampler.load_state_dict(state.sampler)
        self.progress = Progress(**ckpt.progress)
        rng, note = rng_states_for_rank(state.rng_per_rank, self.dist.rank, self.dist.world_size)
        set_rng_states(rng)
        if note:
            self.say(f"train: note: {note}", file=sys.stderr)
        if path.parent.resolve() == self.ckpt_dir.resolve():
            self.saved[path.name] = self.progress.step
            if (self.ckpt_dir / "best.pt").is_file() and self.progress.best_score is not None:
                self.saved["best.pt"] = self.progress.best_step
        p = self.progress
        self.say(f"train: resumed from {path} at step {p.step} (epoch {p.epoch}, batch {p.batch_in_epoch})")

    def train_step(self, batch) -> tuple[float, int, str | None]:
        """One optimizer step on a batch: (per-token loss, target tokens, divergence problem or None)."""
        p, tcfg = self.progress, self.tcfg
        batch = batch.to(self.device)
        ratio = teacher_forcing_ratio(tcfg, p.step, self.total_steps)
        with autocast_context(self.device, self.precision):
            logits = self.net(batch.src, batch.src_lengths, batch.tgt_in, ratio)
        loss = self.model.loss(logits, batch.tgt_out, tcfg.label_smoothing) / batch.n_tokens
        loss_value = loss.item()
        diverged = loss_problem(loss_value, self.loss_limit)
        if diverged and not self.dist.enabled:  # under DDP every rank first reaches the vote in should_stop
            raise self.diverged(diverged, p.step + 1)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if tcfg.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tcfg.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        p.step, p.batch_in_epoch = p.step + 1, p.batch_in_epoch + 1
        p.train_seconds = time.time() - self.started
        if not is_plateau(self.scheduler):
            self.scheduler.step()
        return loss_value, batch.n_tokens, diverged

    def validate(self) -> bool:
        """Validate, keep the best checkpoint, step the plateau schedule; True = stop early."""
        p = self.progress
        self.check_weights()
        result = validate(self.validator, self.data["valid"], self.tcfg.val_max_sentences, self.tcfg.val_bleu)
        problem = loss_problem(result["loss"], self.loss_limit)
        if problem:
            raise self.diverged(problem.replace("training", "validation"), p.step)
        p.last_validation_step = p.step
        score = result[self.tcfg.early_stopping_metric]
        better = self.is_better(score)
        if better:
            p.best_score, p.best_step, p.bad_validations = score, p.step, 0
        else:
            p.bad_validations += 1
        if is_plateau(self.scheduler):
            self.scheduler.step(score)
        self.log.write("valid", p.step, epoch=p.epoch, **result, lr=self.optimizer.param_groups[0]["lr"],
                       minutes=round(p.train_seconds / 60, 3))
        self.say(f"valid step {p.step}: loss {result['loss']:.3f} ppl {result['ppl']:.2f}"
                 + (f" BLEU {result['bleu']:.2f}" if "bleu" in result else "")
                 + (" (best)" if better else f" (best {p.best_score:.3f} at step {p.best_step})"))
        if better:
            self.save("best.pt")
        return p.bad_validations >= self.tcfg.patience

    def is_better(self, score: float) -> bool:
        """Whether `score` beats the best so far; rank 0 decides, so every rank takes the same
        path (saving gathers from all ranks)."""
        best = self.progress.best_score
        better = best is None or (score > best if self.tcfg.early_stopping_metric == StopMetric.bleu else score < best)
        if self.dist.enabled:
            decided = [better]
            torch.distributed.broadcast_object_list(decided, src=0)
            better = decided[0]
        return better

    def save(self, name: str) -> None:
        """Save `checkpoints/NAME` on rank 0 with every rank's RNG states (all ranks call this:
        it gathers them); refuses diverged weights first."""
        self.check_weights()  # every rank holds the same weights, so every rank stops together
        self.saved[name] = self.progress.step
        rng = rng_states_of_all_ranks()
        if not self.dist.is_main:
            return
        self.checkpoint(rng).save(self.ckpt_dir / name)
        keep = max(self.tcfg.keep_last, self.tcfg.average_last)
        if name == "last.pt" and keep:
            keep_step_copy(self.ckpt_dir, self.progress.step, keep)

    def checkpoint(self, rng_per_rank: list[dict]) -> Checkpoint:
        """The run as it stands, as a Checkpoint."""
        p, meta = self.progress, self.meta
        sampler_state = {**self.sampler.state_dict(), "epoch": p.epoch, "start_batch": p.batch_in_epoch}
        return Checkpoint(
            weights=self.model.state_dict(), model_config=plain(self.cfg.model),
            vocab_files=vocab_files(Path(self.cfg.prepared_dir) / VOCAB_DIR),
            preprocess=meta.preprocess,
            languages=meta.languages,
            prepared={"dir": str(self.cfg.prepared_dir), "format_version": meta.format_version,
                      "special_ids": meta.special_ids, "vocab": meta.vocab.model_dump()},
            n_params=self.n_params, progress=asdict(p), train_config=plain(self.tcfg),
            training=TrainingState(self.optimizer.state_dict(), self.scheduler.state_dict(),
                                   self.scaler.state_dict(), sampler_state, rng_per_rank))

    def should_stop(self, stop: str | None, diverged: str | None) -> str | None:
        """Why training stops after this step (a budget reached, or `stop` already), or None.
        Under DDP the ranks vote, so that all stop at the same step (or DDP hangs)."""
        p, tcfg = self.progress, self.tcfg
        if tcfg.max_steps and p.step >= tcfg.max_steps:
            stop = stop or f"train.max_steps={tcfg.max_steps} reached"
        if tcfg.max_minutes and p.train_seconds >= tcfg.max_minutes * 60:
            stop = stop or f"train.max_minutes={tcfg.max_minutes} reached"
        if self.signal_received:
            stop = stop or f"{self.signal_received} received"
        if self.dist.enabled:
            flags = torch.tensor([float(bool(stop)), float(bool(diverged)), float(bool(self.signal_received))],
                                 device=self.device)
            torch.distributed.all_reduce(flags)
            if flags[1].item() > 0:
                raise self.diverged(diverged or "the training loss diverged on another rank", p.step)
            if flags[2].item() > 0:  # every rank saves and stops together
                self.signal_received = self.signal_received or "SIGTERM (on another rank)"
            if flags[0].item() > 0 and stop is None:
                stop = "another rank stopped"
        return stop

    def finish(self, stop_reason: str) -> RunSummary:
        """Validate the final weights (if not just done), save last.pt, make the end-of-run
        choices (rank 0), draw the curves, write and return the summary."""
        p, metric = self.progress, self.tcfg.early_stopping_metric
        if p.last_validation_step != p.step:
            self.validate()  # so best.pt also considers the final weights
        self.save("last.pt")  # after the validation, so its progress holds the final best score
        self.say(f"train: stopped: {stop_reason}; best {metric} {p.best_score:.3f} at step {p.best_step}; "
                 f"checkpoints in {self.ckpt_dir}")
        summary = RunSummary(run_dir=str(self.run_dir), stop_reason=stop_reason, steps=p.step, epochs=p.epoch,
                             metric=str(metric), best_score=p.best_score, best_step=p.best_step,
                             train_minutes=round(p.train_seconds / 60, 2), n_params=self.n_params)
        failure = None
        if self.dist.is_main:
            try:
                self.end_of_run(summary)
            except Exception as err:  # the other ranks learn of it below, then it goes on
                failure = err
        self.share_outcome(failure)
        self.log.close(self.run_dir / "learning_curves.png")
        return summary

    def end_of_run(self, summary: RunSummary) -> None:
        """Rank 0: avg.pt, the recommendation and the length penalty (EndOfRun); the summary written."""
        p = self.progress
        end = EndOfRun(self.cfg, self.ckpt_dir, self.data["valid"], (self.validator.src_vocab, self.tgt_vocab),
                       self.validator.preprocess, self.device, self.log, self.say)
        summary.averaging = end.average_final(p.step, p.best_score)
        summary.recommended = recommend(summary.averaging.selection if summary.averaging else None)
        summary.length_penalty = end.choose_length_penalty(summary.recommended, summary.averaging)
        summary.save(self.run_dir)

    def share_outcome(self, failure: Exception | None) -> None:
        """Under torchrun the other ranks wait here for rank 0's end-of-run work, so no rank leaves
        while another still works; when it failed, every rank leaves together and fails with it
        (rank 0 with its own error, the others with one line pointing at it)."""
        if not self.dist.enabled:
            if failure is not None:
                raise failure
            return
        outcome = [None if failure is None else f"{type(failure).__name__}: {failure}"]
        torch.distributed.broadcast_object_list(outcome, src=0)
        if outcome[0] is None:
            return
        self.dist.leave_together()
        if failure is not None:
            raise failure
        raise OtherRankFailed(f"rank 0 failed after training, in the end-of-run work ({outcome[0]}); the "
                              f"checkpoints it saved are in {self.ckpt_dir}. Fix: what rank 0's error says")

    # ------------------------------------------------------------------ helpers

    def check_weights(self) -> None:
        problem = weight_problem(self.model, self.tcfg.max_weight)
        if problem:
            raise self.diverged(problem, self.progress.step)

    def diverged(self, problem: str, step: int) -> DivergedError:
        t = self.tcfg
        return DivergedError(divergence_message(
            problem, step, self.saved, self.ckpt_dir, lr=t.lr, clip_grad_norm=t.clip_grad_norm,
            warmup_steps=t.warmup_steps, schedule=str(t.schedule), precision=str(self.precision),
            checkpoint_every=t.checkpoint_every))

    def patience_message(self) -> str:
        return f"no {self.tcfg.early_stopping_metric} improvement in {self.tcfg.patience} validations"

    def log_progress(self, bar, meter: LossMeter) -> None:
        loss, tok_s = meter.read_and_reset()
        lr = self.optimizer.param_groups[0]["lr"]
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:.2e}")
        self.log.write("train", self.progress.step, epoch=self.progress.epoch, loss=loss, tokens_per_s=tok_s, lr=lr,
                       teacher_forcing=teacher_forcing_ratio(self.tcfg, self.progress.step, self.total_steps))

    def say(self, message: str, file=None) -> None:
        """Print on rank 0 only."""
        if self.dist.is_main:
            print(message, file=file)
