"""Sentences to id sequences: UNK for unknown units, SOS/EOS around the target, truncation."""
from __future__ import annotations

import pyarrow as pa

from nmt.config.rules import ConfigError
from nmt.data.vocab import EOS_ID, SOS_ID, Vocab

SCHEMA = pa.schema([
    ("src_ids", pa.list_(pa.int32())),
    ("tgt_ids", pa.list_(pa.int32())),
    ("src_len", pa.int32()),
    ("tgt_len", pa.int32()),
    ("src_text", pa.string()),  # the cleaned sentences: references for BLEU, inputs for plots
    ("tgt_text", pa.string()),
])


def encode_source(vocab: Vocab, texts: list[str], max_len: int | None) -> list[list[int]]:
    """Source ids as they are, cut to `max_len` (None: not cut)."""
    return source_ids(vocab.encode_batch(texts), max_len)


def encode_target(vocab: Vocab, texts: list[str], max_len: int) -> list[list[int]]:
    """`[SOS] + ids[:max_len - 2] + [EOS]`: truncation never loses SOS or EOS."""
    return target_ids(vocab.encode_batch(texts), max_len)


def source_ids(pieces: list[list[int]], max_len: int | None) -> list[list[int]]:
    """Encoded source sentences as stored: cut to `max_len` (None: not cut)."""
    return [ids[:max_len] for ids in pieces]


def target_ids(pieces: list[list[int]], max_len: int) -> list[list[int]]:
    """Encoded target sentences as stored: `[SOS] + ids[:max_len - 2] + [EOS]`."""
    keep = max_len - 2
    if keep < 0:
        raise ConfigError(f"preprocess.max_len={max_len} leaves no room for SOS and EOS (needs >= 2)")
    return [[SOS_ID, *ids[:keep], EOS_ID] for ids in pieces]


def encode_chunk(src_vocab: Vocab, tgt_vocab: Vocab, src: list[str], tgt: list[str],
                 max_len: int) -> pa.RecordBatch:
    """One chunk of cleaned pairs -> an Arrow record batch with ids and lengths."""
    return pairs_batch(encode_source(src_vocab, src, max_len), encode_target(tgt_vocab, tgt, max_len), src, tgt)


def pairs_batch(src_ids: list[list[int]], tgt_ids: list[list[int]], src: list[str], tgt: list[str]) -> pa.RecordBatch:
    """Stored pairs (ids as stored, their lengths, the texts) as an Arrow record batch of SCHEMA."""
    return pa.RecordBatch.from_arrays(
        [pa.array(src_ids, type=pa.list_(pa.int32())), pa.array(tgt_ids, type=pa.list_(pa.int32())),
         pa.array(map(len, src_ids), type=pa.int32(), size=len(src_ids)),
         pa.array(map(len, tgt_ids), type=pa.int32(), size=len(tgt_ids)),
         pa.array(src, type=pa.string()), pa.array(tgt, type=pa.string())],
        schema=SCHEMA,
    )
