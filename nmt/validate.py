"""Validation: per-token loss and perplexity (teacher forcing), greedy BLEU with sacreBLEU."""
from __future__ import annotations

import math

import sacrebleu
import torch

from nmt.batching import LengthBatchSampler
from nmt.collate import arrow_table, make_loader


def eval_sampler(split, max_tokens: int = 4000) -> LengthBatchSampler:
    """Length-ordered batches under a token budget: fast, deterministic, every example once."""
    table = arrow_table(split)
    return LengthBatchSampler(table.column("src_len").to_numpy(), table.column("tgt_len").to_numpy(),
                              kind="tokens", max_tokens=max_tokens, shuffle=False)


@torch.no_grad()
def validate(translator, split, cfg) -> dict:
    """{loss, ppl, bleu} on a prepared split (`train.val_max_sentences` caps its size) for the
    model of a Translator (greedy decoding for BLEU)."""
    model, tgt_vocab, device = translator.model, translator.tgt_vocab, translator.device
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
        hyps = translator.translate_split(split)
        refs = split["tgt_text"]
        bleu = sacrebleu.corpus_bleu(translator.detokenize(hyps), [refs])
        result["bleu"] = bleu.score
    model.train(was_training)
    return result
