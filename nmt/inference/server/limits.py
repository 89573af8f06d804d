"""Bounds on what HTTP clients can take from the server: the API key, body size counted as it
arrives, content type, a JSON 503 for requests cut off by shutdown (RequestGuard, ASGI); open
connections below the open-file limit and a deadline for each request's arrival (uvicorn's
h11 protocol, subclassed); and the warning for a server reachable with no key."""
from __future__ import annotations

import asyncio
import os

MISSING_KEY = "missing or wrong API key: send the header X-API-Key: KEY"
OPEN_PATHS = {"/health", "/languages", "/"}  # no key needed, as in LibreTranslate: status, the pairs, the page
FORM = "application/x-www-form-urlencoded"


class RequestGuard:
    """ASGI middleware in front of every route: the API key (when `serve.api_key` is set; /health,
    /languages and the page stay open; POST /translate without the header may carry it in the
    body, as LibreTranslate clients do, and the route checks it), a JSON or form content type
    for POST, the body size counted as it arrives (a chunked
    body has no Content-Length to trust), stopping at `serve.max_body_bytes` with 413; and a
    JSON 503 for a request still running when shutdown gives up waiting for it (uvicorn cancels
    it after `serve.graceful_seconds` and would answer a plain-text 500)."""

    def __init__(self, app, serve_cfg):
        self.app, self.cfg = app, serve_cfg

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        problem = self.refusal(scope)
        if problem is not None:
            return await problem(scope, receive, send)
        limit, received = self.cfg.max_body_bytes, 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                from starlette.exceptions import HTTPException

                raise HTTPException(413, f"request body exceeds serve.max_body_bytes={limit}")
            return message

        started = False

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except asyncio.CancelledError:
            if started:
                raise
            from fastapi.responses import JSONResponse

            response = JSONResponse({"error": "the server is shutting down and did not finish this request in "
                                              "time; send it again (to another instance)"}, 503)
            await response(scope, receive, send)  # the task ends here: uvicorn is stopping anyway

    def refusal(self, scope):
        """The JSON error response a request gets before its body is read, or None."""
        import hmac

        from fastapi.responses import JSONResponse

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        key = self.cfg.api_key
        if key and scope["path"] not in OPEN_PATHS:
            given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), key.encode()):
                if not given and scope["path"] == "/translate" and scope["method"] == "POST":
                    scope.setdefault("state", {})["api_key_pending"] = True  # LibreTranslate: api_key in the body
                else:
                    return JSONResponse({"error": MISSING_KEY}, 401)
        if scope["method"] != "POST":
            return None
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.cfg.max_body_bytes:
            return JSONResponse({"error": f"request body of {length} bytes exceeds serve.max_body_bytes="
                                          f"{self.cfg.max_body_bytes}"}, 413)
        empty_with_query = length == "0" and bool(scope.get("query_string"))  # LibreTranslate's query-string form
        if not empty_with_query and not headers.get("content-type", "").startswith(("application/json", FORM)):
            return JSONResponse({"error": "send the body as JSON with the header Content-Type: application/json "
                                          f"(or, LibreTranslate's way, as {FORM})"}, 415)
        return None


ACCEPT_BACKLOG = 64  # pending connections: asyncio accepts up to this many in one burst


def connection_cap(asked: int, reserve: int = 32) -> int:
    """serve.max_connections, kept below the open-file limit: the files open now, two accept
    bursts (connections are counted only after a burst) and `reserve` must fit under it, or
    accept() fails with EMFILE."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return asked
    open_now = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 64
    return max(1, min(asked, soft - open_now - 2 * ACCEPT_BACKLOG - reserve))


def open_log_files() -> None:
    """Open the log files now: a FileHandler created with delay=True (Hydra's) opens its file on
    the first record, and when that record reports running out of file descriptors the open
    fails inside the event loop and ends the server."""
    import logging

    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and handler.stream is None:
            handler.stream = handler._open()


def guarded_protocol(max_connections: int, request_timeout: float):
    """uvicorn's h11 protocol with two bounds against slow or idle clients: a connection past
    `max_connections` gets a JSON 503 and is closed at once (its file descriptor with it), and
    a request whose headers and body have not all arrived `request_timeout` seconds after the
    connection opened (or after its previous response) is dropped. uvicorn itself times out only
    idle keep-alive connections, not one that never finishes its first request."""
    from nmt.compat import h11_protocol_class

    H11Protocol = h11_protocol_class()

    body = b'{"error": "too many connections: try again shortly"}'
    busy = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.deadline = None
            if len(self.connections) > max_connections:
                transport.write(busy)
                transport.close()
                return
            self.arm()

        def arm(self) -> None:
            self.armed_cycle = self.cycle  # a request is complete once a newer cycle has all its body
            self.deadline = self.loop.call_later(request_timeout, self.drop_if_incomplete)

        def drop_if_incomplete(self) -> None:
            cycle = self.cycle
            if cycle is None or cycle is self.armed_cycle or cycle.more_body:
                self.transport.close()

        def on_response_complete(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            super().on_response_complete()
            if not self.transport.is_closing():
                self.arm()

        def connection_lost(self, exc) -> None:
            if getattr(self, "deadline", None) is not None:
                self.deadline.cancel()
            super().connection_lost(exc)

    return GuardedH11Protocol


def exposure_warning(host: str, api_key: str) -> str | None:
    """The warning for a server other machines can reach with no API key (None on loopback)."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        loopback = False
    if loopback or api_key:
        return None
    return (f"serve: warning: listening on {host}, reachable from other machines, with no authentication. "
            "Set serve.api_key=KEY (clients send X-API-Key: KEY) or put an authenticating proxy in front")
