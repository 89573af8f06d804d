"""Reading, validating and cleaning parallel text."""
from pathlib import Path

import pytest

from conftest import make_cfg, write_lines
from nmt.data.corpus import CorpusError, DropCounts, clean_chunk, read_parallel


def read_all(src: Path, tgt: Path, chunk_size: int = 2):
    s, t = [], []
    for a, b in read_parallel(src, tgt, chunk_size):
        s += a
        t += b
    return s, t


@pytest.mark.parametrize("gz", [False, True])
def test_reads_plain_and_gzip_in_chunks(tmp_path, gz):
    src = write_lines(tmp_path / "a.de", ["eins", "zwei", "drei"], gz)
    tgt = write_lines(tmp_path / "a.en", ["one", "two", "three"], gz)
    assert read_all(src, tgt) == (["eins", "zwei", "drei"], ["one", "two", "three"])


def test_last_line_without_newline(tmp_path):
    src = write_lines(tmp_path / "a.de", b"a\nb")
    tgt = write_lines(tmp_path / "a.en", b"x\ny\n")
    assert read_all(src, tgt) == (["a", "b"], ["x", "y"])


def test_misaligned_names_both_files_and_counts(tmp_path):
    src = write_lines(tmp_path / "a.de", ["1", "2", "3", "4", "5"])
    tgt = write_lines(tmp_path / "a.en", ["1", "2", "3"])
    with pytest.raises(CorpusError) as e:
        read_all(src, tgt)
    msg = str(e.value)
    assert str(src) in msg and str(tgt) in msg and "5 lines" in msg and "3 lines" in msg


def test_invalid_utf8_names_file_and_line(tmp_path):
    src = write_lines(tmp_path / "a.de", b"gut\nauch gut\nschlecht \xff\xfe hier\n")
    tgt = write_lines(tmp_path / "a.en", ["good", "also good", "bad here"])
    with pytest.raises(CorpusError, match=rf"{src}:3: invalid UTF-8"):
        read_all(src, tgt)


@pytest.mark.parametrize("sep", ["\r", "\u2028", "\x85", "\x0b", "\x1c"])
def test_odd_separator_inside_a_line_never_splits_a_sentence(tmp_path, sep):
    src = write_lines(tmp_path / "a.de", [f"ein{sep}Satz", "zwei"])
    tgt = write_lines(tmp_path / "a.en", ["one sentence", "two"])
    s, t = read_all(src, tgt)
    assert len(s) == len(t) == 2
    cs, ct = clean_chunk((s, t), make_cfg().preprocess, True, DropCounts())
    assert cs == ["ein Satz", "zwei"] and ct == ["one sentence", "two"]


def test_crlf_line_endings_are_stripped(tmp_path):
    src = write_lines(tmp_path / "a.de", b"a b\r\nc\r\n")
    tgt = write_lines(tmp_path / "a.en", b"x\r\ny z\r\n")
    cs, ct = clean_chunk(read_all(src, tgt), make_cfg().preprocess, False, DropCounts())
    assert (cs, ct) == (["a b", "c"], ["x", "y z"])


def test_missing_file_and_empty_corpus(tmp_path):
    tgt = write_lines(tmp_path / "a.en", ["x"])
    with pytest.raises(CorpusError, match="file not found"):
        read_all(tmp_path / "nope.de", tgt)
    e1, e2 = write_lines(tmp_path / "e.de", b""), write_lines(tmp_path / "e.en", b"")
    with pytest.raises(CorpusError, match="empty corpus"):
        read_all(e1, e2)


def test_clean_filters_and_counts_each_rule():
    pp = make_cfg("preprocess.max_words=5", "preprocess.max_ratio=2", "preprocess.ratio_min_words=3").preprocess
    src = ["  a  b ", "", "a b c d e f", "a", "a b c", "Cafe\u0301"]
    tgt = ["x y", "x", "x", "x y z", "x y", "coffee"]
    drops = DropCounts()
    cs, ct = clean_chunk((src, tgt), pp, True, drops)
    assert cs == ["a b", "a b c", "Caf\u00e9"]  # NFC composes e + combining acute
    assert ct == ["x y", "x y", "coffee"]
    assert (drops.empty, drops.too_long, drops.ratio, drops.kept, drops.read) == (1, 1, 1, 3, 6)


def test_eval_splits_are_never_filtered():
    pp = make_cfg("preprocess.max_words=1").preprocess
    drops = DropCounts()
    cs, _ = clean_chunk((["", "a b c"], ["x", "y"]), pp, False, drops)
    assert cs == ["", "a b c"] and drops.kept == 2


def test_nfkc_option():
    pp = make_cfg("preprocess.normalize=NFKC").preprocess
    cs, _ = clean_chunk((["ﬁ ①"], ["x"]), pp, False, DropCounts())
    assert cs == ["fi 1"]


def test_translation_input_is_cleaned_as_prepare_cleaned_the_source_side():
    from nmt.data.corpus import DropCounts, clean_chunk, clean_sentences

    pp = make_cfg("preprocess.lowercase=true", "preprocess.normalize=NFKC").preprocess
    raw = ["Ein\u00a0Hund\tLÄUFT ", "ﬁsch  und\u2028Brot", ""]
    expected, _ = clean_chunk((raw, ["x"] * len(raw)), pp, False, DropCounts())
    assert clean_sentences(raw, pp) == expected == ["ein hund läuft", "fisch und brot", ""]
