"""Entry point: raw parallel text -> cleaned -> vocab -> ids -> Arrow dataset under data/.

    python -m nmt.prepare data=multi30k data.root=DIR vocab=spm prepared_dir=OUT [force=true]
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import datasets
import hydra
import pyarrow as pa
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from nmt.config import CONF_DIR, ConfigError, check_config
from nmt.corpus import Chunk, CorpusError, DropCounts, clean_chunk, file_sha256, read_hf, read_parallel, split_files
from nmt.encode import SCHEMA, encode_chunk
from nmt.store import (FORMAT_VERSION, VOCAB_DIR, atomic_dir, length_stats, output_lock, read_meta,
                       remove_stale_scratch, write_meta)
from nmt.vocab import SPECIAL_IDS, build_vocabs, tokenize_words

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
    relevant = {k: OmegaConf.to_container(cfg[k], resolve=True, enum_to_str=True)
                for k in ("data", "vocab", "preprocess")}
    relevant["preprocess"].pop("chunk_size")
    relevant["vocab"].pop("threads")
    blob = json.dumps([FORMAT_VERSION, relevant, sorted(input_hashes.values())], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def clean_train_split(read: ChunkReader, cfg: DictConfig, work: Path, unit_counting: str | None):
    """Pass 1 over the training split: clean and filter into two text files (one sentence a
    line) and count vocabulary units. Returns (files, drop counts, (src, tgt) counters)."""
    files = (work / "train.clean.src", work / "train.clean.tgt")
    drops, counters = DropCounts(), (Counter(), Counter())
    split_units = tokenize_words if unit_counting == "word" else None
    with open(files[0], "w", encoding="utf-8") as fs, open(files[1], "w", encoding="utf-8") as ft, \
            tqdm(desc="clean train", unit=" pairs", file=sys.stderr) as bar:
        for raw in read():
            src, tgt = clean_chunk(raw, cfg.preprocess, True, drops)
            if src:
                fs.write("\n".join(src) + "\n")
                ft.write("\n".join(tgt) + "\n")
            if unit_counting:
                for counter, side in zip(counters, (src, tgt)):
                    for sentence in side:
                        counter.update(split_units(sentence) if split_units else sentence)
            bar.update(len(raw[0]))
    if drops.kept == 0:
        raise CorpusError(f"the training split is empty after cleaning ({drops.as_dict()}). "
                          "Fix: loosen preprocess.max_words / preprocess.max_ratio or check the input files")
    return files, drops, counters


def encode_split(name: str, chunks: Iterator[Chunk], vocabs, cfg: DictConfig, out_file: Path) -> int:
    """Encode a stream of cleaned chunks into an Arrow stream file; return the pair count."""
    n = 0
    with pa.OSFile(str(out_file), "wb") as sink, pa.ipc.new_stream(sink, SCHEMA) as writer, \
            tqdm(desc=f"encode {name}", unit=" pairs", file=sys.stderr) as bar:
        for src, tgt in chunks:
            if src:
                writer.write_batch(encode_chunk(vocabs[0], vocabs[1], src, tgt, cfg.preprocess.max_len))
            n += len(src)
            bar.update(len(src))
    return n


def prepare(cfg: DictConfig) -> Path:
    """Run every stage and write `cfg.prepared_dir`; reuse it when inputs and config match."""
    check_config(cfg)
    out = Path(cfg.prepared_dir)
    readers, hashes = corpus_readers(cfg)
    if "train" not in readers:
        raise CorpusError("no train split configured. Fix: data.splits must map `train` to a file prefix or HF split")
    key = cache_key(cfg, hashes)
    with output_lock(out):  # a second prepare into the same folder waits here, then reuses
        removed, size = remove_stale_scratch(out)
        if removed:
            print(f"prepare: removed {removed} temporary folder(s) ({size / 1e6:.1f} MB) left beside {out} "
                  "by an interrupted run")
        meta = read_meta(out)
        if meta and meta.get("cache_key") == key and not cfg.force:
            print(f"prepare: {out} already holds this data and config; reusing it (force=true rebuilds)")
            return out
        return _prepare_into(out, cfg, readers, hashes, key)


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
        counts, eval_drops = {}, DropCounts()
        for split, read in readers.items():
            if split == "train":
                chunks = read_parallel(train_files[0], train_files[1], cfg.preprocess.chunk_size)
            else:
                chunks = (clean_chunk(c, cfg.preprocess, False, eval_drops) for c in read())
            counts[split] = encode_split(split, chunks, vocabs, cfg, work / f"{split}.arrow")
        dd = datasets.DatasetDict({s: datasets.Dataset.from_file(str(work / f"{s}.arrow")) for s in readers})
        dd.save_to_disk(str(tmp))
        lengths = {s: {side: length_stats(dd[s].data.column(f"{side}_len").to_numpy())
                       for side in ("src", "tgt")} for s in readers}
        del dd
        write_meta(tmp, {
            "format_version": FORMAT_VERSION,
            "cache_key": key,
            "config": {k: OmegaConf.to_container(cfg[k], resolve=True, enum_to_str=True)
                       for k in ("data", "vocab", "preprocess")},
            "inputs": hashes,
            "counts": counts,
            "dropped": {k: v for k, v in drops.as_dict().items() if k not in ("kept", "read")},
            "train_pairs_read": drops.read,
            "vocab": {"kind": kind, "joint": bool(cfg.vocab.joint),
                      "src_size": vocabs[0].size, "tgt_size": vocabs[1].size},
            "special_ids": SPECIAL_IDS,
            "lengths": lengths,
            "seconds": round(time.time() - started, 2),
        })
    print(f"prepare: train pairs read {drops.read}, kept {drops.kept}; dropped: empty side {drops.empty}, "
          f"over {cfg.preprocess.max_words} words {drops.too_long}, length ratio {drops.ratio}")
    print(f"prepare: wrote {out} ({', '.join(f'{s} {n}' for s, n in counts.items())} pairs; "
          f"vocab {kind} src {vocabs[0].size} tgt {vocabs[1].size}) in {time.time() - started:.1f}s")
    return out


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        prepare(cfg)
    except (CorpusError, ConfigError) as err:
        sys.exit(f"prepare: error: {err}")


if __name__ == "__main__":
    main()
