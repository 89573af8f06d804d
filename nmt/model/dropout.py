"""Dropout on embedded tokens: of single units (`model.emb_dropout`) and of whole tokens
(`model.word_dropout`, the word dropout of Gal & Ghahramani 2016 and Sennrich & Zhang 2019).

torch has no token-level dropout (nn.Dropout1d/2d drop channels, not positions), hence the
few lines here."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def drop_tokens(emb: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """emb (B, T, E) -> (B, T, E): in training, every token's whole vector is zeroed with
    probability p and the kept ones scaled by 1 / (1 - p); otherwise emb unchanged."""
    if not training or p == 0:
        return emb
    keep = F.dropout(emb.new_ones(emb.shape[:-1] + (1,)), p, training=True)  # (B, T, 1): 0 or 1/(1-p)
    return emb * keep


class EmbeddingDropout(nn.Module):
    """Whole tokens dropped with probability word_p, then single units with probability p.
    No parameters: checkpoints are the same with or without it."""

    def __init__(self, p: float, word_p: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(p)
        self.word_p = word_p

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """emb (B, T, E) -> (B, T, E)."""
        return self.dropout(drop_tokens(emb, self.word_p, self.training))

    def extra_repr(self) -> str:
        return f"word_p={self.word_p}"
