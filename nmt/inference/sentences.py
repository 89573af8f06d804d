"""Paragraphs in, paragraphs out: a text is split into sentences for the model (which was trained
on one sentence a line) and the translations are joined back with the text's own whitespace.

    layout = split_text("Ein Hund rennt. Eine Katze schläft.\\nZwei Männer.", "de")
    layout.sentences                              # ['Ein Hund rennt.', 'Eine Katze schläft.', 'Zwei Männer.']
    layout.join(["A dog runs.", "A cat sleeps.", "Two men."])   # 'A dog runs. A cat sleeps.\\nTwo men.'

Line breaks are hard boundaries (a line never continues into the next one's sentence); within
a line the sentences are found by sentencex (Wikimedia's rule-based segmenter: offline, about 250
languages through fallback chains, Czech included, in Rust; pysbd has no Czech and its last
release is from 2021). A text of one sentence is that sentence, stripped: exactly what the
Translator did before it split anything.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

LINE_BREAK = re.compile(r"(\r\n|\r|\n)")


@dataclass
class TextLayout:
    """A text as (is_sentence, content) parts whose concatenation is the text."""

    parts: list[tuple[bool, str]]

    @property
    def sentences(self) -> list[str]:
        return [content for is_sentence, content in self.parts if is_sentence]

    def join(self, translations: list[str]) -> str:
        """The text with its sentences replaced, in order, by `translations`; a text of one
        sentence is its translation alone (no surrounding whitespace, as before splitting)."""
        if len(translations) != len(self.sentences):
            raise ValueError(f"{len(translations)} translations for {len(self.sentences)} sentences")
        if len(translations) == 1:
            return translations[0]
        it = iter(translations)
        return "".join(next(it) if is_sentence else content for is_sentence, content in self.parts)


def _split_line(line: str, language: str) -> list[tuple[bool, str]]:
    from sentencex import segment

    parts: list[tuple[bool, str]] = []
    pieces = list(segment(language or "en", line))
    if "".join(pieces) != line:  # sentencex returns the line cut in pieces; never lose a character
        pieces = [line]
    for piece in pieces:
        core = piece.strip()
        if not core:
            parts.append((False, piece))
            continue
        start = piece.index(core)
        parts += [(False, piece[:start]), (True, core), (False, piece[start + len(core):])]
    return parts


def split_text(text: str, language: str) -> TextLayout:
    """`text` cut into sentences of `language` (an ISO 639-1 code; sentencex falls back for an
    unknown one) and the whitespace between them. A text with no sentence (empty, only spaces)
    is one empty sentence, which translates to an empty string."""
    parts: list[tuple[bool, str]] = []
    for chunk in LINE_BREAK.split(text):
        if LINE_BREAK.fullmatch(chunk):
            parts.append((False, chunk))
        elif chunk.strip():
            parts += _split_line(chunk, language)
        elif chunk:
            parts.append((False, chunk))
    parts = [(is_sentence, content) for is_sentence, content in parts if is_sentence or content]
    if not any(is_sentence for is_sentence, _ in parts):
        return TextLayout([(True, "")])
    return TextLayout(parts)


def whole_texts(texts: list[str]) -> list[TextLayout]:
    """Each text as one sentence (splitting off): the layout that changes nothing."""
    return [TextLayout([(True, t)]) for t in texts]
