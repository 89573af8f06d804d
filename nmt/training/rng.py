"""Random number generator states for exact resume: captured on every rank, stored as tensors
and plain values (no NumPy objects in a checkpoint), restored per rank."""
from __future__ import annotations

import random

import numpy as np
import torch


def rng_states() -> dict:
    """This process's torch, NumPy, Python (and CUDA) RNG states as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
              "python": random.getstate()}
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


def rng_states_for_rank(per_rank: list[dict], rank: int, world_size: int) -> tuple[dict, str | None]:
    """The RNG states this rank resumes with, and a note when they cannot be its own (a
    checkpoint of another world size)."""
    if len(per_rank) == world_size:
        return per_rank[rank], None
    return per_rank[0], (f"the checkpoint holds the RNG states of {len(per_rank)} process(es), this run has "
                         f"{world_size}: resuming with rank 0's states (the run continues, but not bit-exactly)")


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                       numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    np.random.set_state(numpy_state)  # a tuple: checkpoints written before version 3
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
