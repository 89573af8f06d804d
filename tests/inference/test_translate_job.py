"""nmt.translate and nmt.evaluate: pipes, files, splits, scores that agree with sacrebleu."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_DE, TINY_EN, make_cfg, write_lines
from nmt.cli.translate import run

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def test_stdin_to_stdout_round_trip(tiny_checkpoint, tmp_path):
    r = subprocess.run([sys.executable, "-m", "nmt.translate", f"ckpt={tiny_checkpoint}", "decode=greedy"],
                       input="\n".join(TINY_DE[:4]) + "\n", capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.splitlines() == TINY_EN[:4]


def test_file_translation_with_reference_and_heatmaps(tiny_checkpoint, tmp_path):
    src = write_lines(tmp_path / "in.de", TINY_DE)
    ref = write_lines(tmp_path / "ref.en", TINY_EN)
    out = tmp_path / "out.en"
    result = run(make_cfg(f"ckpt={tiny_checkpoint}", f"translate.input={src}", f"translate.output={out}", f"translate.ref={ref}",
                          "plots.n_attention=2"), tmp_path / "run")
    assert out.read_text().splitlines() == TINY_EN
    bleu = next(s for s in result["scores"] if s["name"] == "BLEU")
    assert bleu["score"] == pytest.approx(100.0) and "nrefs:1|case:mixed" in bleu["signature"]
    assert json.loads((tmp_path / "run/scores.in.de.json").read_text())["scores"][0]["name"] == "BLEU"
    assert sorted(p.name for p in (tmp_path / "run").glob("attention_*.png")) == ["attention_000.png",
                                                                                 "attention_001.png"]


@pytest.mark.parametrize("decode", ["greedy", "beam"])
def test_prepared_split_in_corpus_order(tiny_checkpoint, tmp_path, decode):
    result = run(make_cfg(f"ckpt={tiny_checkpoint}", "translate.split=test", f"decode={decode}"), tmp_path)
    assert result["hyps"] == TINY_EN
    assert (tmp_path / "hyp.test.txt").read_text().splitlines() == TINY_EN








def test_stdin_and_dash_write_the_translations_to_stdout(tiny_checkpoint, tmp_path):
    """Unix conventions (#18): `translate.input=-` with no output, and `translate.output=-`,
    write exactly the translations to stdout; scores then go to stderr."""
    stdin = "\n".join(TINY_DE[:3]) + "\n"
    r = subprocess.run([sys.executable, "-m", "nmt.translate", f"ckpt={tiny_checkpoint}", "translate.input=-",
                        "decode=greedy", f"hydra.run.dir={tmp_path}/a"], input=stdin, capture_output=True, text=True,
                       cwd=tmp_path, env=ENV)
    assert r.returncode == 0 and r.stdout.splitlines() == TINY_EN[:3], r.stderr[-2000:]
    src, ref = write_lines(tmp_path / "in.de", TINY_DE[:4]), write_lines(tmp_path / "ref.en", TINY_EN[:4])
    r = subprocess.run([sys.executable, "-m", "nmt.translate", f"ckpt={tiny_checkpoint}", f"translate.input={src}",
                        "translate.output=-", f"translate.ref={ref}", "decode=greedy", f"hydra.run.dir={tmp_path}/b"],
                       capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert r.returncode == 0 and r.stdout.splitlines() == TINY_EN[:4], r.stderr[-2000:]
    assert "BLEU|nrefs:1" in r.stderr and (tmp_path / "b/hyp.in.de.txt").read_text().splitlines() == TINY_EN[:4]




def test_an_unset_length_penalty_is_the_one_train_chose_on_val(tiny_checkpoint, tmp_path):
    """decode.length_penalty unset (null): the checkpoint's decode default, which nmt.train
    chose on val; set: that value; an ensemble: the mean of its members'; none stored: 1.0."""
    from nmt import Translator
    from nmt.inference import search_options
    from nmt.runs.checkpoint import Checkpoint

    ckpt = Checkpoint.load(tiny_checkpoint)
    own = ckpt.decode_defaults["length_penalty"]  # the tiny run chose one at its end
    ckpt.decode_defaults = {"length_penalty": 2.0, "chosen_on": "a test"}
    ckpt.save(tmp_path / "lp2.pt")
    assert Translator.from_checkpoint(tmp_path / "lp2.pt").options.length_penalty == 2.0
    assert Translator.from_config(make_cfg(f"ckpt={tmp_path / 'lp2.pt'}")).options.length_penalty == 2.0
    fixed = Translator.from_config(make_cfg(f"ckpt={tmp_path / 'lp2.pt'}", "decode.length_penalty=0.6"))
    assert fixed.options.length_penalty == 0.6
    assert Translator.from_checkpoint(tmp_path / "lp2.pt", length_penalty=1.0).options.length_penalty == 1.0
    both = Translator.from_checkpoint([tmp_path / "lp2.pt", tiny_checkpoint])
    assert both.options.length_penalty == pytest.approx((2.0 + own) / 2)
    ckpt.decode_defaults = {}
    ckpt.save(tmp_path / "none.pt")
    assert Translator.from_checkpoint(tmp_path / "none.pt").options.length_penalty == 1.0
    # the search runs with it: the same n-best scores as with the value given explicitly,
    # for translate(), translate_split() with a decode config that leaves it unset, and the CLI
    tuned = Translator.from_checkpoint(tmp_path / "lp2.pt", beam_size=3, n_best=3)
    explicit = Translator.from_checkpoint(tmp_path / "none.pt", beam_size=3, n_best=3, length_penalty=2.0)
    assert [t.n_best for t in tuned.translate_detailed(TINY_DE)] == [t.n_best for t in explicit.translate_detailed(TINY_DE)]
    from nmt.data.store import load_prepared

    data, _, _ = load_prepared(tuned.prepared_dir)
    unset = make_cfg("decode=beam").decode
    assert unset.length_penalty is None
    assert ([h.tokens for h in tuned.translate_split(data["test"], unset)]
            == [h.tokens for h in explicit.translate_split(data["test"], search_options(unset, length_penalty=2.0))])
    result = run(make_cfg(f"ckpt={tmp_path / 'lp2.pt'}", "translate.split=test"), tmp_path / "cli")
    assert result["hyps"] == TINY_EN
