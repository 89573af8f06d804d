# %% [markdown]
# # 4. Backpropagation through time: vanishing and exploding gradients
#
# Training an RNN unrolls it over the sentence and backpropagates through every step. The
# gradient that reaches an early word has been multiplied by the recurrent weights (and the
# derivative of tanh) once per step in between: in a plain RNN it **vanishes** with distance;
# the LSTM's additive cell state and the GRU's update gate let it through. When those products
# are large instead, it **explodes**, and clipping the gradient's norm keeps training stable.
#
# nmt's code: `nmt/analysis/gradients.py` (`gradient_norms`, `gate_saturation`, the library
# behind `nmt.diagnose`), `nmt/training/trainer.py` (`train.clip_grad_norm`).

# %%
import matplotlib.pyplot as plt
import torch

from nmt import Translator
from nmt.analysis.gradients import gate_saturation, gradient_norms, same_length_sources
from nmt.data.collate import ArrowPairs, collate
from nmt.data.store import load_prepared
from nmt.model import build_model
from tutorial import config, prepare_slice, train_small, workdir

work = workdir("bptt")
prepared = prepare_slice(work, n_train=6000, vocab="word")
data, meta, _ = load_prepared(prepared)
pairs = ArrowPairs(data["train"])
length, rows = same_length_sources(data["train"], n=32, length=20)
batch = collate([pairs[i] for i in rows])  # 32 real sentences, all 20 words long
print(f"{len(rows)} sentences of {length} source words")

# %% [markdown]
# ## The gradient at each source position
#
# Three small encoder-decoders, one per cell, one-directional and **without attention** (the
# attention would give every word a short path to the output), trained 150 steps each. For each
# we backpropagate the loss of the reference translations and measure the gradient's norm at
# every source word's embedding.

# %%
norms, saturation = {}, {}
for cell in ("rnn", "lstm", "gru"):
    run = train_small(prepared, work / cell, f"model.cell={cell}", "model.attention=none", "model.bidirectional=false",
                      "train.max_steps=150", "train.val_bleu=false", "train.early_stopping_metric=loss",
                      "train.validate_every=150", "train.lr=0.005")
    model = Translator.from_checkpoint(run).model
    norms[cell] = gradient_norms(model, batch)
    if cell != "rnn":
        saturation[cell] = gate_saturation(model, batch)
for cell, n in norms.items():
    print(f"{cell:4s} first word / last word gradient: {n[0] / n[-1]:.3f}")
for cell, n in norms.items():
    plt.semilogy(range(1, length + 1), n, "o-", label=cell)
plt.xlabel("source position (the decoder starts from the last one)")
plt.ylabel("gradient norm at the word's embedding")
plt.legend()
plt.show()
assert norms["rnn"][0] / norms["rnn"][-1] < norms["lstm"][0] / norms["lstm"][-1]
print("gates saturated (below 0.05 or above 0.95):", saturation)

# %% [markdown]
# ## Exploding gradients: the recurrent weights, multiplied in at every step
#
# The same untrained plain RNN with its encoder's recurrent matrix `W_hh` scaled by 0.5, 1, 2
# and 4. Small: the gradient at the first word is nothing (vanishing); large: it is many times
# the last word's (exploding).

# %%
def plain_rnn(scale: float):
    torch.manual_seed(0)
    model = build_model(config("model.cell=rnn", "model.attention=none", "model.bidirectional=false",
                               "model.emb_dim=64", "model.hidden_dim=64").model,
                        meta.vocab.src_size, meta.vocab.tgt_size, 0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.startswith("encoder") and "weight_hh" in name:
                weight.mul_(scale)
    return model

ratios = {}
for scale in (0.5, 1.0, 2.0, 4.0):
    n = gradient_norms(plain_rnn(scale), batch)
    ratios[scale] = n[0] / n[-1]
    plt.semilogy(range(1, length + 1), n, "o-", label=f"W_hh x {scale:g}")
plt.xlabel("source position")
plt.ylabel("gradient norm at the word's embedding")
plt.legend()
plt.show()
print({f"x{k:g}": f"{v:.2g}" for k, v in ratios.items()})
assert ratios[0.5] < 1e-3 < 1 < ratios[4.0]

# %% [markdown]
# ## Clipping: one step with an exploding gradient
#
# One SGD step (learning rate 1) on that batch with the x4 model, with the full gradient and
# with its norm clipped to 1 (`train.clip_grad_norm=1.0`, nmt's default), then the loss on 64
# other sentences. The full step throws the weights far along one batch's direction; the
# clipped one moves them by at most the learning rate.

# %%
held_out = collate([pairs[i] for i in range(3000, 3064)])

def loss_on(model, b):
    with torch.no_grad():
        return float(model.loss(model(b.src, b.src_lengths, b.tgt_in), b.tgt_out) / b.n_tokens)

after = {}
for clip in (None, 1.0):
    model = plain_rnn(4.0).eval()
    before = loss_on(model, held_out)
    loss = model.loss(model(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out) / batch.n_tokens
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip or float("inf"))
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    after[clip] = loss_on(model, held_out)
    print(f"{'clipped to 1' if clip else 'not clipped':13s} gradient norm {float(norm):5.1f}; held-out loss "
          f"{before:.2f} -> {after[clip]:.2f}")
assert after[1.0] < after[None]
plt.bar(["before", "full step", "clipped step"], [before, after[None], after[1.0]], color=["#999", "#c0392b", "#4a78b5"])
plt.ylabel("held-out loss per token")
plt.show()
