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
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve import KeepAliveClient, start_server  # noqa: E402  (bench/serve.py)

from nmt import Translator  # noqa: E402


async def setting(url: str, probe_pair: tuple[str, str], probe_texts: list[str], load_pair: tuple[str, str] | None,
                  load_texts: list[str], clients: int) -> dict:
    """The probe's latencies while `clients` load `load_pair` (none: idle); the load's rate."""
    host, port = url.removeprefix("http://").split(":")
    done = asyncio.Event()
    load_answers = 0

    async def loader(k: int) -> None:
        nonlocal load_answers
        http = KeepAliveClient(host, int(port))  # httpx would cost the 2 cores more than the server's HTTP work
        try:
            i = k
            while not done.is_set():  # bounded: ends when the probe has its answers
                status, _ = await http.post_json("/translate", {"text": load_texts[i % len(load_texts)],
                                                                "source": load_pair[0], "target": load_pair[1]})
                assert status == 200, status
                load_answers += 1
                i += clients
        finally:
            await http.close()

    tasks = [asyncio.create_task(loader(k)) for k in range(clients)] if load_pair else []
    await asyncio.sleep(2.0 if tasks else 0.0)  # the load reaches its steady state
    latencies = []
    probe = KeepAliveClient(host, int(port))
    started, answered_before = time.perf_counter(), load_answers
    for text in probe_texts:
        t0 = time.perf_counter()
        status, _ = await probe.post_json("/translate", {"text": text, "source": probe_pair[0], "target": probe_pair[1]})
        assert status == 200, status
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    answered = load_answers - answered_before
    await probe.close()
    done.set()
    await asyncio.gather(*tasks)
    ms = np.array(latencies) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "load_sentences_per_s": round(answered / seconds, 1) if tasks else 0.0}


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
    proc, url = start_server("", [f"serve.models=[{args.a},{args.b}]", f"serve.threads={args.threads}"])
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
