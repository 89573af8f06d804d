# %% [markdown]
# # 9. Truncated backpropagation through time
#
# A language model reads one long stream of text. Backpropagating through all of it at once
# would keep every step's activations in memory; **truncated BPTT** cuts the stream into chunks
# of `k` characters, backpropagates within each chunk only, and carries the hidden state from
# one chunk to the next, **detached**: the model still reads the whole past forwards, but the
# gradient reaches at most `k` steps back. Here `k` = 5, 20 and 80 on the same stream.
#
# nmt's code: nmt translates sentence pairs, whose batches are whole sentences (full BPTT within a
# sentence, `nmt/training/trainer.py`); the language model and its training loop are
# `tutorials/lm.py` (`train_lm`).

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from lm import CharLM, batches_of_stream, char_stream, train_lm
from tutorial import read_lines

lines = read_lines("train", "en", 12000)
vocab, stream = char_stream(lines)
_, held_out = char_stream(read_lines("valid", "en", 300), vocab)
print(f"training stream: {len(stream):,} characters; held-out stream: {len(held_out):,}")

# %% [markdown]
# ## Why detach?
#
# Without `detach()` the carried state still belongs to the previous chunk's graph, which the
# previous `backward()` has already freed: the second backward fails (and if the graph were kept,
# each step would backpropagate through the whole stream read so far).

# %%
torch.manual_seed(0)
lm = CharLM(vocab.size, hidden=32)
data = batches_of_stream(stream, 4)
state = None
try:
    for pos in (0, 10):
        logits, state = lm(data[:, pos:pos + 10], state)  # state not detached
        nn.functional.cross_entropy(logits.reshape(-1, vocab.size), data[:, pos + 1:pos + 11].reshape(-1)).backward()
    raise AssertionError("the second backward should have failed")
except RuntimeError as err:
    print("without detach:", str(err).split(".")[0])

# %% [markdown]
# ## Three truncation lengths, 200 updates each

# %%
runs = {}
for k in (5, 20, 80):
    torch.manual_seed(0)
    lm = CharLM(vocab.size, hidden=96)
    runs[k] = (lm, train_lm(lm, stream, steps=200, bptt=k))
    r = runs[k][1]
    print(f"k={k:2d}: {1000 * r['seconds_per_step']:6.1f} ms a step, {r['saved_bytes_per_step'] / 1e6:6.2f} MB kept "
          f"for backward, loss of the last 20 steps {sum(r['losses'][-20:]) / 20:.3f}")
fig, ax = plt.subplots(1, 3, figsize=(13, 3.2))
for k, (_, r) in runs.items():
    ax[0].plot(r["losses"], label=f"k = {k}")
ax[0].set_xlabel("update"), ax[0].set_ylabel("training loss per character"), ax[0].legend()
ax[1].bar([str(k) for k in runs], [1000 * r["seconds_per_step"] for _, r in runs.values()], color="#4a78b5")
ax[1].set_xlabel("truncation k"), ax[1].set_ylabel("ms per update")
ax[2].bar([str(k) for k in runs], [r["saved_bytes_per_step"] / 1e6 for _, r in runs.values()], color="#c0392b")
ax[2].set_xlabel("truncation k"), ax[2].set_ylabel("MB of activations kept for backward")
plt.tight_layout()
plt.show()
saved = {k: r["saved_bytes_per_step"] for k, (_, r) in runs.items()}
assert saved[5] < saved[20] < saved[80]  # memory grows with the steps kept for backward

# %% [markdown]
# ## Reading held-out text, the state carried through all of it
#
# Each model reads the val stream from start to end (no truncation needed without gradients).
# A longer `k` saw more characters per update and learnt from longer spans.

# %%
held = {}
with torch.no_grad():
    for k, (lm, _) in runs.items():
        logits, _ = lm(held_out[None, :-1])
        held[k] = float(nn.functional.cross_entropy(logits[0], held_out[1:]))
print({f"k={k}": round(v, 3) for k, v in held.items()})
plt.bar([f"k = {k}" for k in held], list(held.values()), color="#4a78b5")
plt.ylabel("held-out loss per character")
plt.show()
assert held[80] < held[5]
