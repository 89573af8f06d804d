"""The Checkpoint type: named fields, atomic hashed save, loading without running code, old
files (written before the type existed) still loading and translating as they did."""
import json
import pickle
from pathlib import Path

import pytest
import torch
from helpers import Payload

from conftest import TINY_MODEL, make_cfg, write_tiny_corpus
from nmt import Translator
from nmt.cli.train import run as train
from nmt.runs.checkpoint import CHECKPOINT_VERSION, Checkpoint, CheckpointError

DATA = Path(__file__).parents[1] / "fixtures"
LEGACY = DATA / "checkpoint_v2_tiny.pt"  # written by nmt before the Checkpoint type (version 2)
LEGACY_MODEL = ["model.emb_dim=8", "model.hidden_dim=8"]


def test_save_and_load_round_trip_with_plain_contents_only(tiny_checkpoint, tmp_path):
    ckpt = Checkpoint.load(tiny_checkpoint, for_training=True)
    assert ckpt.version == CHECKPOINT_VERSION and ckpt.training is not None
    ckpt.save(tmp_path / "copy.pt")
    again = Checkpoint.load(tmp_path / "copy.pt", for_training=True)
    assert again.weights.keys() == ckpt.weights.keys()
    assert all(torch.equal(again.weights[k], ckpt.weights[k]) for k in ckpt.weights)
    assert (again.model_config, again.progress, again.vocab_files) == (ckpt.model_config, ckpt.progress,
                                                                       ckpt.vocab_files)
    assert again.training.sampler == ckpt.training.sampler
    # nothing but tensors and plain values: torch's own safe loader reads it with no allow-list
    raw = torch.load(tmp_path / "copy.pt", weights_only=True)
    assert raw["checkpoint_version"] == CHECKPOINT_VERSION and isinstance(raw["vocab_files"], dict)
    assert [p.name for p in tmp_path.iterdir()] == ["copy.pt"]  # no scratch file left


def test_info_names_the_model_the_data_and_the_progress(tiny_checkpoint):
    info = Checkpoint.load(tiny_checkpoint).info()
    assert info["model"]["cell"] == "gru" and info["vocab"]["kind"] == "word"
    assert info["languages"] == {"src": "de", "tgt": "en"} and info["step"] > 0
    assert info["best_valid"]["metric"] == "loss" and info["best_valid"]["step"] > 0


def test_version_2_checkpoint_loads_and_translates_as_it_did():
    ckpt = Checkpoint.load(LEGACY, for_training=True)
    assert ckpt.version == 2 and ckpt.progress["step"] == 27 and len(ckpt.training.rng_per_rank) == 1
    expected = json.loads((DATA / "checkpoint_v2_tiny.expected.json").read_text())
    assert Translator.from_checkpoint(LEGACY, decode="greedy").translate(expected["source"]) == expected["greedy"]
    beam = Translator.from_checkpoint(LEGACY, decode="beam", beam_size=3)
    assert beam.options.length_penalty == 1.0  # written before train chose one on val
    assert beam.translate(expected["source"]) == expected["beam3"]


def test_version_2_checkpoint_resumes_training(tiny_prepared, tmp_path):
    # the legacy file was trained on the same tiny corpus as tiny_prepared, so the vocabularies match
    summary = train(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, *LEGACY_MODEL, "train.max_steps=30",
                             "train.schedule=constant", f"train.resume={LEGACY}"), tmp_path)
    assert summary.steps == 30
    assert Checkpoint.load(tmp_path / "checkpoints/last.pt").version == CHECKPOINT_VERSION


def test_resuming_may_change_regularization_but_not_the_model(tiny_prepared, tmp_path):
    # the legacy file predates model.word_dropout: resuming with it (and other dropout) is allowed
    base = [f"prepared_dir={tiny_prepared}", *TINY_MODEL, *LEGACY_MODEL, "train.max_steps=30", "train.schedule=constant",
            f"train.resume={LEGACY}"]
    summary = train(make_cfg(*base, "model.word_dropout=0.2", "model.dropout=0.3"), tmp_path / "regularized")
    assert summary.steps == 30
    with pytest.raises(CheckpointError, match=r"model.hidden_dim=8 in the checkpoint, 16 now"):
        train(make_cfg(*base, "model.hidden_dim=16"), tmp_path / "wider")


def test_a_pickle_that_would_run_code_is_refused_before_any_of_it_runs(tiny_checkpoint, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    payload = Checkpoint.load(tiny_checkpoint).payload()
    torch.save({"checkpoint_version": 1, **payload, "extra": Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"refused: the file would call .*system"):
        Checkpoint.load(evil)
    with pytest.raises(CheckpointError, match="refused"):
        Translator.from_checkpoint(evil)
    assert not marker.exists()
    # the same file under plain pickle runs the payload: the test's file really is hostile
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Checkpoint.load(tmp_path / "nope.pt")
    torch.save({"weights": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an nmt checkpoint"):
        Checkpoint.load(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_bytes(pickle.dumps("hello"))
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        Checkpoint.load(tmp_path / "text.pt")


def test_preparing_the_same_data_twice_gives_the_same_vocabulary_fingerprint(tmp_path):
    """Two spm preparations of one corpus hold the same pieces, though the .model bytes carry
    each run's scratch paths: a checkpoint of one reads the other's splits and ensembles with
    its models. Another vocabulary size is another fingerprint."""
    from nmt.data.prepare import prepare
    from nmt.runs.checkpoint import vocab_files, vocab_fingerprint

    write_tiny_corpus(tmp_path, copies=3)
    prints = {}
    for name, size in (("a", 40), ("b", 40), ("c", 45)):
        prepare(make_cfg(f"data.root={tmp_path}", f"prepared_dir={tmp_path / name}", f"vocab.vocab_size={size}"))
        prints[name] = vocab_fingerprint(vocab_files(tmp_path / name / "vocab"))
    assert prints["a"] == prints["b"] != prints["c"]
