"""The configuration: one typed schema for every program and its defaults.

Defaults live here, in the dataclasses, and nowhere else: the YAML files under `conf/` only
say what a group option changes (`model=lstm` sets `cell: lstm`). Every choice is an Enum
(`nmt.config.choices`), so Hydra refuses an unknown value when it composes the config. Every key is a `setting`: its
default, its range (`check`, tested by `nmt.config.rules.check_config`) and what it means (`doc`),
side by side; `docs/config.md` is generated from them (`make docs`). The rules that span fields
are `nmt.config.rules`. Nothing downstream checks a config value again.

Per-program keys are grouped (`translate.input`, `evaluate.hyp`, `average.last_n`, ...); the
old flat spellings (`input=`, `hyp=`, ...) still work for one release, with a note
(`nmt.config.rules.upgrade_deprecated_keys`).
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from hydra.core.config_store import ConfigStore

from nmt.config.choices import (Arch, AttentionKind, BatchKind, Cell, Ct2Quantization, DataKind, Device, DistillMix,
                                ExportFormat, LogLevel, Metric, Normalization, OptimizerKind, Oversized, Precision, Quantize, Schedule, SearchKind, SpmModelType,
                                StopMetric, VocabKind)

# conf/ beside the package: an absolute path, so `python -m nmt.X` and the nmt-X console scripts
# find the same configs (Hydra would read a relative path as a Python module under a script)
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")


@dataclass(frozen=True)
class Check:
    """A key's range: `test(value)` is true for a value in it; `what` says it in words (">= 1")."""

    test: Callable[[Any], bool]
    what: str


def at_least(low) -> Check:
    return Check(lambda v: v >= low, f">= {low}")


POSITIVE = Check(lambda v: v > 0, "> 0")
FRACTION = Check(lambda v: 0.0 <= v < 1.0, "in [0, 1)")
PROBABILITY = Check(lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def setting(default: Any = MISSING, check: Check | None = None, doc: str = "", *, factory=None) -> Any:
    """A schema key: its default (or `factory` for a list or dict), its range and its meaning."""
    metadata = {"check": check, "doc": doc}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class SplitFiles:
    """Paths of one split for `data=files` (relative to data.root unless absolute); both null:
    the split is left out."""

    src: Optional[str] = setting(None, doc="the source-language file (plain or gzip, one sentence a line)")
    tgt: Optional[str] = setting(None, doc="the target-language file, line N translating line N of src")


@dataclass
class DataConfig:
    """Where the parallel text comes from (`data=multi30k|files|hf`)."""

    kind: DataKind = setting(DataKind.multi30k, doc="multi30k: DIR/{split}.{lang}[.gz]; files: any pair per split; "
                                                    "hf: a Hugging Face dataset")
    name: str = setting("multi30k", doc="the data's name, in the default prepared_dir")
    root: str = setting("data/raw/multi30k", doc="the folder of the files (downloaded here when absent); "
                                                 "offline: ../shared/data/multi30k")
    src_lang: str = setting("de", doc="source language code (file suffix, HF field, what /languages reports)")
    tgt_lang: str = setting("en", doc="target language code")
    splits: Dict[str, str] = setting(factory=lambda: {"train": "train", "valid": "val", "test": "test_2016_flickr"},
                                     doc="split name stored -> file prefix (multi30k) or HF split name (hf)")
    files: Dict[str, SplitFiles] = setting(factory=dict, doc="data=files: split name -> {src, tgt}")
    hf_name: str = setting("", doc="data=hf: hub name, local builder script, or a save_to_disk folder")
    hf_config: Optional[str] = setting(None, doc="data=hf: the dataset's configuration name (e.g. de-en)")
    hf_data_files: Dict[str, str] = setting(factory=dict, doc="data=hf: builder data_files, e.g. {train: a.jsonl}")
    hf_field: str = setting("translation", doc='data=hf: column holding {src_lang: ..., tgt_lang: ...}; "" = flat '
                                               "columns named by the languages")
    url: str = setting("https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw",
                       doc="data=multi30k: where missing files are downloaded from")


@dataclass
class PreprocessConfig:
    """Cleaning (all splits) and filtering (the training split only) before the vocabulary."""

    normalize: Normalization = setting(Normalization.NFC, doc="unicode normal form applied to every sentence")
    lowercase: bool = setting(False, doc="lowercase both sides (translations come out lowercased)")
    drop_empty: bool = setting(True, doc="drop a training pair with an empty side")
    max_words: int = setting(100, at_least(1), "drop a training pair with a side longer than this (whitespace words)")
    max_ratio: float = setting(4.0, at_least(1.0), "drop a training pair whose longer/shorter word-count ratio "
                                                   "exceeds this")
    ratio_min_words: int = setting(4, doc="the ratio rule applies only when the longer side has this many words")
    dedup: bool = setting(False, doc="drop exact duplicate training pairs (after cleaning), keeping the first")
    max_len: int = setting(128, at_least(2), "ids kept per sentence (all splits); the target keeps SOS and EOS")
    chunk_size: int = setting(20000, at_least(1), "pairs read, cleaned and encoded at a time (bounds memory)")


@dataclass
class VocabConfig:
    """The vocabularies (`vocab=spm|joint|word|char`; joint: one SentencePiece model for both languages, in a
    prepared folder of its own)."""

    kind: VocabKind = setting(VocabKind.spm, doc="spm: SentencePiece subwords; word: word2idx; char: characters")
    joint: bool = setting(False, doc="one vocabulary for both languages (shared ids)")
    min_freq: int = setting(1, at_least(1), "word/char: units seen fewer times map to UNK")
    max_size: int = setting(0, at_least(0), "word/char: keep the most frequent units only; 0 = no limit "
                                            "(specials not counted)")
    model_type: SpmModelType = setting(SpmModelType.bpe, doc="spm: bpe or unigram")
    vocab_size: int = setting(3000, at_least(5), "spm: pieces per language (joint: in all); 3k + 3k beat 5k + 5k "
                                                 "on Multi30k")
    character_coverage: float = setting(1.0, Check(lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
                                        "spm: share of characters the pieces must cover")
    input_sentence_size: int = setting(1000000, at_least(0), "spm: sentences sampled (shuffled, seeded) to train it; "
                                                             "bounds its memory; 0 = all")
    seed: int = setting(1234, doc="spm: the sampling seed (same data, same pieces)")
    threads: int = setting(2, at_least(1), "spm: threads to train and encode with")


@dataclass
class ModelConfig:
    """Reference size: bidirectional 1-layer GRU encoder, 1-layer GRU decoder with attention.
    arch=transformer reads emb_dim (d_model), heads, ff_dim, enc/dec_layers, dropout,
    emb_dropout, word_dropout, tie/share_embeddings; the RNN-only keys (cell, hidden_dim, bidirectional,
    attention, input_feeding) do not apply to it."""

    arch: Arch = setting(Arch.rnn, doc="rnn: the RNN encoder-decoder (model.cell); transformer")
    cell: Cell = setting(Cell.gru, doc="rnn: the recurrent cell: rnn (Elman), gru or lstm")
    emb_dim: int = setting(256, at_least(1), "embedding size (the Transformer's d_model)")
    hidden_dim: int = setting(256, at_least(1), "rnn: hidden size (per direction in the encoder)")
    enc_layers: int = setting(1, at_least(1), "encoder layers")
    dec_layers: int = setting(1, at_least(1), "decoder layers")
    bidirectional: bool = setting(True, doc="rnn: read the source both ways")
    dropout: float = setting(0.2, FRACTION, "between layers and before the output projection (Transformer: on the "
                                            "residual branches)")
    emb_dropout: float = setting(0.2, FRACTION, "on the embeddings (Transformer: embeddings + positions)")
    word_dropout: float = setting(0.0, FRACTION, "training: drop whole source and target tokens' embeddings "
                                                 "(Sennrich & Zhang 2019)")
    attention: AttentionKind = setting(AttentionKind.luong, doc="rnn: none, luong (after the RNN step) or "
                                                                "bahdanau (before it)")
    input_feeding: bool = setting(False, doc="rnn, luong: feed the previous attentional vector into the decoder RNN")
    tie_embeddings: bool = setting(True, doc="target embedding = output projection: 8+ BLEU sooner on Multi30k")
    share_embeddings: bool = setting(False, doc="source embedding = target embedding (joint vocab only)")
    heads: int = setting(4, at_least(1), "transformer: attention heads (emb_dim must be a multiple)")
    ff_dim: int = setting(1024, at_least(1), "transformer: feed-forward inner size")


@dataclass
class BatchingConfig:
    """Training batches: length buckets or a token budget."""

    kind: BatchKind = setting(BatchKind.bucket, doc="bucket: batch_size sentences of similar length; tokens: a "
                                                    "token budget")
    batch_size: int = setting(64, at_least(1), "bucket: sentences per batch")
    max_tokens: int = setting(2000, at_least(1), "tokens: sentences x longest padded length per batch")
    bucket_width: int = setting(1, at_least(1), "bucket: length range covered by one bucket key")
    pool_size: int = setting(1000, at_least(1), "tokens: about this many batches of examples are sorted together")
    shuffle: bool = setting(True, doc="shuffle the batches each epoch (seeded by seed and the epoch)")
    seed: int = setting(1, doc="the batch order's seed")
    oversized: Oversized = setting(Oversized.single, doc="tokens: an example over the budget gets a batch of its "
                                                         "own (single) or stops training (error)")
    num_workers: int = setting(0, at_least(0), "DataLoader worker processes (0: read in the training process)")


@dataclass
class SubwordSamplingConfig:
    """Subword regularization (Kudo 2018; BPE-dropout, Provilkov et al. 2020): each training
    batch is segmented afresh from the stored cleaned text with SentencePiece sampling, so every
    epoch sees other segmentations. Validation, test and serving stay deterministic."""

    alpha: float = setting(0.0, at_least(0.0), "0 = off; BPE: the probability of dropping a merge; unigram: the "
                                               "smoothing exponent")
    nbest_size: int = setting(-1, doc="unigram: sample from the n best (-1: the whole lattice); BPE ignores it")
    source: bool = setting(True, doc="resegment the source side")
    target: bool = setting(True, doc="resegment the target side")


@dataclass
class TrainConfig:
    """nmt.train: budget, optimisation, validation, checkpoints, the end-of-run choices."""

    batching: BatchingConfig = field(default_factory=BatchingConfig)
    subword_sampling: SubwordSamplingConfig = field(default_factory=SubwordSamplingConfig)
    max_epochs: Optional[int] = setting(None, at_least(1), "stop after this many epochs; null: 30 without a time "
                                        "budget, no epoch limit within one (train.max_minutes ends it)")
    max_steps: int = setting(0, at_least(0), "stop after this many optimizer steps; 0 = no limit")
    max_minutes: float = setting(0.0, at_least(0), "time budget (the cosine schedule decays over it); 0 = no limit")
    optimizer: OptimizerKind = setting(OptimizerKind.adam, doc="adam or adamw")
    lr: float = setting(0.002, POSITIVE, "peak learning rate")
    weight_decay: float = setting(0.0, at_least(0), "adamw's decoupled weight decay (adam: L2)")
    clip_grad_norm: float = setting(1.0, at_least(0), "clip the gradient's global norm to this; 0 = off")
    max_loss_factor: float = setting(5.0, at_least(0), "divergence: stop (exit 1, nothing saved from then on) when a "
                                                       "batch's per-token loss exceeds this x ln(target vocab) (a "
                                                       "uniform guess scores 1x) or is not finite; 0 = off")
    max_weight: float = setting(1.0e4, at_least(0), "divergence: stop when a weight's magnitude exceeds this "
                                                    "(checked before every validation and checkpoint); 0 = off")
    label_smoothing: float = setting(0.1, FRACTION, "probability mass spread over the vocabulary in the loss")
    schedule: Schedule = setting(Schedule.cosine, doc="cosine: warm-up, then decay to min_lr over the budget; "
                                                      "warmup_decay: inverse square root; plateau; constant")
    warmup_steps: int = setting(200, at_least(0), "steps of linear warm-up")
    plateau_factor: float = setting(0.5, Check(lambda v: 0.0 < v < 1.0, "in (0, 1)"),
                                    "plateau: multiply the learning rate by this when val stops improving")
    plateau_patience: int = setting(1, at_least(0), "plateau: validations without improvement before that")
    min_lr: float = setting(1e-5, at_least(0), "the learning rate the schedules decay to")
    teacher_forcing: float = setting(1.0, PROBABILITY, "rnn: probability of feeding the gold previous token")
    teacher_forcing_decay: bool = setting(False, doc="rnn: decay the ratio linearly to teacher_forcing_min over "
                                                     "training")
    teacher_forcing_min: float = setting(0.5, PROBABILITY, "rnn: where that decay ends")
    validate_every: int = setting(0, at_least(0), "validate every this many steps; 0 = once per epoch")
    val_bleu: bool = setting(True, doc="greedy BLEU on val at each validation (else the loss only)")
    val_max_sentences: int = setting(0, at_least(0), "val sentences decoded for BLEU; 0 = the whole split")
    early_stopping_metric: StopMetric = setting(StopMetric.bleu, doc="what best.pt and patience go by: bleu or loss")
    patience: int = setting(5, at_least(1), "stop after this many validations without improvement")
    checkpoint_every: int = setting(500, at_least(1), "save last.pt every this many steps")
    keep_last: int = setting(0, at_least(0), "also keep the last K saves of last.pt as step_N.pt (for nmt.average); "
                                             "0 = none")
    average_last: int = setting(5, at_least(0), "at the end, average the last K saves into checkpoints/avg.pt, score "
                                                "it on val and recommend avg.pt or best.pt; 0 = off")
    length_penalties: List[float] = setting(factory=lambda: [0.6, 1.0, 1.4, 2.0],
                                            doc="at the end, beam search on val with each length penalty (the "
                                                "recommended checkpoint) and store the best for translate and "
                                                "serve; [] = off")
    log_every: int = setting(50, at_least(1), "log the training loss every this many steps")
    resume: Any = setting(False, doc="false | true (this run dir) | auto (this run dir's last.pt if any) | a run "
                                     "dir or checkpoint")
    seed: int = setting(1, doc="seed of the weights' initialisation and dropout")
    threads: int = setting(0, at_least(0), "torch CPU threads; 0 = the cores shared among the local processes")
    members: int = setting(1, at_least(1), ">1: train this many independently seeded models side by side, each in "
                                           "its own process with threads/members threads, as one ensemble "
                                           "(RUN_DIR/member_K; ckpt=RUN_DIR translates with all)")
    device: Device = setting(Device.auto, doc="auto: CUDA when there is one, else the CPU")
    precision: Precision = setting(Precision.auto, doc="auto: bf16 where the device computes it natively (CUDA's "
                                                       "is_bf16_supported; a CPU with AVX-512 BF16 or AMX), fp32 "
                                                       "elsewhere, and the run says which | fp32 | bf16 | fp16 (CUDA, "
                                                       "with a grad scaler)")
    deterministic: bool = setting(False, doc="torch's deterministic algorithms only (slower on CUDA)")
    tensorboard: bool = setting(True, doc="also write TensorBoard event files (when tensorboard is installed)")


@dataclass
class DecodeConfig:
    """Search options: the `decode` group (`decode=beam|greedy`), `Translator` keywords."""

    kind: SearchKind = setting(SearchKind.beam, doc="beam or greedy")
    beam_size: int = setting(5, at_least(1), "beam: hypotheses kept per step")
    length_penalty: Optional[float] = setting(None, doc="alpha in ((5 + len) / 6) ** alpha; null: the value "
                                                        "nmt.train chose on val for the checkpoint, else 1.0")
    n_best: int = setting(1, at_least(1), "beam: alternatives returned per sentence (<= beam_size)")
    no_repeat_ngram: int = setting(0, at_least(0), "beam: never repeat an n-gram of this size; 0 = off")
    max_len_a: float = setting(1.5, at_least(0), "max output length = a * source length + b")
    max_len_b: int = setting(10, at_least(0), "see max_len_a")
    max_output_len: int = setting(512, at_least(0), "and never more than this many pieces (a line of 100,000 "
                                                    "words still ends); 0 = no cap")
    quantize: Quantize = setting(Quantize.none, doc="int8: dynamic int8 weights for CPU inference (Linear, GRU, LSTM)")


@dataclass
class ServeConfig:
    """nmt.serve: the HTTP server, its dynamic batching and its limits on requests."""

    host: str = setting("127.0.0.1", doc="address to listen on (other than loopback: set api_key)")
    port: int = setting(8000, Check(lambda v: 0 <= v <= 65535, "in [0, 65535]"), "port to listen on (0: any free)")
    max_wait_ms: float = setting(2.0, at_least(0), "under concurrent traffic, gather requests this long before "
                                                   "decoding them together")
    max_batch_sentences: int = setting(64, at_least(1), "sentences decoded in one batched search; 1 = batching off")
    max_batch_tokens: int = setting(4000, at_least(1), "padded source tokens in one batch")
    max_sentences: int = setting(64, at_least(1), "sentences per request (413 above)")
    max_chars: int = setting(1000, at_least(1), "characters per sentence (413 above)")
    max_beam_size: int = setting(10, at_least(1), "the largest beam_size a request may ask for (422 above)")
    max_body_bytes: int = setting(1000000, at_least(1), "request body bytes (413 above)")
    threads: int = setting(0, at_least(0), "torch CPU threads for decoding; 0 = all cores but one (left to the "
                                           "HTTP loop)")
    graceful_seconds: int = setting(30, at_least(0), "on SIGTERM, wait this long for requests in flight")
    log_level: LogLevel = setting(LogLevel.info, doc="uvicorn's log level")
    max_request_slice: int = setting(16, at_least(1), "a larger request is decoded this many sentences at a time, "
                                                      "interleaved with others")
    max_request_work: int = setting(20000, at_least(1), "decoding work one request may ask for: its source pieces "
                                                        "x beam size (413 above)")
    max_queued_sentences: int = setting(1024, at_least(1), "sentences waiting to be decoded; a request past it "
                                                           "gets 503 with Retry-After")
    max_connections: int = setting(512, at_least(1), "open connections; more get a 503 and are closed (kept below "
                                                     "the open-file limit)")
    request_timeout_s: float = setting(10.0, POSITIVE, "a request's headers and body must arrive within this (slow "
                                                       "clients are dropped)")
    api_key: str = setting("", doc="when set, requests must send the header X-API-Key: KEY (or Authorization: "
                                   "Bearer KEY)")
    models: Any = setting(None, doc="several models, one per language pair, instead of ckpt: a list (each pair "
                                    "read from the model's data config) or a mapping {de-en: RUN, ...}; a pair "
                                    "with no model is translated through English when it can be")


@dataclass
class PlotsConfig:
    """Figures drawn by nmt.translate."""

    n_attention: int = setting(0, at_least(0), "attention heatmaps for the first K translated sentences")


@dataclass
class PrepareConfig:
    """nmt.prepare."""

    force: bool = setting(False, doc="rebuild even when a matching prepared dataset exists")


@dataclass
class TranslateConfig:
    """nmt.translate: what to translate and where the translations go."""

    split: Optional[str] = setting(None, doc="a prepared split to translate (train | valid | test)")
    input: Optional[str] = setting(None, doc='a text file to translate ("-": all of stdin); no split, no input: '
                                             "stdin line by line")
    output: Optional[str] = setting(None, doc='where the translations go ("-": stdout); default: hyp.NAME.txt in '
                                              "the run dir")
    ref: Any = setting(None, doc="reference file(s) for `input`: scored with `scoring`")
    split_sentences: bool = setting(True, doc="translate and serve: cut each text (an input line, a request's "
                                              "text) into sentences, translate them together and join them back "
                                              "with the text's own whitespace; false: each text is one sentence")


@dataclass
class ScoringConfig:
    """sacreBLEU options, for translate (with references) and evaluate."""

    metrics: List[Metric] = setting(factory=lambda: [Metric.bleu, Metric.chrf], doc="any of bleu, chrf, ter")
    tokenize: Optional[str] = setting(None, doc="sacreBLEU tokenizer (default 13a)")
    lowercase: bool = setting(False, doc="case-insensitive BLEU and chrF")


@dataclass
class EvaluateConfig:
    """nmt.evaluate: a hypothesis file against references."""

    hyp: str = setting("", doc="the hypothesis file (one detokenized sentence a line)")
    ref: Any = setting(None, doc="a reference file or a list of them")


@dataclass
class AverageConfig:
    """nmt.average: checkpoint averaging."""

    inputs: List[str] = setting(factory=list, doc="checkpoints to average")
    last_n: int = setting(0, at_least(0), "or: the newest last_n step_N.pt of `run` (train.keep_last)")
    run: str = setting("", doc="a training run dir (with last_n)")
    output: str = setting("", doc="the averaged checkpoint")


@dataclass
class ExportConfig:
    """nmt.export: a shareable model folder, a CTranslate2 model or an Argos Translate package."""

    format: ExportFormat = setting(ExportFormat.folder, doc="folder: nmt's model folder; ctranslate2: a CTranslate2 "
                                   "model directory; argos: an .argosmodel package (Argos Translate, LibreTranslate); "
                                   "the last two need model=transformer and the interop extra")
    output: str = setting("", doc="the folder (folder, ctranslate2) or .argosmodel file (argos) to write; replaces "
                          "an earlier export there")
    score: bool = setting(True, doc="translate `split` of the prepared data and put BLEU/chrF in the model card")
    split: str = setting("test", doc="the prepared split scored for the model card")
    quantization: Ct2Quantization = setting(Ct2Quantization.none, doc="ctranslate2/argos: the weights' stored type "
                                            "(CTranslate2 converts again at load time with compute_type)")
    max_positions: int = setting(1024, at_least(2), "ctranslate2/argos: the longest source and output in pieces "
                                 "(rows of the exported position table)")
    package_version: str = setting("1.0", doc="argos: the package_version in metadata.json")


@dataclass
class CalibrateConfig:
    """nmt.calibrate: the confidence per sentence, fitted on a prepared split."""

    split: str = setting("valid", doc="the prepared split the confidence is fitted on")
    report_split: str = setting("test", doc="the prepared split it is reported on (Spearman, the least confident "
                                            "10%); empty: none")
    max_sentences: int = setting(0, at_least(0), "the first this many sentences of each split; 0 = all")


@dataclass
class DistillConfig:
    """nmt.distill: a teacher translates the training source (beam search), a student learns its output."""

    teacher: Any = setting("", doc="the teacher: a run dir (a train.members run: its members together), a "
                                   "checkpoint, a model folder, or a list of them (an ensemble)")
    beam_size: int = setting(5, at_least(1), "the teacher's beam over the training source (1: greedy)")
    length_penalty: Optional[float] = setting(None, doc="the teacher's length penalty; null = the one its "
                                                        "training chose on val")
    mix: DistillMix = setting(DistillMix.teacher, doc="the student's targets: the teacher's translations only, "
                                                      "or both them and the original targets")
    dir: str = setting("${prepared_dir}_distilled", doc="where the teacher's translations and the distilled "
                                                         "datasets are kept, each keyed by the teacher's weights "
                                                         "and the search")
    chunk: int = setting(1000, at_least(1), "sentences translated between two saves (an interrupted pass "
                                            "continues from the last save)")
    train: bool = setting(True, doc="train the student after building the data; false: build the data, "
                                    "print its prepared_dir, stop")


@dataclass
class DiagnoseConfig:
    """nmt.diagnose: gradients through time on real sentences."""

    ckpts: List[str] = setting(factory=list, doc="checkpoints to compare (ckpt= is the first)")
    split: str = setting("valid", doc="the prepared split the sentences come from")
    sentences: int = setting(64, at_least(1), "real sentences, all of one source length")
    length: int = setting(0, at_least(0), "that length in pieces; 0 = the longest one with enough sentences")
    output: str = setting("", doc="the PNG; default RUN_DIR/gradients.png")


def _deprecated(new: str) -> Any:
    return setting(None, doc=f"deprecated spelling of {new} (kept for one release)")


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
    calibrate: CalibrateConfig = field(default_factory=CalibrateConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    prepared_dir: str = setting("data/${data.name}_${data.src_lang}-${data.tgt_lang}_${vocab.kind}",
                                doc="where prepare writes and train reads the encoded dataset")
    ckpt: Any = setting("", doc="translate, serve, export, diagnose: a checkpoint, a run dir (the checkpoint it "
                                "recommends) or a model folder; translate and serve also take a list, "
                                "ckpt=[A.pt,B.pt]: an ensemble")
    max_params: int = setting(1_000_000_000, at_least(1), "the largest model a checkpoint or model folder may "
                                                          "describe, measured before any weight is allocated")
    # the old flat spellings of per-program keys (nmt.config.rules.DEPRECATED_KEYS)
    force: Optional[bool] = _deprecated("prepare.force")
    split: Optional[str] = _deprecated("translate.split")
    input: Optional[str] = _deprecated("translate.input")
    output: Optional[str] = _deprecated("translate.output / average.output")
    ref: Any = _deprecated("translate.ref / evaluate.ref")
    hyp: Optional[str] = _deprecated("evaluate.hyp")
    metrics: Optional[List[Metric]] = _deprecated("scoring.metrics")
    tokenize: Optional[str] = _deprecated("scoring.tokenize")
    lowercase: Optional[bool] = _deprecated("scoring.lowercase")
    inputs: Optional[List[str]] = _deprecated("average.inputs")
    last_n: Optional[int] = _deprecated("average.last_n")
    run: Optional[str] = _deprecated("average.run")


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
