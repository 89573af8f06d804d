"""Validation: per-token loss and perplexity (teacher forcing), greedy BLEU with sacreBLEU."""
from __future__ import annotations

import math

import sacrebleu
import torch

from nmt.batching import LengthBatchSampler, restore_order
from nmt.collate import arrow_table, make_loader
from nmt.search import greedy_search


def eval_sampler(split, max_tokens: int = 4000) -> LengthBatchSampler:
    """Length-ordered batches under a token budget: fast, deterministic, every example once."""
    table = arrow_table(split)
    return LengthBatchSampler(table.column("src_len").to_numpy(), table.column("tgt_len").to_numpy(),
                              kind="tokens", max_tokens=max_tokens, shuffle=False)


@torch.no_grad()
def translate_split(model, split, tgt_vocab, device, decode=None, return_attention=False):
    """Decode every example of a prepared split; hypotheses come back in corpus order."""
    from nmt.search import search

    sampler = eval_sampler(split)
    outputs, batches = [], []
    for batch in make_loader(split, sampler, tgt_vocab.pad_id):
        batch = batch.to(device)
        if decode is None:
            hyps = greedy_search(model, batch.src, batch.src_lengths)
        else:
            hyps = search(model, batch.src, batch.src_lengths, decode, return_attention)
        outputs.append(hyps)
        batches.append(batch.indices.tolist())
    return restore_order(outputs, batches, len(split))


@torch.no_grad()
def validate(model, split, tgt_vocab, cfg, device) -> dict:
    """{loss, ppl, bleu} on a prepared split (`train.val_max_sentences` caps its size)."""
    tc = cfg.train
    if tc.val_max_sentences and len(split) > tc.val_max_sentences:
        split = split.select(range(tc.val_max_sentences))
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in make_loader(split, eval_sampler(split), tgt_vocab.pad_id):
        batch = batch.to(device)
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        total += float(model.loss(logits, batch.tgt_out))
        tokens += batch.n_tokens
    result = {"loss": total / max(tokens, 1)}
    result["ppl"] = math.exp(min(result["loss"], 50))
    if tc.val_bleu:
        hyps = translate_split(model, split, tgt_vocab, device)
        refs = split["tgt_text"]
        bleu = sacrebleu.corpus_bleu([tgt_vocab.decode(h.tokens) for h in hyps], [refs])
        result["bleu"] = bleu.score
    model.train(was_training)
    return result
