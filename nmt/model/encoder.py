"""RNN encoder over padded source batches, and the bridge to the decoder's initial state."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.compat import RNN_KERNELS, rnn_one_direction
from nmt.config.choices import Cell
from nmt.model.dropout import EmbeddingDropout, dropout
from nmt.model.interface import State

RNN_CLASSES = {Cell.rnn: nn.RNN, Cell.gru: nn.GRU, Cell.lstm: nn.LSTM}


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
        # None: packed on CUDA (cuDNN runs both directions at once) and for LSTMs (a padded run
        # does not expose their final cell state), forward_reversed otherwise; True/False force
        # one (tests and bench/train.py compare them). Not a parameter: checkpoints are the same.
        self.packed: bool | None = None

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, State]:
        """src (B, S) long, src_lengths (B,) -> outputs (B, S, D*H) zero at padding, final
        state: tuple of (L*D, B, H). Padding never reaches the states or the real positions."""
        B, S = src.shape
        assert src_lengths.shape == (B,), f"src_lengths {tuple(src_lengths.shape)} != ({B},)"
        emb = self.emb_dropout(self.embedding(src))
        packed = self.packed
        if packed is None:
            packed = emb.is_cuda or type(self.rnn) not in RNN_KERNELS
        return self.forward_packed(emb, src_lengths) if packed else self.forward_reversed(emb, src_lengths)

    def forward_packed(self, emb: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, State]:
        """emb (B, S, E) -> as forward: through pack_padded_sequence."""
        packed = pack_padded_sequence(emb, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=emb.size(1))
        return out, as_state(final)

    def forward_reversed(self, emb: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, State]:
        """emb (B, S, E) -> as forward, for nn.GRU and nn.RNN, with the same parameters and
        arithmetic as forward_packed but without packing: each layer and direction runs on the
        padded batch, the backward direction on every sentence reversed within its length (so
        its padding comes last too), and the final states are read at each sentence's last
        real position. Why: on CPU a packed run's backward pass zero-fills and adds a gradient
        the size of the whole packed input at every time step (it narrows the input per step);
        this path's encoder step is about 1.3x faster (bench/train.py, `packed_encoder`)."""
        B, S, _ = emb.shape
        lengths = src_lengths.to(emb.device)
        positions = torch.arange(S, device=emb.device).expand(B, S)
        real = positions < lengths[:, None]  # (B, S)
        # t -> length-1-t inside the sentence, padding stays put; its own inverse
        reverse = torch.where(real, lengths[:, None] - 1 - positions, positions)  # (B, S)
        last = (lengths - 1).clamp(min=0)[:, None]  # (B, 1): the last real position, in run order
        h0 = emb.new_zeros(1, B, self.hidden_dim)
        layer_in, finals = emb, []
        for layer in range(self.num_layers):
            if layer:
                layer_in = dropout(layer_in, self.rnn.dropout, self.training)
            outs = []
            for direction in range(self.num_directions):
                suffix = "_reverse" if direction else ""
                weights = [getattr(self.rnn, f"{name}_l{layer}{suffix}")
                           for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                x = gather_time(layer_in, reverse) if direction else layer_in
                out = rnn_one_direction(self.rnn, x, h0, weights, self.training)  # (B, S, H)
                finals.append(gather_time(out, last).transpose(0, 1))  # (1, B, H)
                outs.append(gather_time(out, reverse) if direction else out)
            layer_in = torch.cat(outs, dim=-1)
        out = layer_in * real[:, :, None].to(layer_in.dtype)
        return out, (torch.cat(finals, dim=0),)


def gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, S, H), index (B, T) long -> (B, T, H): out[b, t] = x[b, index[b, t]]."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.size(-1)))


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
