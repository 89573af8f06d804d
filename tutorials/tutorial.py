"""What every tutorial notebook shares: the real Multi30k corpus, the project's Hydra config, a
small slice of Multi30k prepared by nmt's own `prepare` stage, and small models trained by nmt's
own `train` stage, all in a temporary folder of the notebook's own (nothing is downloaded).

    from tutorial import read_pairs, prepare_slice, train_small
    pairs = read_pairs("train", 5)                     # [(German, English), ...]
    prepared = prepare_slice(work, n_train=6000)       # nmt.data.prepare on the first 6,000 pairs
    run = train_small(prepared, work / "gru", "train.max_steps=200")   # nmt.cli.train.run
"""
from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import tqdm  # noqa: E402

_tqdm_init = tqdm.tqdm.__init__


def _quiet_tqdm(self, *args, **kwargs):
    kwargs["disable"] = True
    _tqdm_init(self, *args, **kwargs)


# progress bars are for terminals, not notebooks: every tqdm bar nmt opens from here on is off
tqdm.tqdm.__init__ = _quiet_tqdm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"
FILES = {"train": "train", "valid": "val", "test": "test_2016_flickr"}

# a small GRU with attention: trains a few hundred steps in seconds on 2 cores
SMALL = ["model.emb_dim=64", "model.hidden_dim=64", "train.batching.batch_size=64", "train.tensorboard=false",
         "train.log_every=50", "train.val_max_sentences=100", "train.length_penalties=[]", "train.average_last=0",
         "train.warmup_steps=20", "train.schedule=constant", "train.precision=fp32", "train.checkpoint_every=100000"]


def read_lines(split: str, lang: str, n: int | None = None) -> list[str]:
    """The first `n` lines (all: None) of a Multi30k split ("train", "valid", "test") in `lang`."""
    with gzip.open(MULTI30K / f"{FILES[split]}.{lang}.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    return lines[:n] if n else lines


def read_pairs(split: str, n: int | None = None, src: str = "de", tgt: str = "en") -> list[tuple[str, str]]:
    return list(zip(read_lines(split, src, n), read_lines(split, tgt, n)))


def config(*overrides: str):
    """conf/config.yaml composed with `overrides`, exactly as the programs compose it."""
    from hydra import compose, initialize_config_dir

    import nmt.config.schema  # noqa: F401  (registers the schema)

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def workdir(name: str) -> Path:
    """A fresh temporary folder for one notebook's files."""
    return Path(tempfile.mkdtemp(prefix=f"nmt-tutorial-{name}-"))


def prepare_slice(work: Path, n_train: int = 6000, n_eval: int = 300, vocab: str = "word",
                  *overrides: str) -> Path:
    """The first `n_train` training pairs and `n_eval` val and test pairs of Multi30k de-en,
    prepared by nmt's prepare stage (`vocab`: word | char | spm) into work/prepared_VOCAB."""
    from nmt.data.prepare import prepare

    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_eval), ("test", n_eval)):
        for lang in ("de", "en"):
            (corpus / f"{FILES[split]}.{lang}").write_text("\n".join(read_lines(split, lang, n)) + "\n", encoding="utf-8")
    out = work / f"prepared_{vocab}"
    extra = ["vocab.min_freq=2"] if vocab == "word" else []
    prepare(config(f"data.root={corpus}", f"prepared_dir={out}", f"vocab={vocab}", *extra, *overrides))
    return out


def train_small(prepared: Path, run_dir: Path, *overrides: str) -> Path:
    """A small model trained by nmt.train on `prepared` (SMALL, then `overrides`); its run folder."""
    from nmt.cli.train import run

    run(config(f"prepared_dir={prepared}", *SMALL, *overrides), run_dir)
    return run_dir
