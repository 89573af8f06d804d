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
def package(m30k_transformer_joint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("argos") / "de_en.argosmodel"
    rc, _, err = cli("export", f"ckpt={m30k_transformer_joint}", "export.format=argos", f"export.output={out}",
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


def assert_argos_translates_as_nmt(package: Path, run: Path, home: Path, n: int = 40) -> None:
    """The real argostranslate installs `package` and translates `n` test sentences of the run's
    prepared data (and a paragraph of two) as nmt's greedy search does."""
    tr = Translator.from_checkpoint(run, decode="greedy")
    dd, _, _ = load_prepared(Path(tr.prepared_dir))
    split = dd["test"].select(range(min(n, dd["test"].num_rows)))
    sentences = split["src_text"]
    ended, ours = ended_greedy(tr, split)
    paragraph = f"{sentences[ended[0]]} {sentences[ended[1]]}"
    proc = subprocess.run([sys.executable, "-c", ARGOS_SCRIPT, str(package)], env=argos_env(home),
                          input=json.dumps([sentences[i] for i in ended] + [paragraph]),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["installed"] == [["de", "en", "German", "English"]]
    theirs = result["out"]
    same = sum(ours[i] == t for i, t in zip(ended, theirs))
    diff = [(sentences[i], ours[i], t) for i, t in zip(ended, theirs) if ours[i] != t]
    assert len(ended) >= len(sentences) // 2 and same >= 0.95 * len(ended), diff
    # two sentences in one text: Argos splits them with the shipped spaCy pipeline and joins them
    assert theirs[-1] == f"{ours[ended[0]]} {ours[ended[1]]}"
    assert "Downloading" not in proc.stderr


def test_argostranslate_installs_it_and_translates_as_nmt_does(package, m30k_transformer_joint, tmp_path):
    assert_argos_translates_as_nmt(package, m30k_transformer_joint, tmp_path)


def test_a_gru_teacher_distils_into_a_transformer_student_that_argos_runs(m30k_pair_runs, tmp_path):
    """Issue 38's path at tiny sizes: a GRU of word vocabularies teaches a Transformer on one
    joint SentencePiece vocabulary (the pass goes through text), and the student's Argos
    package translates as nmt does."""
    from conftest import SMALL_TRANSFORMER, make_cfg
    from nmt.data.encode import encode_target
    from nmt.data.prepare import prepare
    from nmt.data.store import split_table
    from nmt.runs.run_folder import recommended_checkpoint

    teacher = m30k_pair_runs["de-en"]  # a GRU on the first 3,000 Multi30k pairs, word vocabularies
    joint = tmp_path / "joint"
    prepare(make_cfg(f"data.root={teacher.parent}", "vocab=joint", "vocab.vocab_size=1000", f"prepared_dir={joint}"))
    student = tmp_path / "student"
    rc, _, err = cli("distill", f"distill.teacher={teacher}", f"prepared_dir={joint}", f"distill.dir={tmp_path / 'd'}",
                     "distill.beam_size=2", *SMALL_TRANSFORMER, "train.threads=1", "train.batching.batch_size=64",
                     "train.max_steps=200", "train.warmup_steps=30", "train.lr=0.002", "train.schedule=constant",
                     "train.val_max_sentences=60", "train.average_last=0", "train.length_penalties=[]",
                     "train.tensorboard=false", f"hydra.run.dir={student}", timeout=600)
    assert rc == 0, err[-3000:]
    assert "it reads the source text" in err

    (folder,) = (tmp_path / "d").glob("teacher-*")
    data, meta, (_, student_vocab) = load_prepared(folder)
    original = split_table(load_prepared(joint)[0]["train"])
    got = split_table(data["train"])
    assert got.column("src_ids").to_pylist() == original.column("src_ids").to_pylist()
    tr = Translator.from_checkpoint(recommended_checkpoint(teacher), beam_size=2, split_sentences=False)
    texts = tr.translate(original.column("src_text").to_pylist())
    want = [ids if text else ref for ids, text, ref in zip(encode_target(student_vocab, texts, meta.preprocess["max_len"]),
                                                          texts, original.column("tgt_ids").to_pylist())]
    assert got.column("tgt_ids").to_pylist() == want  # the teacher's text in the student's joint pieces
    assert got.column("tgt_text").to_pylist()[:50] == [t or r for t, r in zip(texts[:50], original.column("tgt_text").to_pylist())]

    package = tmp_path / "de_en.argosmodel"
    rc, _, err = cli("export", f"ckpt={student}", "export.format=argos", f"export.output={package}",
                     "export.score=false", f"hydra.run.dir={tmp_path / 'h'}")
    assert rc == 0, err[-3000:]
    assert_argos_translates_as_nmt(package, student, tmp_path / "home")


@pytest.mark.parametrize("run, words", [
    ("tiny_transformer_checkpoint", ("word vocabulary", "SentencePiece", "vocab=spm")),
    ("m30k_transformer", ("separate source and target", "vocab.joint=true", "nmt.distill", "ctranslate2")),
])
def test_a_vocabulary_argos_cannot_carry_is_refused(run, words, request, tmp_path):
    out = tmp_path / "x.argosmodel"
    rc, _, err = cli("export", f"ckpt={request.getfixturevalue(run)}", "export.format=argos", f"export.output={out}",
                     "export.score=false", f"hydra.run.dir={tmp_path / 'h'}")
    assert_one_line_error(rc, err, *words)
    assert not out.exists()


def test_the_argos_output_must_be_an_argosmodel_file(m30k_transformer_joint, tmp_path):
    rc, _, err = cli("export", f"ckpt={m30k_transformer_joint}", "export.format=argos", f"export.output={tmp_path / 'pkg'}",
                     "export.score=false", f"hydra.run.dir={tmp_path / 'h'}")
    assert_one_line_error(rc, err, ".argosmodel", f"export.output={tmp_path / 'pkg.argosmodel'}")


def test_a_failed_export_leaves_the_earlier_package_and_no_scratch(m30k_transformer_joint, tmp_path, monkeypatch):
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
        export(make_cfg(f"ckpt={m30k_transformer_joint}", "export.format=argos", f"export.output={out}", "export.score=false"))
    assert out.read_bytes() == b"the earlier package"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["de_en.argosmodel"]
