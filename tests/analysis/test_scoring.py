"""nmt.evaluate and sacreBLEU: scores that agree with sacrebleu's API and command line."""
import os
import subprocess
import sys

import pytest
import sacrebleu

from conftest import ROOT, TINY_EN, write_lines
from nmt.analysis.scoring import evaluate
from nmt.data.corpus import CorpusError

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}




def test_evaluate_agrees_with_sacrebleu_api_and_command_line(tmp_path):
    hyp = write_lines(tmp_path / "hyp", ["The cat sat on the mat.", "A dog runs in a park", "Hello world !"])
    ref = write_lines(tmp_path / "ref", ["The cat is on the mat.", "A dog is running in the park.", "Hello world!"])
    ours = {s["name"]: s for s in evaluate(hyp, [ref], ["bleu", "chrf", "ter"])}
    hyps, refs = hyp.read_text().splitlines(), [ref.read_text().splitlines()]
    assert ours["BLEU"]["score"] == sacrebleu.corpus_bleu(hyps, refs).score
    assert ours["chrF2"]["score"] == sacrebleu.corpus_chrf(hyps, refs).score
    cli = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-m", "bleu", "chrf", "ter",
                          "-f", "text"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert [s["line"] for s in ours.values()] == [l.strip() for l in cli]
    r = subprocess.run([sys.executable, "-m", "nmt.evaluate", f"hyp={hyp}", f"ref={ref}", "metrics=[bleu,chrf,ter]"],
                       capture_output=True, text=True, cwd=tmp_path, env=ENV)
    assert r.returncode == 0 and r.stdout.splitlines() == [l.strip() for l in cli]
    assert "`hyp=` is deprecated" in r.stderr and "use `evaluate.hyp=`" in r.stderr  # old spellings still work


def test_evaluate_identity_and_errors(tmp_path):
    a = write_lines(tmp_path / "a", TINY_EN)
    assert evaluate(a, [a], ["bleu", "chrf"])[0]["score"] == pytest.approx(100.0)
    assert evaluate(a, [a, a], ["bleu"])[0]["signature"].startswith("nrefs:2")
    short = write_lines(tmp_path / "short", TINY_EN[:3])
    with pytest.raises(CorpusError, match="the reference has 3 lines but .* has 12"):
        evaluate(a, [short], ["bleu"])
    empty = write_lines(tmp_path / "empty", b"")
    with pytest.raises(CorpusError, match="empty file"):
        evaluate(empty, [a], ["bleu"])
