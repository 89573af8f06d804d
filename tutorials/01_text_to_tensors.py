# %% [markdown]
# # 1. Text to tensors
#
# A neural network reads numbers, not words. This notebook follows real Multi30k sentences
# through nmt's `prepare` stage: a **word vocabulary** (`word2idx`) built with a minimum
# frequency, **UNK** for words it does not hold, **SOS/EOS** around each target, the length
# limits and what they drop, then the same sentences in **SentencePiece** pieces, and how often each
# vocabulary meets an unknown word on val.
#
# nmt's code: `nmt/data/vocab.py` (the vocabularies), `nmt/data/prepare.py` (the stage),
# `nmt/data/corpus.py` (cleaning and the length filter).

# %%
from collections import Counter

import matplotlib.pyplot as plt

from nmt.data.store import load_prepared, split_table
from nmt.data.vocab import EOS_ID, PAD_ID, SOS_ID, SPECIAL_TOKENS, UNK_ID, TokenVocab, load_vocabs, tokenize_words
from tutorial import prepare_slice, read_pairs, workdir

work = workdir("text")
pairs = read_pairs("train", 6000)
german, english = pairs[0]
print(german)
print(english)

# %% [markdown]
# ## A word vocabulary with a minimum frequency
#
# Count every word of the training side, keep those seen at least `min_freq` times, most
# frequent first. The first ids are reserved for the special tokens.

# %%
counts = Counter(w for de, _ in pairs for w in tokenize_words(de))
for min_freq in (1, 2, 5):
    v = TokenVocab.build("word", counts, min_freq=min_freq)
    print(f"min_freq={min_freq}: {v.size:5d} entries; the first ones: {v.itos[:8]}")
print("special tokens and their ids:", dict(zip(SPECIAL_TOKENS, (PAD_ID, UNK_ID, SOS_ID, EOS_ID))))

vocab = TokenVocab.build("word", counts, min_freq=2)
word2idx = vocab.stoi
print({w: word2idx.get(w, UNK_ID) for w in tokenize_words(german)})

# %% [markdown]
# A word seen once in training is not in the `min_freq=2` vocabulary: it becomes **UNK** (id 1).

# %%
rare = next(w for w, c in counts.items() if c == 1)
sentence = f"Ein Hund und ein {rare}"
ids = vocab.encode_batch([sentence])[0]
print(sentence, "->", ids, "->", vocab.pieces(ids))
assert UNK_ID in ids

# %% [markdown]
# ## The prepare stage: ids with SOS/EOS, max_len
#
# `nmt.prepare` does all of this on the corpus and stores the ids as Arrow. The target side is
# stored as `SOS ... EOS`, so that the decoder can read `SOS y1 y2` and learn to predict `y1 y2 EOS`.

# %%
prepared = prepare_slice(work, n_train=6000, vocab="word")
data, meta, _ = load_prepared(prepared)
src_vocab, tgt_vocab = load_vocabs(prepared / "vocab")
row = split_table(data["train"]).slice(0, 1).to_pylist()[0]
print("source ids:", row["src_ids"])
print("target ids:", row["tgt_ids"])
print("target pieces:", tgt_vocab.pieces(row["tgt_ids"]))
print(f"vocab sizes: source {src_vocab.size}, target {tgt_vocab.size}")

# %% [markdown]
# Two length limits: `preprocess.max_words` (default 100) drops a *training* pair whose longer
# side has more words than that (val and test keep every pair: a score must cover them all),
# and `preprocess.max_len` (default 128) cuts any sentence's ids to that many. How many training
# pairs would a tighter word limit drop?

# %%
lengths = [max(len(de.split()), len(en.split())) for de, en in pairs]
for max_words in (10, 15, 20, 30, 50):
    dropped = sum(n > max_words for n in lengths)
    print(f"max_words={max_words:3d}: drops {dropped:5d} of {len(lengths)} pairs ({100 * dropped / len(lengths):.1f}%)")
plt.hist(lengths, bins=range(0, 45), color="#4a78b5")
plt.xlabel("words in the longer side of a pair")
plt.ylabel("pairs")
plt.title("Multi30k training pairs by length")
plt.show()

# %% [markdown]
# ## The same sentences in SentencePiece pieces
#
# A subword vocabulary splits rare words into frequent pieces, so almost nothing is unknown.

# %%
spm_prepared = prepare_slice(work, 6000, 300, "spm", "vocab.vocab_size=2000")
spm_src, _ = load_vocabs(spm_prepared / "vocab")
for text in (german, sentence):
    print(spm_src.pieces(spm_src.encode_batch([text])[0]))

# %% [markdown]
# ## How often is a val word unknown?

# %%
val_german = [de for de, _ in read_pairs("valid")]
def unk_rate(v):
    ids = [i for row in v.encode_batch(val_german) for i in row]
    return 100 * sum(i == UNK_ID for i in ids) / len(ids)

rates = {"word, min_freq=2": unk_rate(src_vocab), "SentencePiece (2k)": unk_rate(spm_src)}
for name, rate in rates.items():
    print(f"{name:20s} UNK rate on val: {rate:.2f}% of the tokens")
assert rates["SentencePiece (2k)"] < rates["word, min_freq=2"]
plt.bar(list(rates), list(rates.values()), color=["#c0392b", "#4a78b5"])
plt.ylabel("% of val source tokens that are UNK")
plt.show()
