"""Encoder-decoder shapes, packing, padding, teacher forcing."""
import itertools

import pytest
import torch

from conftest import make_cfg
from nmt.model import build_model
from nmt.vocab import PAD_ID


def model_cfg(**over):
    cfg = make_cfg("model.emb_dim=12", "model.hidden_dim=10", "model.dropout=0", "model.emb_dropout=0").model
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def padded_batch():
    src = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, PAD_ID, PAD_ID], [9, PAD_ID, PAD_ID, PAD_ID, PAD_ID]])
    return src, torch.tensor([5, 3, 1]), torch.randint(4, 30, (3, 4))


@pytest.mark.parametrize("cell,attention,bidirectional,layers", list(itertools.product(
    ["rnn", "gru", "lstm"], ["none", "luong", "bahdanau"], [True, False], [1, 2, 3])))
def test_shapes_for_every_cell_attention_and_depth(cell, attention, bidirectional, layers):
    cfg = model_cfg(cell=cell, attention=attention, bidirectional=bidirectional, enc_layers=layers,
                    dec_layers=max(1, 4 - layers))
    model = build_model(cfg, 40, 30, PAD_ID)
    src, lengths, tgt = padded_batch()
    memory, state = model.encode(src, lengths)
    assert memory.values.shape == (3, 5, 10 * (2 if bidirectional else 1))
    assert len(state) == (2 if cell == "lstm" else 1) and state[0].shape == (cfg.dec_layers, 3, 10)
    logits, new_state, attn = model.decode(tgt, state, memory)
    assert logits.shape == (3, 4, 30)
    if attention == "none":
        assert attn is None
    else:
        assert attn.shape == (3, 4, 5)
        assert torch.allclose(attn.sum(-1), torch.ones(3, 4), atol=1e-5)
        assert attn[2, :, 1:].abs().max() == 0  # no attention on padding
    # step-by-step decoding gives the same logits as all steps at once
    step_logits, s = [], state
    for t in range(4):
        lt, s, _ = model.decode(tgt[:, t:t + 1], s, memory)
        step_logits.append(lt)
    assert torch.allclose(torch.cat(step_logits, 1), logits, atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_padding_does_not_change_a_sentence_encoding(cell):
    model = build_model(model_cfg(cell=cell), 40, 30, PAD_ID).eval()
    alone = torch.tensor([[5, 6, 7]])
    out1, st1 = model.encoder(alone, torch.tensor([3]))
    padded = torch.tensor([[5, 6, 7, PAD_ID, PAD_ID], [8, 9, 10, 11, 12]])
    out2, st2 = model.encoder(padded, torch.tensor([3, 5]))
    assert torch.allclose(out1[0], out2[0, :3], atol=1e-6)
    assert out2[0, 3:].abs().max() == 0
    for a, b in zip(st1, st2):
        assert torch.allclose(a[:, 0], b[:, 0], atol=1e-6)


def test_packed_equals_unpacked_on_unpadded_input():
    model = build_model(model_cfg(cell="gru", bidirectional=True, enc_layers=2), 40, 30, PAD_ID).eval()
    src = torch.randint(4, 40, (3, 6))
    packed_out, _ = model.encoder(src, torch.tensor([6, 6, 6]))
    plain_out, _ = model.encoder.rnn(model.encoder.embedding(src))
    assert torch.allclose(packed_out, plain_out, atol=1e-6)


def test_teacher_forcing_one_equals_stepwise_gold_and_ratio_zero_feeds_predictions():
    torch.manual_seed(0)
    model = build_model(model_cfg(), 40, 30, PAD_ID).eval()
    src, lengths, tgt = padded_batch()
    full = model(src, lengths, tgt, teacher_forcing=1.0)
    free = model(src, lengths, tgt, teacher_forcing=0.0)
    assert torch.allclose(free[:, 0], full[:, 0], atol=1e-6)  # first step reads SOS either way
    preds = free.argmax(-1)
    memory, state = model.encode(src, lengths)
    inp = tgt[:, :1]
    for t in range(4):
        lt, state, _ = model.decode(inp, state, memory)
        assert torch.allclose(lt[:, 0], free[:, t], atol=1e-5)
        inp = preds[:, t:t + 1]


def test_tied_and_shared_embeddings():
    m = build_model(model_cfg(emb_dim=10, tie_embeddings=True, share_embeddings=True), 30, 30, PAD_ID)
    assert m.decoder.output.proj.weight is m.decoder.embedding.weight
    assert m.encoder.embedding is m.decoder.embedding
    with pytest.raises(ValueError, match="joint"):
        build_model(model_cfg(share_embeddings=True), 40, 30, PAD_ID)
    with pytest.raises(ValueError, match="emb_dim == hidden_dim"):
        build_model(model_cfg(tie_embeddings=True), 40, 30, PAD_ID)
