"""train.members=N: N seeded members trained side by side as processes, used as one ensemble
through ckpt=RUN_DIR; a failing member is one clear error."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, TINY_DE, TINY_MODEL, make_cfg
from nmt.config.rules import ConfigError, check_config
from nmt.inference.translator import Translator
from nmt.model.ensemble import Ensemble
from nmt.runs.checkpoint import Checkpoint
from nmt.runs.run_folder import RunSummary, recommended_checkpoint
from nmt.training.members import check_members, member_command


def train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmt.train", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def test_each_member_gets_its_seed_threads_and_folder_and_keeps_the_rest():
    cfg = make_cfg("train.members=2", "train.threads=2", "train.seed=5", "train.batching.seed=7")
    given = ["train.members=2", "train.threads=2", "train.seed=5", "model.hidden_dim=32", "++train.resume=false"]
    cmd = member_command(given, cfg, Path("RUN"), 1)
    assert cmd[1:3] == ["-m", "nmt.train"]
    args = cmd[3:]
    assert "model.hidden_dim=32" in args
    assert {"train.members=1", "train.threads=1", "train.seed=6", "train.batching.seed=8",
            f"hydra.run.dir={Path('RUN') / 'member_1'}"} <= set(args)
    assert not {"train.members=2", "train.threads=2", "train.seed=5", "++train.resume=false"} & set(args)


def test_members_config_is_checked():
    with pytest.raises(ConfigError, match="train.members=0"):
        check_config(make_cfg("train.members=0"))
    with pytest.raises(ConfigError, match="member_K"):
        check_members(make_cfg("train.members=2", "train.resume=auto"))


def test_two_members_train_side_by_side_and_translate_as_one_ensemble(tiny_prepared, tmp_path):
    run_dir = tmp_path / "run"
    r = train([f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.members=2", "train.max_epochs=3",
               "train.lr=0.01", "train.precision=auto", f"hydra.run.dir={run_dir}"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    members = [run_dir / "member_0", run_dir / "member_1"]
    for k, member in enumerate(members):  # each an ordinary run, with its own seed
        summary = RunSummary.load(member)
        assert summary.steps > 0 and (member / "checkpoints" / "best.pt").is_file()
        assert Checkpoint.load(member / "checkpoints" / "last.pt").train_config["seed"] == 1 + k
    member_log = (run_dir / "member_1.log").read_text()
    assert "member_1" in member_log and "train: precision=auto: " in member_log
    w0, w1 = (Checkpoint.load(m / "checkpoints" / "best.pt").weights for m in members)
    assert any((w0[k] != w1[k]).any() for k in w0)  # other seeds, other models

    summary = RunSummary.load(run_dir)
    assert summary.members == ["member_0", "member_1"]
    assert len(summary.ensemble.member_bleu) == 2 and summary.ensemble.search == "beam 5"
    assert "ensemble of 2 members on val: BLEU" in r.stderr

    together = Translator.from_checkpoint(run_dir, beam_size=3)  # ckpt=RUN_DIR: every member
    assert isinstance(together.model, Ensemble) and len(together.model.members) == 2
    by_hand = Translator.from_checkpoint([recommended_checkpoint(m) for m in members], beam_size=3)
    assert together.translate(TINY_DE) == by_hand.translate(TINY_DE)

    r = subprocess.run([sys.executable, "-m", "nmt.export", f"ckpt={run_dir}", f"export.output={tmp_path}/folder"],
                       cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1 and "export: error" in r.stderr and "member_0" in r.stderr


def test_a_failing_member_is_one_clear_error(tmp_path):
    r = train([f"prepared_dir={tmp_path}/nothing", "train.members=2", f"hydra.run.dir={tmp_path}/run"], tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr.split("train: error:")[-1]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("train: error: member ") and "member 1" in last
    if "member_1.log" in last:  # member 1 failed on its own (not stopped first): its log has its own error
        assert "nmt.prepare" in (tmp_path / "run" / "member_1.log").read_text()
    assert not (tmp_path / "run" / "train_summary.json").exists()


def test_a_member_that_fails_stops_the_others_at_once(tmp_path):
    """A member dying early is reported then, not when the others end: they get SIGTERM at once."""
    import time

    from nmt.training.members import run_members

    slow = [sys.executable, "-c", "import time; time.sleep(120)"]
    fails = [sys.executable, "-c", "import time, sys; time.sleep(0.5); sys.exit(3)"]
    started = time.time()
    statuses, failed = run_members([slow, fails], [tmp_path / "0.log", tmp_path / "1.log"], poll_seconds=0.2)
    assert time.time() - started < 30
    assert failed == [1] and statuses[1] == 3 and statuses[0] == -signal.SIGTERM


def test_sigterm_reaches_every_member_and_each_saves(tiny_prepared, tmp_path):
    run_dir = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "nmt.train", f"prepared_dir={tiny_prepared}", *TINY_MODEL,
                          "train.members=2", "train.val_bleu=false", "train.early_stopping_metric=loss",
                          "train.max_steps=100000", "train.max_epochs=100000", "train.checkpoint_every=100000",
                          "train.log_every=1", f"hydra.run.dir={run_dir}"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    metrics = [run_dir / f"member_{k}" / "metrics.jsonl" for k in (0, 1)]
    deadline = time.time() + 120
    while not all(m.is_file() and m.stat().st_size for m in metrics) and time.time() < deadline:
        time.sleep(0.1)  # both are training
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    last = err.strip().splitlines()[-1]
    assert p.returncode == 1 and last.startswith("train: error: stopped by SIGTERM"), err[-2000:]
    assert "train.resume=auto" in last
    for k in (0, 1):  # checkpoint_every=100000: only the signal could have saved them
        assert Checkpoint.load(run_dir / f"member_{k}" / "checkpoints" / "last.pt").progress["step"] > 0
    assert "stopped by SIGTERM" in (run_dir / "member_1.log").read_text()
