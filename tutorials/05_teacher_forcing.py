# %% [markdown]
# # 5. Teacher forcing and exposure bias
#
# While training, the decoder's input at step t can be the reference word (**teacher
# forcing**) or its own previous prediction. Teacher forcing trains fast and stably, but at
# translation time the decoder only ever reads its own words: a mistake it never learnt to
# recover from leads to more (**exposure bias**). nmt's `train.teacher_forcing` is the
# probability of feeding the reference word (RNN models).
#
# nmt's code: `nmt/model/decoder.py` (the teacher-forcing mix), `nmt/training/optim.py`
# (`teacher_forcing_ratio`, its schedule), `nmt/inference/search.py` (free-running decoding).

# %%
import json

import matplotlib.pyplot as plt
import torch

from nmt import Translator
from nmt.data.collate import ArrowPairs, collate
from nmt.data.store import load_prepared
from nmt.inference.search import greedy_search
from tutorial import prepare_slice, train_small, workdir

work = workdir("teacher")
prepared = prepare_slice(work, n_train=6000, vocab="word")
data, _, _ = load_prepared(prepared)

# %% [markdown]
# ## The same model, the same 240 steps, three teacher-forcing ratios

# %%
runs, curves = {}, {}
for ratio in (1.0, 0.5, 0.0):
    runs[ratio] = train_small(prepared, work / f"tf{ratio}", f"train.teacher_forcing={ratio}", "train.max_steps=240",
                              "train.log_every=20", "train.validate_every=240", "train.lr=0.005")
    records = [json.loads(line) for line in (runs[ratio] / "metrics.jsonl").read_text().splitlines()]
    curves[ratio] = [(r["step"], r["loss"]) for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "valid"][-1]
    print(f"teacher forcing {ratio}: val loss {val['loss']:.2f}, val greedy BLEU {val['bleu']:.2f}")
for ratio, points in curves.items():
    plt.plot(*zip(*points), label=f"teacher forcing {ratio}")
plt.xlabel("step")
plt.ylabel("training loss per token")
plt.legend()
plt.show()

# %% [markdown]
# ## Exposure bias: the model fed its own words
#
# For the fully teacher-forced model, the share of reference words predicted right at each
# target position, when the decoder reads the reference (teacher-forced, as in training) and
# when it reads its own greedy output (free-running, as in translation). An early mistake
# shifts everything after it, so free-running accuracy falls off with position.

# %%
torch.set_grad_enabled(False)
model = Translator.from_checkpoint(runs[1.0]).model.eval()
pairs = ArrowPairs(data["valid"])
batch = collate([pairs[i] for i in range(300)])
forced = model(batch.src, batch.src_lengths, batch.tgt_in).argmax(-1)  # (B, T): reads the reference
free = greedy_search(model, batch.src, batch.src_lengths)  # reads its own words
T = 12
mask = batch.tgt_out[:, :T] != 0
forced_acc = ((forced[:, :T] == batch.tgt_out[:, :T]) & mask).sum(0) / mask.sum(0)
free_tokens = torch.zeros_like(batch.tgt_out[:, :T])
for i, h in enumerate(free):
    row = torch.tensor(h.tokens[:T] + [3])[:T]
    free_tokens[i, :len(row)] = row
free_acc = ((free_tokens == batch.tgt_out[:, :T]) & mask).sum(0) / mask.sum(0)
plt.plot(range(1, T + 1), forced_acc, "o-", label="teacher-forced (reads the reference)")
plt.plot(range(1, T + 1), free_acc, "o-", label="free-running (reads its own words)")
plt.xlabel("target position")
plt.ylabel("reference word predicted at that position")
plt.legend()
plt.show()
print("position 1:", f"{float(forced_acc[0]):.2f} / {float(free_acc[0]):.2f};",
      f"position {T}:", f"{float(forced_acc[-1]):.2f} / {float(free_acc[-1]):.2f}")
assert abs(float(forced_acc[0]) - float(free_acc[0])) <= 0.01  # the first word: nothing to be misled by yet
assert float(free_acc[4:].mean()) < float(forced_acc[4:].mean())
