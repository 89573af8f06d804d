"""Paragraphs in, paragraphs out, on real text: test_2016_flickr cut into paragraphs of 1-5
consecutive sentences (joined by a space, every third join by a line break; seeded), translated
as paragraphs (the Translator splits them, decodes all sentences of a call together and joins
them back) and sentence by sentence (one call each).

    python bench/paragraphs.py --ckpt RUN [--sentences 1000] [--seed 1]

Prints the corpus BLEU of both ways, over the paragraphs (references joined; the sentences
translated one by one joined the same way), and over the sentences of the paragraphs sentencex
cut as they were built (split back by the Translator's per-sentence results, checked to be the
paragraph text with its own separators); how many paragraphs it cut otherwise (a sentence with no
final stop cannot be found in running text), whether every line break survived, and the time of
each way; then one JSON object.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.analysis.scoring import score_corpus  # noqa: E402
from nmt.inference.translator import Translator  # noqa: E402


def paragraphs(sentences: list[str], seed: int) -> list[tuple[str, list[str], list[str]]]:
    """(text, its sentences, the separators between them) with 1-5 sentences each."""
    rng, out, i = random.Random(seed), [], 0
    while i < len(sentences):
        k = rng.randint(1, 5)
        part = sentences[i:i + k]
        seps = [("\n" if rng.random() < 1 / 3 else " ") for _ in part[1:]]
        out.append(("".join(s + sep for s, sep in zip(part, seps + [""])), part, seps))
        i += k
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    ap.add_argument("--sentences", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tr = Translator.from_checkpoint(args.ckpt)
    src_lang, tgt_lang = tr.info["languages"]["src"], tr.info["languages"]["tgt"]
    read = lambda lang: gzip.open(Path(args.data) / f"test_2016_flickr.{lang}.gz", "rt", encoding="utf-8").read().splitlines()
    src, ref = read(src_lang)[:args.sentences], read(tgt_lang)[:args.sentences]
    paras = paragraphs(src, args.seed)

    started = time.perf_counter()
    one_by_one = [tr.translate(s)[0] for s in src]
    t_sentences = time.perf_counter() - started
    started = time.perf_counter()
    results = tr.translate_detailed([text for text, _, _ in paras])
    t_paragraphs = time.perf_counter() - started

    cut_otherwise, breaks_in, breaks_out, rejoined = 0, 0, 0, 0
    same_cut = {"paragraphs": [], "sentences": [], "refs": []}  # the sentences of paragraphs cut as built
    para_refs, para_baseline, start = [], [], 0
    for (text, part, seps), r in zip(paras, results):
        pieces = [s.text for s in r.sentences] or [r.text]
        refs, alone = ref[start:start + len(part)], one_by_one[start:start + len(part)]
        start += len(part)
        breaks_in += text.count("\n")
        breaks_out += r.text.count("\n")
        para_refs.append(" ".join(refs))
        para_baseline.append(" ".join(alone))
        if len(pieces) != len(part):  # no final stop, or "Platz. 2 Mädchen": sentencex keeps them together
            cut_otherwise += 1
            continue
        rejoined += r.text == "".join(p + sep for p, sep in zip(pieces, seps + [""]))
        same_cut["paragraphs"] += pieces
        same_cut["sentences"] += alone
        same_cut["refs"] += refs

    def bleu(hyps, refs):
        return round(score_corpus([h.replace("\n", " ") for h in hyps], [refs], ("bleu",))[0]["score"], 2)

    sentence_bleu = score_corpus(one_by_one, [ref], ("bleu",))[0]
    result = {"ckpt": args.ckpt, "sentences": len(src), "paragraphs": len(paras),
              "multi_sentence_paragraphs": sum(len(p) > 1 for _, p, _ in paras),
              "cut_otherwise": cut_otherwise, "line_breaks_in": breaks_in, "line_breaks_out": breaks_out,
              "rejoined_with_own_separators": rejoined, "bleu_sentences": round(sentence_bleu["score"], 2),
              "paragraph_level_bleu": {"paragraphs": bleu([r.text for r in results], para_refs),
                                       "sentences_joined": bleu(para_baseline, para_refs)},
              "same_cut_bleu": {"sentences": len(same_cut["refs"]),
                                "paragraphs_split_back": bleu(same_cut["paragraphs"], same_cut["refs"]),
                                "one_by_one": bleu(same_cut["sentences"], same_cut["refs"]),
                                "identical": sum(a == b for a, b in zip(same_cut["paragraphs"], same_cut["sentences"]))},
              "seconds_sentences": round(t_sentences, 2), "seconds_paragraphs": round(t_paragraphs, 2),
              "signature": sentence_bleu["signature"]}
    print(f"{len(paras)} paragraphs ({result['multi_sentence_paragraphs']} of 2-5 sentences) from {len(src)} "
          f"sentences; cut otherwise by sentencex: {cut_otherwise}")
    pl, sc = result["paragraph_level_bleu"], result["same_cut_bleu"]
    print(f"BLEU of the {len(paras)} paragraphs (references joined): translated as paragraphs {pl['paragraphs']}, "
          f"sentence by sentence then joined {pl['sentences_joined']}")
    print(f"BLEU of the {sc['sentences']} sentences in paragraphs cut as built: split back {sc['paragraphs_split_back']}, "
          f"one by one {sc['one_by_one']} ({sc['identical']} identical)")
    print(f"line breaks: {breaks_in} in, {breaks_out} out; rejoined with their own separators: {rejoined}/"
          f"{len(paras)}")
    print(f"time: sentence by sentence {t_sentences:.1f} s, paragraphs {t_paragraphs:.1f} s "
          f"({t_sentences / t_paragraphs:.2f}x)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
