"""The config as the single source of truth: defaults in the schema, choices as Enums checked
at composition, cross-field rules in check_config, old flat spellings moved to their groups."""
import dataclasses

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from conftest import make_cfg
from nmt.config.choices import SearchKind
from nmt.config.rules import ConfigError, check_config, upgrade_deprecated_keys
from nmt.config.schema import Config, DecodeConfig, ModelConfig, TrainConfig
from nmt.inference.translator import search_options


def test_defaults_come_from_the_schema():
    cfg = make_cfg()
    assert cfg.train == OmegaConf.structured(TrainConfig)
    assert cfg.model == OmegaConf.structured(ModelConfig)
    assert cfg.decode == OmegaConf.structured(DecodeConfig)
    greedy = make_cfg("decode=greedy").decode
    assert (greedy.kind, greedy.beam_size, greedy.max_len_a) == ("greedy", 1, DecodeConfig.max_len_a)
    assert make_cfg("model=lstm").model.cell == "lstm" and make_cfg("vocab=word").vocab.min_freq == 2


@pytest.mark.parametrize("override", ["model.cell=transformer", "model.attention=dot", "train.optimizer=sgd",
                                      "train.schedule=linear", "decode.kind=sample", "decode.quantize=int4",
                                      "train.batching.kind=sentences", "scoring.metrics=[bleu,meteor]"])
def test_every_choice_is_checked_when_the_config_is_composed(override):
    with pytest.raises(ConfigCompositionException):
        make_cfg(override)


@pytest.mark.parametrize("overrides,message", [
    (["decode.beam_size=2", "decode.n_best=3"], "decode.n_best=3 exceeds decode.beam_size=2"),
    (["train.val_bleu=false"], "early_stopping_metric=bleu needs train.val_bleu=true"),
    (["model.attention=bahdanau", "model.input_feeding=true"], "input_feeding needs model.attention=luong"),
    (["train.precision=fp16"], "fp16 needs CUDA"),
    (["average.last_n=-1"], "average.last_n=-1: must be >= 0"),
])
def test_rules_between_fields(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(make_cfg(*overrides))
    check_config(make_cfg())  # the defaults pass


def test_old_flat_keys_move_to_their_groups_for_the_program_that_reads_them(capsys):
    cfg = make_cfg("input=a.de", "output=b.en", "ref=c.en", "split=test", "metrics=[bleu]")
    assert upgrade_deprecated_keys(cfg, "translate") == ["split", "input", "output", "ref", "metrics"]
    t = cfg.translate
    assert (t.input, t.output, t.ref, t.split, list(cfg.scoring.metrics)) == ("a.de", "b.en", "c.en", "test", ["bleu"])
    assert cfg.input is None and "`input=` is deprecated" in capsys.readouterr().err
    cfg = make_cfg("output=avg.pt", "last_n=3", "run=RUN")
    upgrade_deprecated_keys(cfg, "average")
    assert (cfg.average.output, cfg.average.last_n, cfg.average.run) == ("avg.pt", 3, "RUN")
    cfg = make_cfg("hyp=h.txt", "ref=[r1,r2]")
    upgrade_deprecated_keys(cfg, "evaluate")
    assert cfg.evaluate.hyp == "h.txt" and list(cfg.evaluate.ref) == ["r1", "r2"]
    cfg = make_cfg("force=true")
    upgrade_deprecated_keys(cfg, "prepare")
    assert cfg.prepare.force is True
    assert {f.name for f in dataclasses.fields(Config)} >= {"translate", "evaluate", "average", "scoring", "prepare"}


def test_one_rule_for_greedy_or_beam():
    assert search_options("greedy").kind == SearchKind.greedy
    assert search_options("greedy", beam_size=4).kind == SearchKind.beam
    assert search_options("beam", beam_size=1).kind == SearchKind.greedy
    assert search_options(make_cfg("decode=beam").decode, length_penalty=0.6).length_penalty == 0.6
    with pytest.raises(ValueError, match="n_best=3 exceeds"):
        search_options("beam", beam_size=2, n_best=3)
    with pytest.raises(ValueError):
        search_options("sample")
