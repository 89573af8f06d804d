# %% [markdown]
# # 11. Embeddings: one-hot against learned vectors
#
# A one-hot vector has one 1 per word: as long as the vocabulary, and every two words equally
# far apart. An embedding is a short dense vector learned so that words used alike lie close.
# Here: the two side by side, a small **skip-gram** model (predict the words around a word)
# trained on Multi30k's English side, the nearest neighbours it finds, the nearest neighbours
# in the source embeddings of a translation model trained by nmt, and the shapes a
# bidirectional two-layer GRU gives on a packed batch of embedded words.
#
# nmt's code: `nmt/model/seq2seq.py` and `nmt/model/encoder.py` (`nn.Embedding` feeding the
# encoder's GRU), `nmt/data/collate.py`. The skip-gram model is written here: nmt has none.

# %%
from collections import Counter

import matplotlib.pyplot as plt
import torch
from torch import nn

from nmt import Translator
from nmt.data.collate import ArrowPairs, collate
from nmt.data.store import load_prepared
from nmt.data.vocab import TokenVocab, tokenize_words
from tutorial import prepare_slice, read_lines, train_small, workdir

torch.manual_seed(0)
lines = read_lines("train", "en", 20000)
vocab = TokenVocab.build("word", Counter(w.lower() for l in lines for w in tokenize_words(l)), min_freq=5)
print(f"{vocab.size} words")

# %% [markdown]
# ## One-hot: long, and every word equally unlike every other

# %%
one_hot = torch.eye(vocab.size)
dog, cat, car = (vocab.stoi[w] for w in ("dog", "cat", "car"))
cos = nn.functional.cosine_similarity
print(f"one-hot: {vocab.size} numbers a word; cos(dog, cat) = {float(cos(one_hot[dog], one_hot[cat], 0)):.1f}, "
      f"cos(dog, car) = {float(cos(one_hot[dog], one_hot[car], 0)):.1f}")

# %% [markdown]
# ## Skip-gram with negative sampling, trained here
#
# For each word, its neighbours within 2 positions are positive examples; 5 random words are
# negative ones. The model scores a pair by the dot product of the two words' vectors.

# %%
ids = [[vocab.stoi.get(w.lower(), 1) for w in tokenize_words(l)] for l in lines]
centers, contexts = [], []
for row in ids:
    for i, c in enumerate(row):
        for j in range(max(0, i - 2), min(len(row), i + 3)):
            if j != i and c > 3 and row[j] > 3:
                centers.append(c)
                contexts.append(row[j])
centers, contexts = torch.tensor(centers), torch.tensor(contexts)
counts = torch.bincount(centers, minlength=vocab.size).float() ** 0.75  # word2vec's noise distribution
D = 48
w_in, w_out = nn.Embedding(vocab.size, D), nn.Embedding(vocab.size, D)
nn.init.uniform_(w_in.weight, -0.5 / D, 0.5 / D)
nn.init.zeros_(w_out.weight)
opt = torch.optim.Adam(list(w_in.parameters()) + list(w_out.parameters()), lr=0.01)
losses = []
for step in range(600):
    idx = torch.randint(0, len(centers), (1024,))
    c, pos = w_in(centers[idx]), w_out(contexts[idx])
    neg = w_out(torch.multinomial(counts, 1024 * 5, replacement=True).view(1024, 5))
    loss = -(nn.functional.logsigmoid((c * pos).sum(-1)).mean()
             + nn.functional.logsigmoid(-(neg @ c[:, :, None]).squeeze(-1)).sum(-1).mean())
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
plt.plot(losses)
plt.xlabel("step")
plt.ylabel("skip-gram loss")
plt.show()

def neighbours(matrix, stoi, itos, word, k=5, among=1000):
    """The k words nearest `word` by cosine, among the `among` most frequent (the vocabulary is
    sorted by frequency: a rare word's vector has barely moved from its random start)."""
    v = nn.functional.normalize(matrix[:among], dim=-1)
    sims = v @ nn.functional.normalize(matrix[stoi[word]], dim=0)
    sims[:4] = -2  # not the special tokens
    return [itos[int(i)] for i in sims.topk(k + 1).indices if itos[int(i)] != word][:k]

E = w_in.weight.detach()
for word in ("dog", "red", "playing", "woman", "water"):
    print(f"{word:8s} -> {neighbours(E, vocab.stoi, vocab.itos, word)}")
print(f"learned: cos(dog, cat) = {float(cos(E[dog], E[cat], 0)):.2f}, cos(dog, car) = {float(cos(E[dog], E[car], 0)):.2f}")
colours = {"red", "blue", "green", "black", "white", "yellow", "orange", "pink", "purple", "brown"}
assert len(colours & set(neighbours(E, vocab.stoi, vocab.itos, "red"))) >= 2

# %% [markdown]
# ## The source embeddings of a translation model
#
# A small German->English GRU trained by nmt (800 steps): its source embeddings were learned only
# to translate, and still put alike German words together, among the 300 most frequent.

# %%
work = workdir("embeddings")
prepared = prepare_slice(work, n_train=10000, vocab="word")
tr = Translator.from_checkpoint(train_small(prepared, work / "gru", "train.max_steps=800", "train.validate_every=800",
                                            "train.lr=0.005"))
src_emb = tr.model.src_embedding.weight.detach()
for word in ("Hund", "rot", "spielt", "Frau"):
    print(f"{word:8s} -> {neighbours(src_emb, tr.src_vocab.stoi, tr.src_vocab.itos, word, among=300)}")

# %% [markdown]
# ## nn.Embedding feeding a bidirectional two-layer GRU on a packed batch
#
# `output` holds every position's top-layer states of both directions; `h_n` each layer's and
# direction's final state: `(layers * directions, batch, hidden)`.

# %%
data, _, _ = load_prepared(prepared)
batch = collate([ArrowPairs(data["train"])[i] for i in range(5)])
emb = nn.Embedding(tr.src_vocab.size, 16, padding_idx=0)
gru = nn.GRU(16, 32, num_layers=2, bidirectional=True, batch_first=True)
packed = nn.utils.rnn.pack_padded_sequence(emb(batch.src), batch.src_lengths, batch_first=True)
out_packed, h_n = gru(packed)
output, lengths = nn.utils.rnn.pad_packed_sequence(out_packed, batch_first=True)
print("src ids      ", tuple(batch.src.shape), "(batch, time)")
print("embedded     ", tuple(emb(batch.src).shape), "(batch, time, 16)")
print("packed.data  ", tuple(packed.data.shape), "(real tokens in the batch, 16)")
print("output       ", tuple(output.shape), "(batch, time, 2 directions x 32)")
print("h_n          ", tuple(h_n.shape), "(2 layers x 2 directions, batch, 32)")
# h_n[-2] is the top layer's forward final state: the output at each sentence's last real word;
# h_n[-1] the backward one: the output at the first word, second half
last = lengths - 1
assert torch.allclose(h_n[-2], output[torch.arange(5), last, :32], atol=1e-6)
assert torch.allclose(h_n[-1], output[:, 0, 32:], atol=1e-6)
