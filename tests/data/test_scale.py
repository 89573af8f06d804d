"""Large-corpus machinery: streaming Arrow shards, length statistics without the corpus in
memory, exact-duplicate removal, compact batch indices. (bench/scale.py measures it at 10M.)"""
import json

import datasets
import numpy as np
import pyarrow as pa
import torch

from conftest import make_cfg, write_lines
from nmt.data.prepare import first_occurrences, prepare
from nmt.data.store import ArrowSplitWriter, LengthHistogram, load_prepared, write_split_index


def test_length_histogram_matches_numpy_percentiles():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 1000):
        lengths = rng.integers(0, 130, size=n)
        h = LengthHistogram()
        for part in np.array_split(lengths, 3):
            h.add(part)
        s = h.stats()
        assert s["p50"] == np.percentile(lengths, 50) and s["p95"] == np.percentile(lengths, 95)
        assert s["max"] == lengths.max() and abs(s["mean"] - lengths.mean()) < 1e-3


def test_split_writer_shards_are_a_dataset_datasets_can_load(tmp_path):
    schema = pa.schema([("x", pa.int32()), ("s", pa.string())])
    writer = ArrowSplitWriter(tmp_path / "train", schema, shard_bytes=1000)  # every batch fills a shard
    for start in range(0, 1000, 100):
        writer.write(pa.RecordBatch.from_arrays([pa.array(range(start, start + 100), pa.int32()),
                                                 pa.array([f"row {i}" for i in range(start, start + 100)])],
                                                schema=schema))
    assert writer.close("fp-train") == 1000
    shards = sorted(p.name for p in (tmp_path / "train").glob("*.arrow"))
    assert len(shards) == 10 and shards[0] == "data-00000-of-00010.arrow"
    write_split_index(tmp_path, ["train"])
    dd = datasets.load_from_disk(str(tmp_path))
    assert dd["train"]["x"] == list(range(1000)) and dd["train"][999]["s"] == "row 999"


def test_first_occurrences_across_chunks():
    hashes = np.array([5, 3, 5, 9, 3, 5, 7], dtype=np.int64)
    repeated = np.array([3, 5], dtype=np.int64)
    seen = np.zeros(2, dtype=bool)
    keep = np.concatenate([first_occurrences(hashes[:3], repeated, seen),
                           first_occurrences(hashes[3:], repeated, seen)])
    assert keep.tolist() == [True, True, False, True, False, False, True]


def test_dedup_drops_repeated_pairs_keeps_the_first_and_counts_them(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    pairs = [("q r", "x y"), ("c", "z"), ("q r", "x y"), ("q  r", "x y"),  # the same after cleaning
             ("q r", "x w"), ("c", "z"), ("e f", "g")]
    write_lines(d / "train.de", [s for s, _ in pairs])
    write_lines(d / "train.en", [t for _, t in pairs])
    for split in ("val", "test_2016_flickr"):
        write_lines(d / f"{split}.de", ["c", "c"])  # evaluation splits are never deduplicated
        write_lines(d / f"{split}.en", ["z", "z"])
    common = [f"data.root={d}", "vocab=word", "vocab.min_freq=2", "preprocess.chunk_size=2"]
    prepare(make_cfg(*common, f"prepared_dir={tmp_path / 'all'}"))
    prepare(make_cfg(*common, "preprocess.dedup=true", f"prepared_dir={tmp_path / 'dedup'}"))
    dd, meta, (src_vocab, _) = load_prepared(tmp_path / "dedup")
    assert dd["train"]["src_text"] == ["q r", "c", "q r", "e f"] and dd["train"]["tgt_text"][2] == "x w"
    assert meta.dropped["duplicate"] == 3 and meta.counts == {"train": 4, "valid": 2, "test": 2}
    assert "c" not in src_vocab.stoi  # counted once after dedup: below min_freq=2
    _, meta_all, (src_all, _) = load_prepared(tmp_path / "all")
    assert meta_all.dropped["duplicate"] == 0 and meta_all.counts["train"] == 7 and "c" in src_all.stoi
    assert json.loads((tmp_path / "dedup" / "meta.json").read_text())["config"]["preprocess"]["dedup"] is True


def test_arrow_pairs_reads_rows_across_chunks_and_shards(tmp_path):
    from collections import Counter

    from nmt.data.collate import ArrowPairs
    from nmt.data.encode import SCHEMA, encode_chunk
    from nmt.data.vocab import TokenVocab

    words = [f"w{i}" for i in range(50)]
    vocab = TokenVocab.build("word", Counter(words))
    rng = np.random.default_rng(0)
    sentences = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(700)]
    writer = ArrowSplitWriter(tmp_path / "train", SCHEMA, shard_bytes=6000)
    for start in range(0, 700, 70):  # 10 record batches over several shards
        writer.write(encode_chunk(vocab, vocab, sentences[start:start + 70], sentences[start:start + 70], 128))
    writer.close("fp")
    write_split_index(tmp_path, ["train"])
    split = datasets.load_from_disk(str(tmp_path))["train"]
    assert len(list((tmp_path / "train").glob("*.arrow"))) > 1
    for view in (split, split.select(rng.permutation(700)[:300])):
        pairs = ArrowPairs(view)
        idx = rng.integers(0, len(view), 100).tolist()
        for (i, src, tgt), row in zip(pairs.__getitems__(idx), (view[j] for j in idx)):
            assert src.tolist() == row["src_ids"] and tgt.tolist() == row["tgt_ids"] and src.dtype == torch.int64
