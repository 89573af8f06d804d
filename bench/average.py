"""Checkpoint averaging: test_2016_flickr BLEU of the average of a run's last K checkpoints
against its best single checkpoint (selected on val), greedy and beam 5.

    python bench/average.py --run RUN [--last-n 5]      # RUN trained with train.keep_last >= K

Also scores the single checkpoints that went into the average. Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.analysis.scoring import score_corpus  # noqa: E402
from nmt.data.store import load_prepared  # noqa: E402
from nmt.inference.translator import Translator, search_options  # noqa: E402
from nmt.runs.average import average_checkpoints, checkpoints_to_average  # noqa: E402


def scores(ckpt: Path, split, refs) -> dict:
    tr = Translator.from_checkpoint(ckpt)
    out = {}
    for name, decode in (("greedy", search_options("greedy")), ("beam5", search_options("beam", beam_size=5))):
        hyps = tr.detokenize(tr.translate_split(split, decode))
        out[name] = {s["name"]: round(s["score"], 2) for s in score_corpus(hyps, refs, ["bleu", "chrf"])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--last-n", type=int, default=5)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    paths = checkpoints_to_average([], args.last_n, str(args.run))
    best = args.run / "checkpoints" / "best.pt"
    dd, _, _ = load_prepared(Path(Translator.from_checkpoint(best).prepared_dir))
    split = dd[args.split]
    refs = [split["tgt_text"]]
    with tempfile.TemporaryDirectory() as tmp:
        avg = Path(tmp) / "avg.pt"
        average_checkpoints(paths).save(avg)
        out = {"run": str(args.run), "split": args.split, "averaged": [p.name for p in paths],
               "best": scores(best, split, refs), "average": scores(avg, split, refs)}
    out["singles"] = {p.name: scores(p, split, refs)["greedy"] for p in paths}
    for name in ("greedy", "beam5"):
        out[f"average_minus_best_bleu_{name}"] = round(out["average"][name]["BLEU"] - out["best"][name]["BLEU"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
