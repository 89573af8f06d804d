"""Decoding speed and BLEU on test_2016_flickr: greedy against beam 5, fp32 against int8 weights.

    python bench/translate.py [--ckpt RUN/checkpoints/best.pt] [--rounds 3]
    python bench/translate.py --ckpt REFERENCE SMALL ...   # several models, timed in one run

Without --ckpt it takes the newest outputs/**/checkpoints/best.pt (train one first, e.g. `make demo`).
Each (model, weights, search) setting decodes the whole split --rounds times, interleaved; the
median time counts. Prints one JSON object last, with the int8/fp32 speed ratios and BLEU
differences; with several models, each one's figures under "models" and, for each after the
first, its speed-up over the first (first's seconds / its seconds) and BLEU difference.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import newest_checkpoint  # noqa: E402  (bench/ is on sys.path when run as a script)

from nmt.analysis.scoring import score_corpus  # noqa: E402
from nmt.data.store import load_prepared  # noqa: E402
from nmt.inference.translator import Translator, search_options  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, nargs="+", default=None, help="one model, or several: the first is "
                    "the reference the others' speed-ups are measured against")
    ap.add_argument("--split", default="test")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ckpts = args.ckpt or [newest_checkpoint("bench/translate.py")]
    models = [{w: Translator.from_checkpoint(c, quantize=None if w == "fp32" else w) for w in ("fp32", "int8")}
              for c in ckpts]
    dd, _, _ = load_prepared(Path(models[0]["fp32"].prepared_dir))
    split = dd[args.split]
    refs = [split["tgt_text"]]
    searches = {"greedy": search_options("greedy"), "beam5": search_options("beam", beam_size=5)}
    times: dict[tuple, list[float]] = {}
    hyps: dict[tuple, list] = {}
    for translators in models:  # warm-up
        for tr in translators.values():
            tr.translate_split(split.select(range(min(64, len(split)))), searches["greedy"])
    for _ in range(args.rounds):
        for m, translators in enumerate(models):
            for weights, tr in translators.items():
                for name, decode in searches.items():
                    t0 = time.perf_counter()
                    hyps[m, weights, name] = tr.translate_split(split, decode)
                    times.setdefault((m, weights, name), []).append(time.perf_counter() - t0)
    results = []
    for m, (ckpt, translators) in enumerate(zip(ckpts, models)):
        info = translators["fp32"].info
        out = {"ckpt": str(ckpt), "sentences": len(split), "threads": torch.get_num_threads(),
               "model": {k: info["model"].get(k) for k in ("arch", "cell", "emb_dim", "hidden_dim", "attention")},
               "n_params": info.get("n_params")}
        for (k, weights, name), seconds in times.items():
            if k != m:
                continue
            bleu = score_corpus(translators[weights].detokenize(hyps[k, weights, name]), refs, ["bleu"])[0]
            median = statistics.median(seconds)
            out[f"{weights}_{name}"] = {"seconds": round(median, 2), "sentences_per_s": round(len(split) / median, 1),
                                        "bleu": round(bleu["score"], 2), "signature": bleu["signature"]}
        out["beam5_minus_greedy_bleu"] = round(out["fp32_beam5"]["bleu"] - out["fp32_greedy"]["bleu"], 2)
        for name in searches:
            out[f"int8_speedup_{name}"] = round(out[f"fp32_{name}"]["seconds"] / out[f"int8_{name}"]["seconds"], 2)
            out[f"int8_minus_fp32_bleu_{name}"] = round(out[f"int8_{name}"]["bleu"] - out[f"fp32_{name}"]["bleu"], 2)
        results.append(out)
    if len(results) == 1:
        print(json.dumps(results[0]))
        return
    first = results[0]
    versus = [{"ckpt": r["ckpt"], **{f"speedup_fp32_{name}": round(first[f"fp32_{name}"]["seconds"]
                                                                 / r[f"fp32_{name}"]["seconds"], 2) for name in searches},
               **{f"bleu_minus_first_fp32_{name}": round(r[f"fp32_{name}"]["bleu"] - first[f"fp32_{name}"]["bleu"], 2)
                  for name in searches}} for r in results[1:]]
    print(json.dumps({"models": results, "versus_first": versus}))


if __name__ == "__main__":
    main()
