# %% [markdown]
# # 6. Attention
#
# Without attention the decoder starts from one vector that must hold the whole source
# sentence. With attention it looks back at every source word at every step, through weights
# that sum to 1 over the source: the heatmaps below show where it looks. The longer the
# sentence, the more the one vector has to hold, so the gap between the two grows with length.
#
# nmt's code: `nmt/model/attention.py` (Luong's attention), `nmt/model/decoder.py`,
# `nmt/analysis/plots.py` (`attention_figure`, what `nmt.translate plots.n_attention=K` draws).

# %%
import matplotlib.pyplot as plt
import numpy as np

from nmt import Translator
from nmt.analysis.plots import attention_figure
from nmt.analysis.scoring import score_corpus
from tutorial import prepare_slice, read_pairs, train_small, workdir

work = workdir("attention")
prepared = prepare_slice(work, n_train=10000, vocab="word")
models = {}
for kind in ("luong", "none"):
    run = train_small(prepared, work / kind, f"model.attention={kind}", "train.max_steps=450",
                      "train.validate_every=450", "train.lr=0.005")
    models[kind] = Translator.from_checkpoint(run, decode="greedy")

# %% [markdown]
# ## Where the decoder looks
#
# One row per output word (and the end of the sentence), one column per source word.

# %%
tr = models["luong"]
for german in ("Ein Mann fährt Fahrrad auf der Straße.", read_pairs("valid", 3)[2][0]):
    [t] = tr.translate_detailed([german], attention=True)
    print(german, "->", t.text)
    fig = attention_figure(t.attention, t.source_pieces, t.target_pieces + ["</s>"], t.text)
    plt.show()
    assert np.allclose(t.attention.sum(-1), 1.0, atol=1e-4)  # each row: a distribution over the source

# %% [markdown]
# ## BLEU by source length, with and without attention
#
# 1,014 val sentences in three groups by the number of German words.

# %%
val = read_pairs("valid")
groups = {"1-10": (1, 10), "11-15": (11, 15), "16+": (16, 999)}
bleu = {kind: {} for kind in models}
for kind, t in models.items():
    hyps = t.translate([de for de, _ in val])
    for name, (lo, hi) in groups.items():
        idx = [i for i, (de, _) in enumerate(val) if lo <= len(de.split()) <= hi]
        bleu[kind][name] = score_corpus([hyps[i] for i in idx], [[val[i][1] for i in idx]], ("bleu",))[0]["score"]
print({k: {g: round(b, 1) for g, b in v.items()} for k, v in bleu.items()})
x = np.arange(len(groups))
plt.bar(x - 0.2, list(bleu["luong"].values()), 0.4, label="attention (luong)", color="#4a78b5")
plt.bar(x + 0.2, list(bleu["none"].values()), 0.4, label="no attention", color="#c0392b")
plt.xticks(x, [f"{g} words" for g in groups])
plt.ylabel("val BLEU (greedy)")
plt.legend()
plt.show()
assert all(bleu["luong"][g] > bleu["none"][g] for g in groups)
