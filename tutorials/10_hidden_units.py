# %% [markdown]
# # 10. What a hidden unit learns
#
# Nobody tells a character-level language model what a word, a sentence or a quotation is;
# some of its hidden units come to track such things anyway, because tracking them helps predict
# the next character. Here: train the GRU language model, run it over real text, and for each
# feature (the position inside a word, the position inside the sentence, being inside quotes)
# find the unit whose activation follows it best; then draw one unit over the text, red where it
# is positive and blue where it is negative.
#
# nmt's code: the same cells as nmt's encoder and decoder (`nmt/model/encoder.py`); the language
# model is `tutorials/lm.py`.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from lm import CharLM, char_stream, train_lm
from tutorial import read_lines

torch.manual_seed(0)
lines = read_lines("train", "en")
vocab, stream = char_stream(lines[:12000])
lm = CharLM(vocab.size, hidden=128)
result = train_lm(lm, stream, steps=400, bptt=60)
print(f"trained: loss {sum(result['losses'][-20:]) / 20:.2f} per character")

# %% [markdown]
# ## Run it over real text and record every unit
#
# Val sentences, and training sentences with quotation marks (Multi30k has few: 139 of 29,000).

# %%
text_lines = read_lines("valid", "en", 150) + [l for l in lines if l.count('"') == 2][:60]
text = "".join(l + "\n" for l in text_lines)
ids = torch.tensor(vocab.encode_batch([text])[0])
with torch.no_grad():
    hidden, _ = lm.rnn(lm.embedding(ids[None]))
acts = hidden[0].numpy()  # (characters, 128): each unit's activation after each character
print("activations:", acts.shape)

# %% [markdown]
# ## Features of each character, and the unit that follows each best

# %%
in_word, in_line, in_quote = [], [], []
word_pos = line_pos = 0
quoted = False
for ch in text:
    word_pos = word_pos + 1 if ch.isalpha() else 0
    line_pos = 0 if ch == "\n" else line_pos + 1
    if ch == '"':
        quoted = not quoted
    quoted = quoted and ch != "\n"
    in_word.append(word_pos)
    in_line.append(line_pos)
    in_quote.append(float(quoted))
features = {"position inside the word": np.array(in_word, float),
            "position inside the sentence": np.array(in_line, float),
            "a full stop": np.array([float(ch == ".") for ch in text]),
            "inside quotes": np.array(in_quote)}

def correlations(feature):
    a = (acts - acts.mean(0)) / (acts.std(0) + 1e-8)
    f = (feature - feature.mean()) / (feature.std() + 1e-8)
    return a.T @ f / len(f)  # Pearson r of each unit with the feature

best = {}
for name, feature in features.items():
    r = correlations(feature)
    unit = int(np.abs(r).argmax())
    best[name] = (unit, float(r[unit]))
    print(f"{name:30s} unit {unit:3d}: r = {r[unit]:+.2f}")
assert abs(best["position inside the word"][1]) > 0.4

# %% [markdown]
# ## One unit over the text
#
# Three sentences with quotes, each character coloured by a unit's activation (red positive,
# blue negative): the unit that follows the position inside a word, the one that follows full
# stops, and the best "quote unit". A model this small, trained for seconds, learns words well
# and quotation marks hardly at all (they are rare in Multi30k); the famous quote-tracking units
# came from much larger models trained far longer on text full of quotes.

# %%
def draw(unit, snippet_lines, title):
    start = text.index(snippet_lines[0])
    snippet = "".join(l + "\n" for l in snippet_lines)
    values = acts[start:start + len(snippet), unit]
    fig, ax = plt.subplots(figsize=(12, 0.5 + 0.45 * len(snippet_lines)))
    ax.axis("off")
    row = col = 0
    scale = np.abs(values).max() + 1e-8
    for ch, v in zip(snippet, values):
        if ch == "\n":
            row, col = row + 1, 0
            continue
        ax.text(col * 0.0095, 0.8 - row * 0.3, ch, family="monospace", fontsize=10, transform=ax.transAxes,
                bbox=dict(facecolor=plt.cm.bwr(0.5 + 0.5 * v / scale), edgecolor="none", pad=1.2))
        col += 1
    ax.set_title(title, fontsize=10, loc="left")
    plt.show()

quoted_lines = [l for l in text_lines if '"' in l][:3]
for name in ("position inside the word", "a full stop", "inside quotes"):
    unit, r = best[name]
    draw(unit, quoted_lines, f"unit {unit}: r = {r:+.2f} with {name}")
