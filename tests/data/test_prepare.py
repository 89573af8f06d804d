"""`python -m nmt.prepare`: stages end to end, on small corpora and on the real Multi30k."""
import gzip
import json
import subprocess
import sys
from collections import Counter

import datasets
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from conftest import ROOT, make_cfg, write_lines
from nmt.data.corpus import CorpusError
from nmt.data.encode import encode_target
from nmt.data.prepare import prepare
from nmt.data.store import PreparedMeta, load_prepared
from nmt.data.vocab import EOS_ID, SOS_ID, UNK, UNK_ID, TokenVocab, detokenize_words, tokenize_words


def small_corpus(tmp_path, train_src=None, gz=True):
    d = tmp_path / "raw"
    d.mkdir()
    write_lines(d / "train.de", train_src or ["ein Haus", "zwei Häuser", "", "drei kleine Häuser hier"], gz)
    write_lines(d / "train.en", ["a house", "two houses", "nothing", "three small houses here"], gz)
    for split in ("val", "test_2016_flickr"):
        write_lines(d / f"{split}.de", ["ein Hund", ""], gz)
        write_lines(d / f"{split}.en", ["a dog", "empty"], gz)
    return d


def test_target_truncation_keeps_sos_and_eos():
    v = TokenVocab.build("word", Counter("a b c d e f".split()))
    assert encode_target(v, ["a b c d e f"], max_len=4) == [[SOS_ID, 4, 5, EOS_ID]]


def test_prepare_small_corpus_writes_dataset_meta_and_reuses(tmp_path, capsys):
    raw, out = small_corpus(tmp_path), tmp_path / "prep"
    cfg = make_cfg(f"data.root={raw}", f"prepared_dir={out}", "vocab=word", "vocab.min_freq=1")
    prepare(cfg)
    dd = datasets.load_from_disk(str(out))
    assert {k: len(v) for k, v in dd.items()} == {"train": 3, "valid": 2, "test": 2}  # empty train pair dropped
    meta = PreparedMeta.load(out)
    assert meta == PreparedMeta.model_validate(json.loads((out / "meta.json").read_text()))
    assert meta.dropped["empty"] == 1 and meta.counts["train"] == 3
    assert meta.vocab.kind == "word" and set(meta.lengths["train"]) == {"src", "tgt"}
    row = dd["valid"][0]
    assert row["tgt_ids"][0] == SOS_ID and row["tgt_ids"][-1] == EOS_ID and row["tgt_len"] == len(row["tgt_ids"])
    assert UNK_ID in row["src_ids"]  # "Hund" never seen in training
    assert dd["valid"][1]["src_ids"] == []  # evaluation lines are kept even when empty
    capsys.readouterr()
    prepare(cfg)
    assert "reusing" in capsys.readouterr().out
    # no temporary leftovers; the lock file stays (removing a lock file races with its next taker)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".prep.lock"]


def test_interrupted_prepare_leaves_previous_dataset_untouched(tmp_path):
    raw, out = small_corpus(tmp_path), tmp_path / "prep"
    prepare(make_cfg(f"data.root={raw}", f"prepared_dir={out}", "vocab=char"))
    before = (out / "meta.json").read_text()
    (raw / "val.en").write_bytes(__import__("gzip").compress(b"one line only\n"))  # misaligned now
    with pytest.raises(CorpusError, match="misaligned"):
        prepare(make_cfg(f"data.root={raw}", f"prepared_dir={out}", "vocab=char", "prepare.force=true"))
    assert (out / "meta.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".prep.lock"]


def test_files_and_direction_override(tmp_path):
    raw = small_corpus(tmp_path, gz=False)
    out = tmp_path / "prep"
    prepare(make_cfg("data=files", f"data.root={raw}", "data.files.train.src=train.en",
                     "data.files.train.tgt=train.de", f"prepared_dir={out}", "vocab=char"))
    dd, meta, (sv, tv) = load_prepared(out)
    assert list(dd) == ["train"] and tv.to_text(dd["train"][0]["tgt_ids"]) == "ein Haus"


def test_hf_dataset_from_local_json(tmp_path):
    rows = [{"translation": {"de": f"Satz {i}", "en": f"sentence {i}"}} for i in range(10)]
    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "prep"
    prepare(make_cfg("data=hf", "data.hf_name=json", f"+data.hf_data_files.train={tmp_path}/train.jsonl",
                     f"+data.hf_data_files.validation={tmp_path}/validation.jsonl", "~data.splits.test",
                     f"prepared_dir={out}", "vocab=word", "vocab.min_freq=1"))
    dd, meta, (sv, tv) = load_prepared(out)
    assert len(dd["valid"]) == 10 and sv.to_text(dd["valid"][3]["src_ids"]) == "Satz 3"


def test_unknown_key_and_bad_type_fail_before_work():
    with pytest.raises(ConfigCompositionException, match="foo"):
        make_cfg("vocab.foo=1")
    with pytest.raises((ConfigCompositionException, ValidationError)):
        make_cfg("vocab.vocab_size=lots")
    with pytest.raises((ConfigCompositionException, ValidationError)):
        make_cfg("vocab.kind=bytes")


def test_offline_multi30k_names_the_override(tmp_path):
    cfg = make_cfg(f"data.root={tmp_path}/none", "data.url=http://127.0.0.1:9/nothing")
    with pytest.raises(CorpusError, match=r"data.root=\.\./shared/data/multi30k"):
        prepare(cfg)


@pytest.mark.parametrize("vocab", ["spm", "word", "char"])
def test_prepare_real_multi30k(tmp_path, multi30k_dir, vocab):
    out = tmp_path / vocab
    prepare(make_cfg(f"data.root={multi30k_dir}", f"prepared_dir={out}", f"vocab={vocab}", "preprocess.max_len=400"))
    dd, meta, (sv, tv) = load_prepared(out)
    assert meta.counts == {"train": 28998, "valid": 1014, "test": 1000}  # 2 train pairs over the length ratio
    assert len(dd["train"]) == 28998 and meta.dropped["ratio"] == 2
    raw_en = gzip.open(multi30k_dir / "test_2016_flickr.en.gz", "rt", encoding="utf-8").read().splitlines()
    test = dd["test"][:200]
    exact = 0
    for s_ids, t_ids, en in zip(test["src_ids"], test["tgt_ids"], raw_en):
        assert t_ids[0] == SOS_ID and t_ids[-1] == EOS_ID and SOS_ID not in s_ids and EOS_ID not in s_ids
        if vocab == "word":  # round trip modulo tokenization, unknown words as <unk>
            expected = detokenize_words([t if t in tv.stoi else UNK for t in tokenize_words(en)])
            assert tv.to_text(t_ids) == expected
        elif UNK_ID not in t_ids:  # spm and char round-trip exactly
            assert tv.to_text(t_ids) == " ".join(en.split())
            exact += 1
    assert vocab == "word" or exact >= 190


def test_command_line_entry_point(tmp_path, multi30k_dir):
    out = tmp_path / "cli"
    r = subprocess.run([sys.executable, "-m", "nmt.prepare", f"data.root={multi30k_dir}", f"prepared_dir={out}",
                        "vocab=char", "data.src_lang=en", "data.tgt_lang=de"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dd = datasets.load_from_disk(str(out))
    _, _, (sv, tv) = load_prepared(out)
    assert tv.to_text(dd["test"][0]["tgt_ids"]).startswith("Ein Mann")  # en -> de: target is German
    bad = subprocess.run([sys.executable, "-m", "nmt.prepare", f"data.root={tmp_path}/x", "data.url=http://127.0.0.1:9",
                          f"prepared_dir={tmp_path}/y"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "data.root=" in bad.stderr and "Traceback" not in bad.stderr


def test_a_damaged_meta_json_is_one_clear_error_and_prepare_rebuilds_over_it(tmp_path):
    from nmt.data.store import PreparedDataError

    raw, out = small_corpus(tmp_path), tmp_path / "prep"
    cfg = make_cfg(f"data.root={raw}", f"prepared_dir={out}", "vocab=word")
    prepare(cfg)
    (out / "meta.json").write_text('{"format_version": 1, "counts": "many"}')
    with pytest.raises(PreparedDataError, match="meta.json: not what nmt.prepare writes.*prepare.force=true"):
        load_prepared(out)
    prepare(cfg)  # not reused: rebuilt
    assert PreparedMeta.load(out).counts["train"] == 3
