"""Entry point: average the weights of several checkpoints of one run (fairseq's and Marian's
checkpoint averaging), written as a checkpoint for translate, serve and the Translator.

    python -m nmt.average inputs=[RUN/checkpoints/step_00004000.pt,...] output=avg.pt
    python -m nmt.average last_n=5 run=RUN output=RUN/checkpoints/avg5.pt   # needs train.keep_last >= 5
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from nmt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nmt.config import CONF_DIR, check_config

# what an averaged checkpoint keeps of its last input besides the averaged weights
KEPT = ("model_cfg", "train_cfg", "prepared", "preprocess", "languages", "vocab_files", "n_params")


def checkpoints_to_average(inputs, last_n: int, run: str) -> list[Path]:
    """`inputs`, or the newest `last_n` step_N.pt files of `run` (kept by train.keep_last)."""
    if inputs:
        return [Path(p) for p in inputs]
    if not (last_n and run):
        raise CheckpointError("nothing to average. Fix: inputs=[A.pt,B.pt,...] or last_n=K run=RUN_DIR")
    found = sorted((Path(run) / "checkpoints").glob("step_*.pt"))
    if len(found) < last_n:
        raise CheckpointError(f"{Path(run) / 'checkpoints'}: {len(found)} step_N.pt checkpoint(s), last_n={last_n} "
                              "wanted. Fix: a smaller last_n, or train with train.keep_last=K (K >= last_n)")
    return found[-last_n:]


def average_checkpoints(paths: list[Path]) -> dict:
    """The mean of the models' weights (accumulated in float64, stored in each tensor's dtype),
    with the last checkpoint's configs and vocabularies. Refuses checkpoints of different models."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    first = last = None
    for path in paths:
        ckpt = last = load_checkpoint(path)
        state = ckpt["model"]
        if first is None:
            first = ckpt
            total = {k: v.to(torch.float64) if v.is_floating_point() else v.clone() for k, v in state.items()}
            continue
        if ckpt["model_cfg"] != first["model_cfg"] or ckpt["vocab_files"] != first["vocab_files"] or \
                {k: tuple(v.shape) for k, v in state.items()} != {k: tuple(v.shape) for k, v in total.items()}:
            raise CheckpointError(f"{path}: a different model or vocabulary than {paths[0]}. "
                                  "Fix: average checkpoints of one training run")
        for k, v in state.items():
            if v.is_floating_point():
                total[k] += v.to(torch.float64)
    dtypes = {k: v.dtype for k, v in last["model"].items()}
    model = {k: (v / len(paths)).to(dtypes[k]) if v.is_floating_point() else last["model"][k] for k, v in total.items()}
    return {**{k: last[k] for k in KEPT if k in last}, "model": model,
            "progress": {"step": last.get("progress", {}).get("step")},
            "averaged_from": [str(p) for p in paths]}


def run(cfg: DictConfig) -> Path:
    check_config(cfg)
    if not cfg.output:
        raise CheckpointError("no output given. Fix: output=PATH.pt")
    paths = checkpoints_to_average(list(cfg.inputs), cfg.last_n, cfg.run)
    payload = average_checkpoints(paths)
    out = Path(cfg.output)
    save_checkpoint(out, payload)
    print(f"average: {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) -> {out}")
    return out


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except (CheckpointError, ValueError) as err:
        sys.exit(f"average: error: {err}")


if __name__ == "__main__":
    main()
