# %% [markdown]
# # 7. Search: greedy and beam, step by step
#
# A trained decoder gives a probability for every next word. **Greedy** search takes the best
# word at every step; **beam search** keeps the `K` best partial translations (by the sum of
# their log-probabilities) and can recover from a first word that looked best but leads nowhere.
# Longer outputs collect more negative log-probabilities, so beam search favours short ones
# unless a **length penalty** divides the score by `((5 + length) / 6) ** alpha`. The `K`
# finished hypotheses are the **n-best list**.
#
# nmt's code: `nmt/inference/search.py` (`greedy_search`, `beam_search`), `nmt/inference/translator.py`.

# %%
import matplotlib.pyplot as plt
import torch

from nmt import Translator
from nmt.analysis.scoring import score_corpus
from nmt.data.vocab import EOS_ID, SOS_ID
from nmt.inference.search import beam_search, greedy_search
from tutorial import prepare_slice, read_pairs, train_small, workdir

torch.manual_seed(0)
work = workdir("decoding")
prepared = prepare_slice(work, n_train=10000, vocab="word")
run = train_small(prepared, work / "gru", "train.max_steps=600", "train.validate_every=600", "train.lr=0.005")
tr = Translator.from_checkpoint(run, decode="greedy")
model, src_vocab, tgt_vocab = tr.model.eval(), tr.src_vocab, tr.tgt_vocab
# a short val sentence whose words the (word) vocabulary all knows
german, english = next((de, en) for de, en in read_pairs("valid") if len(de.split()) <= 9
                       and 1 not in src_vocab.encode_batch([de])[0] and 1 not in tgt_vocab.encode_batch([en])[0])
src = torch.tensor([src_vocab.encode_batch([german])[0]])
lengths = torch.tensor([src.size(1)])
print(german, "|", english)

# %% [markdown]
# ## Greedy, one step at a time: the three best next words and the one taken

# %%
torch.set_grad_enabled(False)
memory, state = model.encode(src, lengths)
inp, out, total = torch.tensor([[SOS_ID]]), [], 0.0
for step in range(25):
    logits, state, _ = model.predict_next(inp, state, memory)
    logp = torch.log_softmax(logits[0, -1], -1)
    top = logp.topk(3)
    print(f"step {step:2d}: " + "   ".join(f"{tgt_vocab.pieces([int(i)])[0]:>10s} {float(v):6.2f}" for v, i in zip(*top)))
    token = int(top.indices[0])
    total += float(top.values[0])
    if token == EOS_ID:
        break
    out.append(token)
    inp = torch.tensor([[token]])
greedy = greedy_search(model, src, lengths)[0]
assert greedy.tokens == out and abs(greedy.score - total) < 1e-3  # what nmt's greedy_search finds
print("greedy:", tgt_vocab.to_text(out), f"(log-probability {total:.2f})")

# %% [markdown]
# ## Beam search by hand (K = 3), checked against nmt's `beam_search`
#
# Each step extends every live hypothesis by every word, keeps the `2K` best candidates, moves
# those ending in EOS among the best `K` to the finished list, and continues with the `K` best
# others. It stops when `K` hypotheses have finished.

# %%
K, alpha = 3, 0.0
memory, state = model.encode(src, lengths)
memory, state = memory.index_select(torch.zeros(K, dtype=torch.long)), tuple(s.repeat(1, K, 1) for s in state)
beams = [([], 0.0)] + [([], float("-inf"))] * (K - 1)  # (tokens, log-probability)
finished = []
limit = int(1.5 * src.size(1) + 10)
for step in range(limit):
    inp = torch.tensor([[b[0][-1] if b[0] else SOS_ID] for b in beams])
    logits, state, _ = model.predict_next(inp, state, memory)
    logp = torch.log_softmax(logits[:, -1].float(), -1)
    cand = (torch.tensor([b[1] for b in beams])[:, None] + logp).view(-1)
    scores, idx = cand.topk(2 * K)
    V = logp.size(-1)
    for rank in range(K):
        if int(idx[rank]) % V == EOS_ID and float(scores[rank]) > float("-inf"):
            tokens = beams[int(idx[rank]) // V][0]
            finished.append((tokens, float(scores[rank])))
    keep = [(int(i) // V, int(i) % V, float(s)) for s, i in zip(scores, idx) if int(i) % V != EOS_ID][:K]
    state = tuple(s[:, [k for k, _, _ in keep]] for s in state)
    beams = [(beams[k][0] + [tok], sc) for k, tok, sc in keep]
    print(f"step {step:2d}: " + " | ".join(f"{tgt_vocab.to_text(t)[-30:]:>30s} {s:6.2f}" for t, s in beams))
    if len(finished) >= K:
        break
best_tokens, best_score = max(finished, key=lambda f: f[1])
nmt_beam = beam_search(model, src, lengths, beam_size=K, length_penalty=alpha, n_best=K)[0]
print("\nbeam (by hand):", tgt_vocab.to_text(best_tokens), f"{best_score:.2f}")
print("beam (nmt):    ", tgt_vocab.to_text(nmt_beam.tokens), f"{nmt_beam.score:.2f}")
assert best_tokens == nmt_beam.tokens and abs(best_score - nmt_beam.score) < 1e-3
print("n-best:", [(tgt_vocab.to_text(h.tokens), round(h.score, 2)) for h in nmt_beam.n_best])

# %% [markdown]
# ## Beam search finds translations the model likes more, and BLEU follows
#
# Over 300 val sentences: the log-probability the model gives its own output, greedy against
# beam 5, and BLEU for each length penalty.

# %%
val = read_pairs("valid", 300)
sources = [s for s, _ in val]
refs = [[t for _, t in val]]
ids = tr.encode(sources)[0]
found = {"greedy": tr.translate_ids(ids, tr.options), "beam 5": tr.translate_ids(ids, tr.options.__class__(
    kind="beam", beam_size=5, length_penalty=1.0))}
mean_logp = {k: sum(h.score for h in v) / len(v) for k, v in found.items()}
print({k: round(v, 2) for k, v in mean_logp.items()})
assert mean_logp["beam 5"] > mean_logp["greedy"]
bleu, length = {}, {}
for a in (0.0, 0.6, 1.0, 2.0):
    hyps = tr.translate(sources, kind="beam", beam_size=5, length_penalty=a)
    bleu[a] = score_corpus(hyps, refs, ("bleu",))[0]["score"]
    length[a] = sum(len(h.split()) for h in hyps) / len(hyps)
greedy_bleu = score_corpus(tr.translate(sources), refs, ("bleu",))[0]["score"]
print(f"greedy BLEU {greedy_bleu:.2f};", {a: round(b, 2) for a, b in bleu.items()})
fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
ax[0].bar([str(a) for a in bleu], list(bleu.values()), color="#4a78b5")
ax[0].axhline(greedy_bleu, color="#c0392b", label="greedy")
ax[0].set_xlabel("length penalty alpha (beam 5)"), ax[0].set_ylabel("val BLEU"), ax[0].legend()
ax[1].plot(list(length), list(length.values()), "o-")
ax[1].set_xlabel("length penalty alpha"), ax[1].set_ylabel("words per translation")
plt.tight_layout()
plt.show()
assert length[2.0] >= length[0.0]  # a stronger penalty on short outputs gives longer ones
