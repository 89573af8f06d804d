"""Safety (#14): a model file never runs code; training survives preemption and refuses to mix
runs, models or vocabularies; outputs are checked before the work. Each test fails on the code
before these changes."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import Payload, assert_one_line_error, cli

from conftest import ROOT, TINY_DE, TINY_EN, TINY_MODEL, make_cfg, write_lines, write_tiny_corpus
from nmt.cli.train import run as train
from nmt.cli.translate import run as translate
from nmt.config.rules import ConfigError, check_config
from nmt.data.prepare import prepare
from nmt.files import OutputError, RunDirBusy
from nmt.runs.checkpoint import Checkpoint, CheckpointError

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def evil_checkpoint(tiny_checkpoint, tmp_path):
    """A real checkpoint with one more entry whose unpickling would create `marker`."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "run/checkpoints/last.pt"
    evil.parent.mkdir(parents=True)
    torch.save({"checkpoint_version": 1, **Checkpoint.load(tiny_checkpoint).payload(), "x": Payload(marker)}, evil)
    return evil, marker


def test_a_hostile_checkpoint_runs_nothing_in_translate_average_resume_and_serve(evil_checkpoint, tiny_checkpoint,
                                                                                 tiny_prepared, tmp_path):
    from nmt.cli.average import run as average

    evil, marker = evil_checkpoint
    for program, args in (("translate", [f"ckpt={evil}", "translate.split=test"]),
                          ("serve", [f"ckpt={evil}", "serve.port=0"])):  # as users run them
        rc, _, err = cli(program, *args, f"hydra.run.dir={tmp_path}/{program}")
        assert_one_line_error(rc, err, str(evil), "refused", "posix.system")
    with pytest.raises(CheckpointError, match="refused"):
        average(make_cfg(f"average.inputs=[{tiny_checkpoint},{evil}]", f"average.output={tmp_path}/avg.pt"), tmp_path)
    with pytest.raises(CheckpointError, match="refused"):
        train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, f"train.resume={evil}"), tmp_path / "resume")
    assert not marker.exists() and not (tmp_path / "avg.pt").exists()


def test_sigterm_saves_the_step_and_auto_resume_continues_exactly(tiny_prepared, tmp_path):
    args = ["train.val_bleu=false", "train.early_stopping_metric=loss", "train.max_steps=400",
            "train.checkpoint_every=1000", "train.log_every=1"]
    run_dir = tmp_path / "pre"
    p = subprocess.Popen([sys.executable, "-m", "nmt.train", f"prepared_dir={tiny_prepared}", *TINY_MODEL, *args,
                          f"hydra.run.dir={run_dir}"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (run_dir / "metrics.jsonl").exists() and time.time() < deadline:  # training has started
        time.sleep(0.05)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    err = err.decode()
    assert_one_line_error(p.returncode, err, "stopped by SIGTERM at step", "train.resume=auto")
    saved = Checkpoint.load(run_dir / "checkpoints/last.pt").progress["step"]
    assert 0 < saved < 400  # checkpoint_every=1000: only the signal could have saved it
    assert f"at step {saved};" in err
    train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, *args, "train.resume=auto"), run_dir)
    train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, *args), tmp_path / "straight")
    a, b = (Checkpoint.load(d / "checkpoints/last.pt").weights for d in (run_dir, tmp_path / "straight"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_training_in_the_same_run_folder_is_refused(tiny_prepared, tmp_path):
    from filelock import FileLock

    with FileLock(str(tmp_path / ".train.lock")):  # as a running training holds it
        with pytest.raises(RunDirBusy, match="another train is writing to this run folder"):
            train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.max_steps=2"), tmp_path)
    assert not (tmp_path / "checkpoints").exists()
    with FileLock(str(tmp_path / ".train.lock")):  # from the command line: refused before Hydra writes .hydra/
        rc, _, err = cli("train", f"prepared_dir={tiny_prepared}", *TINY_MODEL, f"hydra.run.dir={tmp_path}")
    assert_one_line_error(rc, err, "another train is writing to this run folder")
    assert not (tmp_path / ".hydra").exists()


def tiny_prepared_with(tmp_path, de, en, name):
    d = tmp_path / name
    d.mkdir()
    for split in ("train", "val", "test_2016_flickr"):
        write_lines(d / f"{split}.de", de)
        write_lines(d / f"{split}.en", en)
    return prepare(make_cfg(f"data.root={d}", f"prepared_dir={d}/prepared", "vocab=word", "vocab.min_freq=1"))


def test_resume_refuses_another_model_size_or_other_vocabularies(tiny_checkpoint, tiny_prepared, tmp_path):
    with pytest.raises(CheckpointError, match="model.hidden_dim=32 in the checkpoint, 48 now"):
        train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "model.hidden_dim=48",
                       f"train.resume={tiny_checkpoint}"), tmp_path / "a")
    # the same vocabulary sizes, other pieces: every word upper-cased
    other = tiny_prepared_with(tmp_path, [s.upper() for s in TINY_DE * 3], [s.upper() for s in TINY_EN * 3], "upper")
    with pytest.raises(CheckpointError, match="trained with other vocabularies"):
        train(make_cfg(f"prepared_dir={other}", *TINY_MODEL, f"train.resume={tiny_checkpoint}"), tmp_path / "b")


def test_translate_split_refuses_a_prepared_folder_with_other_vocabularies(tiny_checkpoint, tmp_path):
    other = tiny_prepared_with(tmp_path, [s.upper() for s in TINY_DE * 3], [s.upper() for s in TINY_EN * 3], "upper")
    copy = tmp_path / "ckpt.pt"
    ckpt = Checkpoint.load(tiny_checkpoint)
    ckpt.prepared["dir"] = str(tmp_path / "gone")  # the folder it was trained on no longer exists
    ckpt.save(copy)
    with pytest.raises(ValueError, match="holds other vocabularies than the checkpoint"):
        translate(make_cfg(f"ckpt={copy}", "translate.split=test", f"prepared_dir={other}"), tmp_path / "t")


def test_prepare_never_replaces_what_it_did_not_write(tmp_path):
    d = write_tiny_corpus(tmp_path / "c")
    users_file = tmp_path / "notes.txt"
    users_file.write_text("mine")
    with pytest.raises(OutputError, match="a file is there"):
        prepare(make_cfg(f"data.root={d}", f"prepared_dir={users_file}", "vocab=word"))
    assert users_file.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["c", "notes.txt"]
    users_dir = tmp_path / "photos"
    users_dir.mkdir()
    (users_dir / "a.jpg").write_bytes(b"jpg")
    with pytest.raises(OutputError, match="did not write"):
        prepare(make_cfg(f"data.root={d}", f"prepared_dir={users_dir}", "vocab=word"))
    assert [p.name for p in users_dir.iterdir()] == ["a.jpg"]


def test_outputs_and_choices_are_checked_before_the_work(tiny_checkpoint, tmp_path, capsys):
    src = write_lines(tmp_path / "in.de", TINY_DE)
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError, match="translate.output=.*is a folder"):
        translate(make_cfg(f"ckpt={tiny_checkpoint}", f"translate.input={src}", f"translate.output={tmp_path}/out"),
                  tmp_path / "r")
    assert "translate:" not in capsys.readouterr().err  # refused before decoding (no progress bar)
    with pytest.raises(OutputError, match="its folder cannot be created"):  # as a read-only parent would
        translate(make_cfg(f"ckpt={tiny_checkpoint}", f"translate.input={src}",
                           f"translate.output={src}/out.en"), tmp_path / "r")
    with pytest.raises(OutputError, match="its folder cannot be created"):
        prepare(make_cfg(f"data.root={tmp_path}", f"prepared_dir={src}/prepared", "vocab=word"))
    with pytest.raises(ConfigError, match="scoring.tokenize=foo: must be one of .*13a"):
        check_config(make_cfg("scoring.tokenize=foo"))


def test_threads_are_capped_at_the_cores_and_translation_shows_progress(tiny_prepared, tiny_checkpoint, tmp_path,
                                                                        capsys):
    from nmt.training.distributed import cpu_threads

    assert cpu_threads(1000, 1) == os.cpu_count()
    assert "train.threads=1000 but this machine has" in capsys.readouterr().err
    src = write_lines(tmp_path / "in.de", TINY_DE * 5)
    translate(make_cfg(f"ckpt={tiny_checkpoint}", f"translate.input={src}", "decode=greedy"), tmp_path / "r")
    assert "60/60" in capsys.readouterr().err  # tqdm on stderr, counting sentences
