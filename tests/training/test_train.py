"""Training: overfitting, exact resume (also after SIGKILL), torchrun, clear errors."""
import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings

import datasets
import pytest
import torch
from helpers import free_port
from hydra.errors import ConfigCompositionException

from conftest import ROOT, TINY_EN, TINY_MODEL, TINY_TRANSFORMER, make_cfg
from nmt.cli.train import run
from nmt.data.store import PreparedDataError
from nmt.inference.translator import Translator
from nmt.runs.checkpoint import Checkpoint
from nmt.runs.run_folder import RunFolderError


def train_cfg(prepared, *extra):
    return make_cfg(f"prepared_dir={prepared}", *TINY_MODEL, *extra)


def test_tiny_model_overfits_and_reproduces_targets(tiny_prepared, tmp_path):
    cfg = train_cfg(tiny_prepared, "model.dropout=0", "model.emb_dropout=0", "train.label_smoothing=0",
                    "train.lr=0.01", "train.max_epochs=40", "train.schedule=constant", "train.patience=100")
    summary = run(cfg, tmp_path)
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in rows if r["kind"] == "valid"]
    assert valid[-1]["loss"] < 0.05 and valid[-1]["bleu"] == pytest.approx(100.0)
    tr = Translator.from_checkpoint(tmp_path / "checkpoints/best.pt", decode="greedy")
    hyps = tr.translate_split(datasets.load_from_disk(str(tiny_prepared))["test"])
    assert tr.detokenize(hyps) == TINY_EN
    assert (tmp_path / "learning_curves.png").stat().st_size > 1000
    assert summary.metric == "bleu" and summary.best_score == pytest.approx(100.0)


def weights(path):
    return Checkpoint.load(path).weights


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# plateau: this test stops the first run early by giving it fewer steps, which would change a
# budget-wide schedule; the SIGKILL test below covers the default (cosine) one
RESUME = ["model.dropout=0.3", "train.validate_every=5", "train.checkpoint_every=4", "train.val_bleu=true",
          "train.schedule=plateau"]


def test_interrupted_and_resumed_equals_uninterrupted(tiny_prepared, tmp_path):
    run(train_cfg(tiny_prepared, *RESUME, "train.max_steps=23"), tmp_path / "a")
    run(train_cfg(tiny_prepared, *RESUME, "train.max_steps=10"), tmp_path / "b")
    first = Checkpoint.load(tmp_path / "b/checkpoints/last.pt")
    assert first.progress["step"] == 10
    run(train_cfg(tiny_prepared, *RESUME, "train.max_steps=23", f"train.resume={tmp_path / 'b'}"), tmp_path / "c")
    assert_same_weights(weights(tmp_path / "a/checkpoints/last.pt"), weights(tmp_path / "c/checkpoints/last.pt"))
    a, c = Checkpoint.load(tmp_path / "a/checkpoints/last.pt"), Checkpoint.load(tmp_path / "c/checkpoints/last.pt")
    assert a.progress == {**c.progress, "train_seconds": a.progress["train_seconds"]}


def test_sigkill_then_resume_matches_uninterrupted(tiny_prepared, tmp_path):
    # the default schedule (cosine over max_steps), so all three runs get the same budget
    args = ["model.dropout=0.3", "train.checkpoint_every=5", "train.val_bleu=false", "train.early_stopping_metric=loss",
            "train.max_steps=300"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-m", "nmt.train", f"prepared_dir={tiny_prepared}", *TINY_MODEL, *args,
                          f"hydra.run.dir={killed}"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoints/last.pt").exists() and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    saved = Checkpoint.load(killed / "checkpoints/last.pt").progress["step"]
    assert saved % 5 == 0 and 0 < saved < 300
    run(train_cfg(tiny_prepared, *args, f"train.resume={killed}"), tmp_path / "resumed")
    run(train_cfg(tiny_prepared, *args), tmp_path / "straight")
    assert_same_weights(weights(tmp_path / "resumed/checkpoints/last.pt"),
                        weights(tmp_path / "straight/checkpoints/last.pt"))


@pytest.mark.parametrize("family", ["rnn", "transformer"])
def test_torchrun_two_processes_on_cpu(tiny_prepared, tmp_path, family):
    arch = TINY_TRANSFORMER if family == "transformer" else []
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", f"--master-port={free_port()}",
                        "-m", "nmt.train", f"prepared_dir={tiny_prepared}", *TINY_MODEL, *arch, "train.max_steps=4",
                        "train.checkpoint_every=2", "train.val_bleu=false", "train.early_stopping_metric=loss"],
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    run_dirs = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]
    assert len(run_dirs) == 1, run_dirs  # one Hydra run dir for both ranks
    ckpt = Checkpoint.load(run_dirs[0] / "checkpoints/last.pt")
    assert ckpt.progress["step"] == 4
    # rank 0 alone writes; the last saves (every 2 steps) kept for the final average, avg.pt beside them
    assert sorted(p.name for p in (run_dirs[0] / "checkpoints").iterdir()) == \
        ["avg.pt", "best.pt", "last.pt", "step_00000002.pt", "step_00000004.pt"]


def test_torchrun_rank_0_failing_after_training_fails_every_rank_without_a_hang(tiny_prepared, tmp_path):
    """Rank 0 alone does the end-of-run work; when it fails (here: the summary cannot be written),
    the other rank, waiting for it, fails too with a line naming rank 0, and torchrun's status
    says so: no hang, no exit 0 over an incomplete run."""
    for attempt in range(2):
        run_dir = tmp_path / f"run{attempt}"
        (run_dir / "train_summary.json").mkdir(parents=True)  # a folder where the summary goes
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
                            f"--master-port={free_port()}", "-m", "nmt.train", f"prepared_dir={tiny_prepared}",
                            *TINY_MODEL, "train.max_steps=2", "train.checkpoint_every=2", "train.val_bleu=false",
                            "train.early_stopping_metric=loss", f"hydra.run.dir={run_dir}"],
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                           timeout=240)
        # the gloo abort of two_node_run (TORCH_ABORT), seen once here in CI (2026-12-04): the other
        # rank aborted inside torch while leaving, and torchrun killed rank 0 before it printed
        if attempt == 0 and "IsADirectoryError" not in r.stderr and all(m in r.stderr for m in TORCH_ABORT):
            warnings.warn(f"torchrun lost a worker to SIGABRT inside torch; retrying once\n{r.stderr[-3000:]}")
            continue
        break
    assert r.returncode != 0
    assert "train: error: rank 0 failed after training, in the end-of-run work (IsADirectoryError" in r.stderr, \
        r.stderr[-3000:]
    assert "IsADirectoryError" in r.stderr and "terminate called" not in r.stderr


def torchrun_two_nodes(prepared, run_dir, *extra, timeout: int = 120) -> tuple[list[tuple[int, str]], bool]:
    """Two "nodes" of one process each, as on two machines: two torchrun agents that meet through
    the c10d rendezvous on 127.0.0.1 (gloo). As on two machines, one of them hosts the rendezvous
    store (is_host: on one machine both would match the endpoint and race to bind it) and each
    names its own address (--local-addr, not a lookup of the host name). Returns each agent's
    (returncode, stderr) and whether the launch hung (killed, with its workers, after `timeout` s)."""
    port = free_port()

    def command(node: int) -> list[str]:
        return [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", f"--rdzv-id=test-{port}",
                f"--rdzv-conf=is_host={int(node == 0)},join_timeout=60", "--local-addr=127.0.0.1",
                "-m", "nmt.train", f"prepared_dir={prepared}", *TINY_MODEL, *extra, f"hydra.run.dir={run_dir}"]

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    nodes = [subprocess.Popen(command(node), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, start_new_session=True) for node in range(2)]  # a kill takes the worker too
    deadline, hung = time.monotonic() + timeout, False
    try:
        for n in nodes:
            n.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        hung = True
    finally:
        for n in nodes:
            kill_group(n)
    return [(n.wait(), n.communicate()[1]) for n in nodes], hung


# A worker aborted inside torch (gloo's C++ threads: "terminate called without an active exception",
# SIGABRT) while its peer waits forever: about 1 two-agent launch in 50 on this 2-core box under
# load (2026-12-04), never from an error nmt raises.
TORCH_ABORT = ("terminate called", "Signal 6 (SIGABRT)")


def two_node_run(prepared, run_dir, *extra):
    """`torchrun_two_nodes` into `run_dir`; the run folder it completed. Retried once, in a fresh
    folder, when a worker was aborted inside torch or the launch hung (with a warning carrying
    both agents' stderr); any other failure fails the test at once."""
    for attempt in range(2):
        target = run_dir if attempt == 0 else run_dir.with_name(f"{run_dir.name}_again")
        results, hung = torchrun_two_nodes(prepared, target, *extra)
        if not hung and all(rc == 0 for rc, _ in results):
            return target
        errs = "\n\n".join(f"node {i} (exit {rc}) stderr:\n{err[-3000:]}" for i, (rc, err) in enumerate(results))
        if attempt == 0 and (hung or any(m in err for _, err in results for m in TORCH_ABORT)):
            warnings.warn(f"two-node torchrun {'hung' if hung else 'lost a worker to SIGABRT'}; retrying once\n{errs}")
            continue
        pytest.fail(f"two-node torchrun into {target} {'hung' if hung else 'failed'}\n{errs}")


def kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


MULTI_NODE = ["model.dropout=0.3", "train.checkpoint_every=3", "train.val_bleu=false",
              "train.early_stopping_metric=loss", "train.schedule=constant"]


def test_two_nodes_train_and_resume_exactly(tiny_prepared, tmp_path):
    """torchrun --nnodes=2: rank 0 alone writes; a run stopped and resumed on two nodes ends with the
    weights of one never stopped (each rank resumes with its own RNG states: dropout differs per rank)."""
    straight = two_node_run(tiny_prepared, tmp_path / "straight", *MULTI_NODE, "train.max_steps=8")
    part_dir = two_node_run(tiny_prepared, tmp_path / "part", *MULTI_NODE, "train.max_steps=4")
    resumed = two_node_run(tiny_prepared, tmp_path / "resumed", *MULTI_NODE, "train.max_steps=8",
                           f"train.resume={part_dir}")
    part = Checkpoint.load(part_dir / "checkpoints/last.pt")
    assert part.progress["step"] == 4 and len(part.training.rng_per_rank) == 2
    assert not torch.equal(part.training.rng_per_rank[0]["torch"], part.training.rng_per_rank[1]["torch"])
    assert_same_weights(weights(straight / "checkpoints/last.pt"), weights(resumed / "checkpoints/last.pt"))
    assert sorted(p.name for p in (straight / "checkpoints").iterdir()) == \
        ["avg.pt", "best.pt", "last.pt", "step_00000003.pt", "step_00000006.pt", "step_00000008.pt"]


def test_clear_errors(tiny_prepared, tmp_path):
    with pytest.raises(ConfigCompositionException, match="foo"):
        make_cfg("train.foo=1")
    with pytest.raises(PreparedDataError, match="nmt.prepare"):
        run(train_cfg(tmp_path / "nothing"), tmp_path / "r1")
    old = tmp_path / "old"
    old.mkdir()
    (old / "meta.json").write_text(json.dumps({"format_version": 0}))
    with pytest.raises(PreparedDataError, match="force=true"):
        run(train_cfg(old), tmp_path / "r2")
    with pytest.raises(RunFolderError, match="train.resume"):
        run(train_cfg(tiny_prepared, f"train.resume={tmp_path}/none"), tmp_path / "r3")
    r = subprocess.run([sys.executable, "-m", "nmt.train", f"prepared_dir={tmp_path}/nothing"], cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert r.returncode != 0 and "nmt.prepare" in r.stderr and "Traceback" not in r.stderr


def test_cosine_schedule_warms_up_then_decays_to_min_lr_over_the_budget():
    from nmt.training.optim import budget_fraction, make_scheduler
    from nmt.training.trainer import Progress

    cfg = make_cfg("train.schedule=cosine", "train.lr=0.01", "train.min_lr=0.001", "train.warmup_steps=4",
                   "train.max_steps=20", "train.max_minutes=1").train
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=cfg.lr)
    progress = Progress()
    position = lambda: (progress.step,  # noqa: E731
                        budget_fraction(progress.step, progress.train_seconds, cfg.max_steps, cfg.max_minutes))
    sched = make_scheduler(opt, cfg, position)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        progress.step += 1
        sched.step()
    assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)  # the floor once the step budget is spent
    progress.step, progress.train_seconds = 5, 45.0  # time is the furthest budget: 3/4 of a minute
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001 + 0.009 * 0.5 * (1 + math.cos(0.75 * math.pi)))
    progress.step, progress.train_seconds = 1, 0.0  # the schedule follows progress (e.g. a resumed run)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.005)


def test_resume_auto_starts_fresh_or_continues(tmp_path):
    from nmt.runs.run_folder import resolve_resume

    assert resolve_resume("auto", tmp_path) is None  # a first (or never checkpointed) job
    with pytest.raises(RunFolderError, match="does not exist"):
        resolve_resume(True, tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints/last.pt").write_bytes(b"x")
    assert resolve_resume("auto", tmp_path) == tmp_path / "checkpoints/last.pt"  # a requeued job


def test_precision_auto_is_bf16_only_where_the_device_computes_it(monkeypatch):
    from pathlib import Path

    from nmt.config.choices import Precision
    from nmt.training import optim

    cpu = torch.device("cpu")
    for native, expected in ((True, Precision.bf16), (False, Precision.fp32)):
        monkeypatch.setattr(optim, "cpu_has_native_bf16", lambda native=native: native)
        assert optim.resolve_precision(Precision.auto, cpu) == expected
    for given in (Precision.fp32, Precision.bf16):
        assert optim.resolve_precision(given, cpu) == given
    monkeypatch.undo()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():  # torch's probe agrees with what the kernel reports
        flags = set(cpuinfo.read_text().split())
        assert optim.cpu_has_native_bf16() == bool({"avx512_bf16", "amx_bf16"} & flags)


def test_a_time_budget_is_not_cut_short_by_a_default_epoch_count(tiny_prepared, tmp_path):
    """train.max_epochs unset: 30 epochs without a time budget, no epoch limit within one (a bf16
    run once stopped at 26 of its 30 minutes). One batch per epoch, so 30 epochs are 30 steps."""
    from nmt.training.optim import DEFAULT_MAX_EPOCHS, epoch_limit

    base = ["train.batching.batch_size=36", "train.val_bleu=false", "train.early_stopping_metric=loss",
            "train.patience=1000", "train.length_penalties=[]", "train.average_last=0"]
    budgeted = run(train_cfg(tiny_prepared, *base, "train.max_minutes=30", "train.max_steps=40"), tmp_path / "a")
    assert "train.max_steps=40 reached" in budgeted.stop_reason
    unbudgeted = run(train_cfg(tiny_prepared, *base), tmp_path / "b")
    assert f"train.max_epochs={DEFAULT_MAX_EPOCHS} reached" in unbudgeted.stop_reason
    assert epoch_limit(make_cfg("train.max_minutes=30", "train.max_epochs=3").train) == 3  # given: kept
    assert epoch_limit(make_cfg("train.max_minutes=30").train) is None
