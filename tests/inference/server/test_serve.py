"""nmt.serve for real: a server process on 127.0.0.1, real HTTP clients (httpx), bounded loops."""
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from helpers import ENV, free_port, start_server, stop

from conftest import ROOT, TINY_DE, TINY_EN, make_cfg
from nmt import Translator


@pytest.fixture(scope="module")
def server(family_checkpoint, tmp_path_factory):
    """A server of each model family in turn (GRU with attention, Transformer)."""
    proc, url = start_server(family_checkpoint, tmp_path_factory.mktemp("serve"), "serve.max_wait_ms=20")
    yield url
    assert stop(proc) == 0


@pytest.fixture(scope="module")
def offline(family_checkpoint):
    return Translator.from_checkpoint(family_checkpoint, decode="beam", beam_size=5)


def test_concurrent_clients_get_their_own_translations(server, offline):
    expected = dict(zip(TINY_DE, offline.translate(TINY_DE)))
    failures, lock = [], threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=server, timeout=30) as http:
            for j in range(8):  # bounded: 8 requests per client
                texts = [TINY_DE[(k * 7 + j * 3 + i) % len(TINY_DE)] for i in range(1 + (k + j) % 3)]
                body = {"text": texts[0]} if len(texts) == 1 and j % 2 else {"text": texts}
                r = http.post("/translate", json=body)
                got = [t["text"] for t in r.json()["translations"]] if r.status_code == 200 else r.text
                if got != [expected[t] for t in texts]:
                    with lock:
                        failures.append((texts, got))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures[:3]
    stats = httpx.get(f"{server}/health").json()
    assert stats["requests"] >= 128
    assert stats["batches"] < stats["requests"] and stats["largest_batch"] > 3  # requests were batched together


def test_options_n_best_and_greedy(server, offline):
    r = httpx.post(f"{server}/translate", json={"text": TINY_DE[:2], "beam_size": 3, "n_best": 3}).json()
    for t, got in zip(TINY_DE[:2], r["translations"]):
        best = offline.translate_detailed([t], n_best=3, beam_size=3)[0]
        assert [a["text"] for a in got["n_best"]] == [a for a, _ in best.n_best]
        assert got["score"] == pytest.approx(best.score, abs=1e-4)
    greedy = httpx.post(f"{server}/translate", json={"text": TINY_DE, "beam_size": 1}).json()
    assert [t["text"] for t in greedy["translations"]] == offline.translate(TINY_DE, kind="greedy", beam_size=1)


BAD = [
    (b"not json", "application/json", 422),
    (b'{"text": "ein \xff hund"}', "application/json", 400),  # invalid UTF-8
    (b'{"text": []}', "application/json", 422),
    (b'{"text": [1, 2]}', "application/json", 422),
    (b'{"text": "x", "beam_size": 0}', "application/json", 422),
    (b'{"text": "x", "beam_size": 99}', "application/json", 422),
    (b'{"text": "x", "beam_size": 2, "n_best": 3}', "application/json", 422),
    (b'{"text": "x", "extra": 1}', "application/json", 422),
    (b'{"sentence": "x"}', "application/json", 422),
    (b'["x"]', "application/json", 422),
    (json.dumps({"text": "a" * 1001}).encode(), "application/json", 413),
    (json.dumps({"text": ["ein hund"] * 65}).encode(), "application/json", 413),
    (b'{"text": "x"}', "text/plain", 415),
    # strictly typed as documented: no coercion from strings, floats or booleans (#14)
    (b'{"text": "x", "beam_size": "5"}', "application/json", 422),
    (b'{"text": "x", "beam_size": 2.0}', "application/json", 422),
    (b'{"text": "x", "n_best": true}', "application/json", 422),
    (b'{"text": "ein \\ud800 hund"}', "application/json", 422),  # a lone surrogate: JSON carries it, no tokenizer reads it
]


@pytest.mark.parametrize("body,content_type,status", BAD)
def test_bad_requests_get_a_json_4xx_and_harm_nobody(server, body, content_type, status):
    r = httpx.post(f"{server}/translate", content=body, headers={"content-type": content_type})
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str) and r.json()["error"]
    ok = httpx.post(f"{server}/translate", json={"text": TINY_DE[0]})
    assert ok.status_code == 200 and ok.json()["translations"][0]["text"] == TINY_EN[0]


def test_health_info_and_openapi(server, family_checkpoint, offline):
    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    info = httpx.get(f"{server}/info").json()
    assert info["checkpoint"] == family_checkpoint.name and "/" not in json.dumps(info) and info["vocab"]["kind"] == "word"
    assert info["languages"] == {"src": "de", "tgt": "en"} and info["model"] == offline.info["model"]
    assert info["best_valid"]["metric"] == "loss" and info["serve"]["max_wait_ms"] == 20
    spec = httpx.get(f"{server}/openapi.json").json()
    assert "/translate" in spec["paths"] and httpx.get(f"{server}/docs").status_code == 200


def test_sigterm_finishes_requests_in_flight(tiny_checkpoint, tmp_path):
    proc, url = start_server(tiny_checkpoint, tmp_path, "serve.max_wait_ms=1500")  # requests wait 1.5 s in the batcher
    results = []
    threads = [threading.Thread(target=lambda t=t: results.append(
        httpx.post(f"{url}/translate", json={"text": t}, timeout=30))) for t in TINY_DE[:3]]
    for t in threads:
        t.start()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)  # while the three requests are in flight
    for t in threads:
        t.join(timeout=30)
    assert proc.wait(timeout=30) == 0
    assert sorted(r.json()["translations"][0]["text"] for r in results) == sorted(TINY_EN[:3])
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def test_translator_api_equals_the_cli(family_checkpoint, tmp_path):
    tiny_checkpoint = family_checkpoint
    src = tmp_path / "in.de"
    src.write_text("".join(f"{t}\n" for t in TINY_DE), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "nmt.translate", f"ckpt={tiny_checkpoint}", f"translate.input={src}",
                        f"translate.output={tmp_path}/out.en", "decode=beam", "decode.beam_size=3",
                        f"hydra.run.dir={tmp_path}/run"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    tr = Translator.from_checkpoint(tiny_checkpoint, decode="beam", beam_size=3)
    api = tr.translate(TINY_DE)
    assert (tmp_path / "out.en").read_text(encoding="utf-8").splitlines() == api
    assert sum(a == b for a, b in zip(api, TINY_EN)) >= 10
    detailed = tr.translate_detailed(TINY_DE[:2], n_best=2, attention=True)
    assert [d.text for d in detailed] == TINY_EN[:2] and len(detailed[0].n_best) == 2
    assert detailed[0].attention.shape == (len(detailed[0].target_pieces) + 1, len(detailed[0].source_pieces))
    assert detailed[0].n_best[0][1] >= detailed[0].n_best[1][1]


def test_int8_model_loads_quantized_and_translates(tiny_checkpoint):
    from torch.ao.nn.quantized.dynamic import GRU as QGRU
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    tr = Translator.from_checkpoint(tiny_checkpoint, decode="greedy", quantize="int8")
    kinds = {type(m) for m in tr.model.modules()}
    assert QLinear in kinds and QGRU in kinds
    assert tr.model.decoder.output.proj.__class__ is QLinear  # the output projection, the largest matmul
    same = sum(a == b for a, b in zip(tr.translate(TINY_DE), TINY_EN))
    assert same >= 10, same  # int8 rounding may flip a near-tie on this tiny model, not the bulk
    with pytest.raises(ValueError, match="int8"):
        Translator.from_checkpoint(tiny_checkpoint, quantize="int4")


def test_batcher_never_delays_a_lone_request_but_waits_under_concurrent_traffic(tiny_checkpoint):
    import asyncio

    from nmt.inference.server.app import DynamicBatcher

    tr = Translator.from_checkpoint(tiny_checkpoint, decode="greedy")
    sources, _ = tr.encode(TINY_DE[:3])

    async def scenario():
        batcher = DynamicBatcher(tr, max_wait_ms=1000, max_batch_sentences=64, max_batch_tokens=4000)
        batcher.start()
        t0 = time.perf_counter()
        await batcher.submit([sources[0]], tr.options)  # alone: decoded at once, not after 1 s
        alone = time.perf_counter() - t0
        await asyncio.gather(*(batcher.submit([s], tr.options) for s in sources))  # queued together: one batch
        batches_after_pair = batcher.stats["batches"]
        t0 = time.perf_counter()
        first = asyncio.ensure_future(batcher.submit([sources[0]], tr.options))
        await asyncio.sleep(0.2)  # under traffic the batcher waits up to max_wait for company
        late = asyncio.ensure_future(batcher.submit([sources[1]], tr.options))
        await asyncio.gather(first, late)
        waited = time.perf_counter() - t0
        await batcher.stop()
        return alone, batches_after_pair, waited, batcher.stats["batches"]

    alone, batches_after_pair, waited, batches = asyncio.run(scenario())
    assert alone < 0.5
    assert batches_after_pair == 2  # the lone request, then the three together
    assert batches == 3 and waited >= 0.2  # the late request joined the first one's batch


def test_a_chunked_body_is_counted_as_it_arrives_and_stopped_at_the_limit(server):
    def chunks():  # no Content-Length: httpx sends it chunked
        yield b'{"text": "'
        for _ in range(300):
            yield b"a" * 10_000
        yield b'"}'

    r = httpx.post(f"{server}/translate", content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "serve.max_body_bytes=1000000" in r.json()["error"]
    assert httpx.post(f"{server}/translate", json={"text": TINY_DE[0]}).status_code == 200


def test_api_key_and_a_warning_when_reachable_without_one(tiny_checkpoint, tmp_path):
    from nmt.inference.server.limits import exposure_warning

    proc, url = start_server(tiny_checkpoint, tmp_path, "serve.api_key=s3cret")
    try:
        assert httpx.post(f"{url}/translate", json={"text": TINY_DE[0]}).status_code == 401
        assert httpx.get(f"{url}/info", headers={"x-api-key": "wrong"}).status_code == 401
        ok = httpx.post(f"{url}/translate", json={"text": TINY_DE[0]}, headers={"x-api-key": "s3cret"})
        assert ok.status_code == 200 and ok.json()["translations"][0]["text"] == TINY_EN[0]
        assert httpx.get(f"{url}/info", headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(f"{url}/health").status_code == 200  # for load balancers
        # as in LibreTranslate, what a client needs before it has a key stays open: the pairs, the page
        assert httpx.get(f"{url}/languages").status_code == 200 and httpx.get(f"{url}/").status_code == 200
        assert httpx.get(f"{url}/openapi.json").status_code == 401
    finally:
        assert stop(proc) == 0
    # binding to other interfaces is not done in tests (traffic stays on loopback): the rule itself
    assert "no authentication" in exposure_warning("0.0.0.0", "") and "serve.api_key" in exposure_warning("::", "")
    assert exposure_warning("0.0.0.0", "s3cret") is None
    assert exposure_warning("127.0.0.1", "") is None and exposure_warning("127.0.0.2", "") is None
    assert exposure_warning("localhost", "") is None and exposure_warning("::1", "") is None


def test_idle_and_slow_clients_cannot_exhaust_the_server(tiny_checkpoint, tmp_path):
    # 300 connections that send half a request and stall, against a server allowed 256 open files
    proc, url = start_server(tiny_checkpoint, tmp_path, "serve.request_timeout_s=2", max_open_files=256)
    port = int(url.rsplit(":", 1)[1])
    stalled = []
    try:
        for _ in range(300):  # bounded: 300 loopback connections, each closed below
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            stalled.append(s)
        time.sleep(0.5)
        assert proc.poll() is None  # before: accept() hit EMFILE and the server exited
        busy = httpx.post(f"{url}/translate", json={"text": TINY_DE[0]}, timeout=10)
        assert busy.status_code in (200, 503) and busy.json()  # over the cap: a JSON 503, never a crash
        time.sleep(2.5)  # past serve.request_timeout_s every stalled connection has been dropped
        for s in stalled:
            s.settimeout(2)
            data = s.recv(200)
            assert data == b"" or data.startswith(b"HTTP/1.1 503"), data
        ok = httpx.post(f"{url}/translate", json={"text": TINY_DE[0]}, timeout=10)
        assert ok.status_code == 200 and ok.json()["translations"][0]["text"] == TINY_EN[0]
    finally:
        for s in stalled:
            s.close()
        assert stop(proc) == 0
    log = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert "Too many open files" not in log


def test_a_large_request_is_decoded_in_slices_that_let_small_ones_through(tiny_checkpoint):
    import asyncio

    from nmt.inference.server.app import DynamicBatcher

    tr = Translator.from_checkpoint(tiny_checkpoint, decode="greedy")
    big, _ = tr.encode(TINY_DE * 8)  # 96 sentences
    small, _ = tr.encode(TINY_DE[:1])
    finished = []

    async def scenario():
        batcher = DynamicBatcher(tr, max_wait_ms=0, max_batch_sentences=64, max_batch_tokens=4000, max_slice=8)
        batcher.start()

        async def client(name, sources, delay):
            await asyncio.sleep(delay)
            result = await batcher.submit(sources, tr.options)
            finished.append(name)
            return result

        big_result, small_result = await asyncio.gather(client("big", big, 0), client("small", small, 0.01))
        await batcher.stop()
        return big_result, small_result, batcher.stats

    big_result, small_result, stats = asyncio.run(scenario())
    assert finished == ["small", "big"]  # the small request did not wait for all 12 slices
    assert [t.text for t in big_result] == tr.translate(TINY_DE * 8) and small_result[0].text == TINY_EN[0]
    assert stats["requests"] == 2 and stats["sentences"] == 97 and stats["batches"] >= 12


def test_a_request_outlasting_the_graceful_shutdown_gets_a_json_503(tiny_checkpoint):
    import uvicorn

    from nmt.inference.server.app import create_app

    tr = Translator.from_checkpoint(tiny_checkpoint, decode="greedy")
    decode = tr.translate_ids
    tr.translate_ids = lambda *a, **k: (time.sleep(3), decode(*a, **k))[1]  # a model slower than the grace
    app = create_app(tr, make_cfg("serve.graceful_seconds=1").serve)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    runner = threading.Thread(target=server.run)
    runner.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    answers = []
    client = threading.Thread(target=lambda: answers.append(
        httpx.post(f"{url}/translate", json={"text": TINY_DE[0]}, timeout=20)))
    client.start()
    time.sleep(0.5)
    server.should_exit = True  # what SIGTERM does
    client.join(timeout=20)
    runner.join(timeout=20)
    assert answers[0].status_code == 503 and "shutting down" in answers[0].json()["error"]


# ---------------------------------------------------------------- LibreTranslate's API, the page


def test_libretranslate_client_against_the_server(server, offline):
    from urllib.error import HTTPError

    from libretranslatepy import LibreTranslateAPI

    lt = LibreTranslateAPI(server)  # the real client: form-encoded POST /translate, GET /languages
    assert lt.languages() == [{"code": "de", "name": "German", "targets": ["en"]},
                              {"code": "en", "name": "English", "targets": []}]
    for sentence in TINY_DE[:4]:
        assert lt.translate(sentence, "de", "en") == offline.translate(sentence)[0]
    assert lt.translate(TINY_DE[0], "auto", "en") == offline.translate(TINY_DE[0])[0]
    with pytest.raises(HTTPError) as refused:
        lt.translate(TINY_DE[0], "en", "fr")
    assert refused.value.code == 400
    assert json.loads(refused.value.read()) == {"error": "en -> fr is not served (this server translates de-en)",
                                                "pairs": ["de-en"]}


def test_libretranslate_json_lists_alternatives_html_and_errors(server, offline):
    body = {"q": TINY_DE[:3], "source": "de", "target": "en", "alternatives": 2}
    r = httpx.post(f"{server}/translate", json=body).json()
    detailed = offline.translate_detailed(TINY_DE[:3], n_best=3)
    assert r["translatedText"] == [d.text for d in detailed]
    assert r["alternatives"] == [[t for t, _ in d.n_best[1:]] for d in detailed]
    auto = httpx.post(f"{server}/translate", data={"q": TINY_DE[0], "source": "auto", "target": "en"}).json()
    assert auto == {"translatedText": TINY_EN[0], "detectedLanguage": {"confidence": 0.0, "language": "de"},
                    "confidence": None}  # one source language: nothing to guess; no calibration: null
    page = httpx.post(f"{server}/translate", json={"q": f"<p>{TINY_DE[0]}</p><script>var x = '{TINY_DE[1]}';</script>",
                                                   "source": "de", "target": "en", "format": "html"}).json()
    assert page["translatedText"] == f"<p>{TINY_EN[0]}</p><script>var x = '{TINY_DE[1]}';</script>"
    for bad, message in [({"q": "x", "source": "de"}, "Invalid request: missing target parameter"),
                         ({"q": "", "source": "de", "target": "en"}, "Invalid request: missing q parameter"),
                         ({"q": "x", "source": "de", "target": "fr"}, "de -> fr is not served"),
                         ({"q": "x", "source": "de", "target": "en", "format": "pdf"}, "Invalid request: format 'pdf'"),
                         ({"q": ["x"] * 65, "source": "de", "target": "en"}, "Invalid request: 65 sentences")]:
        r = httpx.post(f"{server}/translate", json=bad)
        assert r.status_code == 400 and r.json()["error"].startswith(message), (bad, r.text)


def test_our_shape_returns_attention_for_the_page(server, offline):
    r = httpx.post(f"{server}/translate", json={"text": TINY_DE[0], "attention": True, "n_best": 2, "beam_size": 3})
    t = r.json()["translations"][0]
    expected = offline.translate_detailed([TINY_DE[0]], n_best=2, beam_size=3, attention=True)[0]
    assert t["target_pieces"] == expected.target_pieces and t["source_pieces"] == expected.source_pieces
    assert len(t["attention"]) == len(t["target_pieces"]) + 1 and len(t["attention"][0]) == len(t["source_pieces"])
    assert all(abs(sum(row) - 1) < 1e-3 for row in t["attention"])
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for element in ('id="source"', 'id="translate"', 'id="nbest"', 'id="heatmap"', "attention: true"):
        assert element in page.text


def test_libretranslate_api_key_in_the_body(tiny_checkpoint, tmp_path):
    from urllib.error import HTTPError

    from libretranslatepy import LibreTranslateAPI

    proc, url = start_server(tiny_checkpoint, tmp_path, "serve.api_key=s3cret")
    try:
        assert LibreTranslateAPI(url, api_key="s3cret").translate(TINY_DE[0], "de", "en") == TINY_EN[0]
        with pytest.raises(HTTPError) as refused:
            LibreTranslateAPI(url, api_key="wrong").translate(TINY_DE[0], "de", "en")
        assert refused.value.code == 403 and json.loads(refused.value.read()) == {"error": "Invalid API key"}
        assert httpx.post(f"{url}/translate", json={"text": TINY_DE[0]}).status_code == 401  # ours: the header
        assert httpx.get(f"{url}/languages").status_code == 200 and httpx.get(f"{url}/").status_code == 200
    finally:
        assert stop(proc) == 0
