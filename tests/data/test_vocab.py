"""Vocabularies: one interface, the same special ids, round trips."""
from collections import Counter

import pytest

from conftest import make_cfg, write_lines
from nmt.data.vocab import (EOS_ID, PAD_ID, SOS_ID, SPECIAL_TOKENS, UNK_ID, SpmVocab, TokenVocab, VocabError,
                            build_vocabs, detokenize_words, load_vocabs, tokenize_words)

SENTS = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee!", "Eine Frau (mit Hut) lacht, laut."]


def test_word_tokenizer_splits_punctuation_and_detokenizes():
    toks = tokenize_words("Ein Mann's Hut (rot), schön.")
    assert toks == ["Ein", "Mann's", "Hut", "(", "rot", ")", ",", "schön", "."]
    assert detokenize_words(toks) == "Ein Mann's Hut (rot), schön."


def test_word_vocab_min_freq_max_size_and_unk():
    counter = Counter({"a": 5, "b": 3, "c": 3, "d": 1})
    v = TokenVocab.build("word", counter, min_freq=2, max_size=2)
    assert v.itos[:4] == list(SPECIAL_TOKENS) and v.itos[4:] == ["a", "b"]  # ties alphabetical
    assert v.encode_batch(["a c b"]) == [[4, UNK_ID, 5]]
    assert v.to_text([SOS_ID, 4, 5, EOS_ID, 4, PAD_ID]) == "a b"


def test_char_vocab_round_trips_exactly():
    v = TokenVocab.build("char", Counter("".join(SENTS)))
    for s in SENTS:
        assert v.to_text(v.encode_batch([s])[0]) == s


@pytest.mark.parametrize("joint", [True, False])
def test_spm_special_ids_round_trip_and_reload(tmp_path, joint):
    src = write_lines(tmp_path / "train.src", SENTS * 20)
    tgt = write_lines(tmp_path / "train.tgt", ["A man rides a bike.", "Two dogs play in snow!", "A woman laughs."] * 20)
    cfg = make_cfg("vocab.vocab_size=60", f"vocab.joint={joint}").vocab
    s, t = build_vocabs(cfg, tmp_path / "vocab", (src, tgt))
    assert (s is t) == joint
    assert (s.sp.pad_id(), s.sp.unk_id(), s.sp.bos_id(), s.sp.eos_id()) == (PAD_ID, UNK_ID, SOS_ID, EOS_ID)
    for text in SENTS:
        assert s.to_text(s.encode_batch([text])[0]) == text
    s2, t2 = load_vocabs(tmp_path / "vocab")
    assert isinstance(s2, SpmVocab) and s2.encode_batch(SENTS) == s.encode_batch(SENTS)
    assert t2.size == t.size


def test_spm_training_is_reproducible(tmp_path):
    src = write_lines(tmp_path / "s", SENTS * 30)
    cfg = make_cfg("vocab.vocab_size=50", "vocab.model_type=unigram").vocab
    a, _ = build_vocabs(cfg, tmp_path / "v1", (src, src))
    b, _ = build_vocabs(cfg, tmp_path / "v2", (src, src))
    pieces = lambda v: [(v.sp.id_to_piece(i), v.sp.get_score(i)) for i in range(v.size)]  # noqa: E731
    assert pieces(a) == pieces(b)
    assert a.encode_batch(SENTS) == b.encode_batch(SENTS)


def test_load_vocabs_missing_index_is_clear(tmp_path):
    with pytest.raises(VocabError, match="nmt.prepare"):
        load_vocabs(tmp_path)
