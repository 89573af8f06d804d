"""Self-describing, atomically written checkpoints; a model and its vocabs rebuilt from one file."""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from nmt.vocab import load_vocabs

CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save({"checkpoint_version": CHECKPOINT_VERSION, **payload}, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint. Fix: pass ckpt=RUN_DIR/checkpoints/best.pt of a training run")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {ckpt.get('checkpoint_version')}, this nmt reads {CHECKPOINT_VERSION}")
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


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def resolve_resume(resume, run_dir: Path) -> Path | None:
    """train.resume: false -> None; true -> this run dir's last.pt; a run dir or a .pt file."""
    if resume is False or resume is None or str(resume).lower() in ("false", "0", ""):
        return None
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

