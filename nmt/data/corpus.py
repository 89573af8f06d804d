"""Parallel corpora: locating the files (Multi30k, file pairs, Hugging Face), reading them in aligned
chunks (lines through nmt.textio), cleaning and filtering the pairs."""
from __future__ import annotations

import gzip
import hashlib
import itertools
import unicodedata
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Iterator

from omegaconf import OmegaConf

from nmt.data.textio import CorpusError, decode_lines, open_binary, require_file  # noqa: F401 (CorpusError: re-exported)

Chunk = tuple[list[str], list[str]]  # (source sentences, target sentences), aligned


def file_sha256(path: Path) -> str:
    require_file(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_raw(f, path: Path, n: int, first_line: int) -> list[bytes]:
    """Up to `n` raw lines of an open file; a damaged gzip stream becomes a CorpusError."""
    try:
        return list(itertools.islice(f, n))
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise CorpusError(
            f"{path}: corrupt or truncated gzip file (after line {first_line - 1}: {err}). "
            f"Fix: download or compress it again; `gzip -t {path}` checks a file.") from None


def _count_rest(f, path: Path, first_line: int) -> int:
    """How many lines are left in an open file (streamed, for the misalignment message)."""
    n = 0
    while batch := _read_raw(f, path, 100000, first_line + n):
        n += len(batch)
    return n


def read_parallel(src_path: Path, tgt_path: Path, chunk_size: int = 20000) -> Iterator[Chunk]:
    """Yield aligned chunks of raw sentences from two files (plain or gzip).

    Raises CorpusError for a missing file, an empty corpus, invalid UTF-8 (file and line)
    and a line-count mismatch (both files and both counts).
    """
    for p in (src_path, tgt_path):
        require_file(p)
    with open_binary(src_path) as fs, open_binary(tgt_path) as ft:
        n = 0
        while True:
            raw_s = _read_raw(fs, src_path, chunk_size, n + 1)
            raw_t = _read_raw(ft, tgt_path, chunk_size, n + 1)
            # decode first: a wrong encoding (UTF-16's NUL bytes) also breaks the line count, and
            # is the error worth naming
            src, tgt = decode_lines(raw_s, src_path, n + 1), decode_lines(raw_t, tgt_path, n + 1)
            if len(raw_s) != len(raw_t):
                n_s = n + len(raw_s) + _count_rest(fs, src_path, n + len(raw_s) + 1)
                n_t = n + len(raw_t) + _count_rest(ft, tgt_path, n + len(raw_t) + 1)
                raise CorpusError(
                    f"misaligned corpus: {src_path} has {n_s} lines but {tgt_path} has {n_t} lines "
                    f"(they differ from line {n + min(len(raw_s), len(raw_t)) + 1}). "
                    "Fix: line N of one file must translate line N of the other."
                )
            if not raw_s:
                break
            yield src, tgt
            n += len(raw_s)
    if n == 0:
        raise CorpusError(f"empty corpus: {src_path} and {tgt_path} have no lines. Fix: point data.* at non-empty files")


# ---------------------------------------------------------------- locating the files


def find_text_file(root: Path, stem: str) -> Path | None:
    """`root/stem` or `root/stem.gz`, whichever exists."""
    for cand in (root / stem, root / f"{stem}.gz"):
        if cand.is_file():
            return cand
    return None


def download_multi30k(root: Path, url: str, stems: list[str]) -> None:
    """Fetch Multi30k files from the dataset's public repository into `root` (atomic per file)."""
    root.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        dest = root / f"{stem}.gz"
        tmp = dest.with_suffix(".gz.part")
        try:
            with urllib.request.urlopen(f"{url}/{stem}.gz", timeout=30) as r, open(tmp, "wb") as f:
                f.write(r.read())
        except (urllib.error.URLError, OSError) as err:
            tmp.unlink(missing_ok=True)
            raise CorpusError(
                f"{root}: no Multi30k files ({stem}[.gz]) and the download from {url} failed ({err}). "
                "Fix: offline, point at a local copy, e.g. data.root=../shared/data/multi30k"
            ) from None
        tmp.rename(dest)


def split_files(data_cfg) -> dict[str, tuple[Path, Path]]:
    """Stored split name -> (source file, target file) for data=multi30k and data=files."""
    root = Path(data_cfg.root)
    if data_cfg.kind.value == "files":
        out = {}
        for split, pair in data_cfg.files.items():
            for side in ("src", "tgt"):
                if OmegaConf.is_missing(pair, side):
                    raise CorpusError(f"data=files: data.files.{split}.{side} is not set. "
                                      f"Fix: data.files.{split}.{side}=FILE")
            if pair.src is None and pair.tgt is None:
                continue  # a split left out (conf/data/files.yaml lists train, valid, test)
            if pair.src is None or pair.tgt is None:
                raise CorpusError(f"data.files.{split} has only one side. "
                                  f"Fix: set both data.files.{split}.src=FILE and data.files.{split}.tgt=FILE")
            fix = f"check data.files.{split}.src / .tgt (relative to data.root={root})"
            out[split] = tuple(require_file(p if p.is_absolute() else root / p, fix)
                               for p in (Path(pair.src), Path(pair.tgt)))
        if "train" not in out:
            raise CorpusError("data=files needs a train split. Fix: data.files.train.src=FILE data.files.train.tgt=FILE")
        return out
    langs = (data_cfg.src_lang, data_cfg.tgt_lang)
    stems = [f"{prefix}.{lang}" for prefix in data_cfg.splits.values() for lang in langs]
    if all(find_text_file(root, s) is None for s in stems):
        download_multi30k(root, data_cfg.url, stems)
    out = {}
    for split, prefix in data_cfg.splits.items():
        paths = [find_text_file(root, f"{prefix}.{lang}") for lang in langs]
        for lang, p in zip(langs, paths):
            if p is None:
                raise CorpusError(f"{root / f'{prefix}.{lang}'}[.gz]: file not found. Fix: check data.root and data.splits")
        out[split] = (paths[0], paths[1])
    return out


def read_hf(data_cfg, split: str, chunk_size: int) -> Iterator[Chunk]:
    """Yield aligned chunks from a Hugging Face dataset split (hub, builder or saved folder)."""
    import datasets

    hf_split = data_cfg.splits[split]
    name = data_cfg.hf_name
    if Path(name).is_dir() and (Path(name) / "dataset_dict.json").is_file():
        ds = datasets.load_from_disk(name)[hf_split]
    else:
        files = dict(data_cfg.hf_data_files) if data_cfg.hf_data_files else None
        ds = datasets.load_dataset(name, data_cfg.hf_config, data_files=files, split=hf_split)
    s, t = data_cfg.src_lang, data_cfg.tgt_lang
    for start in range(0, len(ds), chunk_size):
        rows = ds[start : start + chunk_size]
        if data_cfg.hf_field:
            pairs = rows[data_cfg.hf_field]
            yield [p[s] for p in pairs], [p[t] for p in pairs]
        else:
            yield list(rows[s]), list(rows[t])


# ---------------------------------------------------------------- cleaning


@dataclass
class DropCounts:
    empty: int = 0
    too_long: int = 0
    ratio: int = 0
    duplicate: int = 0
    kept: int = 0
    read: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _map_joined(fn, sentences: list[str]) -> list[str]:
    """Apply a str -> str function to every sentence in one C call on the joined text.
    No normal form or case mapping creates or absorbs "\n"; a sentence that itself holds
    one (possible from a HF dataset) changes the count, and then we go sentence by sentence."""
    out = fn("\n".join(sentences)).split("\n")
    return out if len(out) == len(sentences) else [fn(s) for s in sentences]


def normalize(sentences: list[str], pp) -> list[str]:
    """The unicode normal form and the lowercasing `pp` (the preprocess group) asks for."""
    form = str(pp.normalize)
    if form != "none":
        sentences = _map_joined(partial(unicodedata.normalize, form), sentences)
    return _map_joined(str.lower, sentences) if pp.lowercase else sentences


def clean_sentences(sentences: list[str], pp) -> list[str]:
    """One side's sentences as prepare stored them: normalised, every kind of whitespace
    collapsed to one space. What translation does to its input."""
    return [" ".join(s.split()) for s in normalize(list(sentences), pp)]


def clean_chunk(chunk: Chunk, pp, apply_filters: bool, drops: DropCounts) -> Chunk:
    """Clean both sides (`clean_sentences`) and (training split) drop empty, over-long and badly
    proportioned pairs, counting each rule in `drops`."""
    src, tgt = normalize(chunk[0], pp), normalize(chunk[1], pp)
    out_src: list[str] = []
    out_tgt: list[str] = []
    drops.read += len(src)
    # plain locals: a config attribute lookup costs microseconds, this loop runs per pair
    drop_empty, max_words, max_ratio, ratio_min_words = (
        pp.drop_empty, pp.max_words, pp.max_ratio, pp.ratio_min_words)
    for s, t in zip(src, tgt):
        sw, tw = s.split(), t.split()  # str.split() splits on \r, \t, U+2028, U+0085, ...
        if apply_filters:
            ns, nt = len(sw), len(tw)
            if drop_empty and (ns == 0 or nt == 0):
                drops.empty += 1
                continue
            if ns > max_words or nt > max_words:
                drops.too_long += 1
                continue
            longer, shorter = max(ns, nt), max(min(ns, nt), 1)
            if longer >= ratio_min_words and longer / shorter > max_ratio:
                drops.ratio += 1
                continue
        out_src.append(" ".join(sw))
        out_tgt.append(" ".join(tw))
    drops.kept += len(out_src)
    return out_src, out_tgt

