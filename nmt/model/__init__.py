"""Encoder-decoder models behind one interface (encode, predict_next, forward, loss): the RNN
family (`Seq2Seq`: embedding + RNN/GRU/LSTM, attention) and the `Transformer`."""
from nmt.model.seq2seq import Seq2Seq, build_model
from nmt.model.transformer import Transformer

__all__ = ["Seq2Seq", "Transformer", "build_model"]
