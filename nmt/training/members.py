"""`train.members=N`: N independently seeded models trained side by side within one budget, each
in its own `python -m nmt.train` process with its share of the CPU threads, recorded in the
run's summary as an ensemble, so `translate`, `serve` and `Translator` given `ckpt=RUN_DIR`
average the members' log-probabilities at every search step.

Why processes: on a small CPU one training process does not keep every core busy (its small
matmuls and the RNN's sequential steps leave them idle), so two processes with one thread each
train more target tokens per second in all than one with two threads (README: measured). Each
member is an ordinary run (`RUN_DIR/member_K/`, its own checkpoints, averaging and length
penalty); member K gets `train.seed + K` and `train.batching.seed + K`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from nmt.errors import NmtError
from nmt.runs.run_folder import EnsembleScores, RunSummary

# keys the members get from here; a user's own value for them is replaced
MEMBER_KEYS = ("train.members", "train.threads", "train.seed", "train.batching.seed", "train.resume")


class MemberFailed(NmtError, RuntimeError):
    """A member's training process exited with a non-zero status, or the run was stopped."""


class Terminated(Exception):
    """SIGTERM reached the process that runs the members."""


def raise_terminated(signum, frame):
    raise Terminated()


def member_dir(run_dir: Path, k: int) -> Path:
    return Path(run_dir) / f"member_{k}"


def member_threads(asked: int, members: int) -> int:
    """Each member's torch threads: train.threads (0: all cores) shared evenly, at least one."""
    return max(1, (asked or os.cpu_count() or 1) // members)


def member_command(task_overrides: list[str], cfg, run_dir: Path, k: int) -> list[str]:
    """The command line of member k: the run's own overrides, less the keys set per member."""
    def key(override: str) -> str:
        return override.split("=", 1)[0].lstrip("+~")

    kept = [o for o in task_overrides if key(o) not in MEMBER_KEYS]
    t = cfg.train
    return [sys.executable, "-m", "nmt.train", *kept, "train.members=1",
            f"train.threads={member_threads(t.threads, t.members)}",
            f"train.seed={t.seed + k}", f"train.batching.seed={t.batching.seed + k}",
            f"hydra.run.dir={member_dir(run_dir, k)}"]


def run_members(commands: list[list[str]], logs: list[Path | None],
                poll_seconds: float = 1.0) -> tuple[list[int], list[int]]:
    """Start every command at once (stdout and stderr to its log, or this terminal for None),
    wait for all; return their exit statuses and the members that failed on their own.
    A member that fails stops the others at once (they
    save their last.pt, as on SIGTERM), so a failure in minute 1 is reported in minute 1. Ctrl-C or
    SIGTERM here reaches every member, which saves its last.pt and stops as a single run does;
    then the exception goes on."""
    import threading
    import time

    procs, files = [], []
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if main_thread else None
    try:
        for command, log in zip(commands, logs):
            out = open(log, "w") if log else None
            files.append(out)
            procs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT if out else None))
        statuses = [p.poll() for p in procs]
        while None in statuses and all(s in (None, 0) for s in statuses):
            time.sleep(poll_seconds)
            statuses = [p.poll() for p in procs]
        failed = [k for k, s in enumerate(statuses) if s not in (None, 0)]
        stop_all(procs)
        return [p.wait() for p in procs], failed
    except BaseException:
        stop_all(procs)
        raise
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for f in files:
            if f:
                f.close()


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every member still running (each saves its last.pt and exits), and wait for them."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait()


def check_members(cfg) -> None:
    """The rules of train.members that look past the config: it starts its own processes (not
    under torchrun), and members resume one by one."""
    from nmt.config.rules import ConfigError
    from nmt.runs.run_folder import resume_asked
    from nmt.training.distributed import launched_by_torchrun

    members = cfg.train.members
    if members > 1 and launched_by_torchrun():
        raise ConfigError(f"train.members={members} starts its own processes. Fix: python -m nmt.train "
                          "without torchrun, or train.members=1 under torchrun")
    if members > 1 and resume_asked(cfg.train.resume):
        raise ConfigError(f"train.members={members} with train.resume={cfg.train.resume}: members resume one "
                          "by one. Fix: python -m nmt.train train.resume=RUN_DIR/member_K, then its other members")


def train_run(cfg, run_dir: Path, task_overrides: list[str], replace: dict | None = None) -> RunSummary:
    """Train as `cfg` says under `run_dir` and return its RunSummary: one Trainer, or with
    train.members=N > 1 N member processes given `task_overrides` (the command line's) with the
    keys of `replace` set to its values (nmt.distill: prepared_dir= the distilled folder)."""
    from nmt.training.trainer import Trainer

    check_members(cfg)
    if cfg.train.members > 1:
        replace = replace or {}
        kept = [o for o in task_overrides if o.split("=", 1)[0].lstrip("+~") not in replace]
        return train_members(cfg, run_dir, kept + [f"{k}={v}" for k, v in replace.items()])
    return Trainer(cfg, run_dir).fit()  # under torchrun, every rank leaves the process group together


def train_members(cfg, run_dir: Path, task_overrides: list[str]) -> RunSummary:
    """Train cfg.train.members members under `run_dir`, score their ensemble on val with the
    decode group's search, write `run_dir/train_summary.json` naming them, and return it."""
    n, run_dir = cfg.train.members, Path(run_dir)
    threads = member_threads(cfg.train.threads, n)
    print(f"train: {n} members side by side, {threads} thread(s) each, in {run_dir}/member_0..{n - 1}; "
          f"member 0 reports here, the others to {run_dir}/member_K.log", file=sys.stderr)
    total = cfg.train.threads or os.cpu_count() or 1
    if n > total:
        print(f"train: note: {n} members on {total} thread(s): they share cores, so each trains slower than "
              f"on a core of its own. Fix: train.members={total} or fewer", file=sys.stderr)
    commands = [member_command(task_overrides, cfg, run_dir, k) for k in range(n)]
    logs = [None] + [run_dir / f"member_{k}.log" for k in range(1, n)]
    try:
        statuses, failed = run_members(commands, logs)
    except (Terminated, KeyboardInterrupt) as err:
        raise MemberFailed(f"stopped by {'SIGTERM' if isinstance(err, Terminated) else 'Ctrl-C'}; each member saved "
                           f"its checkpoints/last.pt under {run_dir}/member_K. Fix: resume a member with the overrides "
                           f"in {run_dir}/member_K/.hydra/overrides.yaml and train.resume=auto; then translate with "
                           f"ckpt=[{run_dir}/member_0,...]") from None
    if failed:
        stopped = [k for k in range(n) if k not in failed]
        raise MemberFailed("; ".join(
            f"member {k} ({member_dir(run_dir, k)}) exited with status {statuses[k]}"
            + (f": see {logs[k]}" if logs[k] else "") for k in failed)
            + (f"; then {', '.join(f'member {k}' for k in stopped)} stopped (saving checkpoints/last.pt)"
               if stopped else "")
            + ". Fix: the member's own error says what to change; its checkpoints are in its folder")
    summaries = [RunSummary.load(member_dir(run_dir, k)) for k in range(n)]
    summary = RunSummary(run_dir=str(run_dir), members=[member_dir(run_dir, k).name for k in range(n)],
                         member_summaries=summaries,
                         ensemble=ensemble_val_scores(cfg, [member_dir(run_dir, k) for k in range(n)], summaries))
    summary.save(run_dir)
    e = summary.ensemble
    scores = (f" on val: BLEU {e.bleu:.2f} ({e.search}, length penalty {e.length_penalty:g}; members "
              f"{', '.join(f'{s:.2f}' for s in e.member_bleu)})" if e.bleu is not None else "")
    print(f"train: ensemble of {n} members{scores}; translate with ckpt={run_dir}", file=sys.stderr)
    return summary


def ensemble_val_scores(cfg, members: list[Path], summaries: list[RunSummary]) -> EnsembleScores:
    """Val BLEU of the members together, as translate will run them (the decode group's search,
    the mean of the length penalties the members chose), and of each member alone (from its
    summary when it chose its penalty on val, else decoded here); only the checkpoints with
    train.val_bleu=false."""
    import torch

    from nmt.data.store import load_training_data
    from nmt.inference.translator import Translator
    from nmt.runs.run_folder import recommended_checkpoint
    from nmt.training.validation import split_bleu

    paths = [recommended_checkpoint(m) for m in members]
    if not cfg.train.val_bleu:
        return EnsembleScores(checkpoints=[str(p) for p in paths])
    torch.set_num_threads(cfg.train.threads or os.cpu_count() or 1)
    valid = load_training_data(Path(cfg.prepared_dir))[0]["valid"]
    ensemble = Translator.from_checkpoint(paths, cfg.decode)
    bleu = split_bleu(ensemble, valid, cfg.train.val_max_sentences)
    alone = [member_val_bleu(summary) or split_bleu(Translator.from_checkpoint(p, cfg.decode), valid,
                                                    cfg.train.val_max_sentences)
             for p, summary in zip(paths, summaries)]
    search = f"beam {cfg.decode.beam_size}" if cfg.decode.kind == "beam" else "greedy"
    return EnsembleScores(bleu=bleu, member_bleu=alone, search=search,
                          length_penalty=ensemble.options.length_penalty, checkpoints=[str(p) for p in paths])


def member_val_bleu(summary: RunSummary) -> float | None:
    """A member's val BLEU at the length penalty it chose (its summary's `length_penalty`: the
    recommended checkpoint with the decode group's search, as translate runs it), or None."""
    return summary.length_penalty.chosen_bleu() if summary.length_penalty else None
