"""The HTTP translation server (FastAPI + uvicorn) with dynamic batching, run by `nmt.serve`.

    curl -s localhost:8000/translate -H 'content-type: application/json' -d '{"text": ["Ein Hund rennt."]}'

POST /translate {"text": "..." | ["...", ...], "beam_size": K?, "n_best": N?}
    -> {"translations": [{"text", "score", "n_best"?: [{"text", "score"}]}]}
POST /translate and GET /languages also speak LibreTranslate's API (nmt.inference.server.libretranslate).
With "attention": true each translation also carries its source and target pieces and the
attention weights (one row per target piece and EOS, one column per source piece).
GET / a page to try the model (nmt.inference.server.page); GET /health, GET /info, GET /docs (OpenAPI).
Bad requests get a 4xx with {"error": ...}.

Dynamic batching (nmt.inference.server.batcher): requests that arrive while the model is busy, and
under concurrent traffic those within `max_wait_ms` of the first one, are decoded together in
one batched search; each response gets exactly its own sentences back, in order.
SIGTERM (or Ctrl-C) stops accepting connections and finishes the requests in flight.
"""
from __future__ import annotations

import os
import signal
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, conlist, constr
from starlette.requests import (
    Request,  # at module level: FastAPI reads the route's annotation by name
)

from nmt.inference.server.batcher import ClientGone, DynamicBatcher, QueueFull
from nmt.inference.server.decoding import Decoding, RequestProblem, Routed
from nmt.inference.server.libretranslate import LibreProblem, is_libretranslate, libre_translate
from nmt.inference.server.pairs import LanguageGuesser, PairModel, Pairs, load_pairs, pair_key
from nmt.inference.server.limits import (ACCEPT_BACKLOG, MISSING_KEY, RequestGuard, connection_cap, exposure_warning,
                                         guarded_protocol, open_log_files)
from nmt.inference.server.page import PAGE
from nmt.inference.translator import Translation, Translator

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Union[StrictStr, List[StrictStr]] = Field(
        description="a sentence, or a list of sentences translated independently")
    beam_size: Optional[StrictInt] = Field(None, ge=1, description="beam width (1 = greedy); default: the server's")
    n_best: Optional[StrictInt] = Field(None, ge=1, description="alternatives per sentence (<= beam_size)")
    attention: Optional[StrictBool] = Field(None, description="also return the pieces and attention weights")
    source: Optional[StrictStr] = Field(None, description="source language code, or auto (guessed); with target. "
                                                          "Neither: the server's first pair")
    target: Optional[StrictStr] = Field(None, description="target language code")


class LibreTranslateRequest(BaseModel):
    """LibreTranslate's request (documentation only: read_libre_request validates it). Like
    LibreTranslate, the server also reads these fields from the URL's query string when the body
    is empty."""

    q: Union[constr(min_length=1), conlist(str, min_length=1)] = Field(description="text, or a list of texts")
    source: constr(min_length=1) = Field(description="the model's source language code, or auto")
    target: constr(min_length=1) = Field(description="the model's target language code")
    format: Optional[str] = Field("text", description="text | html (the text between the tags is translated)")
    alternatives: Optional[int] = Field(0, description="n-best alternatives to return besides the best")
    api_key: Optional[str] = None


TRANSLATE_BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"oneOf": [TranslateRequest.model_json_schema(),
                                              LibreTranslateRequest.model_json_schema()]}},
    "application/x-www-form-urlencoded": {"schema": LibreTranslateRequest.model_json_schema()}}}}


def form_fields(encoded: str) -> dict:
    """A form or a query string as LibreTranslate reads it: a repeated q is a list."""
    from urllib.parse import parse_qs

    form = parse_qs(encoded, keep_blank_values=True)
    return {k: v if k == "q" and len(v) > 1 else v[0] for k, v in form.items()}


async def read_payload(request) -> object:
    """The parsed body: JSON, or a form (LibreTranslate clients post forms); an empty body with
    a query string is read from the query string (LibreTranslate accepts that, and clients such
    as deep-translator send it). RequestProblem for a body that is not UTF-8 (400), not JSON or
    nested too deep (422)."""
    import json

    body = await request.body()
    if not body and request.url.query:
        return form_fields(request.url.query)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestProblem(400, "the body is not valid UTF-8 JSON") from None
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return form_fields(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestProblem(422, f"invalid request: the body is not JSON ({err.msg} at line {err.lineno} "
                                  f"column {err.colno})") from None
    except RecursionError:
        raise RequestProblem(422, "invalid request: the JSON is nested too deep") from None


class Alternative(BaseModel):
    text: str
    score: float


class Detected(BaseModel):
    language: str
    confidence: float = Field(description="in [0, 1]")


class TranslationOut(BaseModel):
    text: str
    score: float = Field(description="log-probability of the translation under the model")
    n_best: Optional[List[Alternative]] = None
    source_pieces: Optional[List[str]] = None
    target_pieces: Optional[List[str]] = None
    attention: Optional[List[List[float]]] = Field(None, description="(target pieces + EOS) x source pieces")
    confidence: Optional[float] = Field(None, description="in [0, 1], calibrated on val against sentence chrF; "
                                                          "null: the model has no calibration")
    pivot: Optional[str] = Field(None, description="the language the text was translated through, if any")
    detected_language: Optional[Detected] = Field(None, description="source=auto: the language guessed")


class TranslateResponse(BaseModel):
    translations: List[TranslationOut]


RETRY_AFTER_SECONDS = 2  # what a 503 for a full queue tells the client to wait


def read_request(req: TranslateRequest, decoding: Decoding) -> tuple[list[str], object]:
    """(texts, search options) of a request within the server's limits, or RequestProblem."""
    texts = [req.text] if isinstance(req.text, str) else req.text
    decoding.check_texts(texts)
    return texts, decoding.options(req.beam_size, req.n_best)


def error_response(status: int, message: str, **extra) -> "JSONResponse":
    """Every error the server answers: {"error": message, ...} with `status`."""
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"error": message, **extra})


def add_error_handlers(app: "FastAPI") -> None:
    """Validation errors (422) and HTTP errors in the server's one error shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = [{"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
                    for e in exc.errors()]
        first = problems[0] if problems else {"where": "body", "problem": "invalid"}
        return error_response(422, f"invalid request: {first['where']}: {first['problem']}", detail=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = "the body is not valid UTF-8 JSON" if exc.status_code == 400 else str(exc.detail)
        return error_response(exc.status_code, message)


def translations_json(results: list[Translation], options, attention: bool, routed: Routed) -> dict:
    """POST /translate's answer in our shape: {"translations": [{text, score, confidence, n_best?,
    attention?, pivot?, detected_language?}]}."""
    out = []
    for i, r in enumerate(results):
        item = {"text": r.text, "score": r.score, "confidence": r.confidence,
                "n_best": [{"text": t, "score": s} for t, s in r.n_best] if options.n_best > 1 else None,
                "pivot": routed.pivot(i)}
        if routed.detected is not None:
            item["detected_language"] = {"language": routed.detected[i][0], "confidence": routed.detected[i][1]}
        if attention:
            item.update(source_pieces=r.source_pieces, target_pieces=r.target_pieces,
                        attention=r.attention.round(4).tolist() if r.attention is not None else None)
        out.append(item)
    return {"translations": out}


async def handle_translate(request: Request, decoding: Decoding):
    """POST /translate: our shape ({"text": ...}, answered {"translations": [...]}) or
    LibreTranslate's ({"q": ..., "source", "target"}, JSON or form-encoded, answered
    {"translatedText": ...})."""
    import hmac

    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from pydantic import ValidationError

    try:
        payload = await read_payload(request)
    except RequestProblem as problem:
        return error_response(problem.status, str(problem))
    key_pending = getattr(request.state, "api_key_pending", False)  # no key header came and the server has a key
    try:
        if is_libretranslate(payload):
            if key_pending and not hmac.compare_digest(str(payload.get("api_key") or "").encode(),
                                                       decoding.serve_cfg.api_key.encode()):
                return error_response(403, "Invalid API key")  # LibreTranslate's key travels in the body
            try:
                return JSONResponse(await libre_translate(decoding, payload, request.is_disconnected))
            except LibreProblem as problem:
                return error_response(problem.status, str(problem), **problem.extra)
        if key_pending:
            return error_response(401, MISSING_KEY)
        try:
            req = TranslateRequest.model_validate(payload)
        except ValidationError as err:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
        try:
            texts, options = read_request(req, decoding)
            routes, detected = await decoding.routes(texts, req.source, req.target)
            results = await decoding.translate_routed(texts, routes, options, bool(req.attention),
                                                      request.is_disconnected)
        except RequestProblem as problem:
            return error_response(problem.status, str(problem), **problem.extra)
        return translations_json(results, options, bool(req.attention), Routed(results, routes, detected))
    except QueueFull as busy:
        response = error_response(503, f"the server is busy ({busy}); try again in a moment")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    except ClientGone:
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it


def health_stats(pairs: Pairs) -> dict:
    """GET /health: the batchers' counters summed (largest_batch: the largest), and per pair."""
    per_pair = {m.key: {"queued": m.batcher.queue.qsize(), "waiting_sentences": m.batcher.waiting, **m.batcher.stats}
                for m in pairs.models}
    total: dict = {}
    for stats in per_pair.values():
        for k, v in stats.items():
            total[k] = max(total.get(k, 0), v) if k == "largest_batch" else total.get(k, 0) + v
    return {"status": "ok", **total, "pairs": per_pair}


def decode_info(translator: Translator) -> dict:
    d = translator.options
    return {"kind": str(d.kind), "beam_size": d.beam_size, "length_penalty": d.length_penalty,
            "max_len_a": d.max_len_a, "max_len_b": d.max_len_b}


def create_app(models: Translator | Pairs, serve_cfg) -> "FastAPI":
    """The FastAPI application around one Translator or several (`Pairs`, one per language pair),
    each with its own batcher (`serve_cfg`: the `serve` config group)."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    pairs = models if isinstance(models, Pairs) else Pairs([PairModel(
        *((models.info.get("languages") or {}).get(k) or "" for k in ("src", "tgt")),
        str(models.info.get("checkpoint", "model")), models)])
    for m in pairs.models:
        m.batcher = DynamicBatcher(m.translator, serve_cfg.max_wait_ms, serve_cfg.max_batch_sentences,
                                   serve_cfg.max_batch_tokens, serve_cfg.max_request_slice,
                                   serve_cfg.max_queued_sentences)
    sources = [m.src for m in pairs.models] + [s for s, _ in pairs.pivot_pairs()]
    guesser = LanguageGuesser(sources) if len(set(sources)) > 1 else None

    @asynccontextmanager
    async def lifespan(app):
        for m in pairs.models:
            m.batcher.start()
        yield
        for m in pairs.models:
            await m.batcher.stop()  # after uvicorn has finished the requests in flight

    app = FastAPI(title="nmt translation server", version="1", lifespan=lifespan,
                  description="Translate with trained nmt models; concurrent requests are batched.")
    app.state.pairs = pairs
    add_error_handlers(app)
    app.add_middleware(RequestGuard, serve_cfg=serve_cfg)
    decoding = Decoding(pairs, serve_cfg, guesser)

    @app.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True,
              openapi_extra=TRANSLATE_BODY_DOC,
              responses={400: {"description": "a pair the server does not translate (with the pairs served), "
                                              "or a LibreTranslate request missing parameters"},
                         401: {"description": "serve.api_key is set and the request has no or a wrong key"},
                         403: {"description": "LibreTranslate request with a wrong api_key"},
                         413: {"description": "too many or too long sentences, too much decoding work, a "
                                              "body over serve.max_body_bytes"},
                         415: {"description": "a body that is neither JSON nor a form"},
                         422: {"description": "not JSON, wrong types, empty list, bad options"},
                         503: {"description": "the server is busy (too many sentences waiting; see "
                                              "Retry-After) or shutting down"}})
    async def translate(request: Request):
        """Our shape ({"text": ...}, answered {"translations": [...]}) or LibreTranslate's
        ({"q": ..., "source", "target"}, JSON or form-encoded, answered {"translatedText": ...})."""
        return await handle_translate(request, decoding)

    @app.get("/languages")
    async def supported_languages():
        """LibreTranslate's list of languages: each one served, with the targets it reaches."""
        return pairs.languages()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        """A page to try the model: a text box, the translation, its n-best list, attention."""
        return HTMLResponse(PAGE)

    @app.get("/health")
    async def health():
        return health_stats(pairs)

    @app.get("/info")
    async def info():
        first = pairs.default.translator
        return {**first.info, "decode": decode_info(first),
                "pairs": {m.key: {"checkpoint": m.translator.info.get("checkpoint"),
                                  "model": (m.translator.info.get("model") or {}).get("kind"),
                                  "decode": decode_info(m.translator)} for m in pairs.models},
                "pivot_pairs": [pair_key(s, t) for s, t in pairs.pivot_pairs()],
                "serve": {k: serve_cfg[k] for k in ("max_wait_ms", "max_batch_sentences", "max_batch_tokens",
                                                     "max_sentences", "max_chars", "max_beam_size")}}

    return app


def serve(cfg) -> None:
    """Load `cfg.ckpt` (or every model of `cfg.serve.models`) and serve until SIGTERM / Ctrl-C
    (`cfg.serve`: host, port, limits)."""
    import torch
    import uvicorn

    # decoding threads: by default all cores but one, which the HTTP event loop keeps for itself
    torch.set_num_threads(cfg.serve.threads or max(1, (os.cpu_count() or 1) - 1))
    pairs = load_pairs(cfg, Translator.from_config)
    for m in pairs.models:
        m.translator.translate(["warm up"])  # the first call allocates; do it before the first client waits
    app = create_app(pairs, cfg.serve)
    warning = exposure_warning(cfg.serve.host, cfg.serve.api_key)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    for m in pairs.models:
        t = m.translator
        weights = "int8 weights, " if t.info.get("quantize") == "int8" else ""
        calibrated = "with" if t.calibration else "no"
        print(f"serve: {m.key if not pairs.open else 'model'}: {m.name} ({weights}{t.options.kind} search, "
              f"{calibrated} confidence)", file=sys.stderr, flush=True)
    if pairs.pivot_pairs():
        print(f"serve: through English: {', '.join(pair_key(s, t) for s, t in pairs.pivot_pairs())}",
              file=sys.stderr, flush=True)
    print(f"serve: on http://{cfg.serve.host}:{cfg.serve.port} (docs at /docs)", file=sys.stderr, flush=True)
    # uvicorn catches SIGTERM/SIGINT, finishes the requests in flight, then re-raises the signal
    # under the handlers it found: with these, that ends the process normally (exit 0)
    stopped_by: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopped_by.append(signal.Signals(signum).name))
    open_log_files()
    protocol = guarded_protocol(connection_cap(cfg.serve.max_connections), cfg.serve.request_timeout_s)
    uvicorn.run(app, host=cfg.serve.host, port=cfg.serve.port, log_level=str(cfg.serve.log_level),
                timeout_graceful_shutdown=cfg.serve.graceful_seconds, http=protocol, backlog=ACCEPT_BACKLOG)
    stats = health_stats(pairs)
    print(f"serve: stopped{' by ' + stopped_by[0] if stopped_by else ''}; {stats['requests']} requests, "
          f"{stats['sentences']} sentences in {stats['batches']} batches", file=sys.stderr)
