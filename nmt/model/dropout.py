"""Dropout for the RNN models: of single units (`Dropout`, a faster nn.Dropout on CPU) and,
on embedded tokens, of whole tokens (`model.word_dropout`, the word dropout of Gal &
Ghahramani 2016 and Sennrich & Zhang 2019).

torch has no token-level dropout (nn.Dropout1d/2d drop channels, not positions), hence
drop_tokens. On CPU, torch's dropout draws one Bernoulli sample per unit from its
Mersenne Twister (4-5 ms for a 64 x 18 x 256 batch on 2 cores, 7% of a reference training
step): `dropout` draws 16 random bits per unit instead, four to a 64-bit draw (3x faster),
hence the few lines here."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool, fast: bool = True) -> torch.Tensor:
    """F.dropout(x, p, training): in training each unit is zeroed with probability p (to
    1/65536) and the kept ones scaled by 1 / (1 - p). On CPU the mask comes from 16-bit
    slices of 64-bit random draws from torch's generator (seeded, saved in checkpoints like
    every draw); elsewhere (CUDA draws fast), or with fast=False, from F.dropout."""
    if not training or p == 0:
        return x
    threshold = round(p * 65536) - 32768  # keep a unit where its 16 bits, as int16, reach this
    if not fast or x.device.type != "cpu" or threshold > 32767:
        return F.dropout(x, p, training=True)
    n = x.numel()
    words = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    bits = words.view(torch.int16)[:n].view(x.shape)  # uniform over -32768..32767
    keep = bits >= threshold
    return x * (keep.to(x.dtype) * (65536 / (32768 - threshold)))


class Dropout(nn.Module):
    """nn.Dropout with `dropout` above: the same state (none) and behaviour, faster on CPU."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p
        self.fast = True  # False: F.dropout everywhere (bench/train.py compares them)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.fast)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def drop_tokens(emb: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """emb (B, T, E) -> (B, T, E): in training, every token's whole vector is zeroed with
    probability p and the kept ones scaled by 1 / (1 - p); otherwise emb unchanged."""
    if not training or p == 0:
        return emb
    keep = dropout(emb.new_ones(emb.shape[:-1] + (1,)), p, training=True)  # (B, T, 1): 0 or 1/(1-p)
    return emb * keep


class EmbeddingDropout(nn.Module):
    """Whole tokens dropped with probability word_p, then single units with probability p.
    No parameters: checkpoints are the same with or without it."""

    def __init__(self, p: float, word_p: float = 0.0):
        super().__init__()
        self.dropout = Dropout(p)
        self.word_p = word_p

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """emb (B, T, E) -> (B, T, E)."""
        return self.dropout(drop_tokens(emb, self.word_p, self.training))

    def extra_repr(self) -> str:
        return f"word_p={self.word_p}"
