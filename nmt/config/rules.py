"""Every rule on the configuration (nmt/config.py holds the schema and its defaults): values
in range (`RANGES`), fields that go together (`check_rules`), keys the schema does not have,
the old flat spellings of per-program keys (`upgrade_deprecated_keys`), and `choice` for
values that come from Python. `check_config` runs them all; each error names the key, the
value and the fix. Nothing downstream checks a config value again.
"""
from __future__ import annotations

import sys
from pathlib import Path

from nmt.config.schema import Arch, AttentionKind, Config, Device, Precision, SearchKind, StopMetric, StrEnum
from nmt.errors import NmtError

# program -> {old root key: new key}; `output` and `ref` mean a different key in each program
_SCORING = {"metrics": "scoring.metrics", "tokenize": "scoring.tokenize", "lowercase": "scoring.lowercase"}
DEPRECATED_KEYS: dict[str, dict[str, str]] = {
    "prepare": {"force": "prepare.force"},
    "translate": {"split": "translate.split", "input": "translate.input", "output": "translate.output",
                  "ref": "translate.ref", **_SCORING},
    "evaluate": {"hyp": "evaluate.hyp", "ref": "evaluate.ref", **_SCORING},
    "average": {"inputs": "average.inputs", "last_n": "average.last_n", "run": "average.run",
                "output": "average.output"},
}


def upgrade_deprecated_keys(cfg, program: str, warn=None) -> list[str]:
    """Move the old flat spellings `program` understands (`input=X` for translate) to their
    grouped keys (`translate.input=X`), in place, with a note on stderr; return the old keys."""
    from omegaconf import OmegaConf, open_dict

    moved = []
    with open_dict(cfg):
        for old, new in DEPRECATED_KEYS.get(program, {}).items():
            value = cfg.get(old)
            if value is None:
                continue
            OmegaConf.update(cfg, new, value, merge=False)
            cfg[old] = None
            moved.append(old)
            message = f"{program}: note: `{old}=` is deprecated and will be removed; use `{new}=`"
            (warn or (lambda m: print(m, file=sys.stderr)))(message)
    return moved


class ConfigError(NmtError, ValueError):
    """A config value out of range or a key the schema does not have: the message names the key."""


def choice(enum: type[StrEnum], value, key: str) -> StrEnum:
    """`value` as a member of `enum` (for values that come from Python rather than a composed
    config); ConfigError naming `key` and the choices otherwise."""
    try:
        return enum(str(value))
    except ValueError:
        options = " | ".join(m.value for m in enum)
        raise ConfigError(f"{key}={value!r}: must be one of {options}") from None


def _at_least(low):
    return (lambda v: v >= low), f">= {low}"


def _fraction(v) -> bool:
    return 0.0 <= v < 1.0


# key -> (test, what it must be): the ranges Enums and types cannot express
RANGES = {
    "vocab.vocab_size": _at_least(5), "vocab.min_freq": _at_least(1), "vocab.max_size": _at_least(0),
    "vocab.threads": _at_least(1), "vocab.input_sentence_size": _at_least(0),
    "vocab.character_coverage": ((lambda v: 0.0 < v <= 1.0), "in (0, 1]"),
    "preprocess.max_len": _at_least(2), "preprocess.chunk_size": _at_least(1),
    "preprocess.max_words": _at_least(1), "preprocess.max_ratio": _at_least(1.0),
    "model.emb_dim": _at_least(1), "model.hidden_dim": _at_least(1),
    "model.enc_layers": _at_least(1), "model.dec_layers": _at_least(1),
    "model.heads": _at_least(1), "model.ff_dim": _at_least(1),
    "model.dropout": (_fraction, "in [0, 1)"), "model.emb_dropout": (_fraction, "in [0, 1)"),
    "model.word_dropout": (_fraction, "in [0, 1)"),
    "train.batching.batch_size": _at_least(1), "train.batching.max_tokens": _at_least(1),
    "train.batching.bucket_width": _at_least(1), "train.batching.pool_size": _at_least(1),
    "train.batching.num_workers": _at_least(0),
    "train.max_epochs": _at_least(1), "train.max_steps": _at_least(0), "train.max_minutes": _at_least(0),
    "train.lr": ((lambda v: v > 0), "> 0"),
    "train.weight_decay": _at_least(0), "train.clip_grad_norm": _at_least(0),
    "train.max_loss_factor": _at_least(0), "train.max_weight": _at_least(0),
    "train.label_smoothing": (_fraction, "in [0, 1)"),
    "train.warmup_steps": _at_least(0), "train.min_lr": _at_least(0),
    "train.plateau_factor": ((lambda v: 0.0 < v < 1.0), "in (0, 1)"), "train.plateau_patience": _at_least(0),
    "train.teacher_forcing": ((lambda v: 0.0 <= v <= 1.0), "in [0, 1]"),
    "train.teacher_forcing_min": ((lambda v: 0.0 <= v <= 1.0), "in [0, 1]"),
    "train.validate_every": _at_least(0), "train.val_max_sentences": _at_least(0), "train.patience": _at_least(1),
    "train.checkpoint_every": _at_least(1), "train.keep_last": _at_least(0), "train.log_every": _at_least(1),
    "train.average_last": _at_least(0), "train.subword_sampling.alpha": _at_least(0.0),
    "train.threads": _at_least(0),
    "decode.beam_size": _at_least(1), "decode.n_best": _at_least(1),
    "decode.no_repeat_ngram": _at_least(0), "decode.max_len_a": _at_least(0), "decode.max_len_b": _at_least(0),
    "plots.n_attention": _at_least(0), "average.last_n": _at_least(0),
    "diagnose.sentences": _at_least(1), "diagnose.length": _at_least(0),
    "serve.port": ((lambda v: 0 <= v <= 65535), "in [0, 65535]"), "serve.max_wait_ms": _at_least(0),
    "serve.max_batch_sentences": _at_least(1), "serve.max_batch_tokens": _at_least(1),
    "serve.max_sentences": _at_least(1), "serve.max_chars": _at_least(1), "serve.max_beam_size": _at_least(1),
    "serve.max_body_bytes": _at_least(1), "serve.max_connections": _at_least(1),
    "serve.max_request_slice": _at_least(1),
    "serve.request_timeout_s": ((lambda v: v > 0), "> 0"), "serve.threads": _at_least(0), "serve.graceful_seconds": _at_least(0),
}


def ckpt_list(ckpt) -> list[str]:
    """The `ckpt=` value as a list of paths: [] when unset, one for a checkpoint, several for
    an ensemble (`ckpt=[A.pt,B.pt]`)."""
    if isinstance(ckpt, (str, Path)):
        return [str(ckpt)] if str(ckpt) else []
    if ckpt is None:
        return []
    paths = [str(p) for p in ckpt]
    if not all(paths):
        raise ConfigError(f"ckpt={paths}: an empty path in the list. Fix: ckpt=[A.pt,B.pt]")
    return paths


def check_search(kind, beam_size: int, n_best: int) -> None:
    """The one rule between search options: n_best <= beam_size under beam search."""
    if str(kind) == SearchKind.beam and n_best > beam_size:
        raise ConfigError(f"decode.n_best={n_best} exceeds decode.beam_size={beam_size}. "
                          "Fix: decode.n_best <= decode.beam_size")


def check_rules(cfg) -> None:
    """Rules that span two fields (or a field and the machine)."""
    from omegaconf import OmegaConf

    check_search(cfg.decode.kind, cfg.decode.beam_size, cfg.decode.n_best)
    train, model = cfg.train, cfg.model
    if train.early_stopping_metric == StopMetric.bleu and not train.val_bleu:
        raise ConfigError("train.early_stopping_metric=bleu needs train.val_bleu=true. Fix: one or the other")
    if model.input_feeding and model.attention != AttentionKind.luong:
        raise ConfigError(f"model.input_feeding needs model.attention=luong (got {model.attention}). "
                          "Fix: model.attention=luong or model.input_feeding=false")
    if model.arch == Arch.transformer:
        if train.teacher_forcing < 1 or train.teacher_forcing_decay:
            raise ConfigError("model.arch=transformer trains with teacher forcing only (all target positions in one "
                              "pass). Fix: train.teacher_forcing=1 train.teacher_forcing_decay=false, or an RNN model")
        if model.emb_dim % model.heads:
            raise ConfigError(f"model.emb_dim={model.emb_dim} must be a multiple of model.heads={model.heads}. "
                              "Fix: change one of them")
    if not isinstance(cfg.ckpt, (str, list, tuple)) and not OmegaConf.is_list(cfg.ckpt):
        raise ConfigError(f"ckpt={cfg.ckpt!r}: a checkpoint path, or a list of them for an ensemble. "
                          "Fix: ckpt=RUN/checkpoints/best.pt or ckpt=[A.pt,B.pt]")
    tokenize = cfg.scoring.tokenize
    if tokenize is not None:
        from sacrebleu.metrics import BLEU

        if tokenize not in BLEU.TOKENIZERS:
            raise ConfigError(f"scoring.tokenize={tokenize}: must be one of {' | '.join(BLEU.TOKENIZERS)} "
                              "(sacreBLEU's tokenizers). Fix: scoring.tokenize=13a, or leave it out")
    if train.members < 1:
        raise ConfigError(f"train.members={train.members}: the number of models to train. Fix: train.members=1 "
                          "(one model) or more (an ensemble trained side by side)")
    if train.precision == Precision.fp16 and not _has_cuda():
        raise ConfigError("train.precision=fp16 needs CUDA. Fix: train.precision=bf16 or fp32 on a CPU")
    if train.device == Device.cuda and not _has_cuda():
        raise ConfigError("train.device=cuda but CUDA is not available. Fix: train.device=auto or cpu")


def _has_cuda() -> bool:
    import torch  # only when a rule needs it: prepare and evaluate never load torch

    return torch.cuda.is_available()


def _unknown_key_error(cfg, err) -> ConfigError:
    import difflib

    from omegaconf import OmegaConf

    key = err.full_key or str(err.key)
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    node = OmegaConf.select(cfg, parent) if parent else cfg
    known = [k for k in node.keys() if k != err.key] if node is not None else []
    close = difflib.get_close_matches(str(err.key), [str(k) for k in known], n=1)
    hint = f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""
    return ConfigError(f"{key}: no such config key{hint}. Fix: drop it or correct its name; "
                       "`--cfg job` prints every key")


def check_config(cfg) -> None:
    """Refuse what composition lets through: keys the schema does not have (added with `+`),
    values outside their range and fields that do not go together. Raises ConfigError naming
    the key, the value and the fix."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError

    try:
        OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.to_container(cfg, resolve=False))
    except ConfigKeyError as err:
        raise _unknown_key_error(cfg, err) from None
    for key, (ok, what) in RANGES.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and not ok(value):
            raise ConfigError(f"{key}={value}: must be {what}. Fix: {key}=<value {what}>")
    check_rules(cfg)
