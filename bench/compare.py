"""Architectures side by side: each trained for the same wall-clock budget on this machine,
selected on val, then decoded on test_2016_flickr (greedy and beam 5).

    python bench/compare.py                       # all six, 10 minutes each (about 70 minutes)
    python bench/compare.py --minutes 30 --archs gru_attention transformer
    python bench/compare.py --minutes 30 --threads 1 --archs gru_attention &   # two at a time, one core each
    python bench/compare.py --minutes 30 --threads 1 --archs transformer
    python bench/compare.py --report-only         # redraw the table and PNG from finished runs
    python bench/compare.py --gradients           # + the vanishing-gradient plot (nmt.diagnose)

Prints a Markdown table (parameters, train tokens/s, test BLEU and chrF greedy and beam 5 with
the sacreBLEU signature, decode seconds) and writes val BLEU against minutes as one PNG, both
under --out. Training runs through `python -m nmt.train` exactly as a user would start it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT

ARCHITECTURES = {  # name -> the overrides that select it
    "rnn": ["model=rnn", "model.attention=none"],
    "lstm": ["model=lstm", "model.attention=none"],
    "gru": ["model=gru", "model.attention=none"],
    "gru_attention": ["model=gru"],  # the default model
    "transformer": ["model=transformer", "model.dec_layers=3"],  # 3+3 layers
    # deep encoder, shallow decoder (Kasai et al., 2021), model=transformer's default since:
    # search runs the decoder once per output piece
    "transformer_1dec": ["model=transformer", "model.dec_layers=1"],
}


def run_name(name: str, minutes: float, threads: int) -> str:
    return f"{name}_{minutes:g}min" + (f"_{threads}thread" if threads else "")


def train(name: str, minutes: float, prepared: Path, out: Path, threads: int = 0) -> Path:
    run = out / run_name(name, minutes, threads)
    if (run / "train_summary.json").is_file():
        print(f"compare: {run} already trained; reusing it", file=sys.stderr)
        return run
    cmd = [sys.executable, "-m", "nmt.train", f"prepared_dir={prepared}", *ARCHITECTURES[name],
           f"train.max_minutes={minutes}", f"hydra.run.dir={run}"] + ([f"train.threads={threads}"] if threads else [])
    print("compare: " + " ".join(cmd[1:]), file=sys.stderr)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return run


def evaluate(run: Path, prepared: Path) -> dict:
    """Test BLEU/chrF and decode seconds, greedy and beam 5, of the run's best.pt."""
    from nmt import Translator
    from nmt.analysis.scoring import score_corpus
    from nmt.data.store import load_prepared, split_table
    from nmt.runs.run_folder import RunSummary

    data, _, _ = load_prepared(prepared)
    test = split_table(data["test"])
    sources, refs = test.column("src_ids").to_pylist(), [test.column("tgt_text").to_pylist()]
    summary = RunSummary.load(run)
    train_rows = [json.loads(line) for line in (run / "metrics.jsonl").open() if '"train"' in line]
    speeds = [r["tokens_per_s"] for r in train_rows[1:] or train_rows]  # the first window includes start-up
    result = {"run": str(run), "params": summary.n_params,
              "val_bleu": summary.best_score if summary.metric == "bleu" else None, "steps": summary.steps, "tokens_per_s": sum(speeds) / len(speeds) if speeds else None}
    for search, beam in (("greedy", 1), ("beam5", 5)):
        tr = Translator.from_checkpoint(run / "checkpoints" / "best.pt", beam_size=beam)
        start = time.perf_counter()
        hyps = tr.detokenize(tr.translate_ids(sources))
        result[f"{search}_seconds"] = time.perf_counter() - start
        for score in score_corpus(hyps, refs, ("bleu", "chrf")):
            result[f"{search}_{score['name'].lower()}"] = score["score"]
            result[f"{score['name'].lower()}_signature"] = score["signature"]
    return result


def curves_png(runs: dict[str, Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, run in runs.items():
        rows = [json.loads(line) for line in (run / "metrics.jsonl").open() if '"valid"' in line]
        rows = [r for r in rows if "bleu" in r and "minutes" in r]
        ax.plot([r["minutes"] for r in rows], [r["bleu"] for r in rows], marker=".", label=run.name)
    ax.set_xlabel("training minutes (this machine)")
    ax.set_ylabel("val BLEU (greedy)")
    ax.set_title("Multi30k de-en: val BLEU against wall-clock minutes")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def machine() -> str:
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def table(results: list[dict]) -> str:
    head = ("| run | params | train tok/s | val BLEU | test BLEU greedy | test BLEU beam 5 | chrF greedy | "
            "chrF beam 5 | decode s greedy | decode s beam 5 |\n|" + "---|" * 10)
    rows = [f"| {Path(r['run']).name} | {r['params'] / 1e6:.1f}M | {r['tokens_per_s'] or 0:,.0f} | {r['val_bleu']:.2f} | "
            f"{r['greedy_bleu']:.2f} | {r['beam5_bleu']:.2f} | {r['greedy_chrf2']:.2f} | {r['beam5_chrf2']:.2f} | "
            f"{r['greedy_seconds']:.1f} | {r['beam5_seconds']:.1f} |" for r in results]
    signatures = {(r["bleu_signature"], r["chrf2_signature"]) for r in results}
    notes = [f"BLEU signature: `{b}`; chrF: `{c}`" for b, c in signatures] + [f"machine: {machine()}"]
    return "\n".join([head, *rows, "", *notes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=list(ARCHITECTURES), choices=list(ARCHITECTURES))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=0, help="train.threads and decoding threads (0: all cores)")
    parser.add_argument("--prepared", type=Path, default=ROOT / "data" / "multi30k_de-en_spm")  # nmt.prepare's default
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "compare")
    parser.add_argument("--report-only", action="store_true", help="no training: report the runs already there")
    parser.add_argument("--gradients", action="store_true", help="also plot gradient norms per source position")
    args = parser.parse_args()
    if not (args.prepared / "meta.json").is_file():
        sys.exit(f"compare: {args.prepared} holds no prepared data. Fix: python -m nmt.prepare "
                 f"data.root=../shared/data/multi30k prepared_dir={args.prepared}")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runs = {}
    for name in args.archs:
        run = args.out / run_name(name, args.minutes, args.threads)
        runs[name] = run if args.report_only else train(name, args.minutes, args.prepared, args.out, args.threads)
    runs = {n: r for n, r in runs.items() if (r / "train_summary.json").is_file()}
    results = []
    for name, run in runs.items():
        cached = run / "compare.json"
        if not cached.is_file():
            cached.write_text(json.dumps(evaluate(run, args.prepared), indent=2))
        results.append(json.loads(cached.read_text()))
    png = args.out / f"val_bleu_{run_name('', args.minutes, args.threads).lstrip('_')}.png"
    curves_png(runs, png)
    print(table(results))
    print(f"\nval BLEU against minutes: {png}")
    if args.gradients:
        from nmt.analysis.gradients import gradient_figure

        figure = args.out / f"gradients_{run_name('', args.minutes, args.threads).lstrip('_')}.png"
        print(gradient_figure({n: r / "checkpoints" / "best.pt" for n, r in runs.items()}, args.prepared, figure))
        print(f"gradient norm per source position: {figure}")


if __name__ == "__main__":
    main()
