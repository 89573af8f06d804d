"""Every rule on the configuration (nmt/config/schema.py holds the keys, their defaults and
ranges): values in range, fields that go together (`check_rules`), keys the schema does not have,
the old flat spellings of per-program keys (`upgrade_deprecated_keys`), and `choice` for
values that come from Python. `check_config` runs them all; each error names the key, the
value and the fix. Nothing downstream checks a config value again.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Iterator

from nmt.config.choices import Arch, AttentionKind, Device, Precision, SearchKind, StopMetric, StrEnum
from nmt.config.schema import Config
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


def schema_keys(schema=None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every key of the schema as (dotted name, its dataclass field), groups walked into; a
    dict of groups (data.files) is not walked."""
    for f in dataclasses.fields(schema or Config):
        if dataclasses.is_dataclass(f.default_factory):  # a group: field(default_factory=XConfig)
            yield from schema_keys(f.default_factory, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


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
    teacher = cfg.distill.teacher
    if not isinstance(teacher, (str, list, tuple)) and not OmegaConf.is_list(teacher):
        raise ConfigError(f"distill.teacher={teacher!r}: a run dir, checkpoint or model folder, or a list of them "
                          "for an ensemble. Fix: distill.teacher=RUN_DIR or distill.teacher=[A.pt,B.pt]")
    tokenize = cfg.scoring.tokenize
    if tokenize is not None:
        from sacrebleu.metrics import BLEU

        if tokenize not in BLEU.TOKENIZERS:
            raise ConfigError(f"scoring.tokenize={tokenize}: must be one of {' | '.join(BLEU.TOKENIZERS)} "
                              "(sacreBLEU's tokenizers). Fix: scoring.tokenize=13a, or leave it out")
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
    for key, spec in schema_keys():
        check, value = spec.metadata.get("check"), OmegaConf.select(cfg, key)
        if check is not None and value is not None and not check.test(value):
            raise ConfigError(f"{key}={value}: must be {check.what}. Fix: {key}=<value {check.what}>")
    check_rules(cfg)
