"""Safety round 3 (#28), model files: a name read from a checkpoint, model folder or run folder
never reaches outside it; a model folder's every file is checked; the size a file describes is
measured before anything is allocated; an edited or damaged file is one line naming it and the
fix, through the programs as users run them."""
import hashlib
import json
import shutil

import pytest
from helpers import assert_one_line_error, cli

from conftest import TINY_DE
from nmt import Translator
from nmt.cli.export import export
from nmt.runs.checkpoint import Checkpoint, CheckpointError
from nmt.runs.model_folder import SUMS


@pytest.fixture(scope="module")
def folder(tiny_checkpoint, tiny_prepared, tmp_path_factory):
    from conftest import make_cfg

    out = tmp_path_factory.mktemp("export") / "model"
    return export(make_cfg(f"ckpt={tiny_checkpoint}", f"export.output={out}", f"prepared_dir={tiny_prepared}",
                           "export.score=false"))


def edited_copy(folder, tmp_path, edit, reseal=True):
    """A copy of the model folder with config.json edited by `edit(config)`; `reseal`: SHA256SUMS
    recomputed, as anyone can (checksums detect damage, not forgery)."""
    copy = tmp_path / "edited"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text())
    edited = edit(config)
    (copy / "config.json").write_text(edited if isinstance(edited, str) else json.dumps(config))
    if reseal:
        lines = []
        for line in (copy / SUMS).read_text().splitlines():
            name = line.split("  ", 1)[1]
            lines.append(f"{hashlib.sha256((copy / name).read_bytes()).hexdigest()}  {name}")
        (copy / SUMS).write_text("\n".join(lines) + "\n")
    return copy


def test_vocabulary_names_in_a_checkpoint_never_write_outside(tiny_checkpoint, tmp_path):
    victim, ckpt = tmp_path / "victim.txt", Checkpoint.load(tiny_checkpoint)
    victim.write_text("kept\n")
    for name in (str(victim), "../../victim.txt", ""):
        evil = tmp_path / f"evil{len(name)}.pt"
        ckpt.vocab_files = {**Checkpoint.load(tiny_checkpoint).vocab_files, name: b"overwritten\n"}
        ckpt.save(evil)  # the content hash is recomputed: it detects damage, not intent
        rc, _, err = cli("translate", f"ckpt={evil}", "translate.input=-", f"hydra.run.dir={tmp_path}/t",
                         stdin=TINY_DE[0].encode())
        assert_one_line_error(rc, err, str(evil), "vocabulary file", "not a plain file name")
    assert victim.read_text() == "kept\n" and not (tmp_path.parent / "victim.txt").exists()


def test_a_run_folder_names_only_its_own_members(tiny_checkpoint, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_summary.json").write_text(json.dumps({"run_dir": str(run), "members": ["../evil.pt"]}))
    rc, _, err = cli("translate", f"ckpt={run}", "translate.input=-", f"hydra.run.dir={tmp_path}/t",
                     stdin=TINY_DE[0].encode())
    assert_one_line_error(rc, err, "train_summary.json", "members", "Fix:")


@pytest.mark.parametrize("edit, says", [
    (lambda c: c["vocab"]["files"].append("../../../../../../etc/passwd"), "vocabulary file"),
    (lambda c: c["model"].update(emb_dim=64), "its weights do not fit"),
    (lambda c: c.pop("model"), "model: Field required"),
    (lambda c: c.pop("vocab"), "vocab: Field required"),
    (lambda c: c.update(vocab=None), "vocab: Input should be a valid dictionary"),
    (lambda c: c["model"].update(no_such_key=1), "do not describe a model nmt builds"),
    (lambda c: "[" * 100000 + "]" * 100000, "config.json: unreadable"),
    (lambda c: c.update(format_version=1), "model folder format 1"),
])
def test_an_edited_model_folder_is_one_line_naming_it(folder, tmp_path, edit, says):
    edited = edited_copy(folder, tmp_path, edit)
    rc, _, err = cli("translate", f"ckpt={edited}", "translate.input=-", f"hydra.run.dir={tmp_path}/t",
                     stdin=TINY_DE[0].encode())
    assert_one_line_error(rc, err, str(edited), says, "Fix:")


def test_every_file_of_a_model_folder_is_checked_and_the_checks_cannot_be_dropped(folder, tmp_path):
    edited = edited_copy(folder, tmp_path, lambda c: c["training"].update(step=1), reseal=False)
    with pytest.raises(CheckpointError, match="config.json: its content differs from SHA256SUMS"):
        Translator.from_pretrained(edited)
    (edited / SUMS).unlink()
    with pytest.raises(CheckpointError, match="SHA256SUMS: missing.*Fix: export the model again"):
        Translator.from_pretrained(edited)
    vocab = next((folder / "vocab").iterdir()).name
    (tmp_path / "v").mkdir()
    shutil.copytree(folder, tmp_path / "v" / "m")
    (tmp_path / "v" / "m" / "vocab" / vocab).write_bytes(b"[]")
    with pytest.raises(CheckpointError, match=f"vocab/{vocab}: its content differs from SHA256SUMS"):
        Translator.from_pretrained(tmp_path / "v" / "m")


def test_a_model_bigger_than_the_limit_is_refused_before_anything_is_allocated(folder, tmp_path):
    """hidden_dim 30000 would allocate 11.7 billion parameters (about 47 GB): measured on torch's
    meta device first, and refused with the key that raises the limit."""
    import resource
    import time

    edited = edited_copy(folder, tmp_path, lambda c: c["model"].update(hidden_dim=30000))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.time()
    with pytest.raises(CheckpointError, match=r"11,\d{3},\d{3},\d{3} parameters, over the limit of 1,000,000,000; "
                                              r"nothing was allocated. Fix: max_params="):
        Translator.from_pretrained(edited)
    assert time.time() - started < 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 500_000  # KB: well under a GB
    rc, _, err = cli("translate", f"ckpt={edited}", "translate.input=-", f"hydra.run.dir={tmp_path}/t",
                     stdin=TINY_DE[0].encode())
    assert_one_line_error(rc, err, "parameters, over the limit", "max_params=")
