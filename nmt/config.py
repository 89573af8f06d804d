"""Typed schemas for every Hydra config group, registered in ConfigStore.

The root config (`conf/config.yaml`) starts from the `config_schema` node stored
here, so a key that does not exist or a value of the wrong type fails when Hydra
composes the config, before any work starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


# conf/ beside the package: an absolute path, so `python -m nmt.X` and the nmt-X console scripts
# find the same configs (Hydra would read a relative path as a Python module under a script)
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


class StrEnum(str, Enum):
    """An Enum whose members print (and interpolate in configs) as their value."""

    def __str__(self) -> str:
        return self.value


class DataKind(StrEnum):
    multi30k = "multi30k"  # DIR/{train,val,test_2016_flickr}.{src,tgt}[.gz], downloaded if absent
    files = "files"  # any pair of plain or gzip text files per split
    hf = "hf"  # a Hugging Face dataset (hub name, local script/builder, or save_to_disk folder)


class VocabKind(StrEnum):
    word = "word"
    char = "char"
    spm = "spm"


class Normalization(StrEnum):
    NFC = "NFC"
    NFKC = "NFKC"
    none = "none"


@dataclass
class SplitFiles:
    """Paths of one split for `data=files` (relative to data.root unless absolute); both null:
    the split is left out."""

    src: Optional[str] = None
    tgt: Optional[str] = None


@dataclass
class DataConfig:
    kind: DataKind = DataKind.multi30k
    name: str = "multi30k"  # used in the default prepared_dir
    root: str = "data/raw/multi30k"
    src_lang: str = "de"
    tgt_lang: str = "en"
    # split name in the stored DatasetDict -> file prefix (multi30k) or HF split name (hf)
    splits: Dict[str, str] = field(
        default_factory=lambda: {"train": "train", "valid": "val", "test": "test_2016_flickr"}
    )
    # data=files: split name -> {src, tgt}
    files: Dict[str, SplitFiles] = field(default_factory=dict)
    # data=hf
    hf_name: str = ""
    hf_config: Optional[str] = None
    hf_data_files: Dict[str, str] = field(default_factory=dict)  # builder data_files, e.g. {train: a.jsonl}
    hf_field: str = "translation"  # column holding {src_lang: ..., tgt_lang: ...}; "" = flat columns
    url: str = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"


@dataclass
class PreprocessConfig:
    normalize: Normalization = Normalization.NFC
    lowercase: bool = False
    # filters, applied to the training split only
    drop_empty: bool = True
    max_words: int = 100  # drop a training pair with a side longer than this (whitespace words)
    max_ratio: float = 4.0  # drop a training pair whose longer/shorter word-count ratio exceeds this
    ratio_min_words: int = 4  # the ratio rule applies only when the longer side has this many words
    dedup: bool = False  # drop exact duplicate training pairs (after cleaning), keeping the first
    # truncation of encoded ids (all splits); target keeps SOS and EOS
    max_len: int = 128
    chunk_size: int = 20000  # pairs read, cleaned and encoded at a time (bounds memory)


@dataclass
class VocabConfig:
    kind: VocabKind = VocabKind.spm
    joint: bool = False  # true: one vocabulary for both languages (shared ids)
    # word / char
    min_freq: int = 1
    max_size: int = 0  # 0 = no limit (specials not counted)
    # spm
    model_type: str = "bpe"  # bpe | unigram
    vocab_size: int = 3000
    character_coverage: float = 1.0
    input_sentence_size: int = 1000000  # sentences sampled (shuffled, seeded) to train spm; bounds its memory; 0 = all
    seed: int = 1234
    threads: int = 2


@dataclass
class ModelConfig:
    cell: str = "gru"  # rnn | gru | lstm
    emb_dim: int = 256
    hidden_dim: int = 256
    enc_layers: int = 1
    dec_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.2
    emb_dropout: float = 0.2
    attention: str = "luong"  # none | bahdanau | luong
    input_feeding: bool = False  # luong: feed the previous attentional vector into the decoder RNN
    tie_embeddings: bool = True  # target embedding = output projection
    share_embeddings: bool = False  # source embedding = target embedding (joint vocab only)


@dataclass
class BatchingConfig:
    kind: str = "bucket"  # bucket | tokens
    batch_size: int = 64  # sentences per batch (bucket)
    max_tokens: int = 2000  # batch_size x longest padded sequence (tokens)
    bucket_width: int = 1  # length range covered by one bucket key
    pool_size: int = 1000  # tokens: about this many batches of examples are sorted together
    shuffle: bool = True
    seed: int = 1
    oversized: str = "single"  # tokens: an example over max_tokens gets its own batch | error
    num_workers: int = 0


@dataclass
class TrainConfig:
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    max_epochs: int = 30
    max_steps: int = 0  # 0 = no limit
    max_minutes: float = 0.0  # 0 = no limit
    optimizer: str = "adam"  # adam | adamw
    lr: float = 0.002
    weight_decay: float = 0.0
    clip_grad_norm: float = 1.0
    # divergence: stop (exit 1, nothing saved from then on) when a batch's per-token loss exceeds
    # max_loss_factor x ln(target vocab) (a uniform guess scores 1x) or is not finite, or a weight's
    # magnitude exceeds max_weight (checked before every validation and checkpoint); 0 = off
    max_loss_factor: float = 5.0
    max_weight: float = 1.0e4
    label_smoothing: float = 0.1
    schedule: str = "cosine"  # plateau | warmup_decay | cosine | constant
    warmup_steps: int = 200
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    min_lr: float = 1e-5
    teacher_forcing: float = 1.0
    teacher_forcing_decay: bool = False  # decay the ratio linearly to teacher_forcing_min over training
    teacher_forcing_min: float = 0.5
    validate_every: int = 0  # steps; 0 = once per epoch
    val_bleu: bool = True
    val_max_sentences: int = 0  # 0 = whole valid split
    early_stopping_metric: str = "bleu"  # bleu | loss
    patience: int = 5
    checkpoint_every: int = 500  # steps
    keep_last: int = 0  # also keep the last K saves of last.pt as step_N.pt (for nmt.average); 0 = none
    log_every: int = 50
    resume: Any = False  # false | true (this run dir) | auto (this run dir's last.pt if any) | a run dir or checkpoint
    seed: int = 1
    threads: int = 0  # torch CPU threads; 0 = all cores
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16: CUDA with grad scaler)
    deterministic: bool = False
    tensorboard: bool = True


@dataclass
class DecodeConfig:
    kind: str = "beam"  # greedy | beam
    beam_size: int = 5
    length_penalty: float = 1.0  # alpha in ((5 + len) / 6) ** alpha
    n_best: int = 1
    no_repeat_ngram: int = 0
    max_len_a: float = 1.5
    max_len_b: int = 10
    quantize: str = "none"  # none | int8 (dynamic int8 weights for CPU inference: Linear, GRU, LSTM)


@dataclass
class ServeConfig:
    """nmt.serve: the HTTP server, its dynamic batching and its limits on requests."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_wait_ms: float = 2.0  # under concurrent traffic, gather requests this long before decoding them together
    max_batch_sentences: int = 64  # sentences decoded in one batched search; 1 = batching off
    max_batch_tokens: int = 4000  # source tokens in one batch
    max_sentences: int = 64  # per request (413 above)
    max_chars: int = 1000  # per sentence (413 above)
    max_beam_size: int = 10  # the largest beam_size a request may ask for (422 above)
    max_body_bytes: int = 1000000  # request body (413 above)
    threads: int = 0  # torch CPU threads for decoding; 0 = all cores but one (left to the HTTP loop)
    graceful_seconds: int = 30  # on SIGTERM, wait this long for requests in flight
    log_level: str = "info"


@dataclass
class PlotsConfig:
    n_attention: int = 0  # attention heatmaps for the first K translated sentences


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    plots: PlotsConfig = field(default_factory=PlotsConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    prepared_dir: str = "data/${data.name}_${data.src_lang}-${data.tgt_lang}_${vocab.kind}"
    force: bool = False  # prepare: rebuild even when a matching prepared dataset exists
    # translate
    ckpt: str = ""
    split: Optional[str] = None  # a prepared split to translate (train | valid | test)
    input: Optional[str] = None  # a text file to translate ("-": all of stdin); no split, no input: stdin line by line
    output: Optional[str] = None
    # average
    inputs: List[str] = field(default_factory=list)  # checkpoints to average
    last_n: int = 0  # or: the newest last_n step_N.pt of run= (train.keep_last)
    run: str = ""  # a training run dir
    # evaluate
    hyp: str = ""
    ref: Any = None  # a file or a list of files
    metrics: List[str] = field(default_factory=lambda: ["bleu", "chrf"])
    tokenize: Optional[str] = None  # sacreBLEU tokenizer (default 13a)
    lowercase: bool = False


class ConfigError(ValueError):
    """A config value out of range or a key the schema does not have: the message names the key."""


def _at_least(low):
    return (lambda v: v >= low), f">= {low}"


def _fraction(v) -> bool:
    return 0.0 <= v < 1.0


def _choice(*options):
    return (lambda v: str(v) in options), "one of " + " | ".join(options)


# key -> (test, what it must be); checked by `check_config` after composition
RULES = {
    "vocab.vocab_size": _at_least(5), "vocab.min_freq": _at_least(1), "vocab.max_size": _at_least(0),
    "vocab.model_type": _choice("bpe", "unigram"), "vocab.threads": _at_least(1),
    "vocab.input_sentence_size": _at_least(0),
    "vocab.character_coverage": ((lambda v: 0.0 < v <= 1.0), "in (0, 1]"),
    "preprocess.max_len": _at_least(2), "preprocess.chunk_size": _at_least(1),
    "preprocess.max_words": _at_least(1), "preprocess.max_ratio": _at_least(1.0),
    "model.cell": _choice("rnn", "gru", "lstm"), "model.attention": _choice("none", "luong", "bahdanau"),
    "model.emb_dim": _at_least(1), "model.hidden_dim": _at_least(1),
    "model.enc_layers": _at_least(1), "model.dec_layers": _at_least(1),
    "model.dropout": (_fraction, "in [0, 1)"), "model.emb_dropout": (_fraction, "in [0, 1)"),
    "train.batching.kind": _choice("bucket", "tokens"), "train.batching.batch_size": _at_least(1),
    "train.batching.max_tokens": _at_least(1), "train.batching.bucket_width": _at_least(1),
    "train.batching.pool_size": _at_least(1), "train.batching.oversized": _choice("single", "error"),
    "train.batching.num_workers": _at_least(0),
    "train.max_epochs": _at_least(1), "train.max_steps": _at_least(0), "train.max_minutes": _at_least(0),
    "train.optimizer": _choice("adam", "adamw"), "train.lr": ((lambda v: v > 0), "> 0"),
    "train.weight_decay": _at_least(0), "train.clip_grad_norm": _at_least(0),
    "train.max_loss_factor": _at_least(0), "train.max_weight": _at_least(0),
    "train.label_smoothing": (_fraction, "in [0, 1)"),
    "train.schedule": _choice("plateau", "warmup_decay", "cosine", "constant"),
    "train.warmup_steps": _at_least(0), "train.min_lr": _at_least(0),
    "train.plateau_factor": ((lambda v: 0.0 < v < 1.0), "in (0, 1)"), "train.plateau_patience": _at_least(0),
    "train.teacher_forcing": ((lambda v: 0.0 <= v <= 1.0), "in [0, 1]"),
    "train.teacher_forcing_min": ((lambda v: 0.0 <= v <= 1.0), "in [0, 1]"),
    "train.validate_every": _at_least(0), "train.val_max_sentences": _at_least(0),
    "train.early_stopping_metric": _choice("bleu", "loss"), "train.patience": _at_least(1),
    "train.checkpoint_every": _at_least(1), "train.keep_last": _at_least(0), "train.log_every": _at_least(1), "train.threads": _at_least(0),
    "train.device": _choice("auto", "cpu", "cuda"), "train.precision": _choice("fp32", "bf16", "fp16"),
    "decode.kind": _choice("greedy", "beam"), "decode.quantize": _choice("none", "int8"), "decode.beam_size": _at_least(1), "decode.n_best": _at_least(1),
    "decode.no_repeat_ngram": _at_least(0), "decode.max_len_a": _at_least(0), "decode.max_len_b": _at_least(0),
    "plots.n_attention": _at_least(0), "last_n": _at_least(0),
    "serve.port": ((lambda v: 0 <= v <= 65535), "in [0, 65535]"), "serve.max_wait_ms": _at_least(0),
    "serve.max_batch_sentences": _at_least(1), "serve.max_batch_tokens": _at_least(1),
    "serve.max_sentences": _at_least(1), "serve.max_chars": _at_least(1), "serve.max_beam_size": _at_least(1),
    "serve.max_body_bytes": _at_least(1), "serve.threads": _at_least(0), "serve.graceful_seconds": _at_least(0),
    "serve.log_level": _choice("critical", "error", "warning", "info", "debug", "trace"),
}


def check_config(cfg) -> None:
    """Refuse what composition lets through: keys the schema does not have (added with `+`) and
    values outside their range. Raises ConfigError naming the key, the value and the fix."""
    import difflib

    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError

    try:
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.to_container(cfg, resolve=False))
    except ConfigKeyError as err:
        key = err.full_key or str(err.key)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        node = OmegaConf.select(cfg, parent) if parent else cfg
        known = [k for k in node.keys() if k != err.key] if node is not None else []
        close = difflib.get_close_matches(str(err.key), [str(k) for k in known], n=1)
        hint = f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""
        raise ConfigError(f"{key}: no such config key{hint}. Fix: drop it or correct its name; "
                          "`--cfg job` prints every key") from None
    for key, (ok, what) in RULES.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and not ok(value):
            raise ConfigError(f"{key}={value}: must be {what}. Fix: {key}=<value {what}>")
    if cfg.decode.n_best > cfg.decode.beam_size and str(cfg.decode.kind) == "beam":
        raise ConfigError(f"decode.n_best={cfg.decode.n_best} exceeds decode.beam_size={cfg.decode.beam_size}. "
                          "Fix: decode.n_best <= decode.beam_size")


def register_configs() -> None:
    """Store the schema so `conf/config.yaml` can name it in its defaults list."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)


register_configs()
