"""Several pairs behind one server: does a busy pair hold up another? On 127.0.0.1 only.

    python bench/serve_pairs.py --a outputs/gru8_de-en --b outputs/gru8_en-fr [--clients 32] [--probes 150]

Starts one `nmt.serve` with both models (serve.models=[A,B]; each keeps its own batcher and
decoding thread). A probe client sends one-sentence requests to pair A (test_2016_flickr, one at a
time, --probes of them) in three settings:

    idle     nothing else runs
    B busy   --clients clients send one-sentence requests to pair B without pause
    A busy   the same clients send theirs to pair A (the probe shares A's batcher with them)

The clients' loops are bounded: they stop when the probe has its answers. Prints the probe's p50
and p99 latency in each setting, the load's throughput, and the ratios to idle; one JSON object last.
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve import free_port  # noqa: E402  (bench/serve.py)

from nmt import Translator  # noqa: E402


def start(models: list[str], threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nmt.serve", f"serve.models=[{','.join(models)}]",
                             f"serve.port={port}", "serve.log_level=warning", f"serve.threads={threads}",
                             "hydra.output_subdir=null", "hydra.run.dir=."],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server did not start")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not come up in 180 s")


async def setting(url: str, probe_pair: tuple[str, str], probe_texts: list[str], load_pair: tuple[str, str] | None,
                  load_texts: list[str], clients: int) -> dict:
    done = asyncio.Event()
    load_answers = 0

    async def loader(k: int) -> None:
        nonlocal load_answers
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            i = k
            while not done.is_set():  # bounded: ends when the probe has its answers
                r = await http.post("/translate", json={"text": load_texts[i % len(load_texts)],
                                                        "source": load_pair[0], "target": load_pair[1]})
                r.raise_for_status()
                load_answers += 1
                i += clients

    tasks = [asyncio.create_task(loader(k)) for k in range(clients)] if load_pair else []
    await asyncio.sleep(2.0 if tasks else 0.0)  # the load reaches its steady state
    latencies = []
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for text in probe_texts:
            t0 = time.perf_counter()
            r = await http.post("/translate", json={"text": text, "source": probe_pair[0], "target": probe_pair[1]})
            r.raise_for_status()
            latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    answered_during_probe = load_answers
    done.set()
    await asyncio.gather(*tasks)
    ms = np.array(latencies) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "load_sentences_per_s": round(answered_during_probe / seconds, 1) if tasks else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the probed model (a run, checkpoint or model folder)")
    ap.add_argument("--b", required=True, help="the other model")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--probes", type=int, default=150)
    ap.add_argument("--threads", type=int, default=0, help="serve.threads (0: all cores but one)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    args = ap.parse_args()
    pair = lambda run: tuple(Translator.from_checkpoint(run).info["languages"][k] for k in ("src", "tgt"))
    a, b = pair(args.a), pair(args.b)
    read = lambda lang: gzip.open(Path(args.data) / f"test_2016_flickr.{lang}.gz", "rt").read().splitlines()
    probe, load_a, load_b = read(a[0])[:args.probes], read(a[0])[500:], read(b[0])[500:]
    proc, url = start([args.a, args.b], args.threads)
    try:
        asyncio.run(setting(url, a, probe[:20], None, [], 0))  # warm-up
        results = {"idle": asyncio.run(setting(url, a, probe, None, [], 0)),
                   "B busy": asyncio.run(setting(url, a, probe, b, load_b, args.clients)),
                   "A busy": asyncio.run(setting(url, a, probe, a, load_a, args.clients))}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    idle = results["idle"]
    print(f"probe: {args.probes} one-sentence requests to {a[0]}->{a[1]}, one at a time; load: {args.clients} clients")
    for name, r in results.items():
        print(f"  {name:7s} p50 {r['p50_ms']:7.1f} ms ({r['p50_ms'] / idle['p50_ms']:.2f}x idle)  p99 "
              f"{r['p99_ms']:7.1f} ms ({r['p99_ms'] / idle['p99_ms']:.2f}x idle)  load {r['load_sentences_per_s']} sentences/s")
    print(json.dumps({"a": "-".join(a), "b": "-".join(b), "clients": args.clients, "probes": args.probes,
                      "cpus": os.cpu_count(), **results}))


if __name__ == "__main__":
    main()
