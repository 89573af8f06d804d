"""The prepared dataset on disk: Arrow DatasetDict + vocab/ + meta.json, written atomically."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

FORMAT_VERSION = 1  # bump when the stored layout changes; train refuses other versions
META_FILE = "meta.json"
VOCAB_DIR = "vocab"


class PreparedDataError(ValueError):
    """A prepared dataset that is missing or from an incompatible version."""


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success it replaces `final` by rename,
    on failure it is removed. Readers never see a half-written `final`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def length_stats(lengths: np.ndarray) -> dict[str, float]:
    if len(lengths) == 0:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0}
    return {"mean": round(float(lengths.mean()), 3), "p50": float(np.percentile(lengths, 50)),
            "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max())}


def write_meta(path: Path, meta: dict) -> None:
    (Path(path) / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False))


def read_meta(prepared_dir: Path) -> dict | None:
    f = Path(prepared_dir) / META_FILE
    return json.loads(f.read_text()) if f.is_file() else None


def load_prepared(prepared_dir: Path):
    """Open a prepared dataset: (DatasetDict, meta, (src_vocab, tgt_vocab)).

    Raises PreparedDataError naming the folder and the fix when it is missing or stale."""
    import datasets

    from nmt.vocab import load_vocabs

    d = Path(prepared_dir)
    meta = read_meta(d)
    if meta is None:
        raise PreparedDataError(
            f"{d}: no prepared dataset (no {META_FILE}). Fix: run `python -m nmt.prepare prepared_dir={d}` "
            "or pass the prepared_dir= that prepare printed")
    if meta.get("format_version") != FORMAT_VERSION:
        raise PreparedDataError(
            f"{d}: prepared with format version {meta.get('format_version')}, this nmt reads version "
            f"{FORMAT_VERSION}. Fix: `python -m nmt.prepare prepared_dir={d} force=true`")
    return datasets.load_from_disk(str(d)), meta, load_vocabs(d / VOCAB_DIR)
