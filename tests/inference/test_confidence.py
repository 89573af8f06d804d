"""A confidence per sentence, calibrated on val for real (nmt.calibrate on a model trained on
Multi30k), carried by the Translator, nmt.translate and the server; null where there is none."""
import json
import shutil

import numpy as np
import pytest
from helpers import cli

from conftest import TINY_DE
from nmt import Translator
from nmt.inference.confidence import Calibration, signals
from nmt.model.ensemble import Ensemble


@pytest.fixture(scope="module")
def calibrated(m30k_transformer, prepared_spm, tmp_path_factory):
    """A copy of the Multi30k run, calibrated (greedy) on 200 val sentences and reported on 200 test ones."""
    run = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(m30k_transformer, run)
    rc, out, err = cli("calibrate", f"ckpt={run}", f"prepared_dir={prepared_spm}", "calibrate.max_sentences=200", "decode=greedy",
                       f"hydra.run.dir={run}/calibrate")
    assert rc == 0, err[-3000:]
    return run, err


def test_calibrate_fits_on_val_reports_on_test_and_is_found_beside_the_checkpoint(calibrated):
    run, log = calibrated
    stored = json.loads((run / "checkpoints" / "best.calibration.json").read_text())
    assert stored["meta"]["split"] == "valid" and stored["meta"]["sentences"] == 200
    report = stored["meta"]["report"]
    assert report["split"] == "test" and report["sentences"] == 200
    # even a 200-step model knows when it is lost: confidence rises with sentence chrF, and the
    # least confident tenth scores lower than the rest
    assert report["spearman"] > 0.2 and report["chrf_least_confident_10pct"] < report["chrf_other_90pct"]
    assert np.all(np.diff(stored["knots_y"]) >= 0) and 0 <= min(stored["knots_y"]) <= max(stored["knots_y"]) <= 1
    assert f"Spearman {report['spearman']:.3f}" in log and (run / "calibrate" / "confidence.png").stat().st_size > 10_000
    tr = Translator.from_checkpoint(run)
    results = tr.translate_detailed(["Ein Hund rennt über eine Wiese.", "Zwei Männer. Eine Frau.", ""])
    assert all(0.0 <= r.confidence <= 1.0 for r in results[:2]) and results[2].confidence is None
    assert results[1].confidence == pytest.approx(np.mean([s.confidence for s in results[1].sentences]), abs=1e-4)


def test_nmt_translate_writes_each_lines_confidence(calibrated, tmp_path):
    run, _ = calibrated
    src = tmp_path / "in.de"
    src.write_text("Ein Hund rennt.\nZwei Männer sitzen auf einer Bank. Eine Frau liest.\n", encoding="utf-8")
    rc, _, err = cli("translate", f"ckpt={run}", f"translate.input={src}", f"hydra.run.dir={tmp_path}/t")
    assert rc == 0, err
    rows = [r.split("\t") for r in (tmp_path / "t" / "sentences.in.de.tsv").read_text().splitlines()[1:]]
    tr = Translator.from_checkpoint(run)
    expected = tr.translate_detailed(src.read_text().splitlines())
    assert [float(r[2]) for r in rows] == pytest.approx([e.confidence for e in expected], abs=1e-3)
    assert [float(r[1]) for r in rows] == pytest.approx([e.score for e in expected], abs=1e-3)


def test_a_calibration_for_other_weights_is_not_used(calibrated, tiny_checkpoint, tmp_path):
    run, _ = calibrated
    other = tmp_path / "best.pt"
    shutil.copy(tiny_checkpoint, other)
    shutil.copy(run / "checkpoints" / "best.calibration.json", tmp_path / "best.calibration.json")
    tr = Translator.from_checkpoint(other)
    assert tr.calibration is None and tr.translate_detailed([TINY_DE[0]])[0].confidence is None


def test_signals_of_an_ensemble_include_the_members_disagreement(tiny_checkpoint, tiny_transformer_checkpoint):
    one = Translator.from_checkpoint(tiny_checkpoint, decode="greedy")
    both = Translator.from_checkpoint([tiny_checkpoint, tiny_transformer_checkpoint], decode="greedy")
    assert isinstance(both.model, Ensemble)
    sources, _ = one.encode(TINY_DE[:6])
    hyps = one.translate_ids(sources, attention=True)
    single = signals(one.model, sources, [h.tokens for h in hyps], [h.attention for h in hyps])
    ensemble = signals(both.model, sources, [h.tokens for h in hyps])
    assert np.allclose(single[:, 0], [h.score / (len(h.tokens) + 1) for h in hyps], atol=1e-4)  # the search's own
    assert np.all(single[:, 5] == 0) and np.all(ensemble[:, 5] > 0)  # one model cannot disagree with itself
    assert np.all((single[:, 4] >= 0) & (single[:, 4] <= 1.0001)) and np.isnan(ensemble[:, 4]).all()


def test_a_calibration_is_monotone_in_its_line_and_null_where_a_signal_is_missing():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(400, 6))
    rows[:, 4] = np.nan  # no attention signal: left out
    chrf = np.clip(50 + 15 * rows[:, 0] - 5 * rows[:, 2] + rng.normal(scale=5, size=400), 0, 100)
    cal = Calibration.fit(rows, chrf, ["x"])
    assert cal.features == [0, 1, 2, 3, 5]
    pred = np.array(cal.predict(rows))
    assert np.corrcoef(pred, chrf)[0, 1] > 0.8
    line = ((rows[:, cal.features] - cal.mean) / cal.std) @ np.array(cal.weights)
    order = np.argsort(line)
    assert np.all(np.diff(pred[order]) >= -1e-12)  # a higher line never gives a lower confidence
    rows[0, 0] = np.nan
    assert cal.predict(rows[:1]) == [None]


def test_a_model_folder_carries_the_calibration(calibrated, tmp_path):
    run, _ = calibrated
    folder = tmp_path / "folder"
    rc, _, err = cli("export", f"ckpt={run}", f"export.output={folder}", "export.score=false",
                     f"hydra.run.dir={tmp_path}/e")
    assert rc == 0, err
    assert "calibration.json" in (folder / "SHA256SUMS").read_text()
    text = ["Ein Hund rennt über eine Wiese."]
    assert Translator.from_pretrained(folder).translate_detailed(text)[0].confidence == pytest.approx(
        Translator.from_checkpoint(run).translate_detailed(text)[0].confidence)


def test_the_server_answers_the_confidence_in_both_shapes(calibrated, tmp_path):
    import httpx
    from helpers import start_server, stop

    run, _ = calibrated
    proc, url = start_server(run, tmp_path)
    try:
        text = "Ein Hund rennt über eine Wiese. Zwei Männer sitzen auf einer Bank."
        offline = Translator.from_checkpoint(run).translate_detailed([text])[0]
        ours = httpx.post(f"{url}/translate", json={"text": text}, timeout=60).json()["translations"][0]
        assert ours["text"] == offline.text and ours["confidence"] == pytest.approx(offline.confidence, abs=1e-4)
        libre = httpx.post(f"{url}/translate", json={"q": [text], "source": "de", "target": "en"}, timeout=60).json()
        assert libre["confidence"] == [pytest.approx(offline.confidence, abs=1e-4)]
    finally:
        assert stop(proc) == 0
