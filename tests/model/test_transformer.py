"""The Transformer on the same pipeline as the RNNs: it learns, its cached decoding equals the
uncached one, it resumes bit-exactly, and it refuses what it cannot do."""
import json

import datasets
import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY_DE, TINY_EN, TINY_MODEL, TINY_TRANSFORMER, make_cfg
from nmt import Translator
from nmt.cli.train import run
from nmt.config.rules import ConfigError, check_config
from nmt.config.schema import ModelConfig
from nmt.data.vocab import EOS_ID, SOS_ID
from nmt.inference.search import beam_search, greedy_search
from nmt.model import Transformer, build_model
from nmt.runs.checkpoint import Checkpoint


def tiny(**over):
    cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig),
                          {"arch": "transformer", "emb_dim": 32, "heads": 4, "ff_dim": 64, "enc_layers": 2,
                           "dec_layers": 2, "dropout": 0.0, "emb_dropout": 0.0, **over})
    torch.manual_seed(0)
    return build_model(cfg, 40, 50, 0).eval()


def batch():
    src = torch.randint(4, 40, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    for i, n in enumerate(lengths.tolist()):
        src[i, n:] = 0
    return src, lengths


def test_cached_step_by_step_decoding_equals_one_full_pass():
    model = tiny()
    assert isinstance(model, Transformer)
    src, lengths = batch()
    tgt = torch.cat([torch.full((3, 1), SOS_ID), torch.randint(4, 50, (3, 8))], 1)
    with torch.no_grad():
        full = model(src, lengths, tgt)
        memory, state = model.encode(src, lengths)
        steps = []
        for t in range(tgt.size(1)):
            logits, state, weights = model.predict_next(tgt[:, t:t + 1], state, memory)
            steps.append(logits)
            assert len(state) == 4 and state[0].shape == (1, 3, 4, t + 1, 8)  # per layer k, v: (1, B, heads, positions, head dim)
        torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    # cross-attention of the last layer, heads averaged: a distribution over real source tokens
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 1))
    assert float(weights[2, 0, 2:].abs().sum()) == 0.0


def uncached_greedy(model, src, lengths, steps):
    """Greedy decoding that recomputes the whole prefix every step (no cache)."""
    out = torch.full((src.size(0), 1), SOS_ID)
    for _ in range(steps):
        logits = model(src, lengths, out)
        out = torch.cat([out, logits[:, -1].argmax(-1, keepdim=True)], 1)
    return out[:, 1:].tolist()


def test_cached_search_gives_the_tokens_of_uncached_decoding():
    model = tiny()
    with torch.no_grad():  # make EOS rare so that sentences run to their limit: long prefixes
        model.proj.bias[EOS_ID] = -1e9
    src, lengths = batch()
    cached = greedy_search(model, src, lengths, max_len_a=0, max_len_b=9)
    reference = uncached_greedy(model, src, lengths, 9)
    assert [h.tokens for h in cached] == reference
    # beam 1 is greedy; a wider beam reorders the cache with its rows and still ends on real tokens
    assert [h.tokens for h in beam_search(model, src, lengths, 1, max_len_a=0, max_len_b=9)] == reference
    wide = beam_search(model, src, lengths, 4, n_best=4, max_len_a=0, max_len_b=9)
    for h, i in zip(wide, range(3)):
        rescored = []
        for alt in h.n_best:  # each n-best score equals the uncached model's log-probability of its tokens
            seq = torch.tensor([[SOS_ID, *alt.tokens]])
            with torch.no_grad():
                logp = torch.log_softmax(model(src[i:i + 1], lengths[i:i + 1], seq[:, :-1]).float(), -1)
            rescored.append(float(logp[0].gather(-1, seq[0, 1:].unsqueeze(-1)).sum()))
        assert rescored == pytest.approx([alt.score for alt in h.n_best], abs=1e-4)


def test_a_tiny_transformer_learns_the_tiny_corpus(tiny_transformer_checkpoint, tiny_prepared):
    run_dir = tiny_transformer_checkpoint.parents[1]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in rows if r["kind"] == "train"]
    assert train[-1] < train[0] / 5
    assert [r for r in rows if r["kind"] == "valid"][-1]["bleu"] > 90
    tr = Translator.from_checkpoint(tiny_transformer_checkpoint, decode="greedy")
    assert tr.info["model"]["arch"] == "transformer"
    assert tr.detokenize(tr.translate_split(datasets.load_from_disk(str(tiny_prepared))["test"])) == TINY_EN
    detailed = tr.translate_detailed(["ein hund läuft"], attention=True, beam_size=3, n_best=2)[0]
    assert detailed.attention.shape == (len(detailed.target_pieces) + 1, len(detailed.source_pieces))


def test_resume_is_bit_exact(tiny_prepared, tmp_path):
    args = [f"prepared_dir={tiny_prepared}", *TINY_MODEL, *TINY_TRANSFORMER, "model.dropout=0.3",
            "train.checkpoint_every=4", "train.validate_every=5", "train.val_bleu=true", "train.schedule=plateau"]
    run(make_cfg(*args, "train.max_steps=23"), tmp_path / "a")
    run(make_cfg(*args, "train.max_steps=10"), tmp_path / "b")
    run(make_cfg(*args, "train.max_steps=23", f"train.resume={tmp_path / 'b'}"), tmp_path / "c")
    a = Checkpoint.load(tmp_path / "a/checkpoints/last.pt").weights
    c = Checkpoint.load(tmp_path / "c/checkpoints/last.pt").weights
    assert a.keys() == c.keys() and all(torch.equal(a[k], c[k]) for k in a)


def test_teacher_forcing_below_one_is_refused_clearly():
    with pytest.raises(ConfigError, match="teacher forcing only.*train.teacher_forcing=1"):
        check_config(make_cfg(*TINY_TRANSFORMER, "train.teacher_forcing=0.5"))
    with pytest.raises(ConfigError, match="multiple of model.heads"):
        check_config(make_cfg(*TINY_TRANSFORMER, "model.heads=5"))
    with pytest.raises(ValueError, match="teacher forcing only"):
        tiny().train()(*batch(), torch.full((3, 2), SOS_ID), teacher_forcing=0.5)


def test_int8_transformer_translates_like_the_float_one(tiny_transformer_checkpoint):
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    fp = Translator.from_checkpoint(tiny_transformer_checkpoint, decode="greedy")
    q8 = Translator.from_checkpoint(tiny_transformer_checkpoint, decode="greedy", quantize="int8")
    assert q8.model.proj.__class__ is QLinear
    agree = sum(a == b for a, b in zip(fp.translate(TINY_DE), q8.translate(TINY_DE)))
    assert agree >= 10



def test_bf16_training_on_cpu_takes_the_explicit_attention_and_agrees_with_the_fused_kernel(monkeypatch):
    """CPU flash attention's bf16 backward is several times slower than the matmuls it replaces
    (bench/profile_step.py): under bf16 autocast the Transformer attends with explicit matmuls,
    and its logits and gradients stay those of the fp32 fused kernel within bf16's precision."""
    import torch.nn.functional as F

    from nmt.model import transformer

    model = tiny(dec_layers=1)
    src, lengths = batch()
    tgt = torch.cat([torch.full((3, 1), SOS_ID), torch.randint(4, 50, (3, 6))], 1)
    model.train()
    fp32 = model(src, lengths, tgt)
    fp32.float().pow(2).mean().backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    def fused_not_allowed(*args, **kwargs):
        raise AssertionError("bf16 on a CPU must not take the fused kernel")

    monkeypatch.setattr(transformer.F, "scaled_dot_product_attention", fused_not_allowed)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = model(src, lengths, tgt)
    assert bf16.dtype == torch.bfloat16
    bf16.float().pow(2).mean().backward()
    torch.testing.assert_close(bf16.float(), fp32, atol=0.1, rtol=0.05)
    for name, p in model.named_parameters():
        cos = F.cosine_similarity(p.grad.flatten(), want[name].flatten(), dim=0)
        assert cos > 0.98, (name, float(cos))
