"""The `nmt.calibrate` program: fit the confidence of a model on val, report it on test.

The model translates the prepared `calibrate.split` (val) with its own decode settings; each
sentence's signals (nmt.inference.confidence) are fitted against its sentence chrF, and the fit is
written where the Translator finds it (beside the checkpoint, or in the model folder). Then the
same on `calibrate.report_split` (test): Spearman's correlation of confidence with sentence chrF,
and the corpus chrF of the 10% least confident sentences against the other 90%, printed, stored
in the fit's `meta` and drawn (confidence.png: mean sentence chrF per tenth of confidence).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from nmt.inference.confidence import Calibration, attention_is_free, signals, spearman
from nmt.inference.translate_job import split_job
from nmt.inference.translator import Translator


def first_sentences(job, n: int):
    """The job cut to its first `n` sentences (0: all)."""
    if n:
        job.sources, job.refs = job.sources[:n], [r[:n] for r in job.refs]
    return job


def decode_split(tr: Translator, job, attention: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(translations, signals (N, 6), sentence chrF (N,)) of a prepared split's job."""
    from sacrebleu.metrics import CHRF

    hyps = tr.translate_ids(job.sources, tr.options, attention, progress=True)
    lines = tr.detokenize(hyps)
    rows = signals(tr.model, job.sources, [h.tokens for h in hyps], [h.attention for h in hyps] if attention else None,
                   tr.device)
    chrf = CHRF()
    scores = np.array([chrf.sentence_score(h, [r]).score for h, r in zip(lines, job.refs[0])])
    return lines, rows, scores


def report(confidence: list[float | None], lines: list[str], refs: list[str], sentence_chrf: np.ndarray) -> dict:
    """Spearman of confidence with sentence chrF; corpus chrF of the least confident 10% and the rest."""
    from sacrebleu.metrics import CHRF

    known = [i for i, c in enumerate(confidence) if c is not None]
    conf = np.array([confidence[i] for i in known])
    order = [known[j] for j in np.argsort(conf, kind="stable")]
    k = max(1, len(order) // 10)
    low, rest = order[:k], order[k:]

    def corpus(idx):
        return CHRF().corpus_score([lines[i] for i in idx], [[refs[i] for i in idx]]).score

    return {"sentences": len(known), "spearman": round(spearman(conf, sentence_chrf[known]), 4),
            "chrf_least_confident_10pct": round(corpus(low), 2), "chrf_other_90pct": round(corpus(rest), 2),
            "mean_confidence": round(float(conf.mean()), 4)}


def plot(confidence: list[float | None], sentence_chrf: np.ndarray, path: Path, title: str) -> Path:
    """Mean sentence chrF per tenth of the sentences by confidence, with the mean confidence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    known = [i for i, c in enumerate(confidence) if c is not None]
    order = sorted(known, key=lambda i: confidence[i])
    bins = np.array_split(np.array(order), 10)
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(1, 11)
    ax.bar(x, [sentence_chrf[b].mean() for b in bins], color="#4a78b5", label="mean sentence chrF")
    ax.plot(x, [100 * np.mean([confidence[i] for i in b]) for b in bins], "o-", color="#c0392b",
            label="mean confidence x 100")
    ax.set_xlabel("tenth of the sentences, least confident first")
    ax.set_ylabel("chrF")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def calibrate_job(cfg, run_dir: Path) -> dict:
    """Fit and store the confidence of `cfg.ckpt`; the report on `cfg.calibrate.report_split`."""
    tr = Translator.from_config(cfg, fingerprint=True)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ccfg = cfg.calibrate
    attention = attention_is_free(tr.model)
    job = first_sentences(split_job(tr, ccfg.split, cfg.prepared_dir), ccfg.max_sentences)
    _, rows, chrf = decode_split(tr, job, attention)
    d = tr.options
    meta = {"split": ccfg.split, "sentences": len(chrf), "target": "sentence chrF / 100 (sacreBLEU chrF2)",
            "decode": {"kind": str(d.kind), "beam_size": d.beam_size, "length_penalty": d.length_penalty}}
    cal = Calibration.fit(rows, chrf, tr.fingerprints, meta)
    tr.calibration = cal
    meta["fit_spearman"] = round(spearman([c for c in cal.predict(rows)], chrf), 4)
    result = {"calibration": str(tr.calibration_path), "features": [int(j) for j in cal.features], **meta}
    if ccfg.report_split:
        test = first_sentences(split_job(tr, ccfg.report_split, cfg.prepared_dir), ccfg.max_sentences)
        lines, test_rows, test_chrf = decode_split(tr, test, attention)
        confidence = cal.predict(test_rows)
        meta["report"] = {"split": ccfg.report_split, **report(confidence, lines, test.refs[0], test_chrf),
                          # the one signal most tools give: how much the fit adds to it
                          "spearman_mean_logp_alone": round(spearman(test_rows[:, 0], test_chrf), 4)}
        result["report"] = meta["report"]
        png = plot(confidence, test_chrf, run_dir / "confidence.png",
                   f"{ccfg.report_split}: Spearman {meta['report']['spearman']:.3f}; chrF of the least confident "
                   f"10% {meta['report']['chrf_least_confident_10pct']:.1f} vs {meta['report']['chrf_other_90pct']:.1f}")
        result["plot"] = str(png)
    cal.save(tr.calibration_path)
    (run_dir / "calibration.json").write_text(json.dumps(result, indent=2))
    from nmt.inference.confidence import FEATURES

    print(f"calibrate: fitted on {len(chrf)} {ccfg.split} sentences ({', '.join(FEATURES[j] for j in cal.features)}); "
          f"Spearman with sentence chrF {meta['fit_spearman']:.3f} there", file=sys.stderr)
    if "report" in meta:
        r = meta["report"]
        print(f"calibrate: {r['split']}: Spearman {r['spearman']:.3f} (the mean log-probability alone: "
              f"{r['spearman_mean_logp_alone']:.3f}); chrF of the 10% least confident "
              f"{r['chrf_least_confident_10pct']:.2f}, of the rest {r['chrf_other_90pct']:.2f}", file=sys.stderr)
    print(f"calibrate: written to {tr.calibration_path}", file=sys.stderr)
    return result
