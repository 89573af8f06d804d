"""sacreBLEU scoring (BLEU, chrF, TER) with signatures, formatted as the sacrebleu command prints
them; and `nmt.evaluate`'s scoring of files."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from sacrebleu.metrics import BLEU, CHRF, TER

from nmt.config.choices import Metric
from nmt.config.rules import ConfigError

METRICS = {Metric.bleu: lambda tokenize, lowercase: BLEU(tokenize=tokenize, lowercase=lowercase),
           Metric.chrf: lambda tokenize, lowercase: CHRF(lowercase=lowercase),
           Metric.ter: lambda tokenize, lowercase: TER()}  # TER: case-insensitive, as the sacrebleu command defaults


def score_corpus(hyps: list[str], refs: list[list[str]], metrics=("bleu", "chrf"), tokenize: str | None = None,
                 lowercase: bool = False) -> list[dict]:
    """hyps: one detokenized line per sentence; refs: one list of lines per reference set.
    Returns {name, score, signature, line} per metric; `line` reads as `sacrebleu -f text` prints."""
    out = []
    for name in metrics:
        metric = METRICS[Metric(name)](tokenize, lowercase)
        result = metric.corpus_score(hyps, refs)
        signature = metric.get_signature().format()
        out.append({"name": result.name, "score": result.score, "signature": signature,
                    "line": result.format(width=1, signature=signature)})
    return out


def bleu_signature(tokenize: str | None = None, lowercase: bool = False) -> str:
    """sacreBLEU's BLEU signature for these options and one reference (what a BLEU figure is
    printed with); sacreBLEU knows the reference count only after scoring, so it scores nothing."""
    return score_corpus([""], [[""]], ("bleu",), tokenize, lowercase)[0]["signature"]


def as_list(files) -> list[str]:
    """A config value that is one file or a list of files, as a list."""
    return [] if files is None else [files] if isinstance(files, str) else [str(f) for f in files]


def evaluate(hyp: Path, refs: list[Path], metrics, tokenize=None, lowercase=False) -> list[dict]:
    """Score the hypothesis file against the reference files (one line per sentence each)."""
    from nmt.data.textio import check_references, read_lines

    hyps = read_lines(hyp)
    ref_lines = [read_lines(r) for r in refs]
    check_references(ref_lines, [str(r) for r in refs], len(hyps), str(hyp))
    return score_corpus(hyps, ref_lines, list(metrics), tokenize, lowercase)


def evaluate_files(ecfg, scfg, run_dir: Path) -> list[dict]:
    """`nmt.evaluate`: score `ecfg.hyp` against `ecfg.ref` with the `scoring` options; print the
    lines and write scores.json in `run_dir`."""
    refs = as_list(ecfg.ref)
    if not ecfg.hyp or not refs:
        raise ConfigError("pass evaluate.hyp=FILE and evaluate.ref=FILE (or evaluate.ref=[A,B] for several references)")
    scores = evaluate(Path(ecfg.hyp), [Path(r) for r in refs], scfg.metrics, scfg.tokenize, scfg.lowercase)
    for s in scores:
        print(s["line"])
    out = Path(run_dir) / "scores.json"
    out.write_text(json.dumps({"hyp": ecfg.hyp, "refs": refs, "scores": scores}, indent=2))
    print(f"evaluate: scores written to {out}", file=sys.stderr)
    return scores
