"""A character-level language model for the tutorials (nmt translates; it has no language model
of its own, so this small one lives beside the notebooks, not in nmt/): nmt's character
vocabulary, an embedding, a GRU and a projection to the next character; trained on one long
stream of text by truncated backpropagation through time; sampled greedily or with a temperature.

    vocab, stream = char_stream(lines)              # nmt.data.vocab.TokenVocab("char"), (N,) ids
    lm = CharLM(vocab.size)
    losses = train_lm(lm, stream, steps=300, bptt=40)
    generate(lm, vocab, "A man ", 60, temperature=0.8)
"""
from __future__ import annotations

import time
from collections import Counter

import torch
from torch import nn

from nmt.data.vocab import TokenVocab

NEWLINE = "\n"


def char_stream(lines: list[str], vocab: TokenVocab | None = None) -> tuple[TokenVocab, torch.Tensor]:
    """nmt's character vocabulary of `lines` (built by TokenVocab.build, as `vocab=char` does) and
    the lines as one stream of ids, each line ended by a newline."""
    if vocab is None:
        vocab = TokenVocab.build("char", Counter("".join(line + NEWLINE for line in lines)))
    ids = vocab.encode_batch([line + NEWLINE for line in lines])
    return vocab, torch.tensor([i for row in ids for i in row])


class CharLM(nn.Module):
    """ids (B, T) and a state -> next-character logits (B, T, V) and the new state (1, B, H)."""

    def __init__(self, vocab_size: int, emb: int = 32, hidden: int = 128):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb)
        self.rnn = nn.GRU(emb, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, ids: torch.Tensor, state: torch.Tensor | None = None):
        hidden, state = self.rnn(self.embedding(ids), state)
        return self.out(hidden), state


def batches_of_stream(stream: torch.Tensor, batch: int) -> torch.Tensor:
    """The stream cut into `batch` parallel streams: (batch, N // batch)."""
    n = len(stream) // batch
    return stream[: n * batch].view(batch, n)


def train_lm(lm: CharLM, stream: torch.Tensor, steps: int, bptt: int, batch: int = 32, lr: float = 3e-3,
             clip: float = 1.0) -> dict:
    """Truncated BPTT: consecutive chunks of `bptt` characters of `batch` parallel streams; the
    hidden state is carried from one chunk to the next but detached, so the gradient flows back
    `bptt` steps at most. Returns {losses, seconds_per_step, saved_bytes_per_step}."""
    data = batches_of_stream(stream, batch)
    opt = torch.optim.Adam(lm.parameters(), lr=lr)
    state, pos, losses, saved = None, 0, [], [0]

    def count(t):  # what autograd keeps for the backward pass: the memory BPTT costs
        saved[0] += t.numel() * t.element_size()
        return t

    started = time.perf_counter()
    for _ in range(steps):
        if pos + bptt + 1 > data.size(1):
            pos, state = 0, None
        x, y = data[:, pos:pos + bptt], data[:, pos + 1:pos + bptt + 1]
        saved[0] = 0
        with torch.autograd.graph.saved_tensors_hooks(count, lambda t: t):
            logits, state = lm(x, state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(lm.parameters(), clip)
        opt.step()
        state = state.detach()  # carried forward, cut from the graph: truncated BPTT
        losses.append(float(loss.detach()))
        pos += bptt
    return {"losses": losses, "seconds_per_step": (time.perf_counter() - started) / steps, "saved_bytes_per_step": saved[0]}


@torch.no_grad()
def generate(lm: CharLM, vocab: TokenVocab, prompt: str, n: int, temperature: float = 0.0, seed: int = 0) -> str:
    """`prompt` and `n` more characters, each fed back as the next input: greedy at temperature
    0, else sampled from softmax(logits / temperature)."""
    g = torch.Generator().manual_seed(seed)
    ids = vocab.encode_batch([prompt])[0]
    logits, state = lm(torch.tensor([ids]))
    out = list(prompt)
    for _ in range(n):
        last = logits[0, -1]
        if temperature:
            nxt = int(torch.multinomial(torch.softmax(last / temperature, -1), 1, generator=g))
        else:
            nxt = int(last.argmax())
        out.append(vocab.itos[nxt] if nxt > 3 else "")
        logits, state = lm(torch.tensor([[nxt]]), state)
    return "".join(out)
