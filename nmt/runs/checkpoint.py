"""The checkpoint file: one typed `Checkpoint` with a version, written atomically with a content
hash, read back without running any code (`torch.load(weights_only=True)`), for inference
(weights, configs, vocabularies) or for training (plus optimizer, schedule, sampler and RNG
states). Every writer and reader of `.pt` files in nmt uses it; what a run folder holds around
its checkpoints (the summary, resuming, the recommended checkpoint) is `nmt.runs.run_folder`.

A file holds only tensors, plain containers, numbers, strings and bytes: configs as plain
dicts, vocabularies as the bytes of their files. Files written before version 3 hold NumPy's
RNG state as an array; NumPy's array reconstruction is the one global allowed besides, so they
still load.
"""
from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nmt.errors import NmtError

CHECKPOINT_VERSION = 3  # 3: typed fields, plain containers only; 2: content hash; 1: first
READABLE_VERSIONS = (1, 2, 3)
_NUMPY_CORE = getattr(np, "_core", None) or np.core
# what version-1/2 files need beyond tensors and containers: NumPy's RNG state array
LEGACY_SAFE_GLOBALS = [_NUMPY_CORE.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


# model settings a resumed run may change: regularisation, not what the weights are
RESUMABLE_CHANGES = {"dropout", "emb_dropout", "word_dropout"}
# the largest model a file may describe, checked before any weight is allocated (`max_params=`)
MAX_PARAMS = 1_000_000_000


class CheckpointError(NmtError, ValueError):
    """A checkpoint that is missing, damaged, unsafe or unusable: the message names the file and the fix."""


@dataclass
class TrainingState:
    """What resuming needs besides the weights: state dicts of the optimizer, the learning-rate
    schedule, the grad scaler and the batch sampler, and every rank's RNG states."""

    optimizer: dict
    scheduler: dict
    scaler: dict
    sampler: dict
    rng_per_rank: list


@dataclass
class Checkpoint:
    """A model and everything needed to use it: weights, model config, the vocabulary files,
    the preprocessing of its training data, languages, where its data was prepared, the
    training progress; for a training checkpoint also the train config and `training`
    state. An averaged checkpoint has `training=None` and `averaged_from`."""

    weights: dict
    model_config: dict
    vocab_files: dict
    preprocess: dict
    languages: dict
    prepared: dict  # {dir, format_version, special_ids, vocab: {kind, joint, src_size, tgt_size}}
    n_params: int
    progress: dict = field(default_factory=dict)  # the trainer's Progress as a dict
    train_config: dict | None = None
    training: TrainingState | None = None
    averaged_from: list | None = None
    decode_defaults: dict = field(default_factory=dict)
    version: int = CHECKPOINT_VERSION
    source: str = field(default="", compare=False, repr=False)  # the file it was read from (for messages)

    # ------------------------------------------------------------------ writing

    def payload(self) -> dict:
        """The plain dict stored on disk (without version and hash)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("version", "source")}
        data["training"] = dataclasses.asdict(self.training) if self.training is not None else None
        return data

    def save(self, path: Path) -> None:
        """Write to a scratch file beside `path`, then rename: a crash never leaves half a file.
        The file carries a content hash that `load` verifies; non-finite weights are refused,
        so no checkpoint ever holds them."""
        from nmt.files import atomic_file

        path = Path(path)
        bad = non_finite_weights(self.weights)
        if bad:
            raise CheckpointError(f"{path}: not saved: the weights {bad[:3]} hold NaN/inf")
        payload = self.payload()
        with atomic_file(path) as tmp:
            torch.save({"checkpoint_version": CHECKPOINT_VERSION, **payload,
                        "content_sha256": content_hash(payload)}, tmp)

    # ------------------------------------------------------------------ reading

    @classmethod
    def load(cls, path: Path, for_training: bool = False) -> "Checkpoint":
        """Read and verify `path`: no code runs (weights_only), the content hash matches, the
        weights are finite; `for_training` also requires the training state. Raises
        CheckpointError (one line: the file, what is wrong, the fix)."""
        path = Path(path)
        raw = _read(path)
        version = raw.get("checkpoint_version") if isinstance(raw, dict) else None
        if version not in READABLE_VERSIONS:
            raise CheckpointError(f"{path}: not an nmt checkpoint this version reads (checkpoint_version {version}, "
                                  f"reads {READABLE_VERSIONS}). Fix: pass a checkpoint written by nmt.train")
        stored = raw.pop("content_sha256", None)
        payload = {k: v for k, v in raw.items() if k != "checkpoint_version"}
        if version >= 2 and stored != content_hash(payload):
            raise _damaged(path, "its content does not match the hash stored when it was written")
        try:
            ckpt = cls._from_payload(payload, version)
        except (TypeError, KeyError, AttributeError) as err:  # the hash matched: written so on purpose
            raise _damaged(path, f"its fields are not those nmt writes ({type(err).__name__}: {err})") from None
        ckpt.source = str(path)
        ckpt.check_names()
        bad = non_finite_weights(ckpt.weights)
        if bad:
            raise _damaged(path, f"NaN/inf in the weights {bad[:3]}")
        if for_training and ckpt.training is None:
            raise CheckpointError(f"{path}: holds weights only (an averaged checkpoint?), no optimizer or "
                                  "sampler state to resume from. Fix: train.resume=RUN_DIR (its checkpoints/last.pt)")
        return ckpt

    @classmethod
    def _from_payload(cls, p: dict, version: int) -> "Checkpoint":
        if version >= 3:
            training = TrainingState(**p["training"]) if p.get("training") is not None else None
            return cls(**{**p, "training": training}, version=version)
        # versions 1 and 2: flat keys
        training = None
        if "optimizer" in p:
            training = TrainingState(p["optimizer"], p["scheduler"], p["scaler"], p["sampler"],
                                     p.get("rng_per_rank") or [p["rng"]])
        return cls(weights=p["model"], model_config=p["model_cfg"], vocab_files=p["vocab_files"],
                   preprocess=p.get("preprocess") or {}, languages=p.get("languages") or {},
                   prepared=p["prepared"], n_params=p.get("n_params") or 0, progress=p.get("progress") or {},
                   train_config=p.get("train_cfg"), training=training, averaged_from=p.get("averaged_from"),
                   version=version)

    # ------------------------------------------------------------------ using

    def check_names(self) -> None:
        """Every vocabulary file name is a plain file name: `vocabs()` writes them into a folder, and
        a path there would write anywhere. CheckpointError naming the file and the entry."""
        from nmt.files import plain_name

        if not isinstance(self.vocab_files, dict) or not all(isinstance(b, bytes) for b in self.vocab_files.values()):
            raise _damaged(Path(self.source), "its vocabulary files are not a map of names to bytes")
        for name in self.vocab_files:
            plain_name(name, self.source or "the checkpoint", "vocabulary file", CheckpointError)

    def vocabs(self):
        """(source, target) vocabularies rebuilt from the stored files."""
        from nmt.data.vocab import load_vocabs

        self.check_names()
        with tempfile.TemporaryDirectory() as tmp:
            for name, blob in self.vocab_files.items():
                (Path(tmp) / name).write_bytes(blob)
            return load_vocabs(Path(tmp))  # spm models are read into memory here

    def build_model(self, src_size: int, tgt_size: int, pad_id: int, device="cpu",
                    max_params: int = MAX_PARAMS) -> torch.nn.Module:
        """The model with these weights, in eval mode, on `device`. The model its settings
        describe is first built without memory (torch's meta device) and its size checked
        against `max_params`; settings or weights that do not make a model are a
        CheckpointError naming the file."""
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        from nmt.model import build_model

        where = self.source or "the checkpoint"
        try:
            settings = OmegaConf.create(self.model_config)
            with torch.device("meta"):
                n_params = sum(p.numel() for p in build_model(settings, src_size, tgt_size, pad_id).parameters())
        except (OmegaConfBaseException, NmtError, ValueError, TypeError) as err:
            raise CheckpointError(f"{where}: its model settings do not describe a model nmt builds "
                                  f"({first_sentence(str(err))}). Fix: use a file written by nmt, or export it again") from None
        if n_params > max_params:
            raise CheckpointError(f"{where}: its settings describe a model of {n_params:,} parameters, over the "
                                  f"limit of {max_params:,}; nothing was allocated. Fix: max_params={n_params} if "
                                  "you trust this file")
        model = build_model(settings, src_size, tgt_size, pad_id)
        try:
            model.load_state_dict(self.weights)
        except RuntimeError as err:  # torch lists every mismatch; the first one says enough
            lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()] or [str(err)]
            raise CheckpointError(f"{where}: its weights do not fit the model its settings describe "
                                  f"({lines[0].rstrip('.')}). Fix: use a file written by nmt, or export it again") from None
        return model.to(device).eval()

    def vocab_fingerprint(self) -> str:
        return vocab_fingerprint(self.vocab_files)

    def check_compatible(self, path: Path, model_config: dict, vocab_dir: Path) -> None:
        """Refuse to resume into a run whose model settings or vocabularies differ from the
        checkpoint's: the weights would not fit, or the ids would mean other pieces."""
        same = sorted((set(self.model_config) & set(model_config)) - RESUMABLE_CHANGES)
        differ = [f"model.{k}={self.model_config[k]} in the checkpoint, {model_config[k]} now"
                  for k in same if self.model_config[k] != model_config[k]]
        if differ:
            raise CheckpointError(f"{path}: another model than this run's: {'; '.join(differ)}. "
                                  "Fix: resume with the checkpoint's model settings, or start a new run")
        if self.vocab_fingerprint() != vocab_fingerprint(vocab_files(vocab_dir)):
            raise CheckpointError(f"{path}: trained with other vocabularies than {vocab_dir} holds (prepared in "
                                  f"{self.prepared.get('dir')}). Fix: prepared_dir= the folder the checkpoint was "
                                  "trained on, or start a new run")

    def info(self) -> dict:
        """What `Translator.info` and the server's /info report."""
        vocab = self.prepared.get("vocab", {})
        metric = (self.train_config or {}).get("early_stopping_metric")
        return {"model": self.model_config, "n_params": self.n_params,
                "vocab": {"kind": vocab.get("kind"), "src_size": vocab.get("src_size"), "tgt_size": vocab.get("tgt_size")},
                "languages": self.languages or None, "step": self.progress.get("step"),
                "best_valid": {"metric": metric, "score": self.progress.get("best_score"),
                               "step": self.progress.get("best_step")},
                "averaged_from": [Path(p).name for p in self.averaged_from] if self.averaged_from else None,
                "decode_defaults": self.decode_defaults or None}


def _read(path: Path) -> dict:
    """torch.load under weights_only: a pickle that would call anything else is refused before
    any of it runs."""
    import pickle

    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint. Fix: pass ckpt=RUN_DIR/checkpoints/best.pt of a training run")
    try:
        with torch.serialization.safe_globals(LEGACY_SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise _damaged(path, f"torch.load failed ({type(err).__name__}: {first_sentence(str(err))})") from None
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # not a torch archive at all
            names = []
        if not names:
            raise _damaged(path, "not a torch checkpoint archive") from None
        found = ", ".join(names[:5])
        raise CheckpointError(
            f"{path}: refused: the file would call {found} when loaded, and a checkpoint may hold only tensors, "
            "numbers, strings, bytes and containers (nmt never writes anything else; a file that does can run "
            "code). Nothing of it was run. Fix: use a checkpoint written by nmt.train") from None
    except Exception as err:  # truncated zip, bad archive, ...: torch raises many kinds
        raise _damaged(path, f"torch.load failed ({type(err).__name__}: {first_sentence(str(err))})") from None


def _feed(h, obj) -> None:
    """Hash `obj` (nested dicts, lists, tuples, tensors, arrays, scalars, str, bytes) by content."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, np.ndarray):
        h.update(f"A{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[" if isinstance(obj, list) else b"(")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(obj, bytes):
        h.update(b"B%d:" % len(obj) + obj)
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def content_hash(payload: dict) -> str:
    """sha256 over everything in a checkpoint payload: weights, optimizer, configs, vocab files."""
    h = hashlib.sha256()
    _feed(h, payload)
    return h.hexdigest()


def non_finite_weights(state: dict) -> list[str]:
    """Names of the floating-point tensors in a state dict holding NaN or infinity."""
    return [k for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def _damaged(path: Path, what: str) -> CheckpointError:
    others = sorted(p.name for p in path.parent.glob("*.pt") if p != path)
    hint = f" ({', '.join(others)} in the same folder)" if others else ""
    return CheckpointError(f"{path}: damaged checkpoint: {what}. Fix: use another checkpoint of the run{hint}, "
                           "e.g. checkpoints/best.pt or an earlier one, or train again")


def first_sentence(message: str, limit: int = 120) -> str:
    """The first line of an error message, up to its first full stop (or `limit` characters)."""
    line = (message.splitlines() or [""])[0]
    return line[:line.find(". ") + 1] if 0 <= line.find(". ") < limit else line[:limit]


def vocab_fingerprint(files: dict[str, bytes]) -> str:
    """sha256 over vocabulary files: equal fingerprints, equal id mappings. A SentencePiece
    `X.model` counts through its `X.vocab` (every piece and score, one line per id): the model's
    bytes also hold the scratch paths prepare trained it from, which differ between two
    preparations of the same data (sentencepiece can rewrite them only through protobuf,
    which nmt does not otherwise need)."""
    h = hashlib.sha256()
    _feed(h, {name: blob for name, blob in files.items()
              if not (name.endswith(".model") and name[:-len(".model")] + ".vocab" in files)})
    return h.hexdigest()


def vocab_files(vocab_dir: Path) -> dict[str, bytes]:
    """The vocab folder's files, stored in the checkpoint so it alone can rebuild the vocabs."""
    return {p.name: p.read_bytes() for p in sorted(Path(vocab_dir).iterdir()) if p.is_file()}
