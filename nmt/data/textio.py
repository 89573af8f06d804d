"""Reading text one sentence a line: files (plain or gzip) and standard input, validated as
UTF-8 with the file and line of any error, split on "\\n" only; and the check that references
line up with the lines they score. Every reader of sentences in nmt goes through here."""
from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import Iterator, Sequence

from nmt.errors import NmtError


class CorpusError(NmtError, ValueError):
    """Bad input text: the message names the file, the line and the fix."""


BOM = "\ufeff"


def open_binary(path: Path):
    """Open a plain or gzip file for reading bytes (gzip is detected by its magic number)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def require_file(path: Path, fix: str = "check data.root and the file paths in data.*") -> Path:
    """`path` if it is a readable file; otherwise a CorpusError naming it and `fix`."""
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, not a text file. Fix: {fix}")
    if not path.is_file():
        raise CorpusError(f"{path}: file not found. Fix: {fix}")
    return path


def decode_lines(raw: list[bytes], path: Path | str, first_line: int) -> list[str]:
    """Decode raw lines (each split on b"\\n" only, so "\\r" or U+2028 never split a sentence).
    A UTF-8 byte-order mark at the start of the file is dropped; a NUL byte or invalid UTF-8
    raises a CorpusError naming the file and line."""
    block = b"".join(raw)
    nul = block.find(b"\x00")
    if nul >= 0:
        line = first_line + block.count(b"\n", 0, nul)
        raise CorpusError(
            f"{path}:{line}: NUL byte in the text (a binary or UTF-16 file?). "
            "Fix: pass UTF-8 text, e.g. `iconv -f utf-16 -t utf-8`, or remove the NUL bytes (`tr -d '\\000'`).")
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as err:
        line = first_line + block.count(b"\n", 0, err.start)
        column = err.start - block.rfind(b"\n", 0, err.start)
        raise CorpusError(
            f"{path}:{line}: invalid UTF-8 ({err.reason} at byte {column} of the line). "
            "Fix: re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`."
        ) from None
    if first_line == 1 and text.startswith(BOM):
        text = text[1:]
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def read_lines(path: Path, fix: str = "pass a file with one sentence a line") -> list[str]:
    """All lines of a text file (plain or gzip); an empty file is refused."""
    path = require_file(Path(path), fix)
    with open_binary(path) as f:
        try:
            data = f.read()
        except (EOFError, OSError) as err:
            raise CorpusError(f"{path}: corrupt or truncated gzip file ({err}). "
                              f"Fix: compress it again; `gzip -t {path}` checks a file.") from None
    if not data:
        raise CorpusError(f"{path}: empty file. Fix: {fix}")
    return decode_lines([data], path, 1)


def read_stdin(stream=None) -> list[str]:
    """All of standard input as lines (as files are read: a "\\r" or U+2028 inside a line is
    part of it), validated as UTF-8 with the line of any error."""
    stream = stream if stream is not None else sys.stdin.buffer
    return decode_lines([stream.read()], "<stdin>", 1)


def iter_stdin(stream=None) -> Iterator[str]:
    """Standard input one line at a time (split on "\\n" only, UTF-8 checked), for pipes."""
    stream = stream if stream is not None else sys.stdin.buffer
    for n, raw in enumerate(iter(stream.readline, b""), start=1):
        yield decode_lines([raw], "<stdin>", n)[0]


def check_references(refs: Sequence[Sequence[str]], names: Sequence[str], n_lines: int, what: str) -> None:
    """Every reference set must have one line per hypothesis (`n_lines` lines of `what`)."""
    for name, lines in zip(names, refs):
        if len(lines) != n_lines:
            raise CorpusError(f"{name}: the reference has {len(lines)} lines but {what} has {n_lines}. "
                              "Fix: pass the reference whose line N translates input line N")
