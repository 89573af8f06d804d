"""PNG figures: learning curves from metrics.jsonl, attention heatmaps."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curves(metrics_file: Path, out_png: Path) -> Path | None:
    """Train loss against step, and validation loss / BLEU, from metrics.jsonl."""
    rows = [json.loads(l) for l in Path(metrics_file).read_text().splitlines() if l.strip()]
    train = [r for r in rows if r["kind"] == "train"]
    valid = [r for r in rows if r["kind"] == "valid"]
    if not train and not valid:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1)
    axes[0].plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="valid loss")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("cross-entropy per token")
    axes[0].legend()
    if any("bleu" in r for r in valid):
        axes[1].plot([r["step"] for r in valid if "bleu" in r], [r["bleu"] for r in valid if "bleu" in r], "o-")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("valid BLEU (greedy)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def attention_figure(weights, src_tokens: list[str], tgt_tokens: list[str], title: str = ""):
    """weights (T, S): one row per target token, one column per source token; a colour bar for
    the weight scale (0..1) and `title` above (e.g. the sentence's score)."""
    w = weights[: len(tgt_tokens), : len(src_tokens)]
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * len(src_tokens) + 3), max(3, 0.4 * len(tgt_tokens) + 2)))
    image = ax.imshow(w, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="attention weight")
    ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=90)
    ax.set_yticks(range(len(tgt_tokens)), tgt_tokens)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def attention_heatmap(weights, src_tokens: list[str], tgt_tokens: list[str], out_png: Path, title: str = "") -> Path:
    """`attention_figure` saved as a PNG."""
    fig = attention_figure(weights, src_tokens, tgt_tokens, title)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
