"""Greedy and batched beam search, shared by validation and translation."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nmt.data.vocab import EOS_ID, PAD_ID, SOS_ID


@dataclass
class Hypothesis:
    tokens: list[int]  # without SOS and EOS
    score: float  # sum of log-probabilities (EOS included when emitted)
    attention: torch.Tensor | None = None  # (len(tokens) + 1, S): one row per emitted token, EOS included
    n_best: list["Hypothesis"] = field(default_factory=list)  # beam: best first, itself included


def max_lengths(src_lengths: torch.Tensor, a: float, b: int, cap: int = 0) -> torch.Tensor:
    """Per-sentence output limit (B,) = a * src_len + b, at least 1 and at most `cap` (0: no cap)."""
    limits = (a * src_lengths.float() + b).long().clamp(min=1)
    return limits.clamp(max=cap) if cap else limits


@torch.no_grad()
def greedy_search(model, src: torch.Tensor, src_lengths: torch.Tensor, max_len_a: float = 1.5,
                  max_len_b: int = 10, return_attention: bool = False, max_output_len: int = 0) -> list[Hypothesis]:
    """src (B, S), src_lengths (B,) -> B hypotheses in input order. Stops at EOS or the limit."""
    B = src.size(0)
    device = src.device
    memory, state = model.encode(src, src_lengths)
    limits = max_lengths(src_lengths, max_len_a, max_len_b, max_output_len).to(device)
    inp = torch.full((B, 1), SOS_ID, dtype=torch.long, device=device)
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    scores = torch.zeros(B, device=device)
    tokens, attns = [], []
    for t in range(int(limits.max())):
        logits, state, weights = model.predict_next(inp, state, memory, need_weights=return_attention)
        logp = torch.log_softmax(logits[:, -1].float(), dim=-1)
        best_lp, tok = logp.max(-1)
        tok = tok.masked_fill(finished, PAD_ID)
        scores += best_lp.masked_fill(finished, 0.0)
        tokens.append(tok)
        if return_attention and weights is not None:
            attns.append(weights[:, -1])
        finished |= (tok == EOS_ID) | (t + 1 >= limits)
        if bool(finished.all()):
            break
        inp = tok.unsqueeze(1)
    out = torch.stack(tokens, 1).tolist()
    hyps = []
    for i, row in enumerate(out):
        n = row.index(EOS_ID) if EOS_ID in row else min(len(row), int(limits[i]))
        att = torch.stack(attns, 1)[i, : n + 1, : int(src_lengths[i])].cpu() if attns else None
        hyps.append(Hypothesis(row[:n], float(scores[i]), att))
    return hyps


def _length_penalty(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


def _banned_tokens(history: list[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram already in `history`."""
    if n <= 0 or len(history) < n - 1:
        return set()
    prefix = tuple(history[len(history) - n + 1:]) if n > 1 else ()
    return {history[i + n - 1] for i in range(len(history) - n + 1) if tuple(history[i:i + n - 1]) == prefix}


@torch.no_grad()
def beam_search(model, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int = 5, length_penalty: float = 1.0,
                n_best: int = 1, max_len_a: float = 1.5, max_len_b: int = 10, no_repeat_ngram: int = 0,
                return_attention: bool = False, max_output_len: int = 0) -> list[Hypothesis]:
    """Batched beam search: every beam of every unfinished sentence advances in one decoder call;
    a sentence leaves the computation once it holds `beam_size` finished hypotheses or reaches
    its limit. Ranks by log-prob / ((5 + len) / 6) ** length_penalty. Returns B hypotheses in input
    order, each with its `n_best` list. beam_size=1 gives exactly the greedy output."""
    K, device = beam_size, src.device
    B = src.size(0)
    memory, state = model.encode(src, src_lengths)
    limits = max_lengths(src_lengths, max_len_a, max_len_b, max_output_len).tolist()
    rows = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,) sentence of each beam row
    memory, state = memory.index_select(rows), tuple(s.index_select(1, rows) for s in state)
    active = list(range(B))  # sentence ids still searching, in row-block order
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0
    history = torch.full((B * K, 0), SOS_ID, dtype=torch.long, device=device)
    attn_hist = None
    inp = torch.full((B * K, 1), SOS_ID, dtype=torch.long, device=device)
    finished: list[list[tuple[float, list[int], float, torch.Tensor | None]]] = [[] for _ in range(B)]
    t = 0
    while active:
        n = len(active)
        logits, state, weights = model.predict_next(inp, state, memory, need_weights=return_attention)
        logp = torch.log_softmax(logits[:, -1].float(), dim=-1)  # (n*K, V)
        V = logp.size(-1)
        if no_repeat_ngram > 0:
            for r, hist in enumerate(history.tolist()):
                for tok in _banned_tokens(hist, no_repeat_ngram):
                    logp[r, tok] = float("-inf")
        if return_attention and weights is not None:
            w = weights[:, -1].unsqueeze(1)
            attn_hist = w if attn_hist is None else torch.cat([attn_hist, w], 1)
        # the best 2K continuations of a sentence are among the best 2K of each of its beams: rank
        # each beam's pieces first (topk over V), then the K * 2K candidates; the same scores as
        # ranking all K * V, without adding the beam scores to every piece (a third of a step's time
        # for a small model)
        row_k = min(2 * K, V)
        row_top, row_tok = logp.topk(row_k, dim=-1)  # (n*K, row_k)
        cand = (scores.view(-1, 1) + row_top).view(n, K * row_k)
        top_scores, top_pos = cand.topk(min(2 * K, K * row_k), dim=-1)  # (n, 2K)
        beam_of, tok_of = top_pos // row_k, row_tok.view(n, K * row_k).gather(1, top_pos)
        is_eos = tok_of == EOS_ID
        length = t + 1
        done_sentences = []
        top_scores_l, beam_l, eos_l = top_scores.tolist(), beam_of.tolist(), is_eos.tolist()
        for j, sid in enumerate(active):
            for rank in range(K):  # EOS among the best K candidates: a finished hypothesis
                if eos_l[j][rank] and top_scores_l[j][rank] > float("-inf"):
                    r = j * K + beam_l[j][rank]
                    att = attn_hist[r].cpu() if attn_hist is not None else None
                    finished[sid].append((top_scores_l[j][rank] / _length_penalty(length, length_penalty),
                                          history[r].tolist(), top_scores_l[j][rank], att))
        # continuing beams: the best K candidates that are not EOS
        keep_key = top_scores.masked_fill(is_eos, float("-inf"))
        keep_scores, keep_pos = keep_key.topk(K, dim=-1)  # (n, K)
        keep_beam = beam_of.gather(1, keep_pos)
        keep_tok = tok_of.gather(1, keep_pos)
        src_rows = (torch.arange(n, device=device).unsqueeze(1) * K + keep_beam).view(-1)
        history, state, attn_hist = _select_rows(src_rows, history, state, attn_hist)
        history = torch.cat([history, keep_tok.view(-1, 1)], 1)
        scores = keep_scores
        for j, sid in enumerate(active):
            if len(finished[sid]) >= K:
                done_sentences.append(j)
            elif length >= limits[sid]:  # limit reached: the live beams end here, without EOS
                finished[sid] += _live_beams(keep_scores[j].tolist(), j * K, history, attn_hist, length, length_penalty)
                done_sentences.append(j)
        if done_sentences:
            keep = [j for j in range(n) if j not in set(done_sentences)]
            active = [active[j] for j in keep]
            if not active:
                break
            keep_t = torch.tensor(keep, device=device)
            keep_rows = (keep_t.unsqueeze(1) * K + torch.arange(K, device=device)).view(-1)
            scores, memory = scores.index_select(0, keep_t), memory.index_select(keep_rows)
            history, state, attn_hist = _select_rows(keep_rows, history, state, attn_hist)
        inp = history[:, -1:]
        t += 1
    return [_collect(finished[i], n_best, int(src_lengths[i])) for i in range(B)]


def _select_rows(rows: torch.Tensor, history: torch.Tensor, state: tuple, attn_hist: torch.Tensor | None):
    """Reorder or drop beam rows: the token history (R, t), the decoder state (tuples of
    (L, R, H)) and the attention history (R, t, S) if kept."""
    return (history.index_select(0, rows), tuple(s.index_select(1, rows) for s in state),
            attn_hist.index_select(0, rows) if attn_hist is not None else None)


def _live_beams(beam_scores: list[float], first_row: int, history, attn_hist, length: int, alpha: float) -> list:
    """A sentence's live beams (rows first_row..first_row+K-1) as finished entries, when it
    reaches its length limit without EOS."""
    out = []
    for k, sc in enumerate(beam_scores):
        if sc > float("-inf"):
            r = first_row + k
            att = attn_hist[r].cpu() if attn_hist is not None else None
            out.append((sc / _length_penalty(length, alpha), history[r].tolist(), sc, att))
    return out


def _collect(found, n_best: int, src_len: int) -> Hypothesis:
    ranked = sorted(found, key=lambda f: -f[0])[:max(n_best, 1)]
    hyps = [Hypothesis(tokens, raw, att[:, :src_len] if att is not None else None) for _, tokens, raw, att in ranked]
    best = hyps[0]
    best.n_best = hyps
    return best


def search(model, src, src_lengths, decode_cfg, return_attention: bool = False) -> list[Hypothesis]:
    """Greedy or beam search as `decode_cfg` (conf/decode/*) says."""
    cap = decode_cfg.max_output_len
    if decode_cfg.kind == "greedy":
        return greedy_search(model, src, src_lengths, decode_cfg.max_len_a, decode_cfg.max_len_b, return_attention, cap)
    return beam_search(model, src, src_lengths, decode_cfg.beam_size, decode_cfg.length_penalty, decode_cfg.n_best,
                       decode_cfg.max_len_a, decode_cfg.max_len_b, decode_cfg.no_repeat_ngram, return_attention, cap)


@torch.no_grad()
def sequence_logprob(model, src, src_lengths, hyp_tokens: list[list[int]], with_eos: list[bool]) -> list[float]:
    """Model log-probability of given outputs (the score search maximises, without length penalty)."""
    from torch.nn.utils.rnn import pad_sequence

    seqs = [torch.tensor([SOS_ID, *h] + ([EOS_ID] if e else []), dtype=torch.long) for h, e in zip(hyp_tokens, with_eos)]
    padded = pad_sequence(seqs, batch_first=True, padding_value=PAD_ID).to(src.device)
    logits = model(src, src_lengths, padded[:, :-1])
    logp = torch.log_softmax(logits.float(), -1).gather(-1, padded[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (logp * (padded[:, 1:] != PAD_ID)).sum(1).tolist()
