"""Decoding speed and BLEU on test_2016_flickr: greedy against beam 5, fp32 against int8 weights.

    python bench/translate.py [--ckpt RUN/checkpoints/best.pt] [--rounds 3]

Without --ckpt it takes the newest outputs/**/checkpoints/best.pt (train one first, e.g. `make demo`).
Each (weights, search) setting decodes the whole split --rounds times, interleaved; the median
time counts. Prints one JSON object last, with the int8/fp32 speed ratios and BLEU differences.
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
    ap.add_argument("--ckpt", type=Path, default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ckpt = args.ckpt or newest_checkpoint("bench/translate.py")
    translators = {w: Translator.from_checkpoint(ckpt, quantize=None if w == "fp32" else w) for w in ("fp32", "int8")}
    dd, _, _ = load_prepared(Path(translators["fp32"].prepared_dir))
    split = dd[args.split]
    refs = [split["tgt_text"]]
    out = {"ckpt": str(ckpt), "sentences": len(split), "threads": torch.get_num_threads(),
           "model": {k: translators["fp32"].info["model"][k] for k in ("cell", "emb_dim", "hidden_dim", "attention")}}
    searches = {"greedy": search_options("greedy"), "beam5": search_options("beam", beam_size=5)}
    times: dict[str, list[float]] = {}
    hyps: dict[str, list] = {}
    for weights, tr in translators.items():  # warm-up
        tr.translate_split(split.select(range(64)), searches["greedy"])
    for _ in range(args.rounds):
        for weights, tr in translators.items():
            for name, decode in searches.items():
                t0 = time.perf_counter()
                hyps[f"{weights}_{name}"] = tr.translate_split(split, decode)
                times.setdefault(f"{weights}_{name}", []).append(time.perf_counter() - t0)
    for key, seconds in times.items():
        tr = translators[key.split("_")[0]]
        bleu = score_corpus(tr.detokenize(hyps[key]), refs, ["bleu"])[0]
        median = statistics.median(seconds)
        out[key] = {"seconds": round(median, 2), "sentences_per_s": round(len(split) / median, 1),
                    "bleu": round(bleu["score"], 2), "signature": bleu["signature"]}
    out["beam5_minus_greedy_bleu"] = round(out["fp32_beam5"]["bleu"] - out["fp32_greedy"]["bleu"], 2)
    for name in searches:
        out[f"int8_speedup_{name}"] = round(out[f"fp32_{name}"]["seconds"] / out[f"int8_{name}"]["seconds"], 2)
        out[f"int8_minus_fp32_bleu_{name}"] = round(out[f"int8_{name}"]["bleu"] - out[f"fp32_{name}"]["bleu"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
