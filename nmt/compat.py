"""Where nmt reaches past a library's public API, one function each, with the reason: torch's
one-direction RNN kernels and its CPU feature probes, the on-disk state file of `datasets` and a
view's row indices, uvicorn's h11 protocol class. `tests/test_compat.py` checks each against the
installed library and fails loudly (naming this module) when one changes; `pyproject.toml` caps
these libraries below their next untested release line."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

# ---------------------------------------------------------------- torch

# the kernels nn.RNN (tanh) and nn.GRU call, for one layer and one direction at a time
RNN_KERNELS = {nn.RNN: torch.rnn_tanh, nn.GRU: torch.gru}


def rnn_one_direction(rnn: nn.Module, x: torch.Tensor, h0: torch.Tensor, weights: list[torch.Tensor],
                      training: bool) -> torch.Tensor:
    """x (B, S, E), h0 (1, B, H), weights [w_ih, w_hh, b_ih, b_hh] of one layer and direction ->
    outputs (B, S, H), through the kernel nn.GRU / nn.RNN call themselves. Why: running each
    direction on the padded batch avoids packing, whose CPU backward pass costs a full-size
    gradient per step (nmt.model.encoder.forward_reversed); nn.GRU has no one-direction call on
    given weights. The kernels' positional arguments: input, hx, params, has_biases, num_layers,
    dropout, train, bidirectional, batch_first."""
    out, _ = RNN_KERNELS[type(rnn)](x, h0, weights, True, 1, 0.0, training, False, True)
    return out


# torch's probes of the CPU's instruction sets; no public API says whether bf16 is native
CPU_BF16_PROBES = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX). Without it a bf16
    matmul runs at ~1/170 of fp32 (measured on an AMD EPYC with AVX2), so train.precision=auto
    must know. A torch without the probes: False (fp32, the safe side)."""
    probes = [getattr(torch.cpu, name, None) for name in CPU_BF16_PROBES]
    return any(probe() for probe in probes if probe is not None)


# ---------------------------------------------------------------- datasets

def write_dataset_state(folder: Path, shard_names: list[str], fingerprint: str) -> None:
    """The `state.json` that `datasets.load_from_disk` reads beside a split's Arrow shards, as
    `Dataset.save_to_disk` writes it. Why: nmt writes the shards itself as the pairs stream in
    (nmt.data.store.ArrowSplitWriter), so 10M pairs are never held in memory or copied."""
    state = {"_data_files": [{"filename": name} for name in shard_names], "_fingerprint": fingerprint,
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": None}
    (Path(folder) / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))


def dataset_rows(split):
    """The rows of a `datasets.Dataset` as one pyarrow Table, in the dataset's order: a
    `select`ed view's rows, not those of the table underneath it. Why: reading ids column-wise
    from Arrow is what keeps batching and decoding fast; `Dataset.data` is public, the view's
    row indices (`_indices`) are not."""
    table = split.data.table if hasattr(split.data, "table") else split.data
    indices = getattr(split, "_indices", None)
    return table if indices is None else table.take(indices.column(0))


# ---------------------------------------------------------------- uvicorn

# what nmt.inference.server.limits uses of uvicorn's h11 protocol (attributes and methods)
H11_USED = ("connections", "cycle", "loop", "transport", "connection_made", "connection_lost",
            "on_response_complete")


def h11_protocol_class():
    """uvicorn's HTTP/1.1 protocol class. Why: uvicorn offers no hook to refuse a connection past
    a cap before it is read, nor a deadline for a request that never finishes arriving; nmt's
    server subclasses the protocol for both (nmt.inference.server.limits.guarded_protocol)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol
