"""sacreBLEU scoring (BLEU, chrF, TER) with signatures, formatted as the sacrebleu command prints them."""
from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF, TER


def make_metric(name: str, tokenize: str | None = None, lowercase: bool = False):
    if name == "bleu":
        return BLEU(tokenize=tokenize, lowercase=lowercase)
    if name == "chrf":
        return CHRF(lowercase=lowercase)
    if name == "ter":
        return TER()  # case-insensitive, as the sacrebleu command defaults
    raise ValueError(f"metric {name!r}: use bleu, chrf or ter")


def score_corpus(hyps: list[str], refs: list[list[str]], metrics=("bleu", "chrf"), tokenize: str | None = None,
                 lowercase: bool = False) -> list[dict]:
    """hyps: one detokenized line per sentence; refs: one list of lines per reference set.
    Returns {name, score, signature, line} per metric; `line` reads as `sacrebleu -f text` prints."""
    out = []
    for name in metrics:
        metric = make_metric(name, tokenize, lowercase)
        result = metric.corpus_score(hyps, refs)
        signature = metric.get_signature().format()
        out.append({"name": result.name, "score": result.score, "signature": signature,
                    "line": result.format(width=1, signature=signature)})
    return out
