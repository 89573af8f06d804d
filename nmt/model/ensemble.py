"""An ensemble of trained models that decodes as one model: at every search step each member
predicts from its own state and the members' log-probabilities are averaged (the log of the
geometric mean of their distributions, renormalised by the search's log_softmax). The members
may differ in family and size; they must share the vocabularies (the Translator checks)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nmt.model.interface import SearchMemory, State


@dataclass
class EnsembleMemory:
    """Each member's Memory, and how many tensors of the flat ensemble state are each member's."""

    members: list[SearchMemory]
    state_sizes: list[int]

    def index_select(self, idx: torch.Tensor) -> "EnsembleMemory":
        """Reorder/repeat sentences in every member's memory (beam search)."""
        return EnsembleMemory([m.index_select(idx) for m in self.members], self.state_sizes)


class Ensemble(nn.Module):
    """Models with search's interface (`nmt.model.interface.Searchable`) behind that same
    interface. The state is the members' state tensors in one flat tuple, each
    with sentences on dim 1, so beam search reorders it as it reorders a single model's."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if len(models) < 2:
            raise ValueError(f"an ensemble needs at least 2 models, got {len(models)}")
        self.members = nn.ModuleList(models)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[EnsembleMemory, State]:
        """src (B, S), src_lengths (B,) -> every member's memory, all members' states (flat)."""
        memories, states = zip(*(m.encode(src, src_lengths) for m in self.members))
        return EnsembleMemory(list(memories), [len(s) for s in states]), tuple(t for s in states for t in s)

    def predict_next(self, tgt_in: torch.Tensor, state: State, memory: EnsembleMemory, need_weights: bool = True):
        """tgt_in (B, T) -> (averaged log-probabilities (B, T, V) in float32, the new flat state,
        the members' attention averaged (B, T, S), or None if a member has none)."""
        logps, new_state, weights, start = [], [], [], 0
        for model, mem, n in zip(self.members, memory.members, memory.state_sizes):
            logits, member_state, w = model.predict_next(tgt_in, state[start:start + n], mem, need_weights)
            start += n
            logps.append(torch.log_softmax(logits.float(), dim=-1))
            new_state.extend(member_state)
            weights.append(w)
        attention = None if any(w is None for w in weights) else torch.stack([w.float() for w in weights]).mean(0)
        return torch.stack(logps).mean(0), tuple(new_state), attention

    def forward(self, src, src_lengths, tgt_in, teacher_forcing: float = 1.0) -> torch.Tensor:
        """Averaged log-probabilities (B, T, V) for tgt_in (B, T) (teacher forcing: scoring)."""
        return torch.stack([torch.log_softmax(m(src, src_lengths, tgt_in).float(), dim=-1)
                            for m in self.members]).mean(0)
