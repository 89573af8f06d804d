"""Checkpoint averaging (fairseq's and Marian's): the mean of the weights of several checkpoints
of one run, written as a checkpoint for translate, serve and the Translator."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from nmt.runs.checkpoint import Checkpoint, CheckpointError


def checkpoints_to_average(inputs, last_n: int, run: str) -> list[Path]:
    """`inputs`, or the newest `last_n` step_N.pt files of `run` (kept by train.keep_last)."""
    if inputs:
        return [Path(p) for p in inputs]
    if not (last_n and run):
        raise CheckpointError("nothing to average. Fix: average.inputs=[A.pt,B.pt,...] or "
                              "average.last_n=K average.run=RUN_DIR")
    found = sorted((Path(run) / "checkpoints").glob("step_*.pt"))
    if len(found) < last_n:
        raise CheckpointError(f"{Path(run) / 'checkpoints'}: {len(found)} step_N.pt checkpoint(s), last_n={last_n} "
                              "wanted. Fix: a smaller average.last_n, or train with train.keep_last=K (K >= last_n)")
    return found[-last_n:]


def average_checkpoints(paths: list[Path]) -> Checkpoint:
    """The mean of the models' weights (accumulated in float64, stored in each tensor's dtype),
    with the last checkpoint's configs and vocabularies and no training state. Refuses
    checkpoints of different models."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    first = Checkpoint.load(paths[0])
    shapes = {k: tuple(v.shape) for k, v in first.weights.items()}
    total = {k: v.to(torch.float64) if v.is_floating_point() else v.clone() for k, v in first.weights.items()}
    last = first
    for path in paths[1:]:
        last = Checkpoint.load(path)
        if last.model_config != first.model_config or last.vocab_files != first.vocab_files or \
                {k: tuple(v.shape) for k, v in last.weights.items()} != shapes:
            raise CheckpointError(f"{path}: a different model or vocabulary than {paths[0]}. "
                                  "Fix: average checkpoints of one training run")
        for k, v in last.weights.items():
            if v.is_floating_point():
                total[k] += v.to(torch.float64)
    weights = {k: (v / len(paths)).to(last.weights[k].dtype) if v.is_floating_point() else last.weights[k]
               for k, v in total.items()}
    return dataclasses.replace(last, weights=weights, training=None, progress={"step": last.progress.get("step")},
                               averaged_from=[str(p) for p in paths])


def average_into(acfg) -> Path:
    """`nmt.average`: average what `acfg` (the `average` config group) names into its output."""
    if not acfg.output:
        raise CheckpointError("no output given. Fix: average.output=PATH.pt")
    paths = checkpoints_to_average(list(acfg.inputs), acfg.last_n, acfg.run)
    out = Path(acfg.output)
    average_checkpoints(paths).save(out)
    print(f"average: {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) -> {out}")
    return out
