"""The configuration: one typed schema for every program and its defaults.

Defaults live here, in the dataclasses, and nowhere else: the YAML files under `conf/` only
say what a group option changes (`model=lstm` sets `cell: lstm`). Every choice is an Enum, so
Hydra refuses an unknown value when it composes the config; `nmt.config_rules.check_config`
then refuses keys the schema does not have, values out of range, and combinations of fields
that do not go together. Nothing downstream checks a config value again.

Per-program keys are grouped (`translate.input`, `evaluate.hyp`, `average.last_n`, ...); the
old flat spellings (`input=`, `hyp=`, ...) still work for one release, with a note
(`nmt.config_rules.upgrade_deprecated_keys`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

# conf/ beside the package: an absolute path, so `python -m nmt.X` and the nmt-X console scripts
# find the same configs (Hydra would read a relative path as a Python module under a script)
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


class StrEnum(str, Enum):
    """An Enum whose members compare equal to, print and interpolate as their value."""

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


class SpmModelType(StrEnum):
    bpe = "bpe"
    unigram = "unigram"


class Normalization(StrEnum):
    NFC = "NFC"
    NFKC = "NFKC"
    none = "none"


class Arch(StrEnum):
    rnn = "rnn"  # embedding + RNN/GRU/LSTM encoder-decoder (model.cell)
    transformer = "transformer"


class Cell(StrEnum):
    rnn = "rnn"
    gru = "gru"
    lstm = "lstm"


class AttentionKind(StrEnum):
    none = "none"
    luong = "luong"
    bahdanau = "bahdanau"


class BatchKind(StrEnum):
    bucket = "bucket"  # a fixed number of sentences of similar lengths
    tokens = "tokens"  # a token budget


class Oversized(StrEnum):
    single = "single"  # an example over the token budget gets a batch of its own
    error = "error"


class OptimizerKind(StrEnum):
    adam = "adam"
    adamw = "adamw"


class Schedule(StrEnum):
    plateau = "plateau"
    warmup_decay = "warmup_decay"
    cosine = "cosine"
    constant = "constant"


class StopMetric(StrEnum):
    bleu = "bleu"
    loss = "loss"


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    auto = "auto"  # bf16 where the device computes it natively (AVX-512 BF16 or AMX CPUs, bf16 GPUs), else fp32


class SearchKind(StrEnum):
    greedy = "greedy"
    beam = "beam"


class Quantize(StrEnum):
    none = "none"
    int8 = "int8"


class Metric(StrEnum):
    bleu = "bleu"
    chrf = "chrf"
    ter = "ter"


class LogLevel(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


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
    root: str = "data/raw/multi30k"  # downloaded here when the files are absent; offline: ../shared/data/multi30k
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
    min_freq: int = 1  # rarer units map to UNK
    max_size: int = 0  # 0 = no limit (specials not counted)
    # spm; 3k + 3k beat 5k + 5k on Multi30k (val BLEU, 10-minute runs)
    model_type: SpmModelType = SpmModelType.bpe
    vocab_size: int = 3000  # per language (joint: in all)
    character_coverage: float = 1.0
    input_sentence_size: int = 1000000  # sentences sampled (shuffled, seeded) to train spm; bounds its memory; 0 = all
    seed: int = 1234
    threads: int = 2


@dataclass
class ModelConfig:
    """Reference size: bidirectional 1-layer GRU encoder, 1-layer GRU decoder with attention.
    arch=transformer reads emb_dim (d_model), heads, ff_dim, enc/dec_layers, dropout,
    emb_dropout, word_dropout, tie/share_embeddings; the RNN-only keys (cell, hidden_dim, bidirectional,
    attention, input_feeding) do not apply to it."""

    arch: Arch = Arch.rnn
    cell: Cell = Cell.gru
    emb_dim: int = 256
    hidden_dim: int = 256  # per direction in the encoder
    enc_layers: int = 1
    dec_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.2  # between layers and before the output projection
    emb_dropout: float = 0.2
    word_dropout: float = 0.0  # training: drop whole source and target tokens' embeddings (Sennrich & Zhang 2019)
    attention: AttentionKind = AttentionKind.luong
    input_feeding: bool = False  # luong: feed the previous attentional vector into the decoder RNN
    tie_embeddings: bool = True  # target embedding = output projection: 8+ BLEU sooner on Multi30k
    share_embeddings: bool = False  # source embedding = target embedding (joint vocab only)
    heads: int = 4  # transformer: attention heads (emb_dim must be a multiple)
    ff_dim: int = 1024  # transformer: feed-forward inner size


@dataclass
class BatchingConfig:
    kind: BatchKind = BatchKind.bucket
    batch_size: int = 64  # sentences per batch (bucket)
    max_tokens: int = 2000  # batch_size x longest padded sequence (tokens)
    bucket_width: int = 1  # length range covered by one bucket key
    pool_size: int = 1000  # tokens: about this many batches of examples are sorted together
    shuffle: bool = True
    seed: int = 1
    oversized: Oversized = Oversized.single
    num_workers: int = 0


@dataclass
class SubwordSamplingConfig:
    """Subword regularization (Kudo 2018; BPE-dropout, Provilkov et al. 2020): each training
    batch is segmented afresh from the stored cleaned text with SentencePiece sampling, so every
    epoch sees other segmentations. Validation, test and serving stay deterministic."""

    alpha: float = 0.0  # 0 = off; BPE: the probability of dropping a merge; unigram: the smoothing exponent
    nbest_size: int = -1  # unigram: sample from the n best (-1: the whole lattice); BPE ignores it
    source: bool = True  # resegment the source side
    target: bool = True  # resegment the target side


@dataclass
class TrainConfig:
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    subword_sampling: SubwordSamplingConfig = field(default_factory=SubwordSamplingConfig)
    max_epochs: int = 30
    max_steps: int = 0  # 0 = no limit
    max_minutes: float = 0.0  # time budget; 0 = no limit
    optimizer: OptimizerKind = OptimizerKind.adam
    lr: float = 0.002
    weight_decay: float = 0.0
    clip_grad_norm: float = 1.0
    # divergence: stop (exit 1, nothing saved from then on) when a batch's per-token loss exceeds
    # max_loss_factor x ln(target vocab) (a uniform guess scores 1x) or is not finite, or a weight's
    # magnitude exceeds max_weight (checked before every validation and checkpoint); 0 = off
    max_loss_factor: float = 5.0
    max_weight: float = 1.0e4
    label_smoothing: float = 0.1
    schedule: Schedule = Schedule.cosine  # cosine: warmup, then decay to min_lr over the budget
    warmup_steps: int = 200
    plateau_factor: float = 0.5
    plateau_patience: int = 1
    min_lr: float = 1e-5
    teacher_forcing: float = 1.0  # probability of feeding the gold previous token
    teacher_forcing_decay: bool = False  # decay the ratio linearly to teacher_forcing_min over training
    teacher_forcing_min: float = 0.5
    validate_every: int = 0  # steps; 0 = once per epoch
    val_bleu: bool = True
    val_max_sentences: int = 0  # 0 = whole valid split
    early_stopping_metric: StopMetric = StopMetric.bleu
    patience: int = 5
    checkpoint_every: int = 500  # steps
    keep_last: int = 0  # also keep the last K saves of last.pt as step_N.pt (for nmt.average); 0 = none
    # at the end, average the last K saves of last.pt into checkpoints/avg.pt, score it on val
    # and recommend avg.pt or best.pt (keeps at least K step_N.pt); 0 = off
    average_last: int = 5
    # at the end, beam search on val with each of these length penalties (the recommended
    # checkpoint), and store the best in best.pt and avg.pt for translate and serve; [] = off
    length_penalties: List[float] = field(default_factory=lambda: [0.6, 1.0, 1.4, 2.0])
    log_every: int = 50
    resume: Any = False  # false | true (this run dir) | auto (this run dir's last.pt if any) | a run dir or checkpoint
    seed: int = 1
    threads: int = 0  # torch CPU threads; 0 = all cores
    # >1: train this many independently seeded models side by side, each in its own process with
    # threads/members threads, as one ensemble (RUN_DIR/member_K; ckpt=RUN_DIR translates with all)
    members: int = 1
    device: Device = Device.auto
    precision: Precision = Precision.fp32  # bf16 | fp16 (CUDA, with grad scaler) | auto
    deterministic: bool = False
    tensorboard: bool = True


@dataclass
class DecodeConfig:
    """Search options: the `decode` group (`decode=beam|greedy`), `Translator` keywords."""

    kind: SearchKind = SearchKind.beam
    beam_size: int = 5
    # alpha in ((5 + len) / 6) ** alpha; null: the value nmt.train chose on val for the checkpoint
    # (train.length_penalties), else 1.0
    length_penalty: Optional[float] = None
    n_best: int = 1
    no_repeat_ngram: int = 0
    max_len_a: float = 1.5  # max output length = a * src_len + b
    max_len_b: int = 10
    quantize: Quantize = Quantize.none  # int8: dynamic int8 weights for CPU inference (Linear, GRU, LSTM)


@dataclass
class ServeConfig:
    """nmt.serve: the HTTP server, its dynamic batching and its limits on requests."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_wait_ms: float = 2.0  # under concurrent traffic, gather requests this long before decoding them together
    max_batch_sentences: int = 64  # sentences decoded in one batched search; 1 = batching off
    max_batch_tokens: int = 4000  # padded source tokens in one batch
    max_sentences: int = 64  # per request (413 above)
    max_chars: int = 1000  # per sentence (413 above)
    max_beam_size: int = 10  # the largest beam_size a request may ask for (422 above)
    max_body_bytes: int = 1000000  # request body (413 above)
    threads: int = 0  # torch CPU threads for decoding; 0 = all cores but one (left to the HTTP loop)
    graceful_seconds: int = 30  # on SIGTERM, wait this long for requests in flight
    log_level: LogLevel = LogLevel.info
    max_request_slice: int = 16  # a larger request is decoded this many sentences at a time, interleaved with others
    max_connections: int = 512  # open connections; more get a 503 and are closed (kept below the open-file limit)
    request_timeout_s: float = 10.0  # a request's headers and body must arrive within this (slow clients are dropped)
    api_key: str = ""  # when set, requests must send the header X-API-Key: KEY (or Authorization: Bearer KEY)


@dataclass
class PlotsConfig:
    n_attention: int = 0  # attention heatmaps for the first K translated sentences


@dataclass
class PrepareConfig:
    force: bool = False  # rebuild even when a matching prepared dataset exists


@dataclass
class TranslateConfig:
    split: Optional[str] = None  # a prepared split to translate (train | valid | test)
    input: Optional[str] = None  # a text file to translate ("-": all of stdin); no split, no input: stdin line by line
    output: Optional[str] = None  # default: hyp.NAME.txt in the run dir
    ref: Any = None  # reference file(s) for `input`: scored with `scoring`


@dataclass
class ScoringConfig:
    """sacreBLEU options, for translate (with references) and evaluate."""

    metrics: List[Metric] = field(default_factory=lambda: [Metric.bleu, Metric.chrf])
    tokenize: Optional[str] = None  # sacreBLEU tokenizer (default 13a)
    lowercase: bool = False


@dataclass
class EvaluateConfig:
    hyp: str = ""
    ref: Any = None  # a file or a list of files


@dataclass
class AverageConfig:
    inputs: List[str] = field(default_factory=list)  # checkpoints to average
    last_n: int = 0  # or: the newest last_n step_N.pt of `run` (train.keep_last)
    run: str = ""  # a training run dir
    output: str = ""  # the averaged checkpoint


@dataclass
class ExportConfig:
    output: str = ""  # the model folder to write (replaces an earlier export there)
    score: bool = True  # translate `split` of the prepared data and put BLEU/chrF in the model card
    split: str = "test"


@dataclass
class DiagnoseConfig:
    ckpts: List[str] = field(default_factory=list)  # checkpoints to compare (ckpt= is the first)
    split: str = "valid"
    sentences: int = 64  # real sentences, all of one source length
    length: int = 0  # that length in pieces; 0 = the longest one with enough sentences
    output: str = ""  # the PNG; default RUN_DIR/gradients.png


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
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    average: AverageConfig = field(default_factory=AverageConfig)
    diagnose: DiagnoseConfig = field(default_factory=DiagnoseConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    # where prepare writes and train reads the encoded dataset
    prepared_dir: str = "data/${data.name}_${data.src_lang}-${data.tgt_lang}_${vocab.kind}"
    # translate, serve, export, diagnose: a checkpoint file or a model folder (nmt.export);
    # translate and serve also take a list, ckpt=[A.pt,B.pt,C.pt]: an ensemble (diagnose: several models)
    ckpt: Any = ""
    # deprecated flat spellings, kept for one release: see DEPRECATED_KEYS
    force: Optional[bool] = None
    split: Optional[str] = None
    input: Optional[str] = None
    output: Optional[str] = None
    ref: Any = None
    hyp: Optional[str] = None
    metrics: Optional[List[Metric]] = None
    tokenize: Optional[str] = None
    lowercase: Optional[bool] = None
    inputs: Optional[List[str]] = None
    last_n: Optional[int] = None
    run: Optional[str] = None


def plain(node) -> dict:
    """A config node as plain Python containers (Enums as their values): what checkpoints and
    meta.json store."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)


def register_configs() -> None:
    """Store the schema so `conf/config.yaml` can name it in its defaults list."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)


register_configs()
