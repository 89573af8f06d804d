"""Every choice in the configuration, as an Enum: Hydra refuses a value that is not a member when
it composes the config, and each member prints and compares as its value."""
from __future__ import annotations

from enum import Enum


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


class ExportFormat(StrEnum):
    folder = "folder"  # nmt's model folder (safetensors + vocabularies + card): Translator.from_pretrained
    ctranslate2 = "ctranslate2"  # a CTranslate2 model directory (Transformer only)
    argos = "argos"  # an Argos Translate package (.argosmodel), which LibreTranslate installs too


class Ct2Quantization(StrEnum):
    none = "none"  # float32 weights; CTranslate2 can still quantize when it loads them (compute_type)
    int8 = "int8"
    int16 = "int16"
    float16 = "float16"


class DistillMix(StrEnum):
    teacher = "teacher"  # the student learns the teacher's translations only (Kim and Rush 2016)
    both = "both"  # the teacher's translations and the original targets, each pair once
