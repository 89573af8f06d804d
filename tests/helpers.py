"""Helpers the tests of several packages share: running a program as a user does, a server
process on a loopback port, a hostile pickle."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(module, *args, stdin: bytes | None = None, cwd=None, timeout=180):
    """Run `python -m nmt.MODULE args`; (returncode, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", f"nmt.{module}", *args], input=stdin, capture_output=True,
                       cwd=cwd or ROOT, env=ENV, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def assert_one_line_error(rc, err, *must_contain):
    """Exit 1, no traceback, and a last line naming what it must."""
    assert rc == 1, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    for text in must_contain:
        assert text in last, last


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ckpt, tmp_path, *overrides, max_open_files: int | None = None):
    """A server process on a free loopback port, ready (GET /health) within 90 s."""
    import resource

    def limit_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))

    port = free_port()
    log = open(tmp_path / f"serve-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "nmt.serve", f"ckpt={ckpt}", f"serve.port={port}",
                             "serve.log_level=warning", f"hydra.run.dir={tmp_path}/h{port}", *overrides],
                            cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=limit_files if max_open_files else None)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError((tmp_path / f"serve-{port}.log").read_text()[-3000:])
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not come up in 90 s")


def stop(proc) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


class Payload:
    """Unpickling this calls os.system: what a hostile 'checkpoint' would carry."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)
