"""RNN decoders. `Decoder` (attention none | luong) runs the RNN over all target steps in one
call and attends afterwards; `BahdanauDecoder` feeds the context into the recurrence, with the
embedding's input products computed for all steps before its loop over time."""
from __future__ import annotations

import torch
from torch import nn

from nmt.model.attention import Attention, build_attention
from nmt.model.dropout import Dropout, EmbeddingDropout
from nmt.model.encoder import as_state, rnn_class
from nmt.model.interface import Memory, State


class OutputLayer(nn.Module):
    """[h; context] -> tanh combine -> dropout -> logits over the target vocabulary. Tied to the
    target embedding, the projection reads vectors of the embedding's size, so the combine layer
    (also present without attention when the sizes differ) maps to that size."""

    def __init__(self, hidden_dim: int, context_dim: int, vocab_size: int, dropout: float,
                 tied: nn.Embedding | None = None):
        super().__init__()
        out_dim = tied.embedding_dim if tied is not None else hidden_dim
        needs_combine = context_dim > 0 or out_dim != hidden_dim
        self.combine = nn.Linear(hidden_dim + context_dim, out_dim) if needs_combine else None
        self.dropout = Dropout(dropout)
        self.proj = nn.Linear(out_dim, vocab_size)
        if tied is not None:
            self.proj.weight = tied.weight

    def forward(self, h: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """h (B, T, H), context (B, T, C) or None -> logits (B, T, V)."""
        if self.combine is not None:
            h = torch.tanh(self.combine(h if context is None else torch.cat([h, context], dim=-1)))
        return self.proj(self.dropout(h))


class Decoder(nn.Module):
    """Attention none or luong (after the RNN, so teacher forcing has no loop over time)."""

    def __init__(self, cell: str, embedding: nn.Embedding, hidden_dim: int, num_layers: int, dropout: float,
                 emb_dropout: float, attention: str, memory_dim: int, vocab_size: int, tie: bool,
                 word_dropout: float = 0.0):
        super().__init__()
        self.embedding = embedding
        self.emb_dropout = EmbeddingDropout(emb_dropout, word_dropout)
        self.rnn = rnn_class(cell)(embedding.embedding_dim, hidden_dim, num_layers, batch_first=True,
                                   dropout=dropout if num_layers > 1 else 0.0)
        self.attention: Attention | None = build_attention(attention, hidden_dim, memory_dim)
        self.output = OutputLayer(hidden_dim, memory_dim if self.attention else 0, vocab_size, dropout,
                                  embedding if tie else None)

    def init_state(self, state: State) -> State:
        """The decoder's state before the first step, from the bridge's RNN state."""
        return state

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
                 emb_dropout: float, memory_dim: int, vocab_size: int, tie: bool,
                 word_dropout: float = 0.0):
        super().__init__()
        rnn_class(cell)  # validates the name
        self.cell, self.hidden_dim = cell, hidden_dim
        self.embedding = embedding
        self.emb_dropout = EmbeddingDropout(emb_dropout, word_dropout)
        g = self.GATES[cell] * hidden_dim
        self.input_emb = nn.Linear(embedding.embedding_dim, g)
        self.input_ctx = nn.Linear(memory_dim, g, bias=False)
        self.hidden = nn.Linear(hidden_dim, g)
        self.attention = build_attention("bahdanau", hidden_dim, memory_dim)
        self.upper = (rnn_class(cell)(hidden_dim, hidden_dim, num_layers - 1, batch_first=True,
                                      dropout=dropout if num_layers > 2 else 0.0) if num_layers > 1 else None)
        self.layer_dropout = Dropout(dropout)
        self.output = OutputLayer(hidden_dim, memory_dim, vocab_size, dropout, embedding if tie else None)

    init_state = Decoder.init_state

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


class InputFeedingDecoder(nn.Module):
    """Luong attention with input feeding: step t's first-layer input is [emb(y_t-1); a_t-1], where
    a = tanh(W_c [h; context]) is the attentional vector the output projection reads. The model
    thereby knows what it attended to before (fewer repeated and dropped words) at the price of a
    loop over time; the embedding's input products and the output projection run for all steps at
    once. Its state carries a_t-1 as one more (1, B, H) tensor after the RNN's."""

    GATES = BahdanauDecoder.GATES

    def __init__(self, cell: str, embedding: nn.Embedding, hidden_dim: int, num_layers: int, dropout: float,
                 emb_dropout: float, memory_dim: int, vocab_size: int, tie: bool,
                 word_dropout: float = 0.0):
        super().__init__()
        rnn_class(cell)  # validates the name
        self.cell, self.hidden_dim, self.num_layers = cell, hidden_dim, num_layers
        self.embedding = embedding
        self.emb_dropout = EmbeddingDropout(emb_dropout, word_dropout)
        g = self.GATES[cell] * hidden_dim
        self.input_emb = nn.Linear(embedding.embedding_dim, g)
        self.input_feed = nn.Linear(hidden_dim, g, bias=False)
        self.inputs = nn.ModuleList(nn.Linear(hidden_dim, g) for _ in range(num_layers - 1))  # layers 2..L
        self.hiddens = nn.ModuleList(nn.Linear(hidden_dim, g) for _ in range(num_layers))
        self.layer_dropout = Dropout(dropout)
        self.attention = build_attention("luong", hidden_dim, memory_dim)
        self.combine = nn.Linear(hidden_dim + memory_dim, hidden_dim)
        self.output = OutputLayer(hidden_dim, 0, vocab_size, dropout, embedding if tie else None)

    def init_state(self, state: State) -> State:
        """The bridge's RNN state plus a zero attentional vector."""
        return (*state, torch.zeros_like(state[0][:1]))

    def forward(self, tgt_in: torch.Tensor, state: State, memory: Memory):
        """Same contract as Decoder.forward; `state` comes from init_state or a previous call."""
        B, T = tgt_in.shape
        lstm = self.cell == "lstm"
        hs = list(state[0].unbind(0))  # per layer (B, H)
        cs = list(state[1].unbind(0)) if lstm else [None] * self.num_layers
        feed = state[-1][0]  # (B, H)
        gates_x = self.input_emb(self.emb_dropout(self.embedding(tgt_in))).unbind(1)  # T x (B, G)
        attentional, weights = [], []
        for t in range(T):
            x_gates = gates_x[t] + self.input_feed(feed)
            for layer in range(self.num_layers):
                if layer > 0:
                    x_gates = self.inputs[layer - 1](self.layer_dropout(hs[layer - 1]))
                hs[layer], cs[layer] = cell_step(self.cell, x_gates, self.hiddens[layer](hs[layer]), hs[layer],
                                                 cs[layer])
            top = hs[-1].unsqueeze(1)  # (B, 1, H)
            ctx, w = self.attention(top, memory.keys, memory.values, memory.mask)
            feed = torch.tanh(self.combine(torch.cat([top, ctx], dim=-1))).squeeze(1)  # (B, H)
            attentional.append(feed)
            weights.append(w)
        new_state = (torch.stack(hs),) + ((torch.stack(cs),) if lstm else ()) + (feed.unsqueeze(0),)
        return self.output(torch.stack(attentional, 1), None), new_state, torch.cat(weights, 1)
