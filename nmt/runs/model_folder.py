"""A shareable model folder: what `nmt.export` writes and `Translator.from_pretrained(DIR)` (or
`ckpt=DIR`) reads, without unpickling anything.

    DIR/model.safetensors   the weights (safetensors: tensors and a JSON header, no code)
    DIR/config.json         model, vocabulary and preprocessing settings, languages, training
                            step, validation score with its sacreBLEU signature, test scores
    DIR/vocab/...           the vocabulary files (sentencepiece .model/.vocab, or vocab.json)
    DIR/README.md           a model card: data, sizes, scores with signatures, the commands
    DIR/SHA256SUMS          the sha256 of config.json, the weights and every vocabulary file, in
                            the format `sha256sum -c SHA256SUMS` checks; a folder without it, or
                            whose files differ from it, is refused

Every name a folder's files give is a plain file name inside the folder; the model its settings
describe is measured before any weight is allocated (nmt.runs.checkpoint.Checkpoint.build_model).
"""
from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from nmt.files import is_plain_name, plain_name
from nmt.runs.checkpoint import Checkpoint, CheckpointError, first_sentence

FORMAT = "nmt-model-folder"
FORMAT_VERSION = 2  # 2: SHA256SUMS over every file; 1: a weights hash in config.json only (refused)
WEIGHTS, CONFIG, CARD, VOCAB, SUMS = "model.safetensors", "config.json", "README.md", "vocab", "SHA256SUMS"
REEXPORT = "Fix: export the model again (python -m nmt.export ckpt=RUN_DIR export.output=DIR)"


def is_model_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / CONFIG).is_file()


def training_data(prepared_dir: str | None) -> dict | None:
    """Name, files and pair counts of the data the model was trained on, from the prepared
    folder's meta.json when it is still there (and sound)."""
    from nmt.data.store import PreparedDataError, PreparedMeta

    try:
        meta = PreparedMeta.load(Path(prepared_dir)) if prepared_dir else None
    except PreparedDataError:
        return None
    if meta is None:
        return None
    data = meta.config.data
    return {"name": data.get("name"), "splits": data.get("splits") or data.get("files"), "pairs": meta.counts}


def folder_config(ckpt: Checkpoint, source_name: str, test_scores: list[dict] | None,
                  bleu_signature: str | None = None) -> dict:
    """config.json's content for a checkpoint (and its test scores, when measured);
    `bleu_signature`: sacreBLEU's, shown beside a validation BLEU."""
    train = ckpt.train_config or {}
    metric = train.get("early_stopping_metric")
    signature = bleu_signature if metric == "bleu" else None
    vocab = ckpt.prepared.get("vocab", {})
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "architecture": ckpt.model_config.get("arch", "rnn"), "model": ckpt.model_config,
        "n_params": ckpt.n_params, "languages": ckpt.languages,
        "vocab": {**vocab, "files": sorted(ckpt.vocab_files)}, "special_ids": ckpt.prepared.get("special_ids"),
        "preprocess": ckpt.preprocess, "data": training_data(ckpt.prepared.get("dir")),
        "training": {"from": source_name, "step": ckpt.progress.get("step"), "epoch": ckpt.progress.get("epoch"),
                     "train_minutes": round(ckpt.progress.get("train_seconds", 0) / 60, 1),
                     "best_valid": {"metric": metric, "score": ckpt.progress.get("best_score"),
                                    "step": ckpt.progress.get("best_step"), "signature": signature},
                     "averaged_from": [Path(p).name for p in ckpt.averaged_from] if ckpt.averaged_from else None},
        "decode_defaults": ckpt.decode_defaults or None,  # chosen on val by nmt.train (length_penalty)
        "test": test_scores,
    }


def write_folder(ckpt: Checkpoint, config: dict, card: str, output: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Write the folder under a scratch name beside `output`, then rename it into place. `extra`:
    more files by name (the confidence calibration)."""
    import torch
    from safetensors.torch import save_file

    from nmt.files import atomic_dir

    output = Path(output)
    ckpt.check_names()
    with atomic_dir(output) as tmp:
        # tied weights (output projection = target embedding) are one tensor in memory;
        # safetensors stores no aliases, so each name gets its own copy (a few MB)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in ckpt.weights.items()
                   if isinstance(v, torch.Tensor)}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        (tmp / VOCAB).mkdir()
        for name, blob in ckpt.vocab_files.items():
            (tmp / VOCAB / name).write_bytes(blob)
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / CARD).write_text(card, encoding="utf-8")
        for name, blob in (extra or {}).items():
            (tmp / name).write_bytes(blob)
        covered = [CONFIG, WEIGHTS] + [f"{VOCAB}/{name}" for name in sorted(ckpt.vocab_files)] + sorted(extra or {})
        (tmp / SUMS).write_text("".join(f"{sha256_of(tmp / name)}  {name}\n" for name in covered))
    return output


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_config(path: Path) -> dict:
    """config.json of the folder at `path`, checked: JSON, this format, the keys nmt reads."""
    file = path / CONFIG
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise CheckpointError(f"{file}: unreadable ({type(err).__name__}: {first_sentence(str(err))}). "
                              f"{REEXPORT}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{file}: not an nmt model folder (no format {FORMAT!r}). {REEXPORT}")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{file}: model folder format {config.get('format_version')!r}, this nmt reads "
                              f"{FORMAT_VERSION} (whose {SUMS} checks every file). {REEXPORT}")
    try:
        FolderConfig.model_validate(config)
    except ValidationError as err:
        first = err.errors()[0]
        raise CheckpointError(f"{file}: {'.'.join(map(str, first['loc'])) or 'the top level'}: {first['msg']}. "
                              f"{REEXPORT}") from None
    return config


def check_sums(path: Path, config: dict) -> None:
    """SHA256SUMS lists config.json, the weights and every vocabulary file config.json names, each
    with its content's sha256; anything else, or a name outside the folder, is refused."""
    sums = path / SUMS
    if not sums.is_file():
        raise CheckpointError(f"{sums}: missing, so the folder's files cannot be checked. {REEXPORT}")
    listed = {}
    for n, line in enumerate(sums.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        parts = name.split("/")
        inside = len(parts) == 1 or (len(parts) == 2 and parts[0] == VOCAB)
        if len(digest) != 64 or not inside or not all(is_plain_name(p) for p in parts):
            raise CheckpointError(f"{sums}:{n}: not a line `SHA256  FILE` naming a file of the folder. {REEXPORT}")
        listed[name] = digest
    vocab_names = config["vocab"]["files"]
    for name in vocab_names:
        plain_name(name, path / CONFIG, "vocabulary file", CheckpointError)
    needed = [CONFIG, WEIGHTS] + [f"{VOCAB}/{name}" for name in vocab_names]
    for name in needed:
        if name not in listed:
            raise CheckpointError(f"{sums}: does not cover {name}. {REEXPORT}")
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name}: missing. Fix: copy the whole folder, or export it again")
        if sha256_of(path / name) != listed[name]:
            raise CheckpointError(f"{path / name}: its content differs from {SUMS} (damaged or edited). "
                                  "Fix: copy the folder again, or export it again")


def read_folder(path: Path) -> Checkpoint:
    """The folder as a weights-only Checkpoint (what Translator needs); CheckpointError (the
    file, the problem, the fix) for a folder that is incomplete, edited, damaged or of another
    format."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from nmt.runs.checkpoint import non_finite_weights

    path = Path(path)
    config = read_config(path)
    check_sums(path, config)
    weights_file = path / WEIGHTS
    try:
        weights = load_file(str(weights_file))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{weights_file}: not a readable safetensors file ({err}). {REEXPORT}") from None
    bad = non_finite_weights(weights)
    if bad:
        raise CheckpointError(f"{weights_file}: NaN/inf in the weights {bad[:3]}. Fix: export a sound checkpoint")
    training = config.get("training") or {}
    best = training.get("best_valid") or {}
    return Checkpoint(
        weights=weights, model_config=config["model"],
        vocab_files={n: (path / VOCAB / n).read_bytes() for n in config["vocab"]["files"]},
        preprocess=config.get("preprocess") or {}, languages=config.get("languages") or {},
        prepared={"dir": None, "special_ids": config.get("special_ids"),
                  "vocab": {k: v for k, v in config["vocab"].items() if k != "files"}},
        n_params=config.get("n_params") or 0,
        progress={"step": training.get("step"), "best_score": best.get("score"), "best_step": best.get("step")},
        train_config={"early_stopping_metric": best.get("metric")}, training=None,
        averaged_from=training.get("averaged_from"), decode_defaults=config.get("decode_defaults") or {},
        source=str(path))


class FolderVocab(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: str
    files: List[str]


class FolderConfig(BaseModel):
    """The keys of config.json that reading a folder relies on (others are information)."""

    model_config = ConfigDict(extra="allow")
    model: Dict[str, Any]
    vocab: FolderVocab
    preprocess: Optional[Dict[str, Any]] = None
    languages: Optional[Dict[str, Any]] = None
    special_ids: Optional[Dict[str, int]] = None
    training: Optional[Dict[str, Any]] = None
    decode_defaults: Optional[Dict[str, Any]] = None


NMT_USE = ["```python", "from nmt import Translator", "", "tr = Translator.from_pretrained(\"THIS_FOLDER\")",
           "print(tr.translate([\"...\"]))", "```", "",
           "or `python -m nmt.translate ckpt=THIS_FOLDER translate.input=FILE`, `python -m nmt.serve ckpt=THIS_FOLDER`."]


def model_card(config: dict, command: str, train_command: str | None, use: list[str] | None = None) -> str:
    """README.md of the folder: what the model is, how well it does, how to use it (`use`: the
    lines of that section, default nmt's own API; [] leaves it out), how it was made."""
    langs = config.get("languages") or {}
    pair = f"{langs.get('src', '?')} -> {langs.get('tgt', '?')}"
    m, v, t = config["model"], config["vocab"], config["training"]
    arch = (f"Transformer, d_model {m.get('emb_dim')}, {m.get('heads')} heads, feed-forward {m.get('ff_dim')}, "
            f"{m.get('enc_layers')}+{m.get('dec_layers')} layers" if config["architecture"] == "transformer" else
            f"{m.get('cell', '').upper()} encoder-decoder, embeddings {m.get('emb_dim')}, hidden {m.get('hidden_dim')}, "
            f"{m.get('enc_layers')}+{m.get('dec_layers')} layers, "
            f"{'bidirectional, ' if m.get('bidirectional') else ''}attention {m.get('attention')}")
    best = t.get("best_valid") or {}
    lines = [f"# nmt model: {pair}", "",
             f"- Architecture: {arch}; {config['n_params']:,} parameters.",
             data_line(config.get("data")),
             f"- Vocabulary: {v.get('kind')} (source {v.get('src_size')}, target {v.get('tgt_size')} entries"
             f"{', joint' if v.get('joint') else ''}).",
             f"- Preprocessing: unicode {config['preprocess'].get('normalize')}, "
             f"lowercased: {config['preprocess'].get('lowercase')}.",
             f"- Training: step {t.get('step')}, epoch {t.get('epoch')}, {t.get('train_minutes')} minutes"
             + (f"; averaged from {', '.join(t['averaged_from'])}" if t.get("averaged_from") else "") + ".",
             f"- Selected on validation: {best.get('metric')} {best.get('score'):.2f} at step {best.get('step')}"
             + (f" (`{best['signature']}`)" if best.get("signature") else "") + "."
             if best.get("score") is not None else "- Selected on validation: (not recorded).", ""]
    if config.get("test"):
        lines += ["## Test scores", "", f"Split `{config['test'][0]['split']}`, {config['test'][0]['search']}:", ""]
        lines += [f"- `{s['line']}`" for s in config["test"]] + [""]
    use = NMT_USE if use is None else use
    if use:
        lines += ["## Use", "", *use, ""]
    lines += ["## How it was made", ""]
    if train_command:
        lines += [f"    {train_command}"]
    lines += [f"    {command}", ""]
    return "\n".join(lines)


def data_line(data: dict | None) -> str:
    if not data:
        return "- Data: (the prepared folder was not found at export time)."
    pairs = ", ".join(f"{k} {v:,}" for k, v in (data.get("pairs") or {}).items())
    splits = ", ".join(f"{k} = {v}" for k, v in (data.get("splits") or {}).items())
    return f"- Data: {data.get('name')} ({splits}); pairs after cleaning: {pairs}."


def training_command(checkpoint: Path) -> str | None:
    """`python -m nmt.train` with the overrides Hydra recorded in the checkpoint's run folder."""
    overrides = Path(checkpoint).resolve().parents[1] / ".hydra" / "overrides.yaml"
    if not overrides.is_file():
        return None
    import yaml

    args = yaml.safe_load(overrides.read_text()) or []
    return " ".join(["python -m nmt.train", *map(shlex.quote, map(str, args))])


def read_model(path: Path) -> Checkpoint:
    """A checkpoint file or a model folder, as a Checkpoint (what inference and diagnosis need)."""
    return read_folder(path) if is_model_folder(path) else Checkpoint.load(path)
