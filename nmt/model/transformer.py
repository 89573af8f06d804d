"""Encoder-decoder Transformer (pre-norm, sinusoidal positions, tied embeddings) behind the same
interface as the RNN `Seq2Seq`: `encode`, `predict_next`, `forward`, `loss`, `src_embedding`.

Incremental decoding: the decoder state is the key/value cache of its self-attention, a key
and a value tensor (1, B, heads, t, head_dim) per layer, so beam search reorders it like an
RNN state (index_select on dim 1) and a search step only computes the new position (each
layer's cache grows by one concatenation; a stacked (L, ...) tensor would be copied once more).
The cross-attention keys and values of every layer are computed once per source batch, in
`encode`, and kept in `Memory.keys`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nmt.config.rules import ConfigError
from nmt.model.dropout import Dropout, drop_tokens
from nmt.model.interface import Memory, State
from nmt.model.loss import smoothed_cross_entropy


def sinusoids(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """positions (T,) -> (T, dim) sine/cosine position encodings (Vaswani et al., 2017)."""
    freqs = torch.exp(torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = positions.float().unsqueeze(1) * freqs.unsqueeze(0)  # (T, dim/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(len(positions), -1)[:, :dim]


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
           need_weights: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """q (B, h, T, dh), k and v (B, h, S, dh), mask broadcastable to (B, h, T, S), true where a
    query may look -> (B, h, T, dh) and, with need_weights, the weights (B, h, T, S). No dropout
    on the weights (fairseq's attention_dropout=0 default; see FeedForward for the CPU cost).

    The fused kernel runs in fp32 and on CUDA; bf16 or fp16 on a CPU (train.precision=bf16) takes
    the explicit path: torch 2.13's CPU flash-attention backward in bf16 took 41 ms of a 154 ms
    Transformer training step against 4 ms in fp32, while the explicit path's matmuls run on the
    CPU's bf16 units (bench/profile_step.py, docs/results.md)."""
    if not need_weights and not (q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16)):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)
    return weights @ v, weights


class FeedForward(nn.Sequential):
    """Linear, ReLU, Linear. No dropout inside (fairseq's activation_dropout=0 default): on a CPU,
    drawing a mask over the ff_dim-wide activations costs about a sixth of a training step."""

    def __init__(self, dim: int, ff_dim: int):
        super().__init__(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, dim))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm_attn, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = FeedForward(dim, ff_dim)
        self.dropout = Dropout(dropout)  # nmt's: a third of torch's cost on CPU

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, S, D), mask (B, 1, 1, S) true at real tokens -> (B, S, D)."""
        q, k, v = split_heads(self.qkv(self.norm_attn(x)), self.heads, 3).unbind(0)
        y, _ = attend(q, k, v, mask, False)
        x = x + self.dropout(self.out(merge_heads(y)))
        return x + self.dropout(self.ff(self.norm_ff(x)))


class DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm_self, self.norm_cross, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.self_out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.query, self.memory_kv, self.cross_out = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.ff = FeedForward(dim, ff_dim)
        self.dropout = Dropout(dropout)  # nmt's: a third of torch's cost on CPU

    def memory_keys(self, enc_out: torch.Tensor) -> torch.Tensor:
        """enc_out (B, S, D) -> cross-attention keys and values (2, B, h, S, dh)."""
        return split_heads(self.memory_kv(enc_out), self.heads, 2)

    def forward(self, x, past_k, past_v, self_mask, memory_kv, memory_mask, need_weights: bool):
        """x (B, T, D) new positions; past_k/past_v (B, h, P, dh) cached; self_mask (T, P+T) or
        None; memory_kv (2, B, h, S, dh); memory_mask (B, 1, 1, S) -> x (B, T, D), keys and
        values (B, h, P+T, dh) for the cache, cross-attention weights (B, h, T, S) or None."""
        q, k, v = split_heads(self.qkv(self.norm_self(x)), self.heads, 3).unbind(0)
        k, v = torch.cat([past_k.to(k.dtype), k], 2), torch.cat([past_v.to(v.dtype), v], 2)
        y, _ = attend(q, k, v, self_mask, False)
        x = x + self.dropout(self.self_out(merge_heads(y)))
        q = split_heads(self.query(self.norm_cross(x)), self.heads)[0]
        y, weights = attend(q, memory_kv[0].to(q.dtype), memory_kv[1].to(q.dtype), memory_mask, need_weights)
        x = x + self.dropout(self.cross_out(merge_heads(y)))
        return x + self.dropout(self.ff(self.norm_ff(x))), k, v, weights


def split_heads(x: torch.Tensor, heads: int, n: int = 1) -> torch.Tensor:
    """(B, T, n*D) of n stacked projections (q, k, v) -> (n, B, heads, T, D/heads)."""
    B, T, width = x.shape
    return x.view(B, T, n, heads, width // (n * heads)).permute(2, 0, 3, 1, 4)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """(B, heads, T, dh) -> (B, T, heads*dh)."""
    B, h, T, dh = y.shape
    return y.transpose(1, 2).reshape(B, T, h * dh)


class Transformer(nn.Module):
    """Pre-norm encoder-decoder Transformer. d_model = `model.emb_dim`; `model.heads`,
    `model.ff_dim`, `model.enc_layers`, `model.dec_layers`, `model.dropout` (on the
    residual branches), `model.emb_dropout` (embeddings + positions),
    `model.tie_embeddings` (output projection = target embedding), `model.share_embeddings`."""

    def __init__(self, cfg, src_vocab_size: int, tgt_vocab_size: int, pad_id: int):
        super().__init__()
        dim, heads = cfg.emb_dim, cfg.heads
        if dim % heads:
            raise ConfigError(f"model.emb_dim={dim} must be a multiple of model.heads={heads}")
        self.cfg, self.pad_id, self.dim, self.heads = cfg, pad_id, dim, heads
        self.src_embedding = nn.Embedding(src_vocab_size, dim, padding_idx=pad_id)
        if cfg.share_embeddings:
            if src_vocab_size != tgt_vocab_size:
                raise ConfigError("model.share_embeddings needs a joint vocabulary (vocab.joint=true)")
            self.tgt_embedding = self.src_embedding
        else:
            self.tgt_embedding = nn.Embedding(tgt_vocab_size, dim, padding_idx=pad_id)
        self.emb_dropout = Dropout(cfg.emb_dropout)
        self.word_dropout = float(cfg.word_dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(dim, heads, cfg.ff_dim, cfg.dropout)
                                            for _ in range(cfg.enc_layers))
        self.decoder_layers = nn.ModuleList(DecoderLayer(dim, heads, cfg.ff_dim, cfg.dropout)
                                            for _ in range(cfg.dec_layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, tgt_vocab_size)
        self.tgt_vocab_size = tgt_vocab_size
        self._init_weights()
        if cfg.tie_embeddings:
            self.proj.weight = self.tgt_embedding.weight

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):  # scaled by sqrt(dim) in `embed`: unit-size inputs
                nn.init.normal_(module.weight, 0.0, self.dim ** -0.5)
                with torch.no_grad():
                    module.weight[self.pad_id].zero_()

    def embed(self, embedding: nn.Embedding, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """ids (B, T) at positions start.. -> (B, T, D)."""
        positions = torch.arange(start, start + ids.size(1), device=ids.device)
        tokens = drop_tokens(embedding(ids), self.word_dropout, self.training)
        x = tokens * math.sqrt(self.dim) + sinusoids(positions, self.dim).unsqueeze(0)
        return self.emb_dropout(x)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Memory, State]:
        """src (B, S), src_lengths (B,) -> memory (values: encoder output (B, S, D); keys: every
        decoder layer's cross-attention keys and values (B, L, 2, h, S, dh)), empty cache."""
        B, S = src.shape
        mask = torch.arange(S, device=src.device).unsqueeze(0) < src_lengths.to(src.device).unsqueeze(1)
        x = self.embed(self.src_embedding, src)
        attn_mask = mask[:, None, None, :]
        for layer in self.encoder_layers:
            x = layer(x, attn_mask)
        out = self.encoder_norm(x)
        keys = torch.stack([layer.memory_keys(out) for layer in self.decoder_layers], 0)  # (L, 2, B, h, S, dh)
        keys = keys.permute(2, 0, 1, 3, 4, 5)  # batch first, so Memory.index_select works on dim 0
        empty = out.new_zeros(1, B, self.heads, 0, self.dim // self.heads)
        return Memory(out, keys, mask), (empty,) * (2 * len(self.decoder_layers))

    def predict_next(self, tgt_in: torch.Tensor, state: State, memory: Memory, need_weights: bool = True):
        """Run the decoder over tgt_in (B, T), the positions after the cached ones in `state`
        (per layer, self-attention keys then values, each (1, B, h, P, dh)): logits (B, T, V),
        the cache grown to P+T, the last layer's cross-attention weights averaged over heads
        (B, T, S)."""
        P, T = state[0].size(3), tgt_in.size(1)
        x = self.embed(self.tgt_embedding, tgt_in, start=P)
        self_mask = None
        if T > 1:  # position P+i sees the cache and new positions up to itself
            self_mask = (torch.arange(P + T, device=x.device).unsqueeze(0)
                         <= (P + torch.arange(T, device=x.device)).unsqueeze(1))
        memory_mask = memory.mask[:, None, None, :]
        new_state, weights = [], None
        last = len(self.decoder_layers) - 1
        for i, layer in enumerate(self.decoder_layers):
            x, k, v, w = layer(x, state[2 * i][0], state[2 * i + 1][0], self_mask, memory.keys[:, i].transpose(0, 1),
                               memory_mask, need_weights and i == last)
            new_state += [k.unsqueeze(0), v.unsqueeze(0)]
            if w is not None:
                weights = w.mean(1)
        logits = self.proj(self.decoder_norm(x))
        return logits, tuple(new_state), weights

    def forward(self, src, src_lengths, tgt_in, teacher_forcing: float = 1.0) -> torch.Tensor:
        """Logits (B, T, V) for tgt_in (B, T): all target positions in one pass (causal mask)."""
        if teacher_forcing < 1.0:
            raise ValueError("the Transformer trains with teacher forcing only (train.teacher_forcing=1, "
                             "train.teacher_forcing_decay=false): all target positions run in one pass")
        assert src.size(0) == tgt_in.size(0), f"src batch {src.size(0)} != tgt batch {tgt_in.size(0)}"
        memory, state = self.encode(src, src_lengths)
        logits, _, _ = self.predict_next(tgt_in, state, memory, need_weights=False)
        return logits

    def loss(self, logits: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Summed cross-entropy over non-pad target tokens (divide by n_tokens to normalise)."""
        return smoothed_cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1), self.pad_id,
                                      label_smoothing)
