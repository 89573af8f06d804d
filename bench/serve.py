"""The translation server under load, dynamic batching on against off, on 127.0.0.1 only.

    python bench/serve.py [--ckpt RUN/checkpoints/best.pt] [--clients 1 8 32] [--requests 640] [--decode beam|greedy]

Starts `nmt.serve` twice on a free loopback port: batching on (the defaults: serve.max_wait_ms=2,
max_batch_sentences=64) and off (max_batch_sentences=1), both with the default decoding threads. For each number of concurrent clients,
each client (its own keep-alive HTTP/1.1 connection, asyncio) sends single test_2016_flickr
sentences, one request at a time, until
--requests requests in all are answered (a bounded loop). Every answer is checked against the
offline translation of its sentence (Translator, same decoding options): `mismatched` counts
answers that differ, `errors` non-200 replies or failed requests. Prints throughput
(sentences/s), p50/p99 latency and the on/off throughput ratio, and the decoder's own
sentences/s at batch 1 and 32 with no HTTP (what batching can gain at most); then fairness:
a short request's latency while another client sends the largest allowed requests, with large
requests decoded in slices (the default) and whole. One JSON object last.
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
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import newest_checkpoint  # noqa: E402  (bench/ is on sys.path when run as a script)

from nmt import Translator  # noqa: E402
from nmt.data.store import load_prepared  # noqa: E402

ON: list[str] = []  # the defaults: serve.max_wait_ms=2, max_batch_sentences=64
OFF = ["serve.max_wait_ms=0", "serve.max_batch_sentences=1"]


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


class KeepAliveClient:
    """A minimal HTTP/1.1 client on one keep-alive connection (asyncio streams): POST JSON, read
    the status line, headers and Content-Length body. httpx costs about 3.3 ms of CPU a request
    here, more than the server's own HTTP work (0.5 ms), and on 2 cores the load generator would
    measure itself; this one costs a fraction of that. Each client opens its own connection."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post_json(self, path: str, payload) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        body = json.dumps(payload).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        length = int(next(v for k, v in headers.items() if k.lower() == "content-length"))
        return status, json.loads(await self.reader.readexactly(length))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def load(url: str, sentences: list[str], expected: list[str], clients: int, total: int) -> dict:
    """`clients` concurrent loops, each on its own connection sending one sentence per request,
    `total` requests in all."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    errors = mismatched = 0
    next_index = 0

    async def client(http: KeepAliveClient) -> None:
        nonlocal next_index, errors, mismatched
        try:
            while next_index < total:
                i = next_index
                next_index += 1
                k = i % len(sentences)
                t0 = time.perf_counter()
                try:
                    status, reply = await http.post_json("/translate", {"text": sentences[k]})
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    errors += 1
                    await http.close()
                    http.writer = None
                    continue
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    errors += 1
                elif reply["translations"][0]["text"] != expected[k]:
                    mismatched += 1
        finally:
            await http.close()

    warm = KeepAliveClient(host, int(port))
    await warm.post_json("/translate", {"text": sentences[0]})
    await warm.close()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(KeepAliveClient(host, int(port))) for _ in range(clients)))
    seconds = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": total, "seconds": round(seconds, 2),
            "sentences_per_s": round(total / seconds, 1), "p50_ms": round(float(np.percentile(lat, 50)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1), "errors": errors, "mismatched": mismatched}


async def small_under_big(url: str, sentences: list[str], big_requests: int = 4) -> dict:
    """Fairness: one client sends the largest request the server allows (serve.max_sentences=64
    of the longest test sentences), `big_requests` times in a row; meanwhile another sends one
    short sentence every 100 ms. The small requests' latency while the big ones run, and the
    big ones' time (bounded: both loops stop when the big client is done)."""
    host, port = url.removeprefix("http://").split(":")
    big_text = sorted(sentences, key=len)[-64:]
    short = min(sentences, key=len)
    small_ms, big_s, done = [], [], False

    async def big_client():
        nonlocal done
        http = KeepAliveClient(host, int(port))
        for _ in range(big_requests):
            t0 = time.perf_counter()
            await http.post_json("/translate", {"text": big_text})
            big_s.append(time.perf_counter() - t0)
        done = True
        await http.close()

    async def small_client():
        http = KeepAliveClient(host, int(port))
        await asyncio.sleep(0.05)
        while not done:
            t0 = time.perf_counter()
            await http.post_json("/translate", {"text": short})
            small_ms.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.1)
        await http.close()

    await asyncio.gather(big_client(), small_client())
    lat = np.array(small_ms)
    return {"small_requests": len(small_ms), "small_p50_ms": round(float(np.percentile(lat, 50)), 1),
            "small_max_ms": round(float(lat.max()), 1), "big_request_s": round(float(np.median(big_s)), 2)}


def fairness(ckpt: Path, decode: list[str], sentences: list[str]) -> dict:
    """small_under_big with large requests decoded in slices (the default serve.max_request_slice=16)
    and whole (serve.max_request_slice=64), in one run."""
    out = {}
    for name, extra in (("sliced", []), ("whole", ["serve.max_request_slice=64"])):
        proc, url = start_server(ckpt, decode + extra)
        try:
            out[name] = asyncio.run(small_under_big(url, sentences))
            print(f"fairness {name:6s} {json.dumps(out[name])}", file=sys.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    out["small_max_latency_whole_vs_sliced"] = round(out["whole"]["small_max_ms"] / out["sliced"]["small_max_ms"], 2)
    out["big_request_time_sliced_vs_whole"] = round(out["sliced"]["big_request_s"] / out["whole"]["big_request_s"], 2)
    return out


def offline_batch_scaling(translator: Translator, sentences: list[str], sizes=(1, 32), n: int = 128) -> dict:
    """The decoder alone, no HTTP: sentences/s when `n` test sentences (in corpus order, so
    lengths mix as in the server's batches) are decoded in batches of each size. Their ratio
    bounds what dynamic batching can gain on this machine."""
    rates = {}
    for size in sizes:
        translator.translate_ids(translator.encode(sentences[:size])[0], translator.options)  # warm-up
        t0 = time.perf_counter()
        for start in range(0, n, size):
            translator.translate_ids(translator.encode(sentences[start:start + size])[0], translator.options)
        rates[str(size)] = round(n / (time.perf_counter() - t0), 1)
    rates[f"batch{sizes[-1]}_vs_batch{sizes[0]}"] = round(rates[str(sizes[-1])] / rates[str(sizes[0])], 2)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, default=None)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=640, help="requests per run (bounded loop)")
    ap.add_argument("--decode", default="beam", choices=["beam", "greedy"])
    ap.add_argument("--on", nargs="*", default=ON, help="server overrides with batching on")
    ap.add_argument("--skip-off", action="store_true", help="only the batching-on server (for tuning)")
    ap.add_argument("--fairness-only", action="store_true", help="only the small-under-big measurement")
    args = ap.parse_args()
    ckpt = args.ckpt or newest_checkpoint("bench/serve.py")
    offline = Translator.from_checkpoint(ckpt, decode=args.decode)
    dd, _, _ = load_prepared(Path(offline.prepared_dir))
    sentences = dd["test"]["src_text"]
    expected = offline.translate(sentences)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))  # as the server decodes (serve.threads=0)
    scaling = offline_batch_scaling(offline, sentences)
    print(f"offline decoding, sentences/s by batch size: {scaling}", file=sys.stderr)
    del offline
    decode = [f"decode={args.decode}"]
    if args.fairness_only:
        print(json.dumps({"ckpt": str(ckpt), "decode": args.decode, "fairness": fairness(ckpt, decode, sentences)}))
        return
    out = {"ckpt": str(ckpt), "decode": args.decode, "cpu_cores": os.cpu_count(), "offline_sentences_per_s": scaling,
           "on": [], "off": []}
    for name, extra in (("on", args.on), ("off", OFF))[:1 if args.skip_off else 2]:
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
    out["fairness"] = fairness(ckpt, decode, sentences)
    if args.skip_off:
        print(json.dumps(out))
        return
    out["throughput_ratio_on_vs_off"] = {
        str(a["clients"]): round(a["sentences_per_s"] / b["sentences_per_s"], 2) for a, b in zip(out["on"], out["off"])}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
