"""Greedy and beam search: equivalences, scores, invariances, limits."""
import pytest
import torch

from conftest import make_cfg
from nmt.data.vocab import EOS_ID, PAD_ID
from nmt.inference.search import beam_search, greedy_search, sequence_logprob
from nmt.model import build_model


def random_model(cell, attention="luong", seed=0):
    torch.manual_seed(seed)
    feeding = attention == "luong+feeding"
    cfg = make_cfg(f"model.cell={cell}", f"model.attention={'luong' if feeding else attention}",
                   f"model.input_feeding={feeding}", "model.emb_dim=16", "model.hidden_dim=16",
                   "model.dropout=0", "model.emb_dropout=0").model
    model = build_model(cfg, 30, 25, PAD_ID).eval()
    with torch.no_grad():  # make EOS likely enough that some outputs end before the limit
        model.decoder.output.proj.bias[EOS_ID] += 2.5
    return model


def batch(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 8, (n,), generator=g)
    src = torch.full((n, int(lengths.max())), PAD_ID)
    for i, l in enumerate(lengths.tolist()):
        src[i, :l] = torch.randint(4, 30, (l,), generator=g)
    return src, lengths


@pytest.mark.parametrize("cell,attention", [("gru", "luong"), ("lstm", "luong"), ("lstm", "bahdanau"), ("rnn", "none"),
                                            ("gru", "luong+feeding"), ("lstm", "luong+feeding")])
def test_beam_one_equals_greedy(cell, attention):
    model = random_model(cell, attention)
    src, lengths = batch()
    greedy = greedy_search(model, src, lengths, 1.5, 3)
    beam = beam_search(model, src, lengths, beam_size=1, length_penalty=0.0, max_len_a=1.5, max_len_b=3)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    assert [h.score for h in beam] == pytest.approx([h.score for h in greedy], abs=1e-4)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_model_score_at_least_greedy(cell, seed):
    model = random_model(cell, seed=seed)
    src, lengths = batch(seed)
    greedy = greedy_search(model, src, lengths, 1.5, 3)
    beam = beam_search(model, src, lengths, beam_size=5, length_penalty=0.0, max_len_a=1.5, max_len_b=3)
    for g, b in zip(greedy, beam):
        assert b.score >= g.score - 1e-4
    # the reported score is the model's log-probability of the output
    ended = [len(b.tokens) < int(1.5 * l + 3) for b, l in zip(beam, lengths.tolist())]
    rescored = sequence_logprob(model, src, lengths, [b.tokens for b in beam], ended)
    assert rescored == pytest.approx([b.score for b in beam], abs=1e-3)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_results_do_not_depend_on_batch_size_or_order(cell):
    model = random_model(cell)
    src, lengths = batch(3, n=8)
    together = beam_search(model, src, lengths, beam_size=4, n_best=2)
    alone = [beam_search(model, src[i:i + 1, : lengths[i]], lengths[i:i + 1], beam_size=4, n_best=2)[0]
             for i in range(8)]
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    shuffled = beam_search(model, src[perm], lengths[perm], beam_size=4, n_best=2)
    assert [h.tokens for h in together] == [h.tokens for h in alone]
    assert [shuffled[j].tokens for j in torch.argsort(perm).tolist()] == [h.tokens for h in together]
    assert all(len(h.n_best) == 2 and h.n_best[0] is h for h in together)
    g_together = greedy_search(model, src, lengths)
    g_alone = [greedy_search(model, src[i:i + 1, : lengths[i]], lengths[i:i + 1])[0] for i in range(8)]
    assert [h.tokens for h in g_together] == [h.tokens for h in g_alone]


def test_never_emitting_eos_stops_at_the_limit():
    model = random_model("gru")
    with torch.no_grad():
        model.decoder.output.proj.bias[EOS_ID] = -1e9
    src, lengths = batch()
    limits = (1.0 * lengths.float() + 2).long().tolist()
    for hyps in (greedy_search(model, src, lengths, 1.0, 2),
                 beam_search(model, src, lengths, beam_size=3, max_len_a=1.0, max_len_b=2)):
        assert [len(h.tokens) for h in hyps] == limits
        assert all(EOS_ID not in h.tokens for h in hyps)


def test_attention_weights_are_returned():
    model = random_model("gru")
    src, lengths = batch()
    for hyps in (greedy_search(model, src, lengths, return_attention=True),
                 beam_search(model, src, lengths, beam_size=3, return_attention=True)):
        for h, l in zip(hyps, lengths.tolist()):
            assert h.attention.shape[1] == l and h.attention.shape[0] >= len(h.tokens)
            assert torch.allclose(h.attention.sum(-1), torch.ones(h.attention.shape[0]), atol=1e-4)


def test_no_repeat_ngram_blocks_repeats():
    model = random_model("gru")
    with torch.no_grad():
        model.decoder.output.proj.bias[EOS_ID] = -1e9
    src, lengths = batch()
    hyps = beam_search(model, src, lengths, beam_size=3, no_repeat_ngram=2, max_len_b=8)
    for h in hyps:
        bigrams = list(zip(h.tokens, h.tokens[1:]))
        assert len(bigrams) == len(set(bigrams))
