"""Self-describing, atomically written checkpoints; a model and its vocabs rebuilt from one file."""
from __future__ import annotations

import hashlib
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from nmt.vocab import load_vocabs

CHECKPOINT_VERSION = 2  # 2: a content hash over the whole payload (`content_sha256`)
READABLE_VERSIONS = (1, 2)


class CheckpointError(ValueError):
    """A checkpoint that is missing, damaged or unusable: the message names the file and the fix."""


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


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file.
    The file carries a content hash that `load_checkpoint` verifies; non-finite weights are
    refused, so no checkpoint ever holds them."""
    path = Path(path)
    bad = non_finite_weights(payload.get("model", {}))
    if bad:
        raise CheckpointError(f"{path}: not saved: the weights {bad[:3]} hold NaN/inf")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save({"checkpoint_version": CHECKPOINT_VERSION, **payload,
                    "content_sha256": content_hash(payload)}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(ckpt_dir: Path) -> int:
    """Delete `.NAME.*.tmp` files that a killed save left in a checkpoint folder; return the count."""
    stale = list(Path(ckpt_dir).glob(".*.pt.*.tmp")) if Path(ckpt_dir).is_dir() else []
    for f in stale:
        f.unlink(missing_ok=True)
    return len(stale)


def _damaged(path: Path, what: str) -> CheckpointError:
    others = sorted(p.name for p in path.parent.glob("*.pt") if p != path)
    hint = f" ({', '.join(others)} in the same folder)" if others else ""
    return CheckpointError(f"{path}: damaged checkpoint: {what}. Fix: use another checkpoint of the run{hint}, "
                           "e.g. checkpoints/best.pt or an earlier one, or train again")


def load_checkpoint(path: Path) -> dict:
    """Load and verify a checkpoint: its content hash and finite weights. Raises CheckpointError
    (one line: the file, what is wrong, the fix) for a missing, truncated or altered file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint. Fix: pass ckpt=RUN_DIR/checkpoints/best.pt of a training run")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated zip, bad pickle, ...: torch raises many kinds
        raise _damaged(path, f"torch.load failed ({type(err).__name__}: {first_sentence(str(err))})") from None
    if not isinstance(ckpt, dict) or ckpt.get("checkpoint_version") not in READABLE_VERSIONS:
        version = ckpt.get("checkpoint_version") if isinstance(ckpt, dict) else None
        raise CheckpointError(f"{path}: not an nmt checkpoint this version reads (checkpoint_version {version}, "
                              f"reads {READABLE_VERSIONS}). Fix: pass a checkpoint written by nmt.train")
    stored = ckpt.pop("content_sha256", None)
    if ckpt["checkpoint_version"] >= 2:
        payload = {k: v for k, v in ckpt.items() if k != "checkpoint_version"}
        if stored != content_hash(payload):
            raise _damaged(path, "its content does not match the hash stored when it was written")
    bad = non_finite_weights(ckpt.get("model", {}))
    if bad:
        raise _damaged(path, f"NaN/inf in the weights {bad[:3]}")
    return ckpt


def vocab_files(vocab_dir: Path) -> dict[str, bytes]:
    """The vocab folder's files, stored in the checkpoint so it alone can rebuild the vocabs."""
    return {p.name: p.read_bytes() for p in sorted(Path(vocab_dir).iterdir()) if p.is_file()}


def vocabs_from_checkpoint(ckpt: dict):
    with tempfile.TemporaryDirectory() as tmp:
        for name, blob in ckpt["vocab_files"].items():
            (Path(tmp) / name).write_bytes(blob)
        return load_vocabs(Path(tmp))  # spm models are read into memory here


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu"):
    """(model in eval mode, src vocab, tgt vocab, model config) from a loaded checkpoint."""
    from nmt.model import build_model

    src_vocab, tgt_vocab = vocabs_from_checkpoint(ckpt)
    model_cfg = OmegaConf.create(ckpt["model_cfg"])
    model = build_model(model_cfg, src_vocab.size, tgt_vocab.size, tgt_vocab.pad_id)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), src_vocab, tgt_vocab, model_cfg


def first_sentence(message: str, limit: int = 120) -> str:
    """The first line of an error message, up to its first full stop (or `limit` characters)."""
    line = (message.splitlines() or [""])[0]
    return line[:line.find(". ") + 1] if 0 <= line.find(". ") < limit else line[:limit]


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def rng_states_of_all_ranks() -> list[dict]:
    """Every rank's RNG states, indexed by rank (a collective under torchrun: all ranks call it)."""
    import torch.distributed as dist

    local = rng_states()
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [local]
    states: list = [None] * dist.get_world_size()
    dist.all_gather_object(states, local)
    return states


def rng_states_for_rank(ckpt: dict, rank: int, world_size: int) -> tuple[dict, str | None]:
    """The RNG states this rank resumes with, and a note when they cannot be its own (a
    checkpoint of another world size, or one from before per-rank states were stored)."""
    per_rank = ckpt.get("rng_per_rank")
    if per_rank and len(per_rank) == world_size:
        return per_rank[rank], None
    if world_size == 1 and not per_rank:
        return ckpt["rng"], None
    saved = len(per_rank) if per_rank else "an unknown number of"
    return ckpt["rng"], (f"the checkpoint holds the RNG states of {saved} process(es), this run has {world_size}: "
                         "resuming with rank 0's states (the run continues, but not bit-exactly)")


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def resolve_resume(resume, run_dir: Path) -> Path | None:
    """train.resume: false -> None; true -> this run dir's last.pt; auto -> that if it exists,
    else None (a requeued cluster job); a run dir or a .pt file."""
    if resume is False or resume is None or str(resume).lower() in ("false", "0", ""):
        return None
    if str(resume).lower() == "auto":
        target = Path(run_dir) / "checkpoints" / "last.pt"
        return target if target.is_file() else None
    if resume is True or str(resume).lower() == "true":
        target = Path(run_dir) / "checkpoints" / "last.pt"
    else:
        p = Path(str(resume))
        target = p if p.suffix == ".pt" else p / "checkpoints" / "last.pt"
    if not target.is_file():
        raise FileNotFoundError(
            f"train.resume={resume}: {target} does not exist. Fix: train.resume=RUN_DIR of an earlier run "
            "(outputs/DATE/TIME) or the path of its checkpoints/last.pt")
    return target

