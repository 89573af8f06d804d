"""Padding efficiency and loader speed of the batch samplers on the prepared Multi30k train split.

    python bench/batching.py

Efficiency = real tokens / padded tokens (source and target) for random batches, length buckets
and a token budget set to give about the same mean batch size. Prints one JSON object last.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

import nmt.config.schema  # noqa: E402,F401
from nmt.data.batching import LengthBatchSampler  # noqa: E402
from nmt.data.collate import make_loader  # noqa: E402
from nmt.data.prepare import prepare  # noqa: E402
from nmt.data.store import load_prepared  # noqa: E402


def efficiency(batches, src_len, tgt_len) -> dict:
    real_s = sum(int(src_len[b].sum()) for b in batches)
    real_t = sum(int(tgt_len[b].sum()) for b in batches)
    pad_s = sum(len(b) * int(src_len[b].max()) for b in batches)
    pad_t = sum(len(b) * int(tgt_len[b].max()) for b in batches)
    return {"src": round(real_s / pad_s, 4), "tgt": round(real_t / pad_t, 4),
            "mean_batch_size": round(float(np.mean([len(b) for b in batches])), 1), "batches": len(batches)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[f"data.root={ROOT.parent}/shared/data/multi30k",
                                               f"prepared_dir={tmp}/prep"])
        prepare(cfg)
        dd, _, (_, tgt_vocab) = load_prepared(Path(tmp) / "prep")
        train = dd["train"]
        src_len = train.data.column("src_len").to_numpy().astype(np.int64)
        tgt_len = train.data.column("tgt_len").to_numpy().astype(np.int64)
        bs = cfg.train.batching.batch_size
        rng = np.random.default_rng(0)
        perm = rng.permutation(len(src_len))
        random_batches = [perm[i:i + bs] for i in range(0, len(perm), bs)]
        bucket = LengthBatchSampler(src_len, tgt_len, kind="bucket", batch_size=bs)
        mean_longest = float(np.mean(np.maximum(src_len, tgt_len)))
        tokens = LengthBatchSampler(src_len, tgt_len, kind="tokens", max_tokens=int(bs * mean_longest * 1.05))
        result = {
            "random": efficiency(random_batches, src_len, tgt_len),
            "bucket": efficiency([np.array(b) for b in bucket], src_len, tgt_len),
            "tokens": efficiency([np.array(b) for b in tokens], src_len, tgt_len),
        }
        result["tokens"]["max_tokens"] = tokens.max_tokens
        for name, sampler in (("bucket", bucket), ("tokens", tokens)):
            loader = make_loader(train, sampler, pad_id=tgt_vocab.pad_id)
            t0 = time.perf_counter()
            n = sum(1 for _ in loader)
            dt = time.perf_counter() - t0
            result[name]["loader_batches_per_s"] = round(n / dt, 1)
            result[name]["loader_tgt_tokens_per_s"] = round(int(tgt_len.sum()) / dt)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
