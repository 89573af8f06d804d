"""Shared fixtures: the real config composed with overrides, and the real Multi30k."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import nmt.config.schema  # noqa: F401  (registers the schema)

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"


def make_cfg(*overrides: str):
    """Compose conf/config.yaml exactly as the entry points do, with overrides."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def write_lines(path: Path, lines: list[str] | bytes, gz: bool = False) -> Path:
    data = lines if isinstance(lines, bytes) else "".join(f"{l}\n" for l in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    if not (MULTI30K / "train.de.gz").is_file():
        pytest.fail(f"{MULTI30K} is missing: the tests need ../shared beside the checkout")
    return MULTI30K


@pytest.fixture(scope="session")
def prepared_spm(tmp_path_factory, multi30k_dir) -> Path:
    """Multi30k de->en prepared once per session with the default (spm) vocab."""
    from nmt.data.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "m30k_spm"
    prepare(make_cfg(f"data.root={multi30k_dir}", f"prepared_dir={out}"))
    return out


@pytest.fixture(scope="session")
def prepared_spm_joint(tmp_path_factory, multi30k_dir) -> Path:
    """Multi30k de->en prepared once per session with one joint SentencePiece vocabulary
    (vocab=joint: what an Argos package carries)."""
    from nmt.data.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "m30k_spm_joint"
    prepare(make_cfg(f"data.root={multi30k_dir}", "vocab=joint", f"prepared_dir={out}"))
    return out


TINY_DE = ["ein hund läuft", "zwei katzen schlafen", "der mann isst brot", "die frau liest ein buch",
           "ein kind spielt ball", "drei vögel singen", "der hund schläft", "die katze läuft",
           "ein mann liest", "zwei kinder essen brot", "die vögel fliegen", "der ball ist rot"]
TINY_EN = ["a dog runs", "two cats sleep", "the man eats bread", "the woman reads a book",
           "a child plays ball", "three birds sing", "the dog sleeps", "the cat runs",
           "a man reads", "two children eat bread", "the birds fly", "the ball is red"]


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """A 36-pair word-level corpus (12 sentences, 3 copies) prepared once: fast training tests."""
    from nmt.data.prepare import prepare

    d = tmp_path_factory.mktemp("tiny")
    for split, n in (("train", 3), ("val", 1), ("test_2016_flickr", 1)):
        write_lines(d / f"{split}.de", TINY_DE * n)
        write_lines(d / f"{split}.en", TINY_EN * n)
    out = d / "prepared"
    prepare(make_cfg(f"data.root={d}", f"prepared_dir={out}", "vocab=word", "vocab.min_freq=1"))
    return out


def write_tiny_corpus(folder: Path, de=TINY_DE, en=TINY_EN, copies: int = 1) -> Path:
    """`folder` holding train, val and test_2016_flickr in German and English, Multi30k's names."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test_2016_flickr"):
        write_lines(folder / f"{split}.de", list(de) * copies)
        write_lines(folder / f"{split}.en", list(en) * copies)
    return folder


TINY_MODEL = ["model.emb_dim=32", "model.hidden_dim=32", "train.batching.batch_size=4", "train.log_every=5",
              "train.tensorboard=false", "train.threads=1"]


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_prepared, tmp_path_factory) -> Path:
    """A tiny GRU with attention trained until it reproduces the tiny corpus."""
    from nmt.cli.train import run

    run_dir = tmp_path_factory.mktemp("tiny_run")
    run(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, "model.dropout=0", "model.emb_dropout=0",
                 "train.label_smoothing=0", "train.lr=0.01", "train.max_epochs=40", "train.schedule=constant",
                 "train.patience=100", "train.early_stopping_metric=loss"), run_dir)
    return run_dir / "checkpoints" / "best.pt"


TINY_TRANSFORMER = ["model=transformer", "model.emb_dim=32", "model.heads=2", "model.ff_dim=64", "model.enc_layers=2",
                    "model.dec_layers=2"]


@pytest.fixture(scope="session")
def tiny_transformer_checkpoint(tiny_prepared, tmp_path_factory) -> Path:
    """A tiny Transformer trained until it reproduces the tiny corpus."""
    from nmt.cli.train import run

    run_dir = tmp_path_factory.mktemp("tiny_transformer_run")
    run(make_cfg(f"prepared_dir={tiny_prepared}", *TINY_MODEL, *TINY_TRANSFORMER, "model.dropout=0",
                 "model.emb_dropout=0", "train.label_smoothing=0", "train.lr=0.005", "train.warmup_steps=20",
                 "train.max_epochs=40", "train.schedule=constant", "train.patience=100",
                 "train.early_stopping_metric=loss"), run_dir)
    return run_dir / "checkpoints" / "best.pt"


@pytest.fixture(scope="module", params=["rnn", "transformer"])
def family_checkpoint(request) -> Path:
    """The tiny checkpoint of each model family in turn (GRU with attention, Transformer)."""
    return request.getfixturevalue("tiny_checkpoint" if request.param == "rnn" else "tiny_transformer_checkpoint")


# emb 64, 2 + 1 layers: 200 steps give sentence-like output (not the corpus' toy words), and
# ties between two next pieces, where fp32 rounding could pick either, stay rare
SMALL_TRANSFORMER = ["model=transformer", "model.emb_dim=64", "model.heads=4", "model.ff_dim=128",
                     "model.enc_layers=2", "model.dec_layers=1"]


@pytest.fixture(scope="session")
def m30k_transformer(prepared_spm, tmp_path_factory) -> Path:
    """A run folder: 200 steps on Multi30k de->en; its recommended checkpoint is best.pt."""
    from nmt.cli.train import run

    run_dir = tmp_path_factory.mktemp("m30k_transformer")
    run(make_cfg(f"prepared_dir={prepared_spm}", *TINY_MODEL, *SMALL_TRANSFORMER, "train.batching.batch_size=64",
                 "train.max_steps=200", "train.warmup_steps=30", "train.lr=0.002", "train.schedule=constant", "train.val_max_sentences=100",
                 "train.average_last=0", "train.length_penalties=[]"), run_dir)
    return run_dir


@pytest.fixture(scope="session")
def m30k_transformer_joint(prepared_spm_joint, tmp_path_factory) -> Path:
    """m30k_transformer's run on the joint vocabulary (what export.format=argos takes)."""
    from nmt.cli.train import run

    run_dir = tmp_path_factory.mktemp("m30k_transformer_joint")
    run(make_cfg(f"prepared_dir={prepared_spm_joint}", *TINY_MODEL, *SMALL_TRANSFORMER, "train.batching.batch_size=64",
                 "train.max_steps=200", "train.warmup_steps=30", "train.lr=0.002", "train.schedule=constant",
                 "train.val_max_sentences=100", "train.average_last=0", "train.length_penalties=[]"), run_dir)
    return run_dir


PAIRS = (("de", "en"), ("en", "de"), ("en", "fr"))


@pytest.fixture(scope="session")
def m30k_pair_runs(tmp_path_factory, multi30k_dir) -> dict[str, Path]:
    """Run folders of tiny GRUs on real text, one per pair of PAIRS ("de-en": RUN, ...): the
    first 3,000 Multi30k training pairs, word vocabularies, 80 steps; each knows its languages."""
    from nmt.cli.train import run
    from nmt.data.prepare import prepare

    corpus = tmp_path_factory.mktemp("m30k_small")
    for split, n in (("train", 3000), ("val", 60), ("test_2016_flickr", 60)):
        for lang in ("de", "en", "fr"):
            with gzip.open(multi30k_dir / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                write_lines(corpus / f"{split}.{lang}", [next(f).rstrip("\n") for _ in range(n)])
    runs = {}
    for src, tgt in PAIRS:
        prepared = corpus / f"prepared_{src}-{tgt}"
        langs = [f"data.root={corpus}", f"data.src_lang={src}", f"data.tgt_lang={tgt}", f"prepared_dir={prepared}"]
        prepare(make_cfg(*langs, "vocab=word", "vocab.min_freq=2"))
        runs[f"{src}-{tgt}"] = run_dir = corpus / f"run_{src}-{tgt}"
        run(make_cfg(*langs, "vocab=word", *TINY_MODEL, "train.batching.batch_size=32", "train.max_steps=80",
                     "train.val_max_sentences=30", "train.length_penalties=[]", "train.average_last=0"), run_dir)
    return runs
