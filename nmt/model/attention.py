"""Attention over encoder outputs, masked over source padding (Luong general, Bahdanau additive)."""
from __future__ import annotations

import torch
from torch import nn

from nmt.config.choices import AttentionKind


class Attention(nn.Module):
    """`prepare_keys` runs once per batch of sources; `forward` per decoder call."""

    def prepare_keys(self, enc_out: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, Hq), keys from prepare_keys, values (B, S, C), mask (B, S) true at real
        tokens -> context (B, T, C), weights (B, T, S) summing to 1 over real tokens."""
        scores = self.scores(query, keys)  # (B, T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, values), weights


class LuongAttention(Attention):
    """score(q, k) = q . (W k)  ("general")."""

    def __init__(self, query_dim: int, value_dim: int):
        super().__init__()
        self.key = nn.Linear(value_dim, query_dim, bias=False)

    def prepare_keys(self, enc_out):
        return self.key(enc_out)  # (B, S, Hq)

    def scores(self, query, keys):
        return torch.bmm(query, keys.transpose(1, 2))


class BahdanauAttention(Attention):
    """score(q, k) = v . tanh(W_q q + W_k k)  (additive)."""

    def __init__(self, query_dim: int, value_dim: int, attn_dim: int | None = None):
        super().__init__()
        attn_dim = attn_dim or query_dim
        self.key = nn.Linear(value_dim, attn_dim, bias=False)
        self.query = nn.Linear(query_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def prepare_keys(self, enc_out):
        return self.key(enc_out)  # (B, S, A)

    def scores(self, query, keys):
        q = self.query(query).unsqueeze(2)  # (B, T, 1, A)
        return self.v(torch.tanh(q + keys.unsqueeze(1))).squeeze(-1)  # (B, T, S)


ATTENTION_CLASSES = {AttentionKind.luong: LuongAttention, AttentionKind.bahdanau: BahdanauAttention}


def build_attention(kind: str, query_dim: int, value_dim: int) -> Attention | None:
    """The attention a `model.attention` value names (None for `none`)."""
    kind = AttentionKind(kind)
    return None if kind == AttentionKind.none else ATTENTION_CLASSES[kind](query_dim, value_dim)
