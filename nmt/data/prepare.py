"""The prepare pipeline: raw parallel text -> cleaned (and deduplicated) -> vocabularies -> ids
-> the Arrow dataset, written atomically under one lock; reused when inputs and config match."""
from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from nmt.config.schema import plain
from nmt.data.corpus import (Chunk, CorpusError, DropCounts, clean_chunk, file_sha256, read_hf, read_parallel,
                             split_files)
from nmt.data.encode import SCHEMA, encode_chunk
from nmt.data.store import (FORMAT_VERSION, VOCAB_DIR, ArrowSplitWriter, LengthHistogram, PreparedDataError,
                            PreparedMeta, is_prepared, write_split_index)
from nmt.data.vocab import SPECIAL_IDS, build_vocabs, tokenize_words
from nmt.files import atomic_dir, check_output_dir, output_lock, remove_stale_scratch

ChunkReader = Callable[[], Iterator[Chunk]]


def corpus_readers(cfg: DictConfig) -> tuple[dict[str, ChunkReader], dict[str, str]]:
    """Split name -> a function that streams its raw chunks; and the input files' sha256."""
    chunk = cfg.preprocess.chunk_size
    if cfg.data.kind.value == "hf":
        readers = {s: (lambda s=s: read_hf(cfg.data, s, chunk)) for s in cfg.data.splits}
        return readers, {"hf": f"{cfg.data.hf_name}:{cfg.data.hf_config}"}
    files = split_files(cfg.data)
    readers = {s: (lambda p=p: read_parallel(p[0], p[1], chunk)) for s, p in files.items()}
    hashes = {str(p): file_sha256(p) for pair in files.values() for p in pair}
    return readers, hashes


def cache_key(cfg: DictConfig, input_hashes: dict[str, str]) -> str:
    """What decides the prepared output: format, data, vocab and preprocessing config, inputs."""
    relevant = {k: plain(cfg[k]) for k in ("data", "vocab", "preprocess")}
    relevant["preprocess"].pop("chunk_size")
    relevant["vocab"].pop("threads")
    blob = json.dumps([FORMAT_VERSION, relevant, sorted(input_hashes.values())], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def clean_train_split(read: ChunkReader, cfg: DictConfig, work: Path, unit_counting: str | None):
    """Pass 1 over the training split: clean and filter into two text files (one sentence a
    line), with `preprocess.dedup` drop exact duplicate pairs (pass 2), and count vocabulary
    units. Returns (files, drop counts, (src, tgt) counters)."""
    files = (work / "train.clean.src", work / "train.clean.tgt")
    drops, counters = DropCounts(), (Counter(), Counter())
    dedup = cfg.preprocess.dedup
    count = unit_counter(unit_counting)
    with open(files[0], "w", encoding="utf-8") as fs, open(files[1], "w", encoding="utf-8") as ft, \
            (open(work / "train.hashes", "wb") if dedup else contextlib.nullcontext()) as fh, \
            tqdm(desc="clean train", unit=" pairs", file=sys.stderr) as bar:
        for raw in read():
            src, tgt = clean_chunk(raw, cfg.preprocess, True, drops)
            if src:
                fs.write("\n".join(src) + "\n")
                ft.write("\n".join(tgt) + "\n")
            if dedup:
                pair_hashes(src, tgt).tofile(fh)
            elif count:
                count(counters, src, tgt)
            bar.update(len(raw[0]))
    if dedup:
        files = drop_duplicates(files, work / "train.hashes", work, cfg.preprocess.chunk_size, drops, counters, count)
    if drops.kept == 0:
        raise CorpusError(f"the training split is empty after cleaning ({drops.as_dict()}). "
                          "Fix: loosen preprocess.max_words / preprocess.max_ratio or check the input files")
    return files, drops, counters


def unit_counter(unit_counting: str | None):
    """A function adding a chunk's word or character counts to (src, tgt) counters; None for spm."""
    if not unit_counting:
        return None
    split_units = tokenize_words if unit_counting == "word" else None

    def count(counters, src, tgt):
        for counter, side in zip(counters, (src, tgt)):
            for sentence in side:
                counter.update(split_units(sentence) if split_units else sentence)
    return count


def pair_hashes(src: list[str], tgt: list[str]) -> np.ndarray:
    """A 64-bit hash of each (source, target) pair (Python's string hash: stable within one
    process, which is all dedup needs; NUL cannot occur inside a sentence, see decode_lines)."""
    return np.fromiter((hash(s + "\0" + t) for s, t in zip(src, tgt)), dtype=np.int64, count=len(src))


def first_occurrences(hashes: np.ndarray, repeated: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Which pairs of a chunk to keep: those whose hash is not in the sorted array `repeated`
    (hashes that occur more than once in the corpus), and the first occurrence of each that is;
    `seen` (one flag per repeated hash) carries over from chunk to chunk."""
    keep = np.ones(len(hashes), dtype=bool)
    if len(repeated) == 0 or len(hashes) == 0:
        return keep
    j = np.minimum(np.searchsorted(repeated, hashes), len(repeated) - 1)
    is_repeated = repeated[j] == hashes
    rows = np.flatnonzero(is_repeated)
    keep[rows] = False
    values, first = np.unique(j[rows], return_index=True)
    new = ~seen[values]
    keep[rows[first[new]]] = True
    seen[values] = True
    return keep


def drop_duplicates(files, hashes_file: Path, work: Path, chunk_size: int, drops: DropCounts, counters, count):
    """Pass 2 (preprocess.dedup): rewrite the cleaned files without repeated pairs, keeping
    each pair's first occurrence. Memory: the 8-byte hashes of the split while they are sorted
    (80 MB at 10M pairs), then only the hashes that repeat."""
    hashes = np.fromfile(hashes_file, dtype=np.int64)
    hashes.sort()
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    del hashes
    seen = np.zeros(len(repeated), dtype=bool)
    out = (work / "train.dedup.src", work / "train.dedup.tgt")
    with open(out[0], "w", encoding="utf-8") as fs, open(out[1], "w", encoding="utf-8") as ft, \
            open(hashes_file, "rb") as fh, tqdm(desc="dedup train", unit=" pairs", file=sys.stderr) as bar:
        for src, tgt in read_parallel(files[0], files[1], chunk_size) if drops.kept else ():
            keep = first_occurrences(np.fromfile(fh, dtype=np.int64, count=len(src)), repeated, seen)
            src = [s for s, k in zip(src, keep) if k]
            tgt = [t for t, k in zip(tgt, keep) if k]
            drops.duplicate += len(keep) - len(src)
            if src:
                fs.write("\n".join(src) + "\n")
                ft.write("\n".join(tgt) + "\n")
            if count:
                count(counters, src, tgt)
            bar.update(len(keep))
    drops.kept -= drops.duplicate
    for f in files:
        f.unlink()
    return out


def encode_split(name: str, chunks: Iterator[Chunk], vocabs, cfg: DictConfig, folder: Path, fingerprint: str):
    """Encode a stream of cleaned chunks into the split's Arrow shards under `folder`, batch by
    batch; return (pair count, {side: length statistics})."""
    lengths = {"src": LengthHistogram(), "tgt": LengthHistogram()}
    writer = ArrowSplitWriter(folder, SCHEMA)
    with tqdm(desc=f"encode {name}", unit=" pairs", file=sys.stderr) as bar:
        for src, tgt in chunks:
            if src:
                batch = encode_chunk(vocabs[0], vocabs[1], src, tgt, cfg.preprocess.max_len)
                writer.write(batch)
                for side in lengths:
                    lengths[side].add(batch.column(f"{side}_len").to_numpy())
            bar.update(len(src))
    return writer.close(fingerprint), {side: h.stats() for side, h in lengths.items()}


def prepare(cfg: DictConfig) -> Path:
    """Run every stage and write `cfg.prepared_dir`; reuse it when inputs and config match."""
    out = check_output_dir(Path(cfg.prepared_dir), "prepared_dir", is_prepared)
    readers, hashes = corpus_readers(cfg)
    if "train" not in readers:
        raise CorpusError("no train split configured. Fix: data.splits must map `train` to a file prefix or HF split")
    key = cache_key(cfg, hashes)
    with output_lock(out):  # a second prepare into the same folder waits here, then reuses
        removed, size = remove_stale_scratch(out)
        if removed:
            print(f"prepare: removed {removed} temporary folder(s) ({size / 1e6:.1f} MB) left beside {out} "
                  "by an interrupted run")
        if reusable(out, key) and not cfg.prepare.force:
            print(f"prepare: {out} already holds this data and config; reusing it (prepare.force=true rebuilds)")
            return out
        return _prepare_into(out, cfg, readers, hashes, key)


def reusable(out: Path, key: str) -> bool:
    """Whether `out` already holds what this config and these inputs make (a damaged meta.json: no)."""
    try:
        meta = PreparedMeta.load(out)
    except PreparedDataError:
        return False
    return meta is not None and meta.cache_key == key


def _prepare_into(out: Path, cfg: DictConfig, readers: dict[str, ChunkReader], hashes: dict[str, str],
                  key: str) -> Path:
    """Clean, build the vocabularies, encode and write `out` atomically (the caller holds its lock)."""
    started = time.time()
    kind = cfg.vocab.kind.value
    with atomic_dir(out) as tmp, tempfile.TemporaryDirectory(prefix=f".{out.name}.work-", dir=out.parent) as w:
        work = Path(w)
        train_files, drops, counters = clean_train_split(
            readers["train"], cfg, work, kind if kind != "spm" else None)
        vocabs = build_vocabs(cfg.vocab, tmp / VOCAB_DIR, train_files, counters)
        counts, lengths, eval_drops = {}, {}, DropCounts()
        for split, read in readers.items():
            if split == "train":
                chunks = read_parallel(train_files[0], train_files[1], cfg.preprocess.chunk_size)
            else:
                chunks = (clean_chunk(c, cfg.preprocess, False, eval_drops) for c in read())
            counts[split], lengths[split] = encode_split(split, chunks, vocabs, cfg, tmp / split, f"{key[:16]}-{split}")
        write_split_index(tmp, list(readers))
        PreparedMeta(
            format_version=FORMAT_VERSION, cache_key=key,
            config={k: plain(cfg[k]) for k in ("data", "vocab", "preprocess")},
            inputs=hashes, counts=counts,
            dropped={k: v for k, v in drops.as_dict().items() if k not in ("kept", "read")},
            train_pairs_read=drops.read,
            vocab={"kind": kind, "joint": bool(cfg.vocab.joint), "src_size": vocabs[0].size,
                   "tgt_size": vocabs[1].size},
            special_ids=SPECIAL_IDS, lengths=lengths, seconds=round(time.time() - started, 2),
        ).save(tmp)
    print(f"prepare: train pairs read {drops.read}, kept {drops.kept}; dropped: empty side {drops.empty}, "
          f"over {cfg.preprocess.max_words} words {drops.too_long}, length ratio {drops.ratio}"
          + (f", duplicates {drops.duplicate}" if cfg.preprocess.dedup else ""))
    print(f"prepare: wrote {out} ({', '.join(f'{s} {n}' for s, n in counts.items())} pairs; "
          f"vocab {kind} src {vocabs[0].size} tgt {vocabs[1].size}) in {time.time() - started:.1f}s")
    return out
