"""The pipeline at millions of pairs: prepare at 1M and 10M, training start-up and memory.

    python bench/scale.py [--sizes 1000000 10000000] [--work /tmp/nmt-scale] [--train-steps 100] [--subword-alpha 0.1]

Builds a corpus of max(--sizes) pairs by resampling Multi30k's training pairs (seeded) and
perturbing them: each side, independently with probability 0.7, has one word replaced by a
word drawn from that language's Multi30k text, so that sentencepiece sees new text and
deduplication has real work (the unperturbed resamples repeat). Smaller sizes are its first
lines. For each size, in a child process of its own (so peak RSS is its own):

- `prepare` with `preprocess.dedup=true`: pairs/s, peak RSS, duplicates dropped, size on disk;
- sentencepiece's own batch encode (C++, `vocab.threads` threads) of the first 1M pairs of the
  same text with the trained models: the ceiling; `prepare_vs_spm` = prepare's rate / that;
- training start-up: load the prepared folder, build the epoch's batches, read the first batch
  (seconds, RSS); then `nmt.train` for --train-steps steps (peak RSS of that process). RSS is
  split into RssAnon (private memory) and RssFile (pages of the memory-mapped Arrow files and
  libraries: page cache the kernel reclaims under pressure; random batches map more of it the
  more rows they have read, up to the size of the prepared data).

With `--subword-alpha A`, training runs a second time with `train.subword_sampling.alpha=A`
(each epoch resegmented from the stored text, its lengths measured first: one pass over the
text, in train_s), and the peak RSS of the two runs is compared per size.

Prints one JSON object last, with the 10M/1M ratios of peak RSS. Needs about 12 GB of disk at
10M pairs; the work folder is removed at the end unless --keep.
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"
sys.path.insert(0, str(ROOT))

PERTURB = 0.7  # probability that a side gets one word replaced
SPM_SAMPLE = 1_000_000  # pairs encoded by raw sentencepiece for the ceiling


def read_gz(path: Path) -> list[str]:
    return gzip.open(path, "rt", encoding="utf-8").read().splitlines()


def build_corpus(n_pairs: int, out: Path, sizes: list[int]) -> None:
    """`out/N/train.{de,en}` for each N in sizes (the first N lines of one resampled,
    perturbed corpus) plus Multi30k's own val and test files."""
    rng = np.random.default_rng(0)
    sides = [[line.split() for line in read_gz(MULTI30K / f"train.{lang}.gz")] for lang in ("de", "en")]
    pools = [np.array([w for sentence in side for w in sentence], dtype=object) for side in sides]
    dirs = {n: out / str(n) for n in sizes}
    files = {}
    for n, d in dirs.items():
        d.mkdir(parents=True, exist_ok=True)
        for split in ("val", "test_2016_flickr"):
            for lang in ("de", "en"):
                shutil.copyfile(MULTI30K / f"{split}.{lang}.gz", d / f"{split}.{lang}.gz")
        files[n] = [open(d / f"train.{lang}", "w", encoding="utf-8") for lang in ("de", "en")]
    block = 200_000
    written = 0
    t0 = time.perf_counter()
    while written < n_pairs:
        m = min(block, n_pairs - written)
        picks = rng.integers(0, len(sides[0]), m)
        out_lines = []
        for side, pool in zip(sides, pools):
            perturb = rng.random(m) < PERTURB
            where = rng.random(m)
            words = pool[rng.integers(0, len(pool), m)]
            lines = []
            for i, p, w, word in zip(picks.tolist(), perturb.tolist(), where.tolist(), words):
                sentence = side[i]
                if p and sentence:
                    k = int(w * len(sentence))
                    sentence = sentence[:k] + [word] + sentence[k + 1:]
                lines.append(" ".join(sentence))
            out_lines.append(lines)
        for n, (fs, ft) in files.items():
            take = max(0, min(m, n - written))
            if take:
                fs.write("\n".join(out_lines[0][:take]) + "\n")
                ft.write("\n".join(out_lines[1][:take]) + "\n")
        written += m
        print(f"corpus: {written:,} / {n_pairs:,} pairs ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    for pair in files.values():
        for f in pair:
            f.close()


class RssWatch:
    """Peak VmRSS / RssAnon / RssFile of this process, sampled every 50 ms on a thread."""

    def __init__(self):
        self.peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def now(self) -> dict[str, int]:
        status = Path("/proc/self/status").read_text()
        return {k: int(re.search(rf"{k}:\s+(\d+)", status).group(1)) // 1024 for k in self.peak}

    def _run(self) -> None:
        while not self._stop.is_set():
            for k, v in self.now().items():
                self.peak[k] = max(self.peak[k], v)
            time.sleep(0.05)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import nmt.config.schema  # noqa: F401

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def child_prepare(root: Path, prep: Path) -> dict:
    from nmt.data.prepare import prepare
    from nmt.data.store import load_prepared

    watch = RssWatch()
    cfg = compose([f"data.root={root}", f"prepared_dir={prep}", "prepare.force=true", "preprocess.dedup=true"])
    t0 = time.perf_counter()
    prepare(cfg)
    seconds = time.perf_counter() - t0
    peak = dict(watch.peak)
    peak["ru_maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    _, meta, (src_vocab, tgt_vocab) = load_prepared(prep)
    pairs = meta.train_pairs_read
    # the ceiling: sentencepiece's batch encode of (up to) 1M pairs of the same text
    with open(root / "train.de", encoding="utf-8") as fs, open(root / "train.en", encoding="utf-8") as ft:
        src = [fs.readline().rstrip("\n") for _ in range(min(SPM_SAMPLE, pairs))]
        tgt = [ft.readline().rstrip("\n") for _ in range(min(SPM_SAMPLE, pairs))]
    t1 = time.perf_counter()
    src_vocab.sp.encode(src, out_type=int, num_threads=cfg.vocab.threads)
    tgt_vocab.sp.encode(tgt, out_type=int, num_threads=cfg.vocab.threads)
    spm_rate = len(src) / (time.perf_counter() - t1)
    disk = sum(f.stat().st_size for f in prep.rglob("*") if f.is_file())
    return {"pairs": pairs, "kept": meta.counts["train"], "duplicates": meta.dropped["duplicate"],
            "prepare_s": round(seconds, 1), "prepare_pairs_per_s": round(pairs / seconds),
            "spm_encode_pairs_per_s": round(spm_rate), "prepare_vs_spm": round(pairs / seconds / spm_rate, 3),
            "peak_rss_mb": peak, "prepared_mb": round(disk / 2**20, 1)}


def child_train(prep: Path, run_dir: Path, steps: int, alpha: float = 0.0) -> dict:
    from nmt.cli.train import run
    from nmt.data.batching import LengthBatchSampler
    from nmt.data.collate import make_loader
    from nmt.data.store import load_prepared

    watch = RssWatch()
    cfg = compose([f"prepared_dir={prep}", f"train.max_steps={steps}", "train.val_bleu=false",
                   "train.early_stopping_metric=loss", "train.tensorboard=false", f"train.log_every={steps}",
                   f"train.subword_sampling.alpha={alpha}"])
    result = {}
    if not alpha:  # with sampling the start-up includes a pass over the text: counted in train_s instead
        t0 = time.perf_counter()
        dd, _, (_, tgt_vocab) = load_prepared(prep)
        sampler = LengthBatchSampler.from_config(dd["train"], cfg.train.batching)
        result["batches_per_epoch"] = len(sampler.epoch_batches(0))
        next(iter(make_loader(dd["train"], sampler, tgt_vocab.pad_id)))
        result["startup_s"] = round(time.perf_counter() - t0, 2)
        result["rss_after_startup_mb"] = watch.now()
        del dd, sampler
    t1 = time.perf_counter()
    run(cfg, run_dir)
    return {**result, "train_steps": steps, "train_s": round(time.perf_counter() - t1, 1),
            "peak_rss_mb_training": dict(watch.peak)}


def in_child(*args: str) -> dict:
    r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        sys.exit(r.stderr[-5000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/nmt-scale"))
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--subword-alpha", type=float, default=0.0,
                    help="also train with train.subword_sampling.alpha=A and compare its memory with the plain run")
    ap.add_argument("--child", nargs="+", default=None)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        out = child_prepare(Path(rest[0]), Path(rest[1])) if kind == "prepare" else \
            child_train(Path(rest[0]), Path(rest[1]), int(rest[2]), float(rest[3]))
        print(json.dumps(out))
        return
    sizes = sorted(args.sizes)
    if not all((args.work / "raw" / str(n) / "train.en").is_file() for n in sizes):
        t0 = time.perf_counter()
        build_corpus(sizes[-1], args.work / "raw", sizes)
        print(f"corpus built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    results: dict = {"cpu_cores": __import__("os").cpu_count()}
    try:
        for n in sizes:
            prep = args.work / f"prep{n}"
            res = in_child("--child", "prepare", str(args.work / "raw" / str(n)), str(prep))
            print(f"prepare {n:,}: {json.dumps(res)}", file=sys.stderr)
            res["train"] = in_child("--child", "train", str(prep), str(args.work / f"run{n}"), str(args.train_steps), "0")
            print(f"train {n:,}: {json.dumps(res['train'])}", file=sys.stderr)
            if args.subword_alpha:
                shutil.rmtree(args.work / f"run{n}", ignore_errors=True)
                res["train_sampling"] = in_child("--child", "train", str(prep), str(args.work / f"run{n}"),
                                                 str(args.train_steps), str(args.subword_alpha))
                print(f"train {n:,} with subword sampling: {json.dumps(res['train_sampling'])}", file=sys.stderr)
                for kind in ("VmRSS", "RssAnon"):
                    res[f"peak_{kind}_sampling_vs_plain"] = round(
                        res["train_sampling"]["peak_rss_mb_training"][kind] / res["train"]["peak_rss_mb_training"][kind], 3)
            results[str(n)] = res
            shutil.rmtree(args.work / f"run{n}", ignore_errors=True)
        lo, hi = str(sizes[0]), str(sizes[-1])
        results["peak_rss_ratio_prepare"] = round(results[hi]["peak_rss_mb"]["VmRSS"] / results[lo]["peak_rss_mb"]["VmRSS"], 3)
        for kind in ("VmRSS", "RssAnon"):  # RssAnon: private memory; the rest is mapped page cache
            results[f"peak_{kind}_ratio_training"] = round(results[hi]["train"]["peak_rss_mb_training"][kind]
                                                           / results[lo]["train"]["peak_rss_mb_training"][kind], 3)
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
