"""Validation during training: per-token loss and perplexity under teacher forcing, and greedy
BLEU (sacreBLEU through nmt.analysis.scoring) of the model's own translations."""
from __future__ import annotations

import math

import torch

from nmt.analysis.scoring import score_corpus
from nmt.data.batching import LengthBatchSampler
from nmt.data.collate import make_loader
from nmt.data.store import split_table


def eval_sampler(table, max_tokens: int = 4000) -> LengthBatchSampler:
    """Length-ordered batches under a token budget: fast, deterministic, every example once."""
    return LengthBatchSampler(table.column("src_len").to_numpy(), table.column("tgt_len").to_numpy(),
                              kind="tokens", max_tokens=max_tokens, shuffle=False)


@torch.no_grad()
def validate(translator, split, max_sentences: int = 0, bleu: bool = True) -> dict:
    """{loss, ppl[, bleu]} of a Translator's model on a prepared split (its first
    `max_sentences` examples when > 0); BLEU from greedy decoding with the Translator."""
    model = translator.model
    if max_sentences and len(split) > max_sentences:
        split = split.select(range(max_sentences))
    table = split_table(split)
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    for batch in make_loader(table, eval_sampler(table), translator.tgt_vocab.pad_id):
        batch = batch.to(translator.device)
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        total += float(model.loss(logits, batch.tgt_out))
        tokens += batch.n_tokens
    result = {"loss": total / max(tokens, 1)}
    result["ppl"] = math.exp(min(result["loss"], 50))
    if bleu:
        result["bleu"] = split_bleu(translator, split)
    model.train(was_training)
    return result


@torch.no_grad()
def split_bleu(translator, split, max_sentences: int = 0) -> float:
    """BLEU of a Translator's translations (its search options) of a prepared split (its first
    `max_sentences` examples when > 0); an ensemble too, which has no teacher-forced loss."""
    table = split_table(split)
    if max_sentences and len(table) > max_sentences:
        table = table.slice(0, max_sentences)
    hyps = translator.detokenize(translator.translate_ids(table.column("src_ids").to_pylist()))
    refs = table.column("tgt_text").to_pylist()
    return score_corpus(hyps, [refs], ["bleu"])[0]["score"]
