"""The prepared dataset on disk: Arrow DatasetDict + vocab/ + meta.json, written atomically."""
from __future__ import annotations

import contextlib
import ctypes
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


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    system or the file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _scratch_prefixes(final: Path) -> tuple[str, ...]:
    """Name prefixes of the temporary folders `atomic_dir` and prepare create beside `final`."""
    return tuple(f".{final.name}.{kind}-" for kind in ("tmp", "work", "old"))


def remove_stale_scratch(final: Path) -> tuple[int, int]:
    """Remove temporary folders that killed runs left beside `final`; (count, bytes). Call it
    while holding `output_lock(final)`, so no live run's folders are among them. A `.old-`
    folder is put back first when `final` itself is missing (a kill inside the fallback swap)."""
    final = Path(final)
    if not final.parent.is_dir():
        return 0, 0
    found = [p for p in final.parent.iterdir() if p.name.startswith(_scratch_prefixes(final)) and p.is_dir()]
    if not final.exists():
        olds = [p for p in found if p.name.startswith(f".{final.name}.old-")]
        if olds:
            olds[0].rename(final)
            found.remove(olds[0])
    size = sum(f.stat().st_size for p in found for f in p.rglob("*") if f.is_file())
    for p in found:
        shutil.rmtree(p, ignore_errors=True)
    return len(found), size


@contextlib.contextmanager
def output_lock(final: Path, timeout: float = -1) -> Iterator[None]:
    """An exclusive lock on `final` (a `.NAME.lock` file beside it), held by one process at a time:
    two prepares into one folder run one after the other."""
    from filelock import FileLock

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock"), timeout=timeout):
        yield


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success it replaces `final`, on failure it is
    removed. The replacement is one atomic exchange where the system has one (Linux), so a kill
    at any instant leaves either the old or the new folder at `final`, never none and never half
    of one. Elsewhere it is two renames, and `remove_stale_scratch` puts the old folder back
    after a kill between them. Hold `output_lock(final)` around it."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not final.exists():
        tmp.rename(final)
        return
    if _exchange(tmp, final):  # tmp now holds the old folder
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def length_stats(lengths: np.ndarray) -> dict[str, float]:
    return LengthHistogram().add(np.asarray(lengths)).stats()


class LengthHistogram:
    """Counts of each sequence length, accumulated batch by batch (memory: the longest length,
    not the corpus); `stats()` gives the mean, median, 95th percentile (as np.percentile's
    linear interpolation) and maximum."""

    def __init__(self):
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, lengths: np.ndarray) -> "LengthHistogram":
        if len(lengths):
            c = np.bincount(lengths)
            if len(c) > len(self.counts):
                self.counts = np.pad(self.counts, (0, len(c) - len(self.counts)))
            self.counts[:len(c)] += c
        return self

    def _quantile(self, q: float) -> float:
        cum = np.cumsum(self.counts)
        pos = q * (cum[-1] - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        v_lo, v_hi = (int(np.searchsorted(cum, k, side="right")) for k in (lo, hi))
        return float(v_lo + (v_hi - v_lo) * (pos - lo))

    def stats(self) -> dict[str, float]:
        n = int(self.counts.sum())
        if n == 0:
            return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0}
        mean = float((self.counts * np.arange(len(self.counts))).sum() / n)
        return {"mean": round(mean, 3), "p50": self._quantile(0.5), "p95": self._quantile(0.95),
                "max": int(np.flatnonzero(self.counts)[-1])}


SHARD_BYTES = 500 * 2**20  # as datasets' save_to_disk (max_shard_size="500MB")


class ArrowSplitWriter:
    """Writes one split as Arrow record batches arrive, straight into the layout that
    `datasets.load_from_disk` reads: `folder/data-0000i-of-0000N.arrow` shards of about
    `shard_bytes` each (Arrow IPC streams, as datasets writes them), `state.json` and
    `dataset_info.json`. Nothing is held in memory and nothing is copied afterwards, so
    writing 10M pairs costs what writing 10k does."""

    def __init__(self, folder: Path, schema, shard_bytes: int = SHARD_BYTES):
        self.folder, self.schema, self.shard_bytes = Path(folder), schema, shard_bytes
        self.folder.mkdir(parents=True, exist_ok=True)
        self.parts: list[Path] = []
        self.rows = 0
        self._sink = self._writer = None

    def _open(self) -> None:
        import pyarrow as pa

        self.parts.append(self.folder / f".part-{len(self.parts):05d}.arrow")
        self._sink = pa.OSFile(str(self.parts[-1]), "wb")
        self._writer = pa.ipc.new_stream(self._sink, self.schema)

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def write(self, batch) -> None:
        if self._writer is None:
            self._open()
        self._writer.write_batch(batch)
        self.rows += batch.num_rows
        if self._sink.tell() >= self.shard_bytes:
            self._close_shard()

    def close(self, fingerprint: str) -> int:
        """Name the shards, write the state and info files; the number of rows written."""
        import datasets

        if not self.parts:  # an empty split still gets one (empty) shard
            self._open()
        self._close_shard()
        n = len(self.parts)
        names = [f"data-{i:05d}-of-{n:05d}.arrow" for i in range(n)]
        for part, name in zip(self.parts, names):
            part.rename(self.folder / name)
        state = {"_data_files": [{"filename": name} for name in names], "_fingerprint": fingerprint,
                 "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
                 "_output_all_columns": False, "_split": None}
        (self.folder / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
        datasets.DatasetInfo(features=datasets.Features.from_arrow_schema(self.schema)).write_to_directory(
            str(self.folder))
        return self.rows


def write_split_index(folder: Path, splits: list[str]) -> None:
    """`dataset_dict.json`: what makes `folder` a DatasetDict for `datasets.load_from_disk`."""
    (Path(folder) / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))


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
