"""LibreTranslate's API on top of the server, so that clients and apps configured with a
LibreTranslate URL work against `nmt.serve` unchanged.

    POST /translate  q (a string or a list), source (or "auto"), target, format ("text" | "html"),
                     alternatives (0..), api_key; as JSON or form-encoded
                     -> {"translatedText": ...} (a string, or a list for a list), "alternatives"
                        when asked for, "detectedLanguage" for source=auto
    GET /languages   -> [{"code", "name", "targets"}]: the model's one pair
    errors           -> {"error": "..."} with 400 (a wrong pair, a missing parameter), as LibreTranslate

A request is LibreTranslate's when it carries `q` (our own shape carries `text`). There is no
language detection: source=auto means the model's source language, reported with confidence 0.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser

LANGUAGE_NAMES = {  # ISO 639-1 codes LibreTranslate clients show by name; others show the code
    "ar": "Arabic", "cs": "Czech", "de": "German", "en": "English", "es": "Spanish", "fr": "French",
    "it": "Italian", "ja": "Japanese", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ru": "Russian",
    "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}


class LibreProblem(ValueError):
    """A LibreTranslate request refused with LibreTranslate's error shape and status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class LibreRequest:
    texts: list[str]  # the q strings, one per sentence (or HTML document)
    as_list: bool  # q was a list: answer with lists
    auto: bool  # source=auto
    html: bool  # format=html: translate the text between the tags
    alternatives: int
    api_key: str | None


def is_libretranslate(payload) -> bool:
    return isinstance(payload, dict) and "q" in payload


def languages(pair: dict) -> list[dict]:
    """GET /languages: the model's pair as LibreTranslate lists languages."""
    src, tgt = pair.get("src"), pair.get("tgt")
    if not src or not tgt:
        return []
    return [{"code": src, "name": LANGUAGE_NAMES.get(src, src), "targets": [tgt]},
            {"code": tgt, "name": LANGUAGE_NAMES.get(tgt, tgt), "targets": []}]


def read_libre_request(payload: dict, pair: dict) -> LibreRequest:
    """Validate a LibreTranslate request for the model's language `pair` ({src, tgt})."""
    q = payload.get("q")
    if q is None or q == "" or q == []:
        raise LibreProblem("Invalid request: missing q parameter")
    if not (isinstance(q, str) or (isinstance(q, list) and all(isinstance(t, str) for t in q))):
        raise LibreProblem("Invalid request: q must be a string or a list of strings")
    for name in ("source", "target"):
        if not payload.get(name):
            raise LibreProblem(f"Invalid request: missing {name} parameter")
    source, target = str(payload["source"]), str(payload["target"])
    if pair.get("src") and source not in (pair["src"], "auto"):
        raise LibreProblem(f"{source} is not supported (this server translates {pair['src']} to {pair['tgt']})")
    if pair.get("tgt") and target != pair["tgt"]:
        raise LibreProblem(f"{target} is not supported (this server translates {pair['src']} to {pair['tgt']})")
    fmt = payload.get("format") or "text"
    if fmt not in ("text", "html"):
        raise LibreProblem(f"Invalid request: format {fmt!r}: use text or html")
    try:
        alternatives = int(payload.get("alternatives") or 0)
    except (TypeError, ValueError):
        raise LibreProblem("Invalid request: alternatives must be an integer") from None
    if alternatives < 0:
        raise LibreProblem("Invalid request: alternatives must be >= 0")
    return LibreRequest([q] if isinstance(q, str) else list(q), isinstance(q, list), source == "auto",
                        fmt == "html", alternatives, payload.get("api_key"))


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


def libre_response(req: LibreRequest, translated: list[str], alternatives: list[list[str]], source: str) -> dict:
    """LibreTranslate's answer: a string per q, or lists for a list."""
    body: dict = {"translatedText": translated if req.as_list else translated[0]}
    if req.alternatives:
        body["alternatives"] = alternatives if req.as_list else alternatives[0]
    if req.auto:
        detected = {"confidence": 0.0, "language": source}  # no detection: the model's source language
        body["detectedLanguage"] = [detected] * len(translated) if req.as_list else detected
    return body
