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
from nmt.inference.server.libretranslate import (LibreProblem, html_text_nodes, is_libretranslate, languages,
                                                 libre_response, read_libre_request, rebuild_html)
from nmt.inference.server.limits import (ACCEPT_BACKLOG, MISSING_KEY, RequestGuard, connection_cap, exposure_warning,
                                         guarded_protocol, open_log_files)
from nmt.inference.server.page import PAGE
from nmt.inference.translator import Translation, Translator, search_options

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


class TranslationOut(BaseModel):
    text: str
    score: float = Field(description="log-probability of the translation under the model")
    n_best: Optional[List[Alternative]] = None
    source_pieces: Optional[List[str]] = None
    target_pieces: Optional[List[str]] = None
    attention: Optional[List[List[float]]] = Field(None, description="(target pieces + EOS) x source pieces")


class TranslateResponse(BaseModel):
    translations: List[TranslationOut]


RETRY_AFTER_SECONDS = 2  # what a 503 for a full queue tells the client to wait


class RequestProblem(ValueError):
    """A request the server refuses: `status` is the HTTP status, the message its error text."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def read_request(req: TranslateRequest, defaults, serve_cfg) -> tuple[list[str], object]:
    """(sentences, search options) of a request within the server's limits, or RequestProblem."""
    texts = [req.text] if isinstance(req.text, str) else req.text
    if not texts:
        raise RequestProblem(422, "invalid request: text: an empty list. Send at least one sentence")
    if len(texts) > serve_cfg.max_sentences:
        raise RequestProblem(413, f"{len(texts)} sentences in one request; serve.max_sentences="
                                  f"{serve_cfg.max_sentences}. Send fewer per request")
    for i, t in enumerate(texts):
        if len(t) > serve_cfg.max_chars:
            raise RequestProblem(413, f"text[{i}] has {len(t)} characters; serve.max_chars={serve_cfg.max_chars}")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as err:  # JSON can carry "\ud800"; no tokenizer can read it
            raise RequestProblem(422, f"invalid request: text[{i}] is not valid Unicode ({err.reason} at "
                                      f"character {err.start}). Send UTF-8 text") from None
    beam = req.beam_size or defaults.beam_size
    if beam > serve_cfg.max_beam_size:
        raise RequestProblem(422, f"invalid request: beam_size={beam} exceeds serve.max_beam_size="
                                  f"{serve_cfg.max_beam_size}")
    try:
        return texts, search_options(defaults, beam_size=beam, n_best=req.n_best or 1)
    except ValueError as err:
        raise RequestProblem(422, f"invalid request: {err}") from None


class Decoding:
    """What the /translate route does once a request is read: text through the batcher, and
    LibreTranslate's request in and its answer out."""

    def __init__(self, translator: Translator, batcher: DynamicBatcher, serve_cfg, pair: dict):
        self.translator, self.batcher, self.serve_cfg, self.pair = translator, batcher, serve_cfg, pair

    async def translate_texts(self, texts: list[str], options, attention: bool = False,
                              client_gone=None) -> list[Translation]:
        """Texts -> translations through the batcher; RequestProblem for untokenizable text
        (422) or a request whose decoding work passes serve.max_request_work (413)."""
        try:
            sources, _ = self.translator.encode(texts)
        except (UnicodeError, ValueError) as err:  # whatever a tokenizer refuses is the client's text
            raise RequestProblem(422, f"invalid request: the text could not be tokenized ({err})") from None
        work = sum(map(len, sources)) * options.beam_size
        if work > self.serve_cfg.max_request_work:
            raise RequestProblem(413, f"the request is {sum(map(len, sources))} source pieces at beam size "
                                      f"{options.beam_size}: {work} units of decoding work, over "
                                      f"serve.max_request_work={self.serve_cfg.max_request_work}. Send fewer or "
                                      "shorter sentences per request, or a smaller beam_size")
        return await self.batcher.submit(sources, options, attention, client_gone)

    async def libre_translate(self, payload: dict, key_pending: bool, client_gone=None) -> dict:
        """LibreTranslate's request, within the same limits as ours; problems are LibreProblem.
        `key_pending`: no key header came and the server has a key: the body's api_key decides."""
        import asyncio
        import hmac

        req = read_libre_request(payload, self.pair)
        if key_pending and not hmac.compare_digest(str(req.api_key or "").encode(), self.serve_cfg.api_key.encode()):
            raise LibreProblem("Invalid API key", 403)
        if req.html:  # sized before it is parsed, and parsed off the event loop
            limit = self.serve_cfg.max_chars * self.serve_cfg.max_sentences
            if sum(map(len, req.texts)) > limit:
                raise LibreProblem(f"Invalid request: {sum(map(len, req.texts))} characters of HTML; the server takes "
                                   f"{limit} (serve.max_chars x serve.max_sentences)")
        documents = await asyncio.to_thread(lambda: [html_text_nodes(t) for t in req.texts]) if req.html else None
        sentences = [c for parts in documents for is_text, c in parts if is_text] if documents else req.texts
        n_best = req.alternatives + 1
        try:
            _, options = read_request(TranslateRequest(text=sentences or [""], n_best=n_best,
                                                       beam_size=max(n_best, self.translator.options.beam_size)),
                                      self.translator.options, self.serve_cfg)
            results = await self.translate_texts([s.strip() for s in sentences], options,
                                                 client_gone=client_gone) if sentences else []
        except RequestProblem as problem:
            # LibreTranslate answers every bad or over-limit request with 400
            raise LibreProblem(f"Invalid request: {str(problem).removeprefix('invalid request: ')}") from None
        best = [r.text for r in results]
        others = [[t for t, _ in r.n_best[1:]] for r in results]
        if documents:  # one translated document per q; alternatives do not apply to markup
            start, best_docs = 0, []
            for parts in documents:
                k = sum(is_text for is_text, _ in parts)
                best_docs.append(rebuild_html(parts, best[start:start + k]))
                start += k
            best, others = best_docs, [[] for _ in best_docs]
        return libre_response(req, best, others, self.pair.get("src", ""))


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


def translations_json(results: list[Translation], options, attention: bool) -> dict:
    """POST /translate's answer in our shape: {"translations": [{text, score, n_best?, attention?}]}."""
    return {"translations": [
        {"text": r.text, "score": r.score,
         "n_best": [{"text": t, "score": s} for t, s in r.n_best] if options.n_best > 1 else None,
         **({"source_pieces": r.source_pieces, "target_pieces": r.target_pieces,
             "attention": r.attention.round(4).tolist() if r.attention is not None else None}
            if attention else {})}
        for r in results]}


async def handle_translate(request: Request, service: "Decoding", translator: Translator, serve_cfg):
    """POST /translate: our shape ({"text": ...}, answered {"translations": [...]}) or
    LibreTranslate's ({"q": ..., "source", "target"}, JSON or form-encoded, answered
    {"translatedText": ...})."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from pydantic import ValidationError

    try:
        payload = await read_payload(request)
    except RequestProblem as problem:
        return error_response(problem.status, str(problem))
    try:
        if is_libretranslate(payload):
            try:
                key_pending = getattr(request.state, "api_key_pending", False)
                return JSONResponse(await service.libre_translate(payload, key_pending,  # LibreTranslate's shape
                                                                  request.is_disconnected))
            except LibreProblem as problem:
                return error_response(problem.status, str(problem))
        if getattr(request.state, "api_key_pending", False):
            return error_response(401, MISSING_KEY)
        try:
            req = TranslateRequest.model_validate(payload)
        except ValidationError as err:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None
        try:
            texts, options = read_request(req, translator.options, serve_cfg)
            results = await service.translate_texts(texts, options, bool(req.attention), request.is_disconnected)
        except RequestProblem as problem:
            return error_response(problem.status, str(problem))
        return translations_json(results, options, bool(req.attention))
    except QueueFull as busy:
        response = error_response(503, f"the server is busy ({busy}); try again in a moment")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    except ClientGone:
        return Response(status_code=499)  # nginx's "client closed request": nobody reads it


def create_app(translator: Translator, serve_cfg) -> "FastAPI":
    """The FastAPI application around one Translator (`serve_cfg`: the `serve` config group)."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    batcher = DynamicBatcher(translator, serve_cfg.max_wait_ms, serve_cfg.max_batch_sentences,
                             serve_cfg.max_batch_tokens, serve_cfg.max_request_slice, serve_cfg.max_queued_sentences)

    @asynccontextmanager
    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()  # after uvicorn has finished the requests in flight

    app = FastAPI(title="nmt translation server", version="1", lifespan=lifespan,
                  description="Translate with a trained nmt checkpoint; concurrent requests are batched.")
    app.state.batcher = batcher
    add_error_handlers(app)
    app.add_middleware(RequestGuard, serve_cfg=serve_cfg)
    pair = translator.info.get("languages") or {}
    service = Decoding(translator, batcher, serve_cfg, pair)

    @app.post("/translate", response_model=TranslateResponse, response_model_exclude_none=True,
              openapi_extra=TRANSLATE_BODY_DOC,
              responses={400: {"description": "LibreTranslate request for another pair, or missing parameters"},
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
        return await handle_translate(request, service, translator, serve_cfg)

    @app.get("/languages")
    async def supported_languages():
        """LibreTranslate's list of languages: the model's one pair."""
        return languages(pair)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        """A page to try the model: a text box, the translation, its n-best list, attention."""
        return HTMLResponse(PAGE)

    @app.get("/health")
    async def health():
        return {"status": "ok", "queued": batcher.queue.qsize(), "waiting_sentences": batcher.waiting, **batcher.stats}

    @app.get("/info")
    async def info():
        d = translator.options
        return {**translator.info,
                "decode": {"kind": str(d.kind), "beam_size": d.beam_size, "length_penalty": d.length_penalty,
                           "max_len_a": d.max_len_a, "max_len_b": d.max_len_b},
                "serve": {k: serve_cfg[k] for k in ("max_wait_ms", "max_batch_sentences", "max_batch_tokens",
                                                     "max_sentences", "max_chars", "max_beam_size")}}

    return app


def serve(cfg) -> None:
    """Load `cfg.ckpt` and serve until SIGTERM / Ctrl-C (`cfg.serve`: host, port, limits)."""
    import torch
    import uvicorn

    # decoding threads: by default all cores but one, which the HTTP event loop keeps for itself
    torch.set_num_threads(cfg.serve.threads or max(1, (os.cpu_count() or 1) - 1))
    translator = Translator.from_config(cfg)
    translator.translate(["warm up"])  # the first call allocates; do it before the first client waits
    app = create_app(translator, cfg.serve)
    warning = exposure_warning(cfg.serve.host, cfg.serve.api_key)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"serve: {cfg.ckpt} ({translator.info.get('quantize')} weights, {translator.options.kind} search) on "
          f"http://{cfg.serve.host}:{cfg.serve.port} (docs at /docs)", file=sys.stderr, flush=True)
    # uvicorn catches SIGTERM/SIGINT, finishes the requests in flight, then re-raises the signal
    # under the handlers it found: with these, that ends the process normally (exit 0)
    stopped_by: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopped_by.append(signal.Signals(signum).name))
    open_log_files()
    protocol = guarded_protocol(connection_cap(cfg.serve.max_connections), cfg.serve.request_timeout_s)
    uvicorn.run(app, host=cfg.serve.host, port=cfg.serve.port, log_level=str(cfg.serve.log_level),
                timeout_graceful_shutdown=cfg.serve.graceful_seconds, http=protocol, backlog=ACCEPT_BACKLOG)
    stats = app.state.batcher.stats
    print(f"serve: stopped{' by ' + stopped_by[0] if stopped_by else ''}; {stats['requests']} requests, "
          f"{stats['sentences']} sentences in {stats['batches']} batches", file=sys.stderr)
