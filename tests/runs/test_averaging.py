"""nmt.average and train.keep_last: averaged weights, refusals, and use of the result."""
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_DE, TINY_MODEL, make_cfg
from nmt import Translator
from nmt.cli.average import run as average_run
from nmt.cli.train import run as train
from nmt.runs.average import average_checkpoints
from nmt.runs.checkpoint import Checkpoint, CheckpointError


@pytest.fixture(scope="module")
def kept_run(tiny_prepared, tmp_path_factory):
    """A tiny run that keeps its last 3 checkpoints (every 4 steps, 20 steps)."""
    run_dir = tmp_path_factory.mktemp("kept")
    train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.max_steps=20", "train.checkpoint_every=4",
                   "train.keep_last=3", "train.average_last=0", "train.val_bleu=false", "train.early_stopping_metric=loss"), run_dir)
    return run_dir


def test_keep_last_keeps_the_newest_k(kept_run):
    names = sorted(p.name for p in (kept_run / "checkpoints").glob("step_*.pt"))
    assert names == ["step_00000012.pt", "step_00000016.pt", "step_00000020.pt"]
    last = Checkpoint.load(kept_run / "checkpoints/last.pt").weights
    newest = Checkpoint.load(kept_run / "checkpoints/step_00000020.pt").weights
    assert all(torch.equal(last[k], newest[k]) for k in last)


def test_averaging_identical_checkpoints_returns_the_same_weights(tiny_checkpoint):
    avg = average_checkpoints([tiny_checkpoint, tiny_checkpoint, tiny_checkpoint]).weights
    one = Checkpoint.load(tiny_checkpoint).weights
    assert avg.keys() == one.keys() and all(torch.equal(avg[k], one[k]) for k in one)


def test_last_n_is_the_mean_and_translates(kept_run, tiny_prepared, tmp_path):
    out = average_run(make_cfg("average.last_n=3", f"average.run={kept_run}", f"average.output={tmp_path}/avg.pt"), tmp_path)
    avg = Checkpoint.load(out)
    states = [Checkpoint.load(kept_run / f"checkpoints/step_{s:08d}.pt").weights for s in (12, 16, 20)]
    for k, v in avg.weights.items():
        if v.is_floating_point():
            assert torch.allclose(v, sum(s[k] for s in states) / 3, atol=1e-7), k
    assert len(avg.averaged_from) == 3 and avg.training is None
    tr = Translator.from_checkpoint(out, decode="greedy")
    assert len(tr.translate(TINY_DE)) == len(TINY_DE) and tr.info["averaged_from"] == [p.rsplit("/", 1)[-1] for p in avg.averaged_from]
    # an averaged checkpoint is for inference: resuming from it is refused with the fix
    with pytest.raises(CheckpointError, match="weights only"):
        train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, f"train.resume={out}"), tmp_path / "r")


def test_refusals(kept_run, tiny_checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="train.keep_last"):
        average_run(make_cfg("average.last_n=5", f"average.run={kept_run}", f"average.output={tmp_path}/a.pt"), tmp_path)
    with pytest.raises(CheckpointError, match="a different model"):
        average_run(make_cfg(f"average.inputs=[{tiny_checkpoint},{kept_run}/checkpoints/last.pt]",
                         f"average.output={tmp_path}/b.pt"), tmp_path)
    r = subprocess.run([sys.executable, "-m", "nmt.average", f"run={kept_run}", f"hydra.run.dir={tmp_path}/h"],
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "average.output=PATH.pt" in r.stderr






