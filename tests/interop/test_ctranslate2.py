"""nmt.export export.format=ctranslate2: a CTranslate2 directory written with its spec API that
decodes as nmt's own search does, on a Transformer trained on real Multi30k; the refusals."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import make_cfg
from helpers import assert_one_line_error, cli
from nmt.data.store import load_prepared
from nmt.inference.search import max_lengths
from nmt.inference.translator import Translator, search_options

ctranslate2 = pytest.importorskip("ctranslate2", reason="the interop extra (pip install -e '.[interop]')")

from nmt.interop.ctranslate2_model import Ct2Decoder  # noqa: E402  (needs ctranslate2)

N = 300  # test_2016_flickr sentences decoded by both


@pytest.fixture(scope="module")
def exported(m30k_transformer, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ct2") / "de-en"
    rc, _, err = cli("export", f"ckpt={m30k_transformer}", "export.format=ctranslate2", f"export.output={out}",
                     "export.score=false", f"hydra.run.dir={out.parent / 'h'}")
    assert rc == 0, err
    return out


@pytest.fixture(scope="module")
def both(m30k_transformer, exported):
    tr = Translator.from_checkpoint(m30k_transformer, decode="greedy")
    dd, _, _ = load_prepared(Path(tr.prepared_dir))
    sources = dd["test"].select(range(N))["src_ids"]
    o = tr.options
    limits = max_lengths(torch.tensor([len(s) for s in sources]), o.max_len_a, o.max_len_b, o.max_output_len).tolist()
    return tr, Ct2Decoder(exported, tr.src_vocab, tr.tgt_vocab, "float32", 1), sources, limits


def test_the_directory_holds_what_ctranslate2_expects(exported):
    names = {p.name for p in exported.iterdir()}
    assert {"model.bin", "config.json", "source_vocabulary.json", "target_vocabulary.json", "README.md"} <= names
    config = json.loads((exported / "config.json").read_text())
    assert (config["unk_token"], config["bos_token"], config["eos_token"], config["decoder_start_token"]) == \
        ("<unk>", "<s>", "</s>", "<s>")
    assert config["add_source_bos"] is False and config["add_source_eos"] is False
    assert config["layer_norm_epsilon"] == 1e-5
    assert json.loads((exported / "target_vocabulary.json").read_text())[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert not list(exported.parent.glob(".de-en.tmp-*")), "a scratch folder was left behind"


def test_greedy_output_equals_nmts_on_real_sentences(both):
    tr, ct2, sources, limits = both
    ours = [h.tokens for h in tr.translate_ids(sources)]
    theirs = ct2.decode(sources, limits, beam_size=1)
    same = sum(a == b for a, b in zip(ours, theirs))
    assert same >= 0.99 * N, f"{same} of {N} identical"
    assert len({tuple(t) for t in ours}) > N // 3, "the model should say different things for different sentences"


def test_beam_search_agrees_with_nmts_at_the_same_length_penalty(both):
    """Length penalty 0 is the same in both (nmt divides by ((5 + L) / 6) ** a, CTranslate2 by L ** a).
    nmt's beam ends a sentence once it holds 5 finished hypotheses; CTranslate2 may find a better
    one later, so a few sentences may differ. How many depends on the 200-step model's weights,
    which bf16 and fp32 training make differently: 282 of 300 identical on 2026-12-04 (bf16, Xeon
    with AMX), where in most of the 18 others nmt's output is the shorter and the likelier one at
    penalty 0 (an open question for the team: docs/interop.md)."""
    tr, ct2, sources, limits = both
    ours = [h.tokens for h in tr.translate_ids(sources, search_options("beam", beam_size=5, length_penalty=0.0))]
    theirs = ct2.decode(sources, limits, beam_size=5, length_penalty=0.0)
    same = sum(a == b for a, b in zip(ours, theirs))
    assert same >= 0.9 * N, f"{same} of {N} identical"


def test_rnn_models_are_refused_naming_ctranslate2s_missing_rnn_support(tiny_checkpoint, tmp_path):
    out = tmp_path / "ct2"
    rc, _, err = cli("export", f"ckpt={tiny_checkpoint}", "export.format=ctranslate2", f"export.output={out}",
                     "export.score=false", f"hydra.run.dir={tmp_path / 'h'}")
    assert_one_line_error(rc, err, "model.cell=gru", "CTranslate2", "issue 796", "model=transformer")
    assert not out.exists()


def test_an_unrelated_folder_at_the_output_is_left_alone(m30k_transformer, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    rc, _, err = cli("export", f"ckpt={m30k_transformer}", "export.format=ctranslate2", f"export.output={out}",
                     "export.score=false", f"hydra.run.dir={tmp_path / 'h'}")
    assert_one_line_error(rc, err, "did not write")
    assert (out / "notes.txt").read_text() == "keep me"


def test_quantized_export_decodes(m30k_transformer, tmp_path, both, exported):
    from nmt.cli.export import export

    tr, _, sources, limits = both
    out = export(make_cfg(f"ckpt={m30k_transformer}", "export.format=ctranslate2", f"export.output={tmp_path / 'q'}",
                          "export.score=false", "export.quantization=int8"))
    assert (out / "model.bin").stat().st_size < 0.5 * (exported / "model.bin").stat().st_size
    int8 = Ct2Decoder(out, tr.src_vocab, tr.tgt_vocab, "int8", 1).decode(sources[:50], limits[:50])
    ours = [h.tokens for h in tr.translate_ids(sources[:50])]
    assert sum(a == b for a, b in zip(ours, int8)) >= 25  # int8 rounding changes some choices, not most


def test_the_cards_python_snippet_translates_with_ctranslate2_alone(exported):
    import re
    import subprocess
    import sys

    card = (exported / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", card, re.S).group(1).replace("THIS_FOLDER", str(exported))
    assert "from nmt" not in code
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr[-2000:]
    assert "spm.src.model" in code and (exported / "spm.src.model").is_file()


def test_a_failed_export_leaves_the_earlier_directory_and_no_scratch(m30k_transformer, tmp_path, monkeypatch):
    from nmt.cli.export import export
    from nmt.interop import ctranslate2_model

    out = tmp_path / "de-en"
    export(make_cfg(f"ckpt={m30k_transformer}", "export.format=ctranslate2", f"export.output={out}",
                    "export.score=false"))
    before = (out / "model.bin").read_bytes()

    def broken(ckpt, directory, *args):
        (directory / "model.bin").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ctranslate2_model, "write_ctranslate2", broken)
    with pytest.raises(OSError):
        export(make_cfg(f"ckpt={m30k_transformer}", "export.format=ctranslate2", f"export.output={out}",
                        "export.score=false"))
    assert (out / "model.bin").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["de-en"]
