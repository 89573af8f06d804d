"""Paragraphs in, paragraphs out: the sentence splitter keeps every character, and the Translator
(so nmt.translate) translates a paragraph as its sentences joined with the text's own whitespace."""
import pytest
from helpers import cli

from conftest import TINY_DE, TINY_EN
from nmt import Translator
from nmt.inference.sentences import split_text


@pytest.mark.parametrize("text,language,sentences", [
    ("Ein Hund rennt. Zwei Männer, z. B. Herr Dr. Müller, sitzen im Park.", "de",
     ["Ein Hund rennt.", "Zwei Männer, z. B. Herr Dr. Müller, sitzen im Park."]),
    ("A dog runs!  Two cats sleep?\n\nThe end", "en", ["A dog runs!", "Two cats sleep?", "The end"]),
    ("Pes běží. Dva muži sedí v parku.", "cs", ["Pes běží.", "Dva muži sedí v parku."]),
    ("Un chien court.\r\nDeux hommes sont assis.", "fr", ["Un chien court.", "Deux hommes sont assis."]),
    ("a line that goes on\nto the next line", "en", ["a line that goes on", "to the next line"]),
    ("Es ist 3.5 m hoch.", "de", ["Es ist 3.5 m hoch."]),
])
def test_split_keeps_every_character_and_finds_the_sentences(text, language, sentences):
    layout = split_text(text, language)
    assert layout.sentences == sentences
    assert "".join(content for _, content in layout.parts) == text
    upper = [s.upper() for s in sentences]
    joined = layout.join(upper)
    if len(sentences) > 1:  # the text's own whitespace and line breaks around the translations
        assert joined.count("\n") == text.count("\n") and joined.count("\r") == text.count("\r")
        rest = text
        for s in sentences:
            rest = rest.replace(s, s.upper(), 1)
        assert joined == rest
    else:  # one sentence in, one sentence out
        assert joined == upper[0]


def test_empty_and_blank_texts_are_one_empty_sentence():
    assert split_text("", "de").sentences == [""] and split_text("  \n ", "de").sentences == [""]


def test_the_translator_translates_paragraphs_as_their_sentences(tiny_checkpoint):
    tr = Translator.from_checkpoint(tiny_checkpoint, decode="greedy")
    text = f"{TINY_DE[0]}\n{TINY_DE[1]}\r\n\n{TINY_DE[2]}  "  # the tiny corpus is lowercase: lines split it
    got = tr.translate([text, TINY_DE[3]])
    assert got == [f"{TINY_EN[0]}\n{TINY_EN[1]}\r\n\n{TINY_EN[2]}  ", TINY_EN[3]]
    detailed = tr.translate_detailed([text])[0]
    assert [s.text for s in detailed.sentences] == TINY_EN[:3] and detailed.text == got[0]
    assert detailed.score == pytest.approx(sum(s.score for s in detailed.sentences))
    assert detailed.confidence is None  # no calibration
    tr.split_sentences = False  # the switch: the whole text is one sentence
    assert "\n" not in tr.translate([text])[0]


def test_nmt_translate_keeps_a_lines_sentences_on_its_line(m30k_transformer, tmp_path):
    src = tmp_path / "in.de"
    src.write_text("Ein Hund rennt. Zwei Männer sitzen auf einer Bank.\nEine Frau liest.\n", encoding="utf-8")
    rc, out, err = cli("translate", f"ckpt={m30k_transformer}", f"translate.input={src}", "translate.output=-",
                       "decode=greedy", f"hydra.run.dir={tmp_path}/run")
    assert rc == 0, err
    tr = Translator.from_checkpoint(m30k_transformer, decode="greedy")
    first = tr.translate(["Ein Hund rennt.", "Zwei Männer sitzen auf einer Bank."])
    assert out.splitlines() == [" ".join(first), tr.translate("Eine Frau liest.")[0]]
    scores = (tmp_path / "run" / "sentences.in.de.tsv").read_text().splitlines()
    assert scores[0] == "line\tlog_probability\tconfidence" and len(scores) == 3
    assert all(row.split("\t")[2] == "null" for row in scores[1:])  # no calibration: null, not a number
    rc, out, err = cli("translate", f"ckpt={m30k_transformer}", f"translate.input={src}", "translate.output=-",
                       "decode=greedy", "translate.split_sentences=false", f"hydra.run.dir={tmp_path}/run2")
    whole = tr.translate("Ein Hund rennt. Zwei Männer sitzen auf einer Bank.", )
    tr.split_sentences = False
    assert rc == 0 and out.splitlines()[0] == tr.translate("Ein Hund rennt. Zwei Männer sitzen auf einer Bank.")[0]
    assert whole[0] == " ".join(first)


def test_paragraphs_of_real_test_sentences_score_as_the_sentences_one_by_one(m30k_transformer, multi30k_dir):
    """test_2016_flickr cut into paragraphs of 1-5 sentences (a space or a line break between):
    the same BLEU as the sentences translated one by one, every line break kept (bench/paragraphs.py
    measures it on a trained model)."""
    import gzip
    import random

    from nmt.analysis.scoring import score_corpus

    read = lambda lang: gzip.open(multi30k_dir / f"test_2016_flickr.{lang}.gz", "rt").read().splitlines()[:120]
    src, ref = read("de"), read("en")
    tr = Translator.from_checkpoint(m30k_transformer, decode="greedy")
    alone = [tr.translate(s)[0] for s in src]
    rng, texts, joined_refs, joined_alone, i = random.Random(3), [], [], [], 0
    while i < len(src):
        k = rng.randint(1, 5)
        seps = ["\n" if rng.random() < 1 / 3 else " " for _ in range(k - 1)] + [""]
        texts.append("".join(s + sep for s, sep in zip(src[i:i + k], seps)))
        joined_refs.append(" ".join(ref[i:i + k]))
        joined_alone.append(" ".join(alone[i:i + k]))
        i += k
    got = tr.translate(texts)
    assert [t.count("\n") for t in got] == [t.count("\n") for t in texts]
    bleu = lambda hyps: score_corpus([h.replace("\n", " ") for h in hyps], [joined_refs], ("bleu",))[0]["score"]
    assert abs(bleu(got) - bleu(joined_alone)) <= 0.1
    assert sum(len(tr.layouts([t])[0].sentences) > 1 for t in texts) >= len(texts) // 2  # real paragraphs
