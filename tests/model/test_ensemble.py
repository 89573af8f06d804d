"""Ensembles (ckpt=[A,B,...]): log-probabilities averaged at every search step, in the
Translator, nmt.translate and nmt.serve; members must share their vocabularies."""
import dataclasses
import json

import httpx
import pytest
import torch
from helpers import start_server, stop

from conftest import TINY_DE, make_cfg
from nmt import Translator
from nmt.cli.translate import run as translate_run
from nmt.inference.search import sequence_logprob
from nmt.inference.translator import search_options
from nmt.model.ensemble import Ensemble
from nmt.runs.checkpoint import Checkpoint, CheckpointError


def test_an_ensemble_of_one_model_twice_is_that_model(family_checkpoint):
    one = Translator.from_checkpoint(family_checkpoint, decode="beam", beam_size=3, n_best=3)
    two = Translator.from_checkpoint([family_checkpoint, family_checkpoint], decode="beam", beam_size=3, n_best=3)
    assert isinstance(two.model, Ensemble) and len(two.info["ensemble"]) == 2
    a, b = one.translate_detailed(TINY_DE, n_best=3), two.translate_detailed(TINY_DE, n_best=3)
    assert [t.text for t in a] == [t.text for t in b]
    for x, y in zip(a, b):
        assert [n for n, _ in x.n_best] == [n for n, _ in y.n_best]
        assert [s for _, s in x.n_best] == pytest.approx([s for _, s in y.n_best], abs=1e-4)
    assert one.translate(TINY_DE, beam_size=1) == two.translate(TINY_DE, beam_size=1)


def test_a_mixed_ensemble_scores_what_it_searched(tiny_checkpoint, tiny_transformer_checkpoint):
    """GRU + Transformer: every n-best score of the ensemble's beam search equals the
    log-probability the ensemble gives that output in one teacher-forced pass (mean of the
    members' log-probabilities, renormalised), so each member's state followed its own beams."""
    tr = Translator.from_checkpoint([tiny_checkpoint, tiny_transformer_checkpoint], decode="beam", beam_size=4)
    assert len(tr.model.members) == 2
    ids, _ = tr.encode(TINY_DE[:6])
    hyps = tr.translate_ids(ids, search_options(tr.options, n_best=4))
    for src, hyp in zip(ids, hyps):
        src_t = torch.tensor([src])
        outs = [h.tokens for h in hyp.n_best]
        # a finished hypothesis ends with EOS unless it hit the length limit
        rescored = sequence_logprob(tr.model, src_t.repeat(len(outs), 1), torch.tensor([len(src)] * len(outs)),
                                    outs, [True] * len(outs))
        assert [h.score for h in hyp.n_best] == pytest.approx(rescored, abs=1e-4)
    assert all(t.attention is not None for t in tr.translate_detailed(TINY_DE[:2], attention=True))


def test_other_vocabularies_are_refused_with_the_fix(tiny_checkpoint, tmp_path):
    ckpt = Checkpoint.load(tiny_checkpoint)
    name, blob = next(iter(ckpt.vocab_files.items()))
    tokens = json.loads(blob)
    tokens[4], tokens[5] = tokens[5], tokens[4]  # the same size, two words swapped: other ids
    other = dataclasses.replace(ckpt, vocab_files={**ckpt.vocab_files, name: json.dumps(tokens).encode()})
    other.save(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other vocabulary files.*same prepared data"):
        Translator.from_checkpoint([tiny_checkpoint, tmp_path / "other.pt"])


def test_translate_and_serve_take_a_list(tiny_checkpoint, tiny_transformer_checkpoint, tiny_prepared, tmp_path):
    members = f"[{tiny_checkpoint},{tiny_transformer_checkpoint}]"
    offline = Translator.from_checkpoint([tiny_checkpoint, tiny_transformer_checkpoint], decode="beam")
    result = translate_run(make_cfg(f"ckpt={members}", f"prepared_dir={tiny_prepared}", "translate.split=test",
                                    "decode=beam"), tmp_path / "translate")
    assert result["hyps"] == offline.translate(TINY_DE)
    assert result["scores"][0]["score"] > 90  # the tiny corpus, learnt by both members
    proc, url = start_server(members, tmp_path)
    try:
        with httpx.Client(timeout=30) as client:
            got = client.post(f"{url}/translate", json={"text": TINY_DE}).json()
            info = client.get(f"{url}/info").json()
    finally:
        stop(proc)
    assert [t["text"] for t in got["translations"]] == offline.translate(TINY_DE)
    assert info["checkpoint"] == f"{tiny_checkpoint.name} + {tiny_transformer_checkpoint.name}"
    assert len(info["ensemble"]) == 2 and "/" not in json.dumps(info)


def test_export_refuses_an_ensemble(tiny_checkpoint, tmp_path):
    from nmt.cli.export import export

    with pytest.raises(ValueError, match="export writes one model.*nmt.average"):
        export(make_cfg(f"ckpt=[{tiny_checkpoint},{tiny_checkpoint}]", f"export.output={tmp_path}/m"))
