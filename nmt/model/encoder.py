"""RNN encoder over packed source batches, and the bridge to the decoder's initial state."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.config import Cell
from nmt.model.dropout import EmbeddingDropout

RNN_CLASSES = {Cell.rnn: nn.RNN, Cell.gru: nn.GRU, Cell.lstm: nn.LSTM}
State = tuple[torch.Tensor, ...]  # (h,) or (h, c) for LSTM; each (layers, B, H)


def rnn_class(cell: str):
    """nn.RNN, nn.GRU or nn.LSTM for a `model.cell` value."""
    return RNN_CLASSES[Cell(cell)]


def as_state(final) -> State:
    """nn.RNN/GRU return h, nn.LSTM returns (h, c): always a tuple."""
    return final if isinstance(final, tuple) else (final,)


class Encoder(nn.Module):
    def __init__(self, cell: str, embedding: nn.Embedding, hidden_dim: int, num_layers: int,
                 bidirectional: bool, dropout: float, emb_dropout: float, word_dropout: float = 0.0):
        super().__init__()
        self.embedding = embedding
        self.emb_dropout = EmbeddingDropout(emb_dropout, word_dropout)
        self.rnn = rnn_class(cell)(embedding.embedding_dim, hidden_dim, num_layers, batch_first=True,
                                   bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.num_directions = 2 if bidirectional else 1
        self.num_layers, self.hidden_dim = num_layers, hidden_dim
        self.output_dim = hidden_dim * self.num_directions

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, State]:
        """src (B, S) long, src_lengths (B,) -> outputs (B, S, D*H) zero at padding, final
        state: tuple of (L*D, B, H). Runs packed, so padding never reaches the states."""
        B, S = src.shape
        assert src_lengths.shape == (B,), f"src_lengths {tuple(src_lengths.shape)} != ({B},)"
        emb = self.emb_dropout(self.embedding(src))
        packed = pack_padded_sequence(emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        return out, as_state(final)


class Bridge(nn.Module):
    """Encoder final states -> decoder initial states: the top encoder layer's directions,
    concatenated, through a learned layer for each decoder layer (any layer/direction counts)."""

    def __init__(self, enc_dim: int, dec_hidden: int, dec_layers: int, n_states: int):
        super().__init__()
        self.dec_hidden, self.dec_layers = dec_hidden, dec_layers
        self.layers = nn.ModuleList(nn.Linear(enc_dim, dec_layers * dec_hidden) for _ in range(n_states))

    def forward(self, enc_state: State, num_directions: int) -> State:
        """enc_state: tuple of (L*D, B, H) -> tuple of (dec_layers, B, dec_hidden)."""
        out = []
        for layer, s in zip(self.layers, enc_state):
            top = s.view(-1, num_directions, s.size(1), s.size(2))[-1]  # (D, B, H)
            top = top.transpose(0, 1).reshape(s.size(1), -1)  # (B, D*H)
            h = torch.tanh(layer(top)).view(-1, self.dec_layers, self.dec_hidden).transpose(0, 1)
            out.append(h.contiguous())
        return tuple(out)
