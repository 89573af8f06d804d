"""Encoder-decoder models behind one interface (`interface.TranslationModel`: encode,
predict_next, forward, loss, src_embedding): the RNN family (`Seq2Seq`: embedding +
RNN/GRU/LSTM, attention), the `Transformer`, and an `Ensemble` of either for search.
`build_model` picks one from `model.arch`."""
from __future__ import annotations

import torch

from nmt.model.seq2seq import Seq2Seq
from nmt.model.transformer import Transformer

__all__ = ["Seq2Seq", "Transformer", "build_model"]


def build_model(cfg, src_vocab_size: int, tgt_vocab_size: int, pad_id: int) -> torch.nn.Module:
    """The model a ModelConfig (or a checkpoint's model settings, which may predate `arch`)
    describes, for the given vocabularies: `Seq2Seq` (RNN family) or `Transformer`."""
    from omegaconf import OmegaConf

    from nmt.config.choices import Arch
    from nmt.config.schema import ModelConfig

    cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), cfg)  # keys added since a checkpoint was saved
    if cfg.arch == Arch.transformer:
        return Transformer(cfg, src_vocab_size, tgt_vocab_size, pad_id)
    return Seq2Seq(cfg, src_vocab_size, tgt_vocab_size, pad_id)
