"""Benchmark `nmt.prepare` against sentencepiece's own batch encode (the ceiling).

    python bench/prepare.py [--sizes 0 1000000]

Size 0 is Multi30k itself; other sizes resample Multi30k lines into a corpus of that many
pairs. Each size runs in a child process so peak RSS is its own. Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"
sys.path.insert(0, str(ROOT))


def build_corpus(n_pairs: int, out: Path) -> Path:
    """Multi30k with its train split resampled (with replacement, seeded) to n_pairs."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    de = gzip.open(MULTI30K / "train.de.gz", "rt", encoding="utf-8").read().splitlines()
    en = gzip.open(MULTI30K / "train.en.gz", "rt", encoding="utf-8").read().splitlines()
    idx = [rng.randrange(len(de)) for _ in range(n_pairs)]
    (out / "train.de").write_text("".join(de[i] + "\n" for i in idx), encoding="utf-8")
    (out / "train.en").write_text("".join(en[i] + "\n" for i in idx), encoding="utf-8")
    for split in ("val", "test_2016_flickr"):
        for lang in ("de", "en"):
            (out / f"{split}.{lang}.gz").write_bytes((MULTI30K / f"{split}.{lang}.gz").read_bytes())
    return out


def child(n_pairs: int) -> dict:
    from hydra import compose, initialize_config_dir

    import nmt.config.schema  # noqa: F401
    from nmt.cli.prepare import prepare
    from nmt.data.store import load_prepared

    with tempfile.TemporaryDirectory() as tmp:
        root = MULTI30K if n_pairs == 0 else build_corpus(n_pairs, Path(tmp) / "raw")
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[f"data.root={root}", f"prepared_dir={tmp}/prep", "prepare.force=true"])
        t0 = time.perf_counter()
        prepare(cfg)
        prepare_s = time.perf_counter() - t0
        peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # before the ceiling run
        stored_mb = round(sum(f.stat().st_size for f in (Path(tmp) / "prep" / "train").glob("*.arrow")) / 2**20, 1)
        dd, meta, (src_vocab, tgt_vocab) = load_prepared(Path(tmp) / "prep")
        pairs = meta.train_pairs_read
        # the ceiling: sentencepiece's batch encode (C++, threads) of the same cleaned training text
        src = [l.rstrip("\n") for l in open(root / "train.de", encoding="utf-8")] if n_pairs else \
            gzip.open(root / "train.de.gz", "rt", encoding="utf-8").read().splitlines()
        tgt = [l.rstrip("\n") for l in open(root / "train.en", encoding="utf-8")] if n_pairs else \
            gzip.open(root / "train.en.gz", "rt", encoding="utf-8").read().splitlines()
        t0 = time.perf_counter()
        src_vocab.sp.encode(src, out_type=int, num_threads=cfg.vocab.threads)
        tgt_vocab.sp.encode(tgt, out_type=int, num_threads=cfg.vocab.threads)
        encode_s = time.perf_counter() - t0
    return {"pairs": pairs, "prepare_pairs_per_s": round(pairs / prepare_s),
            "spm_encode_pairs_per_s": round(pairs / encode_s),
            "ratio": round(encode_s / prepare_s, 3),
            "peak_rss_mb_during_prepare": peak_mb,
            "stored_train_mb": stored_mb}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[0, 1_000_000])
    ap.add_argument("--child", type=int, default=None)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    results = {}
    for n in args.sizes:
        r = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, cwd=ROOT)
        if r.returncode:
            sys.exit(r.stderr)
        res = json.loads(r.stdout.strip().splitlines()[-1])
        name = "multi30k" if n == 0 else f"resampled_{n}"
        results[name] = res
        print(name, res, file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
