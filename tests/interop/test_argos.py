"""nmt.export export.format=argos: an .argosmodel that the real argostranslate installs and
translates with, offline, as nmt's own decoder does; the refusals."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from helpers import assert_one_line_error, cli
from nmt.data.store import load_prepared
from nmt.inference.search import max_lengths
from nmt.inference.translator import Translator

pytest.importorskip("argostranslate", reason="the interop extra (pip install -e '.[interop]')")


def argos_env(home: Path, beam_size: int = 1) -> dict:
    """Argos Translate kept inside `home` and offline: sentences split by the package's blank spaCy
    pipeline (ARGOS_CHUNK_TYPE=SPACY), and the multi-language spaCy cache marked present, or the
    import tries to download it."""
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_CACHE_HOME": str(home / "cache"), "ARGOS_CHUNK_TYPE": "SPACY", "ARGOS_DEVICE_TYPE": "cpu",
           "ARGOS_BEAM_SIZE": str(beam_size), "ARGOS_COMPUTE_TYPE": "float32",
           "ARGOS_INTRA_THREADS": "1", "ARGOS_INTER_THREADS": "1"}
    env.pop("ARGOS_PACKAGES_DIR", None)
    senter = home / "cache" / "argos-translate" / "spacy" / "senter"
    senter.mkdir(parents=True, exist_ok=True)
    (senter / "model").touch()
    return env


def ended_greedy(tr: Translator, split) -> tuple[list[int], list[str]]:
    """nmt's greedy translations of a prepared split, one sentence at a time as Argos decodes them
    here, and the rows whose translation ended before nmt's length limit (Argos has its own, 256,
    so a translation cut at nmt's limit goes on there)."""
    o = tr.options
    hyps = [tr.translate_ids([ids])[0] for ids in split["src_ids"]]
    limits = max_lengths(torch.tensor([len(s) for s in split["src_ids"]]), o.max_len_a, o.max_len_b,
                         o.max_output_len).tolist()
    return [i for i, h in enumerate(hyps) if len(h.tokens) < limits[i]], tr.detokenize(hyps)


ARGOS_SCRIPT = """
import json, sys
import argostranslate.package, argostranslate.translate
argostranslate.package.install_from_path(sys.argv[1])
texts = json.load(sys.stdin)
installed = [(p.from_code, p.to_code, p.from_name, p.to_name) for p in argostranslate.package.get_installed_packages()]
print(json.dumps({"installed": installed,
                  "out": [argostranslate.translate.translate(t, "de", "en") for t in texts]}))
"""


@pytest.fixture(scope="module")
def package(m30k_transformer, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("argos") / "de_en.argosmodel"
    rc, _, err = cli("export", f"ckpt={m30k_transformer}", "export.format=argos", f"export.output={out}",
                     "export.score=false", f"hydra.run.dir={out.parent / 'h'}")
    assert rc == 0, err
    return out


def test_the_package_holds_what_argos_reads(package):
    with zipfile.ZipFile(package) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("nmt_de_en/metadata.json"))
    assert {"nmt_de_en/model/model.bin", "nmt_de_en/model/config.json", "nmt_de_en/sentencepiece.model",
            "nmt_de_en/README.md", "nmt_de_en/spacy/config.cfg"} <= names
    assert (meta["from_code"], meta["to_code"], meta["from_name"], meta["to_name"], meta["type"]) == \
        ("de", "en", "German", "English", "translate")
    assert not [p for p in package.parent.iterdir() if p.name.startswith((".de_en.argosmodel.tmp", ".argos-"))]


def test_argostranslate_installs_it_and_translates_as_nmt_does(package, m30k_transformer, tmp_path):
    tr = Translator.from_checkpoint(m30k_transformer, decode="greedy")
    dd, _, _ = load_prepared(Path(tr.prepared_dir))
    split = dd["test"].select(range(40))
    sentences = split["src_text"]
    ended, ours = ended_greedy(tr, split)
    paragraph = f"{sentences[ended[0]]} {sentences[ended[1]]}"
    proc = subprocess.run([sys.executable, "-c", ARGOS_SCRIPT, str(package)], env=argos_env(tmp_path),
                          input=json.dumps([sentences[i] for i in ended] + [paragraph]),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["installed"] == [["de", "en", "German", "English"]]
    theirs = result["out"]
    same = sum(ours[i] == t for i, t in zip(ended, theirs))
    diff = [(sentences[i], ours[i], t) for i, t in zip(ended, theirs) if ours[i] != t]
    assert len(ended) >= 20 and same >= 0.95 * len(ended), diff
    # two sentences in one text: Argos splits them with the shipped spaCy pipeline and joins them
    assert theirs[-1] == f"{ours[ended[0]]} {ours[ended[1]]}"
    assert "Downloading" not in proc.stderr


def test_a_word_vocabulary_is_refused_for_argos(tiny_transformer_checkpoint, tmp_path):
    out = tmp_path / "x.argosmodel"
    rc, _, err = cli("export", f"ckpt={tiny_transformer_checkpoint}", "export.format=argos", f"export.output={out}",
                     "export.score=false", f"hydra.run.dir={tmp_path / 'h'}")
    assert_one_line_error(rc, err, "word vocabulary", "SentencePiece", "vocab=spm")
    assert not out.exists()


def test_the_argos_output_must_be_an_argosmodel_file(m30k_transformer, tmp_path):
    rc, _, err = cli("export", f"ckpt={m30k_transformer}", "export.format=argos", f"export.output={tmp_path / 'pkg'}",
                     "export.score=false", f"hydra.run.dir={tmp_path / 'h'}")
    assert_one_line_error(rc, err, ".argosmodel", f"export.output={tmp_path / 'pkg.argosmodel'}")


def test_a_failed_export_leaves_the_earlier_package_and_no_scratch(m30k_transformer, tmp_path, monkeypatch):
    from conftest import make_cfg
    from nmt.cli.export import export
    from nmt.interop import argos_package

    out = tmp_path / "de_en.argosmodel"
    out.write_bytes(b"the earlier package")

    def broken(code, folder):
        (folder / "half").mkdir(parents=True)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(argos_package, "write_blank_spacy", broken)
    with pytest.raises(OSError):
        export(make_cfg(f"ckpt={m30k_transformer}", "export.format=argos", f"export.output={out}", "export.score=false"))
    assert out.read_bytes() == b"the earlier package"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["de_en.argosmodel"]
