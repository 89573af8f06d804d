"""Safety round 3 (#28), what programs write: an output is checked by opening it before any
work; a symlinked output folder is written where it points; files and folders follow the umask;
a line of 100,000 words ends."""
import os
import stat
import subprocess
import sys
import time

import pytest
from helpers import ENV, assert_one_line_error, cli

from conftest import TINY_DE, TINY_MODEL, make_cfg, write_tiny_corpus
from nmt.data.prepare import prepare
from nmt.data.store import PreparedMeta


@pytest.mark.parametrize("output, says", [("/dev/full", "No space left on device"),
                                          ("/sys/nmt-test/x.txt", "cannot be")])
def test_an_output_that_cannot_be_written_is_refused_before_decoding(tiny_checkpoint, tmp_path, output, says):
    rc, _, err = cli("translate", f"ckpt={tiny_checkpoint}", "translate.split=test", f"translate.output={output}",
                     f"hydra.run.dir={tmp_path}/t")
    assert_one_line_error(rc, err, f"translate.output={output}", says, "Fix:")
    assert "sentences/s" not in err  # nothing was decoded


def test_dev_null_is_still_an_output(tiny_checkpoint, tmp_path):
    rc, _, err = cli("translate", f"ckpt={tiny_checkpoint}", "translate.split=test", "translate.output=/dev/null",
                     "decode=greedy", f"hydra.run.dir={tmp_path}/t")
    assert rc == 0, err


def test_prepare_force_into_a_symlinked_folder_writes_where_it_points(tmp_path):
    raw = write_tiny_corpus(tmp_path / "raw")
    target, link = tmp_path / "disk" / "prepared", tmp_path / "prepared"
    target.parent.mkdir()
    link.symlink_to(target, target_is_directory=True)
    cfg = make_cfg(f"data.root={raw}", f"prepared_dir={link}", "vocab=word")
    prepare(cfg)
    first = (target / "meta.json").stat().st_mtime_ns
    time.sleep(0.01)
    prepare(make_cfg(f"data.root={raw}", f"prepared_dir={link}", "vocab=word", "prepare.force=true"))
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert (target / "meta.json").stat().st_mtime_ns != first and PreparedMeta.load(link).counts["train"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "prepared", "raw"]  # nothing stray beside the link
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".") and "tmp" in p.name) == []


def test_files_and_folders_follow_the_umask(tiny_prepared, tmp_path):
    """Under umask 022: folders 0755, files 0644, as anything else the user writes (a scratch file
    or folder is made 0600/0700 by tempfile; nmt sets what the umask says before the rename)."""
    script = f"""
import os, sys
os.umask(0o022)
sys.argv = ["nmt.train", "prepared_dir={tiny_prepared}", {', '.join(repr(a) for a in TINY_MODEL)},
            "train.max_steps=2", "train.checkpoint_every=2", "train.val_bleu=false",
            "train.early_stopping_metric=loss", "hydra.run.dir={tmp_path / 'run'}"]
from nmt.cli.train import cli
cli()
"""
    r = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    for path in (tmp_path / "run" / "checkpoints").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    raw = write_tiny_corpus(tmp_path / "raw")
    old = os.umask(0o022)
    try:
        out = prepare(make_cfg(f"data.root={raw}", f"prepared_dir={tmp_path / 'prep'}", "vocab=word"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "meta.json").stat().st_mode) == 0o644


def test_a_line_of_100000_words_ends_with_its_translation_capped(tiny_checkpoint, tmp_path):
    line = " ".join([TINY_DE[0]] * 33334)  # 100,002 words
    started = time.time()
    rc, out, err = cli("translate", f"ckpt={tiny_checkpoint}", "translate.input=-", "decode=greedy",
                       "decode.max_output_len=64", f"hydra.run.dir={tmp_path}/t", stdin=(line + "\n").encode(),
                       timeout=240)
    assert rc == 0, err[-2000:]
    assert len(out.split()) <= 64 and time.time() - started < 240
    assert "their translations stop at decode.max_output_len=64 pieces" in err
