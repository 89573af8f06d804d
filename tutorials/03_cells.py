# %% [markdown]
# # 3. Inside the cells: RNN, LSTM, GRU
#
# One step of each recurrent cell, written in a few lines of torch from its equations, then
# checked equal to `nn.RNN`, `nn.LSTM` and `nn.GRU` on the same weights. Then the shapes of a
# real batch through nmt's encoder, and what "many-to-one" and "many-to-many" read off it.
#
# nmt's code: `nmt/model/encoder.py` (`Encoder`: a bidirectional GRU by default, `Bridge`),
# `nmt/model/decoder.py` (the decoder's cell, one step at a time).

# %%
import torch
from torch import nn

from nmt.data.collate import ArrowPairs, collate
from nmt.data.store import load_prepared
from nmt.model.encoder import Encoder
from tutorial import prepare_slice, workdir

torch.manual_seed(0)
torch.set_grad_enabled(False)
B, E, H = 3, 5, 4  # batch, input size, hidden size
x = torch.randn(B, E)  # one time step's input
h = torch.randn(B, H)  # the previous hidden state

# %% [markdown]
# ## Elman RNN: $h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})$
#
# The same weights at every step: that is what makes it recurrent.

# %%
rnn = nn.RNN(E, H, batch_first=True)
W_ih, W_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
h_by_hand = torch.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
_, h_torch = rnn(x[:, None, :], h[None])
print(h_by_hand)
assert torch.allclose(h_by_hand, h_torch[0], atol=1e-6)

# %% [markdown]
# ## LSTM: three gates and a cell state
#
# input gate $i$, forget gate $f$, candidate $g$, output gate $o$ (torch stacks them in that
# order in one weight matrix); the cell state $c$ is carried by addition, which is what lets
# gradients survive many steps:
# $c_t = f \odot c_{t-1} + i \odot g$, $h_t = o \odot \tanh(c_t)$.

# %%
lstm = nn.LSTM(E, H, batch_first=True)
c = torch.randn(B, H)
gates = x @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
i, f, g, o = gates.chunk(4, dim=1)
i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
c_by_hand = f * c + i * g
h_by_hand = o * torch.tanh(c_by_hand)
_, (h_torch, c_torch) = lstm(x[:, None, :], (h[None], c[None]))
print("forget gate of the first sentence:", f[0])
assert torch.allclose(h_by_hand, h_torch[0], atol=1e-6) and torch.allclose(c_by_hand, c_torch[0], atol=1e-6)

# %% [markdown]
# ## GRU: a reset gate and an update gate
#
# reset $r$ decides how much of the past feeds the candidate $n$; update $z$ mixes the old state
# and the candidate: $h_t = (1 - z) \odot n + z \odot h_{t-1}$ (torch's order: r, z, n).

# %%
gru = nn.GRU(E, H, batch_first=True)
gi = x @ gru.weight_ih_l0.T + gru.bias_ih_l0
gh = h @ gru.weight_hh_l0.T + gru.bias_hh_l0
i_r, i_z, i_n = gi.chunk(3, dim=1)
h_r, h_z, h_n = gh.chunk(3, dim=1)
r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
n = torch.tanh(i_n + r * h_n)
h_by_hand = (1 - z) * n + z * h
_, h_torch = gru(x[:, None, :], h[None])
assert torch.allclose(h_by_hand, h_torch[0], atol=1e-6)
print("all three hand-written steps equal torch's modules")

# %% [markdown]
# ## Parameters: what each cell costs
#
# For the same sizes the LSTM has 4 weight blocks, the GRU 3, the plain RNN 1.

# %%
for name, module in (("RNN", rnn), ("GRU", gru), ("LSTM", lstm)):
    print(f"{name:4s} {sum(p.numel() for p in module.parameters()):4d} parameters")

# %% [markdown]
# ## A real batch through nmt's encoder: (batch, time, hidden)

# %%
work = workdir("cells")
prepared = prepare_slice(work, n_train=2000, vocab="word")
data, meta, _ = load_prepared(prepared)
batch = collate([ArrowPairs(data["train"])[i] for i in range(4)])
encoder = Encoder("gru", nn.Embedding(meta.vocab.src_size, 16, padding_idx=0), hidden_dim=32, num_layers=2,
                  bidirectional=True, dropout=0.0, emb_dropout=0.0).eval()
outputs, (final,) = encoder(batch.src, batch.src_lengths)
print("src:        ", tuple(batch.src.shape), "(B, S) word ids")
print("outputs:    ", tuple(outputs.shape), "(B, S, 2 directions x 32): one vector per source word: many-to-many")
print("final state:", tuple(final.shape), "(2 layers x 2 directions, B, 32): one vector per sentence: many-to-one")
assert outputs.shape == (4, batch.src.size(1), 64) and final.shape == (4, 4, 32)
# the forward direction's last output is the top layer's forward final state, at each sentence's own end
last = batch.src_lengths - 1
assert torch.allclose(outputs[torch.arange(4), last, :32], final[2], atol=1e-5)
# padding positions are zero: the attention never sees them
assert float(outputs[-1, batch.src_lengths[-1]:].abs().sum()) == 0.0

# %% [markdown]
# **Many-to-one** (a sentence classifier, the encoder's summary for the decoder's first state)
# reads `final`; **many-to-many** (tagging, the attention's memory) reads `outputs`. nmt's
# `Bridge` turns the top layer's final states into the decoder's first state; its attention
# reads all of `outputs`.
