"""nmt.export: a model folder (safetensors, config.json, vocab files, model card) that loads
without unpickling and translates exactly as its checkpoint."""
import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_DE, make_cfg
from nmt import Translator
from nmt.cli.export import export
from nmt.runs.checkpoint import Checkpoint, CheckpointError


@pytest.fixture(scope="module")
def folders(tiny_checkpoint, tiny_transformer_checkpoint, tiny_prepared, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported")
    made = {}
    for family, ckpt in (("rnn", tiny_checkpoint), ("transformer", tiny_transformer_checkpoint)):
        made[family] = (ckpt, export(make_cfg(f"ckpt={ckpt}", f"export.output={out / family}",
                                              f"prepared_dir={tiny_prepared}")))
    return made


@pytest.mark.parametrize("family", ["rnn", "transformer"])
def test_export_then_load_translates_like_the_checkpoint_without_unpickling(folders, family, monkeypatch):
    ckpt, folder = folders[family]
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "SHA256SUMS", "config.json", "model.safetensors",
                                                        "vocab"]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") == 2 + len(list((folder / "vocab").iterdir()))
    reference = Translator.from_checkpoint(ckpt, decode="beam", beam_size=3, n_best=2)
    stored = Checkpoint.load(ckpt).decode_defaults

    def no_pickle(*args, **kwargs):
        raise AssertionError("a model folder must load without torch.load (pickle)")

    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = Translator.from_pretrained(folder, decode="beam", beam_size=3, n_best=2)
    for a, b in zip(reference.translate_detailed(TINY_DE, n_best=2), loaded.translate_detailed(TINY_DE, n_best=2)):
        assert a.n_best == b.n_best  # same texts, same scores
    assert loaded.translate(TINY_DE, beam_size=1) == reference.translate(TINY_DE, beam_size=1)
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == family and config["languages"] == {"src": "de", "tgt": "en"}
    assert config["training"]["step"] == reference.info["step"] and config["vocab"]["kind"] == "word"
    # the length penalty nmt.train chose on val travels with the folder
    assert config["decode_defaults"] == stored != {}
    assert loaded.options.length_penalty == reference.options.length_penalty == config["decode_defaults"]["length_penalty"]
    card = (folder / "README.md").read_text()
    test = config["test"]  # scored on the prepared test split, with signatures
    assert [s["name"] for s in test] == ["BLEU", "chrF2"] and all("version:" in s["signature"] for s in test)
    assert test[0]["line"] in card and "python -m nmt.export" in card and "Data: " in card


def test_translate_and_a_damaged_folder_over_the_cli(folders, tmp_path):
    _, folder = folders["rnn"]
    src = tmp_path / "in.de"
    src.write_text("\n".join(TINY_DE[:3]) + "\n")
    r = subprocess.run([sys.executable, "-m", "nmt.translate", f"ckpt={folder}", f"translate.input={src}",
                        "translate.output=-", f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == Translator.from_pretrained(folder).translate(TINY_DE[:3])
    damaged = tmp_path / "damaged"
    subprocess.run(["cp", "-r", str(folder), str(damaged)], check=True)
    blob = bytearray((damaged / "model.safetensors").read_bytes())
    blob[-10] ^= 0xFF
    (damaged / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="model.safetensors: its content differs from SHA256SUMS.*Fix"):
        Translator.from_pretrained(damaged)
    with pytest.raises(CheckpointError, match="not a model folder. Fix: python -m nmt.export"):
        Translator.from_pretrained(tmp_path)


def test_export_refuses_a_folder_it_did_not_write(tiny_checkpoint, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    r = subprocess.run([sys.executable, "-m", "nmt.export", f"ckpt={tiny_checkpoint}",
                        f"export.output={tmp_path / 'mine'}", "export.score=false", f"hydra.run.dir={tmp_path / 'h'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "export.output=" in r.stderr and "left untouched" in r.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_diagnose_reads_a_model_folder(folders, tiny_prepared):
    from nmt.analysis.gradients import diagnose

    ckpt, folder = folders["transformer"]
    _, (from_ckpt, from_folder) = diagnose({"ckpt": ckpt, "folder": folder}, tiny_prepared, sentences=8)
    assert from_folder.position_norms == from_ckpt.position_norms
