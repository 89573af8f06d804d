"""What every model offers, written down once: `State` and `Memory` (what the decoder carries
and attends to), `Searchable` (what greedy and beam search call: an ensemble is one too) and
`TranslationModel` (what training, validation and diagnosis also call). The RNN family
(`Seq2Seq`) and the `Transformer` implement `TranslationModel`; `Ensemble` is `Searchable`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

# the decoder's state: a tuple of tensors with sentences on dim 1 (RNN: (h,) or (h, c), each
# (layers, B, H); Transformer: each layer's self-attention keys and values, each (1, B, h, P, dh)),
# so beam search reorders every model's state the same way
State = tuple[torch.Tensor, ...]

M = TypeVar("M", bound="SearchMemory")


class SearchMemory(Protocol):
    """What search needs of an encoder's output: reorder or repeat its sentences (beams)."""

    def index_select(self: M, idx: torch.Tensor) -> M: ...


@dataclass
class Memory:
    """What the decoder attends to: values (B, S, C) encoder outputs, keys (B, S, K) their
    attention projection (or None without attention; the Transformer: every decoder layer's
    cross-attention keys and values), mask (B, S) true at real tokens."""

    values: torch.Tensor
    keys: torch.Tensor | None
    mask: torch.Tensor

    def index_select(self, idx: torch.Tensor) -> "Memory":
        """Reorder/repeat sentences (beam search)."""
        return Memory(self.values.index_select(0, idx),
                      None if self.keys is None else self.keys.index_select(0, idx),
                      self.mask.index_select(0, idx))


@runtime_checkable
class Searchable(Protocol):
    """A model search can decode with."""

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[SearchMemory, State]:
        """src (B, S) long, src_lengths (B,) -> memory, the decoder's initial state."""
        ...

    def predict_next(self, tgt_in: torch.Tensor, state: State, memory: SearchMemory,
                     need_weights: bool = True) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """tgt_in (B, T) from `state` -> logits or log-probabilities (B, T, V) of the token after
        each position, the new state, attention (B, T, S) or None. T = 1: one search step.
        need_weights=False: the caller does not want the attention, and a model that computes it
        only to report it (the Transformer) may skip it and return None."""
        ...

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                teacher_forcing: float = 1.0) -> torch.Tensor:
        """(B, T, V) scores of tgt_in (B, T) given the source: the teacher-forced pass."""
        ...


@runtime_checkable
class TranslationModel(Searchable, Protocol):
    """A model nmt.train trains: search's interface, its loss, and its source embedding (where
    nmt.diagnose measures the gradient)."""

    src_embedding: nn.Embedding

    def loss(self, logits: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Summed (label-smoothed) cross-entropy of tgt_out (B, T) over its non-pad tokens."""
        ...
