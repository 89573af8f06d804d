"""Decoding speed and BLEU on test_2016_flickr: greedy against beam 5, with one trained checkpoint.

    python bench/translate.py [--ckpt RUN/checkpoints/best.pt]

Without --ckpt it takes the newest outputs/**/checkpoints/best.pt (train one first, e.g. `make demo`).
Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

import nmt.config  # noqa: E402,F401
from nmt.scoring import score_corpus  # noqa: E402
from nmt.store import load_prepared  # noqa: E402
from nmt.translate import Translator  # noqa: E402


def newest_checkpoint() -> Path:
    found = sorted((ROOT / "outputs").glob("**/checkpoints/best.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit("bench/translate.py: no outputs/**/checkpoints/best.pt. Fix: train one (make demo) or pass --ckpt")
    return found[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, default=None)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    ckpt = args.ckpt or newest_checkpoint()
    tr = Translator(ckpt)
    dd, _, _ = load_prepared(Path(tr.ckpt["prepared"]["dir"]))
    split = dd[args.split]
    refs = [split["tgt_text"]]
    out = {"ckpt": str(ckpt), "sentences": len(split), "threads": torch.get_num_threads(),
           "model": {k: tr.ckpt["model_cfg"][k] for k in ("cell", "emb_dim", "hidden_dim", "attention")}}
    for name, overrides in (("greedy", ["decode=greedy"]), ("beam5", ["decode=beam", "decode.beam_size=5"])):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            decode = compose("config", overrides=overrides).decode
        tr.translate(split.select(range(64)), decode)  # warm-up
        t0 = time.perf_counter()
        hyps = tr.translate(split, decode)
        seconds = time.perf_counter() - t0
        bleu = score_corpus(tr.detok(hyps), refs, ["bleu"])[0]
        out[name] = {"seconds": round(seconds, 2), "sentences_per_s": round(len(split) / seconds, 1),
                     "bleu": round(bleu["score"], 2), "signature": bleu["signature"]}
    out["beam5_minus_greedy_bleu"] = round(out["beam5"]["bleu"] - out["greedy"]["bleu"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
