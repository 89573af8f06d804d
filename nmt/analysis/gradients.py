"""What vanishing gradients look like on real sentences (`python -m nmt.diagnose`).

For a batch of real sentences of one source length, the loss of each model is differentiated
with respect to its source embeddings (the encoder's input); the norm of that gradient at source
position i says how much the translation loss still depends on the i-th source piece, after
the signal has travelled back through the decoder and the encoder. We take it at the embeddings
rather than at the encoder outputs because a model without attention never reads its encoder
outputs (only the final state), so their gradient would be zero there and the picture would say
nothing; at the input, every architecture has the same question to answer.

Where the encoder has gates (GRU, LSTM), it also reports their mean saturation: the fraction of
gate activations below 0.05 or above 0.95 in the first encoder layer (forward direction), where
the sigmoid's derivative, and so the gradient through the gate, is close to zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from nmt.config.rules import ConfigError
from nmt.data.collate import collate
from nmt.data.store import split_table
from nmt.data.vocab import PAD_ID


@dataclass
class Diagnosis:
    name: str
    position_norms: list[float]  # mean gradient norm per source position, first to last
    saturation: dict[str, float] = field(default_factory=dict)  # gate -> fraction saturated


def same_length_sources(split, n: int, length: int = 0) -> tuple[int, list[int]]:
    """(length, row indices) of up to `n` examples whose source has exactly `length` pieces;
    length 0: the longest length that has at least `n` examples (at least 8)."""
    lengths = [len(s) for s in split_table(split).column("src_ids").to_pylist()]
    if not length:
        counts: dict[int, int] = {}
        for n_pieces in lengths:
            counts[n_pieces] = counts.get(n_pieces, 0) + 1
        enough = [n_pieces for n_pieces, c in counts.items() if c >= min(n, 8)]
        length = max(enough) if enough else max(counts, key=counts.get)
    rows = [i for i, n_pieces in enumerate(lengths) if n_pieces == length][:n]
    if not rows:
        raise ConfigError(f"no sentence of the split has exactly {length} source pieces. Fix: diagnose.length=0")
    return length, rows


def gradient_norms(model: torch.nn.Module, batch) -> list[float]:
    """Mean over the batch of ||d loss / d source embedding|| at each source position (S,).
    The loss is the per-token cross-entropy of the reference targets (teacher forcing)."""
    captured = []
    handle = model.src_embedding.register_forward_hook(lambda m, i, out: captured.append(out))
    try:
        model.eval()  # no dropout: the same picture every time
        with torch.enable_grad():
            logits = model(batch.src, batch.src_lengths, batch.tgt_in)
            loss = model.loss(logits.float(), batch.tgt_out) / batch.n_tokens
            (grad,) = torch.autograd.grad(loss, captured[0])  # the first call embeds the source
    finally:
        handle.remove()
    norms = grad.norm(dim=-1)  # (B, S)
    return norms.mean(0).tolist()


GATE_NAMES = {"gru": ("reset", "update"), "lstm": ("input", "forget", "output")}


@torch.no_grad()
def gate_saturation(model: torch.nn.Module, batch, low: float = 0.05, high: float = 0.95) -> dict[str, float]:
    """Fraction of saturated gate activations per gate in the first encoder layer (forward
    direction), replayed step by step from nn.GRU / nn.LSTM weights; {} without gates."""
    rnn = getattr(getattr(model, "encoder", None), "rnn", None)
    cell = {torch.nn.GRU: "gru", torch.nn.LSTM: "lstm"}.get(type(rnn))
    if cell is None:
        return {}
    x = model.src_embedding(batch.src)  # (B, S, E)
    w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
    B, S, _ = x.shape
    H = rnn.hidden_size
    h, c = x.new_zeros(B, H), x.new_zeros(B, H)
    real = (batch.src != PAD_ID).float()  # (B, S)
    saturated = {name: 0.0 for name in GATE_NAMES[cell]}
    for t in range(S):
        gi, gh = x[:, t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        if cell == "gru":  # torch's layout: reset | update | new
            r, z = torch.sigmoid(gi[:, :H] + gh[:, :H]), torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h_new, gates = (1 - z) * n + z * h, {"reset": r, "update": z}
        else:  # input | forget | cell | output
            i, f, g, o = (gi + gh).chunk(4, dim=-1)
            i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
            c_new = f * c + i * torch.tanh(g)
            h_new, gates = o * torch.tanh(c_new), {"input": i, "forget": f, "output": o}
            c = torch.where(real[:, t:t + 1] > 0, c_new, c)
        h = torch.where(real[:, t:t + 1] > 0, h_new, h)
        for name, gate in gates.items():
            saturated[name] += float((((gate < low) | (gate > high)).float().mean(1) * real[:, t]).sum())
    return {name: value / float(real.sum()) for name, value in saturated.items()}


def diagnose(checkpoints: dict[str, Path], prepared_dir: Path, split_name: str = "valid", sentences: int = 64,
             length: int = 0, max_params: int | None = None) -> tuple[int, list[Diagnosis]]:
    """Each checkpoint on the same batch of `sentences` real sentences of one source length."""
    from nmt.data.store import load_prepared
    from nmt.runs.model_folder import read_model

    data, _, _ = load_prepared(Path(prepared_dir))
    if split_name not in data:
        raise ConfigError(f"diagnose.split={split_name!r} is not in {prepared_dir} (it has {list(data)})")
    length, rows = same_length_sources(data[split_name], sentences, length)
    table = split_table(data[split_name])
    src, tgt = table.column("src_ids").to_pylist(), table.column("tgt_ids").to_pylist()
    batch = collate([(i, torch.tensor(src[i]), torch.tensor(tgt[i])) for i in rows])
    results = []
    for name, path in checkpoints.items():
        ckpt = read_model(Path(path))
        src_vocab, tgt_vocab = ckpt.vocabs()
        model = ckpt.build_model(src_vocab.size, tgt_vocab.size, tgt_vocab.pad_id,
                                 **({"max_params": max_params} if max_params else {}))
        results.append(Diagnosis(name, gradient_norms(model, batch), gate_saturation(model, batch)))
    return length, results


def plot(length: int, results: list[Diagnosis], n_sentences: int, path: Path) -> Path:
    """Gradient norm per source position (log scale), and gate saturation where there are gates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gated = [r for r in results if r.saturation]
    fig, axes = plt.subplots(1, 2 if gated else 1, figsize=(11 if gated else 7, 4.5), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]} if gated else None)
    ax = axes[0][0]
    for r in results:
        ax.plot(range(1, length + 1), r.position_norms, marker=".", label=r.name)
    ax.set_yscale("log")
    ax.set_xlabel("source position (first to last piece)")
    ax.set_ylabel("mean ||d loss / d source embedding||")
    ax.set_title(f"Gradient reaching each source position\n({n_sentences} val sentences of {length} pieces)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if gated:
        ax = axes[0][1]
        gates = sorted({g for r in gated for g in r.saturation})
        width = 0.8 / len(gated)
        for k, r in enumerate(gated):
            ax.bar([j + k * width for j in range(len(gates))], [r.saturation.get(g, 0) for g in gates], width,
                   label=r.name)
        ax.set_xticks([j + width * (len(gated) - 1) / 2 for j in range(len(gates))], gates)
        ax.set_ylabel("fraction of gate values < 0.05 or > 0.95")
        ax.set_title("Gate saturation (encoder layer 1)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(length: int, results: list[Diagnosis]) -> str:
    """A text table: the gradient at the first, middle and last position, and the weakest
    position's gradient over the strongest's (1: no position is starved; 1e-3: vanishing)."""
    lines = [f"{'model':<24} {'first':>10} {'middle':>10} {'last':>10} {'min/max':>10}  gate saturation"]
    for r in results:
        g = r.position_norms
        sat = ", ".join(f"{k} {v:.2f}" for k, v in r.saturation.items()) or "-"
        lines.append(f"{r.name:<24} {g[0]:>10.2e} {g[length // 2]:>10.2e} {g[-1]:>10.2e} {min(g) / max(g):>10.1e}  {sat}")
    return "\n".join(lines)


def gradient_figure(checkpoints: dict[str, Path], prepared_dir: Path, path: Path, sentences: int = 64) -> str:
    """diagnose + plot + report, for bench/compare.py --gradients."""
    length, results = diagnose(checkpoints, prepared_dir, sentences=sentences)
    plot(length, results, sentences, path)
    return report(length, results)
