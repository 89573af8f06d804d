"""RNN decoders. `Decoder` (attention none | luong) runs the RNN over all target steps in one
call and attends afterwards; `BahdanauDecoder` feeds the context into the recurrence, with the
embedding's input products computed for all steps before its loop over time."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nmt.model.attention import Attention, build_attention
from nmt.model.encoder import State, as_state, rnn_class


@dataclass
class Memory:
    """What the decoder attends to: values (B, S, C) encoder outputs, keys (B, S, K) their
    attention projection (or None without attention), mask (B, S) true at real tokens."""

    values: torch.Tensor
    keys: torch.Tensor | None
    mask: torch.Tensor

    def index_select(self, idx: torch.Tensor) -> "Memory":
        """Reorder/repeat sentences (beam search)."""
        return Memory(self.values.index_select(0, idx),
                      None if self.keys is None else self.keys.index_select(0, idx),
                      self.mask.index_select(0, idx))


class OutputLayer(nn.Module):
    """[h; context] -> tanh combine -> dropout -> logits over the target vocabulary."""

    def __init__(self, hidden_dim: int, context_dim: int, vocab_size: int, dropout: float,
                 tied: nn.Embedding | None = None):
        super().__init__()
        self.combine = nn.Linear(hidden_dim + context_dim, hidden_dim) if context_dim else None
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_dim, vocab_size)
        if tied is not None:
            if tied.embedding_dim != hidden_dim:
                raise ValueError(f"model.tie_embeddings needs emb_dim == hidden_dim ({tied.embedding_dim} != {hidden_dim})")
            self.proj.weight = tied.weight

    def forward(self, h: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """h (B, T, H), context (B, T, C) or None -> logits (B, T, V)."""
        if self.combine is not None:
            h = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))
        return self.proj(self.dropout(h))


class Decoder(nn.Module):
    """Attention none or luong (after the RNN, so teacher forcing has no loop over time)."""

    def __init__(self, cell: str, embedding: nn.Embedding, hidden_dim: int, num_layers: int, dropout: float,
                 emb_dropout: float, attention: str, memory_dim: int, vocab_size: int, tie: bool):
        super().__init__()
        self.embedding = embedding
        self.emb_dropout = nn.Dropout(emb_dropout)
        self.rnn = rnn_class(cell)(embedding.embedding_dim, hidden_dim, num_layers, batch_first=True,
                                   dropout=dropout if num_layers > 1 else 0.0)
        self.attention: Attention | None = build_attention(attention, hidden_dim, memory_dim)
        self.output = OutputLayer(hidden_dim, memory_dim if self.attention else 0, vocab_size, dropout,
                                  embedding if tie else None)

    def forward(self, tgt_in: torch.Tensor, state: State, memory: Memory):
        """tgt_in (B, T) long, state tuple of (L, B, H) -> logits (B, T, V), new state,
        attention weights (B, T, S) or None. T may be 1 (step-by-step decoding)."""
        emb = self.emb_dropout(self.embedding(tgt_in))
        out, new_state = self.rnn(emb, state if len(state) == 2 else state[0])
        context = weights = None
        if self.attention is not None:
            context, weights = self.attention(out, memory.keys, memory.values, memory.mask)
        return self.output(out, context), as_state(new_state), weights


def cell_step(cell: str, gates_x: torch.Tensor, gates_h: torch.Tensor, h: torch.Tensor,
              c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One recurrence step from precomputed input gates (B, G) and hidden gates (B, G)."""
    if cell == "gru":
        xr, xz, xn = gates_x.chunk(3, dim=-1)
        hr, hz, hn = gates_h.chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h, None
    if cell == "lstm":
        i, f, g, o = (gates_x + gates_h).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    return torch.tanh(gates_x + gates_h), None


class BahdanauDecoder(nn.Module):
    """Additive attention queried by the previous first-layer state; the context joins the
    embedding as input of the first layer. Further layers run over the first layer's outputs."""

    GATES = {"rnn": 1, "gru": 3, "lstm": 4}

    def __init__(self, cell: str, embedding: nn.Embedding, hidden_dim: int, num_layers: int, dropout: float,
                 emb_dropout: float, memory_dim: int, vocab_size: int, tie: bool):
        super().__init__()
        rnn_class(cell)  # validates the name
        self.cell, self.hidden_dim = cell, hidden_dim
        self.embedding = embedding
        self.emb_dropout = nn.Dropout(emb_dropout)
        g = self.GATES[cell] * hidden_dim
        self.input_emb = nn.Linear(embedding.embedding_dim, g)
        self.input_ctx = nn.Linear(memory_dim, g, bias=False)
        self.hidden = nn.Linear(hidden_dim, g)
        self.attention = build_attention("bahdanau", hidden_dim, memory_dim)
        self.upper = (rnn_class(cell)(hidden_dim, hidden_dim, num_layers - 1, batch_first=True,
                                      dropout=dropout if num_layers > 2 else 0.0) if num_layers > 1 else None)
        self.layer_dropout = nn.Dropout(dropout)
        self.output = OutputLayer(hidden_dim, memory_dim, vocab_size, dropout, embedding if tie else None)

    def forward(self, tgt_in: torch.Tensor, state: State, memory: Memory):
        """Same contract as Decoder.forward."""
        B, T = tgt_in.shape
        emb = self.emb_dropout(self.embedding(tgt_in))
        gates_x = self.input_emb(emb)  # (B, T, G) for every step at once
        h, c = state[0][0], (state[1][0] if len(state) == 2 else None)
        outs, contexts, weights = [], [], []
        for t in range(T):
            ctx, w = self.attention(h.unsqueeze(1), memory.keys, memory.values, memory.mask)
            ctx = ctx.squeeze(1)
            h, c = cell_step(self.cell, gates_x[:, t] + self.input_ctx(ctx), self.hidden(h), h, c)
            outs.append(h)
            contexts.append(ctx)
            weights.append(w)
        out = torch.stack(outs, 1)  # (B, T, H)
        first = (h.unsqueeze(0),) if c is None else (h.unsqueeze(0), c.unsqueeze(0))
        if self.upper is not None:
            upper_state = tuple(s[1:] for s in state)
            out, upper_new = self.upper(self.layer_dropout(out), upper_state if c is not None else upper_state[0])
            new_state = tuple(torch.cat([f, u]) for f, u in zip(first, as_state(upper_new)))
        else:
            new_state = first
        return self.output(out, torch.stack(contexts, 1)), new_state, torch.cat(weights, 1)
