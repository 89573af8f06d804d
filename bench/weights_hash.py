"""The sha256 of the weights after 40 training steps on a tiny corpus, through the programs only
(`python -m nmt.prepare`, `python -m nmt.train`), for the GRU and the Transformer: run it at two
commits to check that a change which should not change the arithmetic (a move, a refactor)
gives bit-identical weights. Prints one JSON line.

    python bench/weights_hash.py            # then: git checkout OTHER && python bench/weights_hash.py
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from _common import ROOT

DE = ["ein hund läuft", "zwei katzen schlafen", "der mann isst brot", "die frau liest ein buch",
      "ein kind spielt ball", "drei vögel singen", "der hund schläft", "die katze läuft"]
EN = ["a dog runs", "two cats sleep", "the man eats bread", "the woman reads a book",
      "a child plays ball", "three birds sing", "the dog sleeps", "the cat runs"]
TRAIN = ["model.emb_dim=32", "model.hidden_dim=32", "model.heads=2", "model.ff_dim=64", "train.batching.batch_size=4",
         "train.threads=1", "train.max_steps=40", "train.checkpoint_every=20", "train.val_bleu=false",
         "train.early_stopping_metric=loss", "train.tensorboard=false", "train.length_penalties=[]",
         "train.precision=fp32"]  # fp32 on every CPU (the default, auto, is bf16 where the CPU has it)


def program(*args: str) -> None:
    subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=True, capture_output=True)


def weights_sha256(checkpoint: Path) -> str:
    weights = torch.load(checkpoint, weights_only=True)["weights"]
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode())
        h.update(weights[name].numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for split, n in (("train", 4), ("val", 1), ("test_2016_flickr", 1)):
            (work / f"{split}.de").write_text("".join(s + "\n" for s in DE * n))
            (work / f"{split}.en").write_text("".join(s + "\n" for s in EN * n))
        program("nmt.prepare", f"data.root={work}", f"prepared_dir={work}/prep", "vocab=word",
                f"hydra.run.dir={work}/p")
        for model in ("gru", "transformer"):
            program("nmt.train", f"prepared_dir={work}/prep", f"model={model}", *TRAIN, f"hydra.run.dir={work}/{model}")
            out[model] = weights_sha256(work / model / "checkpoints" / "last.pt")
    print(json.dumps({"steps": 40, "weights_sha256": out}))


if __name__ == "__main__":
    main()
