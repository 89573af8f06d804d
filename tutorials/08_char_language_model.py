# %% [markdown]
# # 8. A character-level language model
#
# A language model predicts the next character from the ones before. First the smallest one
# there is, on the word "hello": four characters, one-hot inputs, four steps of
# `h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)`, `y_t = W_hy h_t`, the same weights at every step;
# its loss; one step of backpropagation through time written out and checked against autograd.
# Then a GRU over the characters of Multi30k's English side (nmt's character vocabulary) that
# writes text by feeding each prediction back as its next input, and the same network reading
# a sentence to one answer: which language it is in (many-to-one).
#
# nmt's code: `nmt/data/vocab.py` (`TokenVocab`, `vocab=char`). The language model itself is
# `tutorials/lm.py`: nmt translates and has no language model, so it lives beside the notebooks.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from lm import CharLM, char_stream, generate, train_lm
from tutorial import read_lines

torch.manual_seed(0)

# %% [markdown]
# ## "hello", by hand
#
# Vocabulary h, e, l, o. Inputs h, e, l, l; targets e, l, l, o. Hidden size 3.

# %%
chars = ["h", "e", "l", "o"]
x_ids, y_ids = [0, 1, 2, 2], [1, 2, 2, 3]
X = torch.eye(4)[x_ids]  # one-hot inputs (4 steps, 4)
H = 3
W_xh = (torch.randn(H, 4) * 0.5).requires_grad_()
W_hh = (torch.randn(H, H) * 0.5).requires_grad_()
b = torch.zeros(H, requires_grad=True)
W_hy = (torch.randn(4, H) * 0.5).requires_grad_()

h = torch.zeros(H)
hs, ps, loss = [h], [], 0.0
for t in range(4):
    h = torch.tanh(W_hh @ h + W_xh @ X[t] + b)
    y = W_hy @ h
    p = torch.softmax(y, -1)
    loss = loss - torch.log(p[y_ids[t]])
    hs.append(h)
    ps.append(p)
    print(f"step {t}: input {chars[x_ids[t]]!r}  h = {[round(v, 3) for v in h.tolist()]}  "
          f"p(next) = {dict(zip(chars, [round(v, 2) for v in p.tolist()]))}  target {chars[y_ids[t]]!r}")
print(f"loss (summed cross-entropy) = {loss.item():.4f}")

# %% [markdown]
# ## One backpropagation through time, by hand
#
# Backwards from the last step: the output error `p - onehot(target)`, into the hidden state,
# through tanh (`1 - h^2`), into the weights; and into the previous hidden state through
# `W_hh`, which is why the same matrix multiplies the gradient once per step.

# %%
with torch.no_grad():
    dW_xh, dW_hh, db, dW_hy = torch.zeros_like(W_xh), torch.zeros_like(W_hh), torch.zeros_like(b), torch.zeros_like(W_hy)
    dh_next = torch.zeros(H)
    for t in reversed(range(4)):
        dy = ps[t].clone()
        dy[y_ids[t]] -= 1
        dW_hy += torch.outer(dy, hs[t + 1])
        dh = W_hy.T @ dy + dh_next
        draw = (1 - hs[t + 1] ** 2) * dh
        dW_xh += torch.outer(draw, X[t])
        dW_hh += torch.outer(draw, hs[t])
        db += draw
        dh_next = W_hh.T @ draw
loss.backward()
for name, mine, auto in (("W_xh", dW_xh, W_xh.grad), ("W_hh", dW_hh, W_hh.grad), ("b", db, b.grad), ("W_hy", dW_hy, W_hy.grad)):
    print(f"{name}: by hand equals autograd: {torch.allclose(mine, auto, atol=1e-6)}")
    assert torch.allclose(mine, auto, atol=1e-6)
with torch.no_grad():  # one update
    for w in (W_xh, W_hh, b, W_hy):
        w -= 0.5 * w.grad

# %% [markdown]
# ## A GRU over Multi30k's characters
#
# nmt's character vocabulary of the English training side, the lines as one stream of ids,
# 300 steps of truncated BPTT (chunks of 40 characters, 32 streams side by side).

# %%
lines = read_lines("train", "en", 12000)
vocab, stream = char_stream(lines)
print(f"{vocab.size} characters in the vocabulary, {len(stream):,} in the stream; most frequent: {vocab.itos[4:20]}")
lm = CharLM(vocab.size)
print("before training:", repr(generate(lm, vocab, "A man ", 50)))
result = train_lm(lm, stream, steps=300, bptt=40)
plt.plot(result["losses"])
plt.xlabel("step")
plt.ylabel("cross-entropy per character")
plt.show()
print(f"loss {result['losses'][0]:.2f} -> {sum(result['losses'][-20:]) / 20:.2f}")
assert sum(result["losses"][-20:]) / 20 < result["losses"][0] / 2

# %% [markdown]
# ## Writing: each prediction fed back as the next input
#
# Greedy (the most likely character every time) repeats itself; a temperature samples from the
# distribution, sharper below 1, wilder above.

# %%
for temperature in (0.0, 0.5, 1.0):
    print(f"temperature {temperature}:", repr(generate(lm, vocab, "A man ", 80, temperature)))

# %% [markdown]
# ## Many-to-one: which language is a sentence in?
#
# The same kind of network, reading a whole sentence and answering once from its last hidden
# state: German or English, on Multi30k sentences (the characters of both sides).

# %%
de, en = read_lines("train", "de", 3000), read_lines("train", "en", 3000)
both, _ = char_stream(de + en)

class LanguageOf(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embedding, self.rnn, self.out = nn.Embedding(vocab_size, 16), nn.GRU(16, 32, batch_first=True), nn.Linear(32, 2)

    def forward(self, ids, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.rnn(packed)
        return self.out(h[-1])  # (B, 2): one answer per sentence, from its last hidden state

def encode(sentences):
    ids = [torch.tensor(row) for row in both.encode_batch(sentences)]
    return nn.utils.rnn.pad_sequence(ids, batch_first=True), torch.tensor([len(i) for i in ids])

texts = de[:2500] + en[:2500]
labels = torch.tensor([0] * 2500 + [1] * 2500)
clf = LanguageOf(both.size)
opt = torch.optim.Adam(clf.parameters(), lr=0.01)
for step in range(150):
    idx = torch.randint(0, len(texts), (64,))
    ids, lengths = encode([texts[i] for i in idx])
    loss = nn.functional.cross_entropy(clf(ids, lengths), labels[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
with torch.no_grad():
    test_de, test_en = read_lines("valid", "de", 200), read_lines("valid", "en", 200)
    ids, lengths = encode(test_de + test_en)
    accuracy = float((clf(ids, lengths).argmax(-1) == torch.tensor([0] * 200 + [1] * 200)).float().mean())
print(f"val accuracy, German or English: {accuracy:.3f}")
assert accuracy > 0.9
