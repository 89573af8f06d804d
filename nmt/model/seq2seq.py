"""The encoder-decoder: encode once, then run the decoder over all steps (teacher forcing) or
step by step (search)."""
from __future__ import annotations

import torch
from torch import nn

from nmt.config.rules import ConfigError
from nmt.model.decoder import BahdanauDecoder, Decoder, InputFeedingDecoder
from nmt.model.encoder import Bridge, Encoder
from nmt.model.interface import Memory, State
from nmt.model.loss import smoothed_cross_entropy


class Seq2Seq(nn.Module):
    def __init__(self, cfg, src_vocab_size: int, tgt_vocab_size: int, pad_id: int):
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        src_emb = nn.Embedding(src_vocab_size, cfg.emb_dim, padding_idx=pad_id)
        if cfg.share_embeddings:
            if src_vocab_size != tgt_vocab_size:
                raise ConfigError("model.share_embeddings needs a joint vocabulary (vocab.joint=true)")
            tgt_emb = src_emb
        else:
            tgt_emb = nn.Embedding(tgt_vocab_size, cfg.emb_dim, padding_idx=pad_id)
        self.encoder = Encoder(cfg.cell, src_emb, cfg.hidden_dim, cfg.enc_layers, cfg.bidirectional,
                               cfg.dropout, cfg.emb_dropout, cfg.word_dropout)
        mem = self.encoder.output_dim
        self.bridge = Bridge(mem, cfg.hidden_dim, cfg.dec_layers, 2 if cfg.cell == "lstm" else 1)
        if cfg.input_feeding:  # with luong attention (check_config)
            self.decoder = InputFeedingDecoder(cfg.cell, tgt_emb, cfg.hidden_dim, cfg.dec_layers, cfg.dropout,
                                               cfg.emb_dropout, mem, tgt_vocab_size, cfg.tie_embeddings,
                                               cfg.word_dropout)
        elif cfg.attention == "bahdanau":
            self.decoder = BahdanauDecoder(cfg.cell, tgt_emb, cfg.hidden_dim, cfg.dec_layers, cfg.dropout,
                                           cfg.emb_dropout, mem, tgt_vocab_size, cfg.tie_embeddings,
                                           cfg.word_dropout)
        else:
            self.decoder = Decoder(cfg.cell, tgt_emb, cfg.hidden_dim, cfg.dec_layers, cfg.dropout, cfg.emb_dropout,
                                   cfg.attention, mem, tgt_vocab_size, cfg.tie_embeddings, cfg.word_dropout)
        self.tgt_vocab_size = tgt_vocab_size

    @property
    def src_embedding(self) -> nn.Embedding:
        """The source embedding (what nmt.diagnose takes gradients at), as on the Transformer."""
        return self.encoder.embedding

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[Memory, State]:
        """src (B, S), src_lengths (B,) -> memory (values (B, S, C)), initial decoder state."""
        out, final = self.encoder(src, src_lengths)
        S = src.size(1)
        mask = torch.arange(S, device=src.device).unsqueeze(0) < src_lengths.to(src.device).unsqueeze(1)
        attention = self.decoder.attention
        keys = attention.prepare_keys(out) if attention is not None else None
        return Memory(out, keys, mask), self.decoder.init_state(self.bridge(final, self.encoder.num_directions))

    def predict_next(self, tgt_in: torch.Tensor, state: State, memory: Memory, need_weights: bool = True):
        """Run the decoder over tgt_in (B, T) from `state`: logits (B, T, V) of the token after
        each position, the new state, attention (B, T, S) or None. T = 1: one search step. The
        attention is the decoder's context: computed whatever `need_weights` says."""
        return self.decoder(tgt_in, state, memory)

    def forward(self, src, src_lengths, tgt_in, teacher_forcing: float = 1.0) -> torch.Tensor:
        """Logits (B, T, V) for tgt_in (B, T). With teacher_forcing 1 every step reads the gold
        previous token and all steps run at once; below 1, each step reads the model's own
        previous prediction with probability 1 - teacher_forcing."""
        B, T = tgt_in.shape
        assert src.size(0) == B, f"src batch {src.size(0)} != tgt batch {B}"
        memory, state = self.encode(src, src_lengths)
        if teacher_forcing >= 1.0:
            logits, _, _ = self.predict_next(tgt_in, state, memory)
            return logits
        steps, inp = [], tgt_in[:, :1]
        for t in range(T):
            logits_t, state, _ = self.predict_next(inp, state, memory)
            steps.append(logits_t)
            if t + 1 < T:
                use_gold = torch.rand(B, 1, device=tgt_in.device) < teacher_forcing
                inp = torch.where(use_gold, tgt_in[:, t + 1:t + 2], logits_t.argmax(-1))
        return torch.cat(steps, 1)

    def loss(self, logits: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Summed cross-entropy over non-pad target tokens (divide by n_tokens to normalise)."""
        return smoothed_cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1), self.pad_id,
                                      label_smoothing)

