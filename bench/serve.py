"""The translation server under load, dynamic batching on against off, on 127.0.0.1 only.

    python bench/serve.py [--ckpt RUN/checkpoints/best.pt] [--clients 1 8 32] [--requests 320]

Starts `nmt.serve` twice on a free loopback port: batching on (serve.max_wait_ms=5,
max_batch_sentences=64) and off (max_batch_sentences=1). For each number of concurrent clients,
each client (httpx, asyncio) sends single test_2016_flickr sentences, one request at a time, until
--requests requests in all are answered (a bounded loop). Every answer is checked against the
offline translation of its sentence (Translator, same decoding options): `mismatched` counts
answers that differ, `errors` non-200 replies or failed requests. Prints throughput
(sentences/s), p50/p99 latency and the on/off throughput ratio; one JSON object last.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt import Translator  # noqa: E402
from nmt.store import load_prepared  # noqa: E402

ON = ["serve.max_wait_ms=5", "serve.max_batch_sentences=64"]
OFF = ["serve.max_wait_ms=0", "serve.max_batch_sentences=1"]


def newest_checkpoint() -> Path:
    found = sorted((ROOT / "outputs").glob("**/checkpoints/best.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit("bench/serve.py: no outputs/**/checkpoints/best.pt. Fix: train one (make demo) or pass --ckpt")
    return found[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ckpt: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nmt.serve", f"ckpt={ckpt}", f"serve.port={port}",
                             "serve.log_level=warning", "hydra.output_subdir=null", "hydra.run.dir=.", *extra],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench/serve.py: the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("bench/serve.py: the server did not come up in 120 s")


async def load(url: str, sentences: list[str], expected: list[str], clients: int, total: int) -> dict:
    """`clients` concurrent loops, each sending one sentence per request, `total` requests in all."""
    latencies: list[float] = []
    errors = mismatched = 0
    next_index = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal next_index, errors, mismatched
        while next_index < total:
            i = next_index
            next_index += 1
            k = i % len(sentences)
            t0 = time.perf_counter()
            try:
                r = await http.post("/translate", json={"text": sentences[k]})
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
            elif r.json()["translations"][0]["text"] != expected[k]:
                mismatched += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        await http.post("/translate", json={"text": sentences[0]})  # warm-up
        t0 = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        seconds = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": total, "seconds": round(seconds, 2),
            "sentences_per_s": round(total / seconds, 1), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "errors": errors, "mismatched": mismatched}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, default=None)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=320, help="requests per run (bounded loop)")
    ap.add_argument("--decode", default="beam", choices=["beam", "greedy"])
    args = ap.parse_args()
    ckpt = args.ckpt or newest_checkpoint()
    offline = Translator.from_checkpoint(ckpt, decode=args.decode)
    dd, _, _ = load_prepared(Path(offline.info["prepared_dir"]))
    sentences = dd["test"]["src_text"]
    expected = offline.translate(sentences)
    del offline
    decode = [f"decode={args.decode}"]
    out = {"ckpt": str(ckpt), "decode": args.decode, "cpu_cores": os.cpu_count(), "on": [], "off": []}
    for name, extra in (("on", ON), ("off", OFF)):
        proc, url = start_server(ckpt, decode + extra)
        try:
            for clients in args.clients:
                result = asyncio.run(load(url, sentences, expected, clients, args.requests))
                out[name].append(result)
                print(f"batching {name:3s} {json.dumps(result)}", file=sys.stderr)
            out[f"{name}_server_stats"] = httpx.get(f"{url}/health").json()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    out["throughput_ratio_on_vs_off"] = {
        str(a["clients"]): round(a["sentences_per_s"] / b["sentences_per_s"], 2) for a, b in zip(out["on"], out["off"])}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
