"""A two-process torchrun training, run again and again while another process loads the disk:
every run must exit 0 with its files complete (issue 36: a rank that finished its work died with
SIGABRT now and then, so torchrun said a good run failed). Prints one JSON line.

    python bench/torchrun_stress.py [--runs 30] [--no-load] [--cpu-load N] [--family rnn|transformer]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

TINY_DE = ["ein hund läuft", "zwei katzen schlafen", "der mann isst brot", "die frau liest ein buch",
           "ein kind spielt ball", "drei vögel singen", "der hund schläft", "die katze läuft"]
TINY_EN = ["a dog runs", "two cats sleep", "the man eats bread", "the woman reads a book",
           "a child plays ball", "three birds sing", "the dog sleeps", "the cat runs"]
EXPECTED = {"avg.pt", "best.pt", "last.pt", "step_00000002.pt", "step_00000004.pt"}


def prepare(work: Path) -> Path:
    for split, n in (("train", 3), ("val", 1), ("test_2016_flickr", 1)):
        (work / f"{split}.de").write_text("".join(s + "\n" for s in TINY_DE * n))
        (work / f"{split}.en").write_text("".join(s + "\n" for s in TINY_EN * n))
    subprocess.run([sys.executable, "-m", "nmt.prepare", f"data.root={work}", f"prepared_dir={work}/prep",
                    "vocab=word", f"hydra.run.dir={work}/p"], check=True, capture_output=True, cwd=ROOT)
    return work / "prep"


def disk_load(work: Path) -> subprocess.Popen:
    """dd writing 1.5 GB files with fsync, over and over, until killed (the issue's reproduction)."""
    script = f"while true; do dd if=/dev/urandom of={work}/big bs=1M count=1500 conv=fsync status=none; done"
    return subprocess.Popen(["bash", "-c", script], start_new_session=True)


def cpu_load(n: int) -> list[subprocess.Popen]:
    """n processes spinning on the CPU (a neighbour, or the other test worker) until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)]


def one_run(prepared: Path, run_dir: Path, family: str, timeout: float) -> dict:
    model = ["model=transformer", "model.heads=2", "model.ff_dim=64"] if family == "transformer" else []
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "-m", "nmt.train",
           f"prepared_dir={prepared}", *model, "model.emb_dim=32", "model.hidden_dim=32",
           "train.batching.batch_size=4", "train.threads=1", "train.max_steps=4", "train.checkpoint_every=2",
           "train.val_bleu=false", "train.early_stopping_metric=loss", "train.tensorboard=false",
           f"hydra.run.dir={run_dir}"]
    started = time.time()
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = "timeout", (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
    files = {p.name for p in (run_dir / "checkpoints").iterdir()} if (run_dir / "checkpoints").is_dir() else set()
    complete = EXPECTED <= files and (run_dir / "train_summary.json").is_file()
    return {"rc": rc, "complete": complete, "seconds": round(time.time() - started, 1),
            "abort": "terminate called" in err, "tail": err.strip().splitlines()[-1:] if rc != 0 else []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-load", action="store_true", help="no disk load beside the runs")
    parser.add_argument("--cpu-load", type=int, default=0, help="also keep this many cores busy")
    parser.add_argument("--family", choices=["rnn", "transformer"], default="transformer")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepared = prepare(work)
        load = None if args.no_load else disk_load(work)
        spinners = cpu_load(args.cpu_load)
        results = []
        try:
            for k in range(args.runs):
                results.append(one_run(prepared, work / f"run{k}", args.family, args.timeout))
                print(f"run {k + 1}/{args.runs}: {results[-1]}", file=sys.stderr)
        finally:
            for proc in spinners + ([load] if load is not None else []):
                os.killpg(proc.pid, 9)
    bad = [r for r in results if r["rc"] != 0 or not r["complete"]]
    print(json.dumps({"runs": len(results), "disk_load": not args.no_load, "cpu_load": args.cpu_load, "family": args.family,
                      "failures": len(bad), "aborts": sum(r["abort"] for r in results),
                      "timeouts": sum(r["rc"] == "timeout" for r in results),
                      "incomplete_but_exit_0": sum(r["rc"] == 0 and not r["complete"] for r in results),
                      "median_seconds": sorted(r["seconds"] for r in results)[len(results) // 2]}))


if __name__ == "__main__":
    main()
