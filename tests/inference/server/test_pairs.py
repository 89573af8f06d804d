"""Several language pairs behind one server, for real: tiny GRUs trained on real Multi30k text
(de->en, en->de, en->fr), one nmt.serve process on 127.0.0.1, the real LibreTranslate client
(libretranslatepy) and httpx. de->fr has no model: it goes through English."""
import json
from urllib.error import HTTPError

import httpx
import pytest
from helpers import assert_one_line_error, cli, start_server, stop

from conftest import make_cfg
from nmt import Translator
from nmt.config.rules import ConfigError
from nmt.inference.server.pairs import load_pairs

GERMAN = "Ein Mann mit einem roten Hut sitzt auf einer Bank im Park."
ENGLISH = "A man in a red hat is sitting on a bench in the park."


@pytest.fixture(scope="module")
def offline(m30k_pair_runs):
    return {pair: Translator.from_checkpoint(run) for pair, run in m30k_pair_runs.items()}


@pytest.fixture(scope="module")
def server(m30k_pair_runs, tmp_path_factory):
    runs = ",".join(str(m30k_pair_runs[p]) for p in ("de-en", "en-de", "en-fr"))
    proc, url = start_server("", tmp_path_factory.mktemp("pairs"), f"serve.models=[{runs}]")
    yield url
    assert stop(proc) == 0


def test_languages_lists_every_source_with_the_targets_it_reaches(server):
    from libretranslatepy import LibreTranslateAPI

    assert LibreTranslateAPI(server).languages() == [
        {"code": "de", "name": "German", "targets": ["en", "fr"]},  # fr: through English
        {"code": "en", "name": "English", "targets": ["de", "fr"]},
        {"code": "fr", "name": "French", "targets": []}]
    info = httpx.get(f"{server}/info").json()
    assert sorted(info["pairs"]) == ["de-en", "en-de", "en-fr"] and info["pivot_pairs"] == ["de-fr"]


def test_each_pair_is_routed_to_its_own_model(server, offline):
    from libretranslatepy import LibreTranslateAPI

    lt = LibreTranslateAPI(server)
    assert lt.translate(GERMAN, "de", "en") == offline["de-en"].translate(GERMAN)[0]
    assert lt.translate(ENGLISH, "en", "de") == offline["en-de"].translate(ENGLISH)[0]
    assert lt.translate(ENGLISH, "en", "fr") == offline["en-fr"].translate(ENGLISH)[0]
    ours = httpx.post(f"{server}/translate", json={"text": [ENGLISH], "source": "en", "target": "fr"}).json()
    assert ours["translations"][0]["text"] == offline["en-fr"].translate(ENGLISH)[0]
    assert "pivot" not in ours["translations"][0]
    default = httpx.post(f"{server}/translate", json={"text": GERMAN}).json()  # neither: the first pair
    assert default["translations"][0]["text"] == offline["de-en"].translate(GERMAN)[0]


def test_a_pair_without_a_model_goes_through_english_and_says_so(server, offline):
    from libretranslatepy import LibreTranslateAPI

    de_en, en_fr = offline["de-en"], offline["en-fr"]
    paragraph = f"{GERMAN} Eine Frau liest ein Buch.\nZwei Hunde spielen im Schnee."
    layout = de_en.layouts([paragraph])[0]
    assert len(layout.sentences) == 3
    got = LibreTranslateAPI(server).translate(paragraph, "de", "fr")  # the real client, a paragraph
    # each sentence hop by hop (German -> English -> French), joined back with the paragraph's own
    # space and line break
    assert got == layout.join([en_fr.translate(de_en.translate(s)[0])[0] for s in layout.sentences])
    assert got.count("\n") == 1
    body = httpx.post(f"{server}/translate", json={"q": GERMAN, "source": "de", "target": "fr"}).json()
    assert body["pivot"] == "en" and body["translatedText"] == en_fr.translate(de_en.translate(GERMAN)[0])[0]
    ours = httpx.post(f"{server}/translate", json={"text": GERMAN, "source": "de", "target": "fr"}).json()
    assert ours["translations"][0]["pivot"] == "en"
    assert ours["translations"][0]["text"] == body["translatedText"]


def test_source_auto_guesses_each_texts_language_among_the_sources(server, offline):
    body = httpx.post(f"{server}/translate", json={"q": [GERMAN, ENGLISH], "source": "auto", "target": "fr"}).json()
    assert [d["language"] for d in body["detectedLanguage"]] == ["de", "en"]
    assert all(50 < d["confidence"] <= 100 for d in body["detectedLanguage"])  # percent, as LibreTranslate
    assert body["pivot"] == ["en", None]
    assert body["translatedText"][1] == offline["en-fr"].translate(ENGLISH)[0]
    ours = httpx.post(f"{server}/translate", json={"text": [ENGLISH], "source": "auto", "target": "de"}).json()
    assert ours["translations"][0]["detected_language"]["language"] == "en"


def test_an_unknown_pair_gets_400_with_the_pairs_served(server):
    for body in ({"q": "Un chien.", "source": "fr", "target": "de"}, {"text": "Un chien.", "source": "fr", "target": "de"}):
        r = httpx.post(f"{server}/translate", json=body)
        assert r.status_code == 400, r.text
        assert r.json() == {"error": "fr -> de is not served (this server translates de-en, en-de, en-fr, de-fr)",
                            "pairs": ["de-en", "en-de", "en-fr", "de-fr"]}
    r = httpx.post(f"{server}/translate", json={"text": "x", "source": "de"})
    assert r.status_code == 422 and "both source and target" in r.json()["error"]
    many = " ".join(["Hunde."] * 65)  # one text, 65 sentences (under serve.max_chars): the same limit as 65 texts
    r = httpx.post(f"{server}/translate", json={"text": many, "source": "de", "target": "en"})
    assert r.status_code == 413 and "65 sentences" in r.json()["error"]


def test_two_models_for_one_pair_and_unknown_languages_are_refused_at_start(m30k_pair_runs, tiny_checkpoint):
    de_en, en_fr = m30k_pair_runs["de-en"], m30k_pair_runs["en-fr"]
    rc, _, err = cli("serve", f"serve.models=[{de_en},{en_fr},{de_en}]")
    assert_one_line_error(rc, err, "both translate de->en", str(de_en))
    with pytest.raises(ConfigError, match="trained on de->en, not en-de"):
        load_pairs(make_cfg(f"serve.models={{en-de: {de_en}}}"), Translator.from_config)
    pairs = load_pairs(make_cfg(f"serve.models={{de-en: {tiny_checkpoint}, en-fr: {en_fr}}}"), Translator.from_config)
    assert [m.key for m in pairs.models] == ["de-en", "en-fr"] and [s for s in pairs.served] == ["de-en", "en-fr", "de-fr"]


def test_a_model_of_unknown_languages_needs_its_pair_named(m30k_pair_runs):
    de_en, en_fr = m30k_pair_runs["de-en"], m30k_pair_runs["en-fr"]

    def as_before_languages_were_recorded(cfg, what):
        translator = Translator.from_config(cfg, what)
        translator.info["languages"] = None
        return translator

    with pytest.raises(ConfigError, match=r"languages are not recorded.*Fix: name its pair, serve.models='\{de-en: "):
        load_pairs(make_cfg(f"serve.models=[{de_en},{en_fr}]"), as_before_languages_were_recorded)
    pairs = load_pairs(make_cfg(f"serve.models={{de-en: {de_en}, en-fr: {en_fr}}}"), as_before_languages_were_recorded)
    assert [m.key for m in pairs.models] == ["de-en", "en-fr"]
