# %% [markdown]
# # 2. Batches: buckets, padding, the collate function, packing
#
# A batch is a rectangle: every sentence in it is padded to the longest one. Random batches mix
# short and long sentences and waste much of the rectangle on padding; **length-bucketed**
# batches put sentences of similar length together. The **collate function** turns a list of
# examples into tensors: sorted by source length, padded, with the decoder's input and output
# shifted by one. An RNN must not read the padding: **`pack_padded_sequence`** tells it where
# each sentence ends.
#
# nmt's code: `nmt/data/batching.py` (`bucket_batches`, `LengthBatchSampler`),
# `nmt/data/collate.py` (`collate`, `Batch`), `nmt/model/encoder.py` (packing).

# %%
import numpy as np
import matplotlib.pyplot as plt
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.data.batching import bucket_batches
from nmt.data.collate import ArrowPairs, collate
from nmt.data.store import load_prepared, split_table
from nmt.data.vocab import load_vocabs
from tutorial import prepare_slice, workdir

work = workdir("batches")
prepared = prepare_slice(work, n_train=6000, vocab="word")
data, _, _ = load_prepared(prepared)
table = split_table(data["train"])
src_len = np.array([len(s) for s in table.column("src_ids").to_pylist()])
tgt_len = np.array([len(t) - 1 for t in table.column("tgt_ids").to_pylist()])  # the decoder's input: SOS + y
print(f"{len(src_len)} training pairs, source length {src_len.min()}-{src_len.max()} words")

# %% [markdown]
# ## Random against bucketed batches: how much is padding?

# %%
def padding_share(batches):
    real = padded = 0
    for b in batches:
        real += src_len[b].sum() + tgt_len[b].sum()
        padded += len(b) * (src_len[b].max() + tgt_len[b].max())
    return 1 - real / padded

rng = np.random.default_rng(0)
order = rng.permutation(len(src_len))
random_batches = [order[i:i + 64] for i in range(0, len(order), 64)]
bucketed = bucket_batches(src_len, tgt_len, batch_size=64, bucket_width=1, rng=np.random.default_rng(0))
shares = {"random": padding_share(random_batches), "bucketed (nmt)": padding_share(bucketed)}
for name, share in shares.items():
    print(f"{name:15s} {100 * share:5.1f}% of the batch tensors is padding")
assert shares["bucketed (nmt)"] < shares["random"] / 3
plt.bar(list(shares), [100 * s for s in shares.values()], color=["#c0392b", "#4a78b5"])
plt.ylabel("% padding (source + target)")
plt.show()

# %% [markdown]
# ## The collate function on one real batch
#
# Four examples, as the `DataLoader` hands them to `collate`: sorted by source length
# (longest first, as packing wants), padded with PAD (id 0), `src_lengths` kept, and the target
# split into `tgt_in = SOS y` (what the decoder reads) and `tgt_out = y EOS` (what it predicts).

# %%
src_vocab, tgt_vocab = load_vocabs(prepared / "vocab")
pairs = ArrowPairs(data["train"])
batch = collate([pairs[i] for i in (5, 17, 2, 40)])
print("src (B, S):\n", batch.src)
print("src_lengths:", batch.src_lengths.tolist(), " corpus rows:", batch.indices.tolist())
print("tgt_in  row 0:", tgt_vocab.pieces(batch.tgt_in[0].tolist()))
print("tgt_out row 0:", tgt_vocab.pieces(batch.tgt_out[0].tolist()))
assert batch.src_lengths.tolist() == sorted(batch.src_lengths.tolist(), reverse=True)
n = int((batch.tgt_out[0] != 0).sum())  # row 0's target length, EOS included
assert torch.equal(batch.tgt_in[0, 1:n], batch.tgt_out[0, :n - 1])  # the same words, shifted by one

# %% [markdown]
# ## Packing: the RNN reads only the real tokens
#
# `pack_padded_sequence` lays the batch out time step by time step: `batch_sizes[t]` is how many
# sentences are still running at step t. The RNN then never reads a PAD, and the final hidden
# state of each sentence is the one after its own last word, not after the padding.

# %%
torch.set_grad_enabled(False)  # only looking: no gradients
emb = torch.nn.Embedding(src_vocab.size, 8, padding_idx=0)
rnn = torch.nn.GRU(8, 16, batch_first=True)
packed = pack_padded_sequence(emb(batch.src), batch.src_lengths, batch_first=True)
print("packed.data:", tuple(packed.data.shape), "= (real tokens, features);", int(batch.src_lengths.sum()), "real tokens")
print("packed.batch_sizes:", packed.batch_sizes.tolist())
out_packed, h_packed = rnn(packed)
out_padded, h_padded = rnn(emb(batch.src))  # the same GRU reading the padding too
last = batch.src_lengths - 1
out, _ = pad_packed_sequence(out_packed, batch_first=True)
print("final state = output at each sentence's last word:",
      torch.allclose(h_packed[0], out[torch.arange(4), last]))
print("without packing the shortest sentence's final state has read", int(batch.src.size(1) - batch.src_lengths[-1]),
      "PADs: it differs by", float((h_padded[0, -1] - h_packed[0, -1]).abs().max()))
assert torch.allclose(h_packed[0], out[torch.arange(4), last])
assert not torch.allclose(h_padded[0, -1], h_packed[0, -1])
