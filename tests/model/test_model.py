"""Encoder-decoder shapes, packing, padding, teacher forcing."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from conftest import make_cfg
from nmt.data.vocab import PAD_ID
from nmt.model import build_model
from nmt.model.loss import smoothed_cross_entropy


def model_cfg(**over):
    cfg = make_cfg("model.emb_dim=12", "model.hidden_dim=10", "model.dropout=0", "model.emb_dropout=0").model
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def padded_batch():
    src = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, PAD_ID, PAD_ID], [9, PAD_ID, PAD_ID, PAD_ID, PAD_ID]])
    return src, torch.tensor([5, 3, 1]), torch.randint(4, 30, (3, 4))


@pytest.mark.parametrize("cell,attention,bidirectional,layers", list(itertools.product(
    ["rnn", "gru", "lstm"], ["none", "luong", "luong+feeding", "bahdanau"], [True, False], [1, 2, 3])))
def test_shapes_for_every_cell_attention_and_depth(cell, attention, bidirectional, layers):
    feeding = attention == "luong+feeding"
    cfg = model_cfg(cell=cell, attention="luong" if feeding else attention, input_feeding=feeding,
                    bidirectional=bidirectional, enc_layers=layers, dec_layers=max(1, 4 - layers))
    model = build_model(cfg, 40, 30, PAD_ID)
    src, lengths, tgt = padded_batch()
    memory, state = model.encode(src, lengths)
    assert memory.values.shape == (3, 5, 10 * (2 if bidirectional else 1))
    assert len(state) == (2 if cell == "lstm" else 1) + feeding and state[0].shape == (cfg.dec_layers, 3, 10)
    logits, new_state, attn = model.predict_next(tgt, state, memory)
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
        lt, s, _ = model.predict_next(tgt[:, t:t + 1], s, memory)
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


def encode_with_grads(encoder, src, lengths, packed):
    """Outputs, final states and parameter gradients of one forward/backward pass."""
    encoder.packed = packed
    encoder.zero_grad()
    out, state = encoder(src, lengths)
    (out.pow(2).sum() + sum(s.pow(3).sum() for s in state)).backward()
    return out.detach(), [s.detach() for s in state], [p.grad.clone() for p in encoder.parameters()]


@pytest.mark.parametrize("cell,bidirectional,layers", [("gru", True, 1), ("gru", True, 3), ("gru", False, 2),
                                                       ("rnn", True, 2), ("rnn", False, 1)])
def test_per_direction_encoder_equals_packed_encoder_with_gradients(cell, bidirectional, layers):
    # the CPU path (each direction on the padded batch, the backward one reversed within each
    # sentence) computes what the packed path computes, gradients included, on ragged batches
    torch.manual_seed(0)
    model = build_model(model_cfg(cell=cell, bidirectional=bidirectional, enc_layers=layers), 40, 30, PAD_ID)
    lengths = torch.tensor([7, 3, 5, 1, 7])
    src = torch.randint(4, 40, (5, 7))
    src[torch.arange(7)[None] >= lengths[:, None]] = PAD_ID
    packed = encode_with_grads(model.encoder, src, lengths, packed=True)
    reversed_ = encode_with_grads(model.encoder, src, lengths, packed=False)
    torch.testing.assert_close(reversed_[0], packed[0], atol=1e-6, rtol=1e-5)
    assert reversed_[0][1, 3:].abs().max() == 0  # zero at padding, like pad_packed_sequence
    for a, b in zip(reversed_[1] + reversed_[2], packed[1] + packed[2]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cell,expected", [("gru", "forward_reversed"), ("rnn", "forward_reversed"),
                                           ("lstm", "forward_packed")])
def test_encoder_picks_the_per_direction_path_on_cpu_except_for_lstm(cell, expected):
    model = build_model(model_cfg(cell=cell), 40, 30, PAD_ID).eval()
    src, lengths, _ = padded_batch()
    out, state = model.encoder(src, lengths)
    want_out, want_state = getattr(model.encoder, expected)(model.encoder.embedding(src), lengths)
    assert torch.equal(out, want_out) and all(torch.equal(a, b) for a, b in zip(state, want_state))


def test_cpu_dropout_rate_scale_gradient_and_seed():
    from nmt.model.dropout import Dropout, dropout

    x = torch.randn(64, 50, 64, requires_grad=True)
    torch.manual_seed(3)
    out = dropout(x, 0.3, training=True)
    dropped = out == 0
    assert abs(dropped.float().mean().item() - 0.3) < 0.01
    torch.testing.assert_close(out[~dropped], x[~dropped] / 0.7, atol=1e-6, rtol=1e-4)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (~dropped).float() / 0.7, atol=1e-6, rtol=1e-4)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.3, training=True), out)  # the seed fixes the mask
    assert not torch.equal(dropout(x, 0.3, training=True), out)
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0, training=True) is x
    assert (dropout(x, 1.0, training=True) == 0).all()
    layer = Dropout(0.5)
    assert layer.eval()(x) is x
    assert abs((layer.train()(x) == 0).float().mean().item() - 0.5) < 0.01
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)


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
        lt, state, _ = model.predict_next(inp, state, memory)
        assert torch.allclose(lt[:, 0], free[:, t], atol=1e-5)
        inp = preds[:, t:t + 1]


def test_tied_and_shared_embeddings():
    m = build_model(model_cfg(emb_dim=10, tie_embeddings=True, share_embeddings=True), 30, 30, PAD_ID)
    assert m.decoder.output.proj.weight is m.decoder.embedding.weight
    assert m.encoder.embedding is m.decoder.embedding
    with pytest.raises(ValueError, match="joint"):
        build_model(model_cfg(share_embeddings=True), 40, 30, PAD_ID)
    for feeding in (False, True):  # emb_dim 12 != hidden_dim 10: the combine layer maps to 12
        m = build_model(model_cfg(tie_embeddings=True, input_feeding=feeding), 40, 30, PAD_ID)
        assert m.decoder.output.proj.weight is m.decoder.embedding.weight
        src, lengths, tgt = padded_batch()
        assert m(src, lengths, tgt).shape == (3, 4, 30)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_smoothed_cross_entropy_matches_torch_in_value_and_gradient(eps):
    torch.manual_seed(0)
    logits = torch.randn(40, 23, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 23, (40,))
    target[::5] = PAD_ID
    ours = smoothed_cross_entropy(logits, target, PAD_ID, eps)
    (g_ours,) = torch.autograd.grad(2.5 * ours, logits)
    ref = F.cross_entropy(logits, target, ignore_index=PAD_ID, label_smoothing=eps, reduction="sum")
    (g_ref,) = torch.autograd.grad(2.5 * ref, logits)
    assert torch.allclose(ours, ref, atol=1e-12)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)
    assert g_ours[::5].abs().max() == 0  # padding positions get no gradient


def test_smoothed_cross_entropy_refuses_a_second_backward():
    logits = torch.randn(4, 7, requires_grad=True)
    loss = smoothed_cross_entropy(logits, torch.tensor([1, 2, 3, 4]), PAD_ID, 0.1)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="once"):
        loss.backward()



def test_smoothed_cross_entropy_computes_in_fp32_and_returns_the_logits_dtype():
    logits = torch.randn(6, 9, dtype=torch.bfloat16, requires_grad=True)
    loss = smoothed_cross_entropy(logits, torch.tensor([1, 2, PAD_ID, 4, 5, 6]), PAD_ID, 0.1)
    loss.backward()
    assert loss.dtype == torch.float32 and logits.grad.dtype == torch.bfloat16


def test_word_dropout_zeroes_whole_tokens_in_training_only():
    from nmt.model.dropout import drop_tokens

    torch.manual_seed(0)
    emb = torch.randn(64, 50, 8)
    out = drop_tokens(emb, 0.25, training=True)
    dropped = (out == 0).all(-1)  # (B, T): a token is dropped whole or not at all
    assert ((out == 0) == dropped.unsqueeze(-1)).all()
    assert 0.2 < dropped.float().mean() < 0.3
    torch.testing.assert_close(out[~dropped], emb[~dropped] / 0.75)
    assert drop_tokens(emb, 0.25, training=False) is emb


@pytest.mark.parametrize("arch,feeding", [("rnn", False), ("rnn", True), ("transformer", False)])
def test_word_dropout_changes_training_not_weights_or_inference(arch, feeding):
    over = dict(arch=arch, input_feeding=feeding, attention="luong")
    if arch == "transformer":
        over.update(emb_dim=12, heads=2, ff_dim=16)
    torch.manual_seed(0)
    plain = build_model(model_cfg(**over), 40, 30, PAD_ID)
    dropping = build_model(model_cfg(word_dropout=0.5, **over), 40, 30, PAD_ID)
    assert plain.state_dict().keys() == dropping.state_dict().keys()  # checkpoints interchange
    dropping.load_state_dict(plain.state_dict())
    src, lengths, tgt = padded_batch()
    plain.eval(), dropping.eval()
    torch.testing.assert_close(dropping(src, lengths, tgt), plain(src, lengths, tgt))
    plain.train(), dropping.train()
    torch.manual_seed(1)
    assert not torch.allclose(dropping(src, lengths, tgt), plain(src, lengths, tgt))
