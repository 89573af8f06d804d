"""LibreTranslate's API on top of the server, so that clients and apps configured with a
LibreTranslate URL work against `nmt.serve` unchanged.

    POST /translate  q (a string or a list), source (or "auto"), target, format ("text" | "html"),
                     alternatives (0..), api_key; as JSON or form-encoded
                     -> {"translatedText": ...} (a string, or a list for a list), "alternatives"
                        when asked for, "detectedLanguage" for source=auto
    GET /languages   -> [{"code", "name", "targets"}]: every language served, with the targets it
                        reaches (directly or through English; nmt.inference.server.pairs)
    errors           -> {"error": "..."} with 400 (a wrong pair, a missing parameter), as LibreTranslate

A request is LibreTranslate's when it carries `q` (our own shape carries `text`). source=auto
guesses each q's language among the sources that reach the target (lingua-language-detector).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser


class LibreProblem(ValueError):
    """A LibreTranslate request refused with LibreTranslate's error shape and status (`extra`:
    more fields beside "error", such as the pairs served)."""

    def __init__(self, message: str, status: int = 400, **extra):
        super().__init__(message)
        self.status, self.extra = status, extra


@dataclass
class LibreRequest:
    texts: list[str]  # the q strings, one per text (or HTML document)
    as_list: bool  # q was a list: answer with lists
    source: str  # a language code or "auto"
    target: str
    html: bool  # format=html: translate the text between the tags
    alternatives: int
    api_key: str | None


def is_libretranslate(payload) -> bool:
    return isinstance(payload, dict) and "q" in payload


def read_libre_request(payload: dict) -> LibreRequest:
    """Validate a LibreTranslate request (which pairs are served is the router's business)."""
    q = payload.get("q")
    if q is None or q == "" or q == []:
        raise LibreProblem("Invalid request: missing q parameter")
    if not (isinstance(q, str) or (isinstance(q, list) and all(isinstance(t, str) for t in q))):
        raise LibreProblem("Invalid request: q must be a string or a list of strings")
    for name in ("source", "target"):
        if not payload.get(name):
            raise LibreProblem(f"Invalid request: missing {name} parameter")
    fmt = payload.get("format") or "text"
    if fmt not in ("text", "html"):
        raise LibreProblem(f"Invalid request: format {fmt!r}: use text or html")
    try:
        alternatives = int(payload.get("alternatives") or 0)
    except (TypeError, ValueError):
        raise LibreProblem("Invalid request: alternatives must be an integer") from None
    if alternatives < 0:
        raise LibreProblem("Invalid request: alternatives must be >= 0")
    return LibreRequest([q] if isinstance(q, str) else list(q), isinstance(q, list), str(payload["source"]),
                        str(payload["target"]), fmt == "html", alternatives, payload.get("api_key"))


class _Segments(HTMLParser):
    """HTML split into markup (kept verbatim) and text nodes (to translate); script and style
    contents are markup."""

    RAW = {"script", "style"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[bool, str]] = []  # (is_text, content)
        self.raw_depth = 0

    def handle_starttag(self, tag, attrs):
        self.parts.append((False, self.get_starttag_text()))
        self.raw_depth += tag in self.RAW

    def handle_startendtag(self, tag, attrs):
        self.parts.append((False, self.get_starttag_text()))

    def handle_endtag(self, tag):
        self.parts.append((False, f"</{tag}>"))
        self.raw_depth -= tag in self.RAW and self.raw_depth > 0

    def handle_data(self, data):
        self.parts.append((not self.raw_depth and bool(data.strip()), data))

    def handle_comment(self, data):
        self.parts.append((False, f"<!--{data}-->"))

    def handle_decl(self, decl):
        self.parts.append((False, f"<!{decl}>"))

    def handle_pi(self, data):
        self.parts.append((False, f"<?{data}>"))


def html_text_nodes(document: str) -> list[tuple[bool, str]]:
    """(is_text, content) parts of `document`; the text parts are unescaped."""
    parser = _Segments()
    parser.feed(document)
    parser.close()
    return parser.parts


def rebuild_html(parts: list[tuple[bool, str]], translations: list[str]) -> str:
    """The document with its text nodes, in order, replaced by `translations` (escaped), the
    surrounding whitespace of each node kept."""
    out, it = [], iter(translations)
    for is_text, content in parts:
        if is_text:
            lead = content[:len(content) - len(content.lstrip())]
            trail = content[len(content.rstrip()):]
            out.append(lead + html.escape(next(it), quote=False) + trail)
        else:
            out.append(content)
    return "".join(out)


def libre_response(req: LibreRequest, translated: list[str], alternatives: list[list[str]],
                   detected: list[tuple[str, float]] | None, pivots: list[str | None],
                   confidences: list[float | None]) -> dict:
    """LibreTranslate's answer: a string per q, or lists for a list. `detected` (source=auto):
    per q the language and its confidence in [0, 1], answered as LibreTranslate does, in percent.
    nmt adds "pivot" (the language a text went through) when one did, and "confidence" (in
    [0, 1], null for a model without calibration)."""
    def one_or_all(values: list):
        return values if req.as_list else values[0]

    body: dict = {"translatedText": one_or_all(translated)}
    if req.alternatives:
        body["alternatives"] = one_or_all(alternatives)
    if detected is not None:
        body["detectedLanguage"] = one_or_all([{"confidence": round(100.0 * c, 1), "language": lang}
                                               for lang, c in detected])
    if any(pivots):
        body["pivot"] = one_or_all(pivots)
    body["confidence"] = one_or_all(confidences)
    return body


async def libre_translate(decoding, payload: dict, client_gone=None) -> dict:
    """Answer LibreTranslate's request through `decoding` (nmt.inference.server.decoding), within
    the same limits as our own shape; every problem is a LibreProblem (400, as LibreTranslate)."""
    import asyncio

    from nmt.inference.server.decoding import RequestProblem

    req = read_libre_request(payload)
    if req.html:  # sized before it is parsed, and parsed off the event loop
        limit = decoding.serve_cfg.max_chars * decoding.serve_cfg.max_sentences
        if sum(map(len, req.texts)) > limit:
            raise LibreProblem(f"Invalid request: {sum(map(len, req.texts))} characters of HTML; the server takes "
                               f"{limit} (serve.max_chars x serve.max_sentences)")
    documents = await asyncio.to_thread(lambda: [html_text_nodes(t) for t in req.texts]) if req.html else None
    plain = [" ".join(c for is_text, c in parts if is_text) for parts in documents] if documents else req.texts
    nodes = [c for parts in documents for is_text, c in parts if is_text] if documents else req.texts
    try:
        decoding.check_texts(nodes or [""])  # within the limits before anything reads them
        routes, detected = await decoding.routes(plain, req.source, req.target)
        # every text node goes the way of its document
        node_routes = [r for parts, r in zip(documents, routes) for is_text, _ in parts if is_text] if documents \
            else routes
        n_best = req.alternatives + 1
        options = decoding.options(max(n_best, decoding.pairs.default.translator.options.beam_size), n_best)
        results = await decoding.translate_routed([s.strip() for s in nodes], node_routes, options,
                                                  client_gone=client_gone) if nodes else []
    except RequestProblem as problem:
        # LibreTranslate answers every bad or over-limit request with 400
        raise LibreProblem(f"Invalid request: {str(problem).removeprefix('invalid request: ')}"
                           if not problem.extra else str(problem), **problem.extra) from None
    best = [r.text for r in results]
    others = [[t for t, _ in r.n_best[1:]] for r in results]
    confidences = [r.confidence for r in results]
    if documents:  # one translated document per q; alternatives do not apply to markup
        start, best_docs, doc_conf = 0, [], []
        for parts in documents:
            k = sum(is_text for is_text, _ in parts)
            best_docs.append(rebuild_html(parts, best[start:start + k]))
            known = [c for c in confidences[start:start + k] if c is not None]
            doc_conf.append(sum(known) / len(known) if known and len(known) == k else None)
            start += k
        best, others, confidences = best_docs, [[] for _ in best_docs], doc_conf
    pivots = [routes[i][0].tgt if len(routes[i]) > 1 else None for i in range(len(req.texts))]
    return libre_response(req, best, others, detected, pivots, confidences)
