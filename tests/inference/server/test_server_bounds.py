"""Safety round 3 (#28), the server: work for clients that left is dropped, the queue and one
request's work are bounded, HTML is sized before it is parsed, deep nesting is refused, a second
real LibreTranslate client (deep-translator) works, and schemathesis finds nothing the OpenAPI
schema does not say. Real server processes on 127.0.0.1, bounded request loops."""
import socket
import subprocess
import sys
import threading

import httpx
import pytest
from helpers import start_server, stop

from conftest import TINY_DE, TINY_EN, TINY_MODEL, make_cfg

LONG = " ".join(TINY_DE * 14)[:999]  # one sentence of 999 characters, about 170 words


@pytest.fixture(scope="module")
def slow_checkpoint(tiny_prepared, tmp_path_factory):
    """A tiny GRU after one step: nearly random, so its beam search runs to the length limit."""
    from nmt.cli.train import run as train

    run_dir = tmp_path_factory.mktemp("slow")
    train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "train.max_steps=1", "train.val_bleu=false",
                   "train.early_stopping_metric=loss", "train.average_last=0", "train.length_penalties=[]"), run_dir)
    return run_dir / "checkpoints" / "best.pt"


def raw_request(port: int, body: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return s


def test_requests_of_clients_that_left_are_not_decoded(slow_checkpoint, tmp_path):
    import json

    proc, url = start_server(slow_checkpoint, tmp_path, "serve.max_request_work=1000000")
    port = int(url.rsplit(":", 1)[1])
    big = json.dumps({"text": [LONG] * 64, "beam_size": 10}).encode()
    try:
        for _ in range(12):  # each client sends the largest request and leaves at once
            raw_request(port, big).close()
        honest = httpx.post(f"{url}/translate", json={"text": TINY_DE[0]}, timeout=120)
        assert honest.status_code == 200
        health = httpx.get(f"{url}/health").json()
        assert health["abandoned"] >= 10, health  # dropped while waiting, or between their slices
        assert health["sentences"] < 12 * 64 / 2, health
        assert health["waiting_sentences"] == 0
    finally:
        assert stop(proc) == 0


def test_a_full_queue_answers_503_with_retry_after(slow_checkpoint, tmp_path):
    proc, url = start_server(slow_checkpoint, tmp_path, "serve.max_queued_sentences=64",
                             "serve.max_request_work=1000000")
    answers = []

    def client():
        answers.append(httpx.post(f"{url}/translate", json={"text": [LONG] * 64, "beam_size": 10}, timeout=300))

    try:
        clients = [threading.Thread(target=client) for _ in range(3)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=300)
        statuses = sorted(a.status_code for a in answers)
        assert statuses[0] == 200 and 503 in statuses, statuses
        busy = next(a for a in answers if a.status_code == 503)
        assert busy.headers["retry-after"] == "2" and "serve.max_queued_sentences=64" in busy.json()["error"]
        assert httpx.get(f"{url}/health").json()["refused_busy"] >= 1
    finally:
        assert stop(proc) == 0


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    proc, url = start_server(tiny_checkpoint, tmp_path_factory.mktemp("bounds"))
    yield url
    assert stop(proc) == 0


def test_one_request_s_decoding_work_is_bounded(server):
    r = httpx.post(f"{server}/translate", json={"text": [LONG] * 64, "beam_size": 10}, timeout=60)
    assert r.status_code == 413 and "serve.max_request_work=20000" in r.json()["error"]
    r = httpx.post(f"{server}/translate", data={"q": [LONG] * 64, "source": "de", "target": "en"}, timeout=60)
    assert r.status_code == 400 and "serve.max_request_work" in r.json()["error"]  # LibreTranslate's way


def test_html_is_sized_before_it_is_parsed(server):
    document = "<p>" + "<b>x</b>" * 110_000 + "</p>"  # about 0.9 MB, under the body limit
    r = httpx.post(f"{server}/translate", json={"q": document, "source": "de", "target": "en", "format": "html"},
                   timeout=60)
    assert r.status_code == 400 and "characters of HTML; the server takes 64000" in r.json()["error"]


@pytest.mark.parametrize("key", ["text", "q"])
def test_a_body_nested_10000_deep_is_a_422(server, key):
    body = '{"%s": %s, "source": "de", "target": "en"}' % (key, "[" * 10000 + "]" * 10000)
    r = httpx.post(f"{server}/translate", content=body, headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 422 and r.json()["error"] == "invalid request: the JSON is nested too deep"


def test_deep_translator_and_libretranslatepy_both_work(server):
    from deep_translator import LibreTranslator
    from libretranslatepy import LibreTranslateAPI

    # deep-translator sends q, source and target as query parameters with an empty body; it wants
    # some api_key even when the server has none, and language codes
    client = LibreTranslator(source="de", target="en", custom_url=f"{server}/", api_key="none")
    assert client.translate(TINY_DE[0]) == TINY_EN[0]
    assert client.translate_batch(TINY_DE[:3]) == TINY_EN[:3]
    assert LibreTranslateAPI(server).translate(TINY_DE[1], "de", "en") == TINY_EN[1]


def test_schemathesis_finds_no_response_the_schema_does_not_document(server, tmp_path):
    r = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", f"{server}/openapi.json",
                        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
                        "--max-examples", "40", "--seed", "1", "--generation-deterministic", "--workers", "1",
                        "--request-timeout", "30", "--phases", "examples,coverage,fuzzing"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
