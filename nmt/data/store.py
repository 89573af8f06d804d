"""The prepared dataset on disk, and opening it for training and translation:

    PREPARED/meta.json            PreparedMeta: config, inputs, counts, drops, vocab sizes, lengths
    PREPARED/vocab/               the vocabulary files (nmt.data.vocab)
    PREPARED/dataset_dict.json    the split index `datasets.load_from_disk` reads
    PREPARED/SPLIT/data-*.arrow   each split's Arrow shards (ArrowSplitWriter), with state.json
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from nmt.compat import dataset_rows, write_dataset_state
from nmt.errors import NmtError

FORMAT_VERSION = 1  # bump when the stored layout changes; train refuses other versions
META_FILE = "meta.json"
VOCAB_DIR = "vocab"


class PreparedDataError(NmtError, ValueError):
    """A prepared dataset that is missing or from an incompatible version."""


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
        write_dataset_state(self.folder, names, fingerprint)
        datasets.DatasetInfo(features=datasets.Features.from_arrow_schema(self.schema)).write_to_directory(
            str(self.folder))
        return self.rows


def write_split_index(folder: Path, splits: list[str]) -> None:
    """`dataset_dict.json`: what makes `folder` a DatasetDict for `datasets.load_from_disk`."""
    (Path(folder) / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


class VocabInfo(_Record):
    kind: str
    joint: bool
    src_size: int
    tgt_size: int


class PreparedConfig(_Record):
    """The config groups that decide what prepare wrote (plain dicts, as composed)."""

    data: dict
    vocab: dict
    preprocess: dict


class PreparedMeta(_Record):
    """`meta.json` of a prepared folder: what was read, how it was cleaned, what was kept."""

    format_version: int
    cache_key: str
    config: PreparedConfig
    inputs: Dict[str, str]  # input file -> sha256 (or the HF dataset's name)
    counts: Dict[str, int]  # split -> pairs stored
    dropped: Dict[str, int]  # cleaning rule -> training pairs it dropped
    train_pairs_read: int
    vocab: VocabInfo
    special_ids: Dict[str, int]
    lengths: Dict[str, Dict[str, Dict[str, Union[int, float]]]]  # split -> side -> mean, p50, p95, max
    seconds: float

    @property
    def preprocess(self) -> dict:
        return self.config.preprocess

    @property
    def languages(self) -> dict:
        return {"src": self.config.data["src_lang"], "tgt": self.config.data["tgt_lang"]}

    @classmethod
    def load(cls, prepared_dir: Path) -> "PreparedMeta | None":
        """The folder's meta.json, None when there is none; PreparedDataError (naming the file and
        the fix) when it is not what prepare writes."""
        path = Path(prepared_dir) / META_FILE
        if not path.is_file():
            return None
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the top level"
            raise PreparedDataError(f"{path}: not what nmt.prepare writes ({where}: {first['msg']}). Fix: "
                                    f"`python -m nmt.prepare prepared_dir={prepared_dir} prepare.force=true`") from None

    def save(self, prepared_dir: Path) -> Path:
        """Write meta.json into `prepared_dir` (prepare writes the whole folder under a scratch
        name and renames it into place, so this file is never seen half-written)."""
        path = Path(prepared_dir) / META_FILE
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


def is_prepared(folder: Path) -> bool:
    """Whether `folder` is a prepared folder (it has a meta.json, sound or not)."""
    return (Path(folder) / META_FILE).is_file()


def load_prepared(prepared_dir: Path):
    """Open a prepared dataset: (DatasetDict, PreparedMeta, (src_vocab, tgt_vocab)).

    Raises PreparedDataError naming the folder and the fix when it is missing or stale."""
    import datasets

    from nmt.data.vocab import load_vocabs

    d = Path(prepared_dir)
    meta = PreparedMeta.load(d)
    if meta is None:
        raise PreparedDataError(
            f"{d}: no prepared dataset (no {META_FILE}). Fix: run `python -m nmt.prepare prepared_dir={d}` "
            "or pass the prepared_dir= that prepare printed")
    if meta.format_version != FORMAT_VERSION:
        raise PreparedDataError(
            f"{d}: prepared with format version {meta.format_version}, this nmt reads version "
            f"{FORMAT_VERSION}. Fix: `python -m nmt.prepare prepared_dir={d} force=true`")
    return datasets.load_from_disk(str(d)), meta, load_vocabs(d / VOCAB_DIR)


def split_table(split):
    """The rows of a prepared split (a `datasets.Dataset`, maybe a `select`ed view) as one
    pyarrow Table, in its order."""
    return dataset_rows(split)


def load_training_data(prepared_dir: Path):
    """`load_prepared` of a folder that must hold the train and valid splits (what training reads)."""
    data, meta, vocabs = load_prepared(prepared_dir)
    for split in ("train", "valid"):
        if split not in data:
            raise PreparedDataError(
                f"{prepared_dir}: no `{split}` split. Fix: prepare it with the {split} files: "
                f"data.splits.{split}=PREFIX (multi30k, hf) or data.files.{split}.src=A data.files.{split}.tgt=B (files)")
    return data, meta, vocabs
