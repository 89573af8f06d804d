"""Where one training step of a model spends its time on this CPU, fp32 against bf16 autocast
(`train.precision=bf16`), on real Multi30k batches from the bucketing loader.

    python bench/profile_step.py                               # model=transformer on the default data
    python bench/profile_step.py --steps 20 model=transformer model.ff_dim=512 prepared_dir=...
    python bench/profile_step.py model=gru                     # the reference GRU, for comparison

torch.profiler records `--steps` steps after `--warmup` (each precision on its own fresh model and
the same batches); every operator's own CPU time goes into one group (matmuls, attention, the loss
and its softmax, layer norm, the optimizer, embeddings, dtype casts, element-wise and the rest),
and the step's phases (forward, backward, clipping, optimizer) are timed as record_function
regions. Prints a table per precision and one JSON object last (ms per step, each group's share,
bf16's speed-up over fp32).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

import nmt.config.schema  # noqa: E402,F401
from nmt.config.schema import Precision  # noqa: E402
from nmt.data.prepare import prepare  # noqa: E402
from nmt.data.store import load_prepared  # noqa: E402
from nmt.model import build_model  # noqa: E402
from nmt.training.optim import autocast_context, make_optimizer  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from train import first_batches  # noqa: E402  the real bucketing loader's first batches

# operator name fragments -> group (first match wins; names are aten's, lower-cased)
GROUPS = [
    ("attention", ("scaled_dot_product", "flash_attention", "_efficient_attention", "softmax_backward_data")),
    ("matmul (linear layers, projection)", ("addmm", "::mm", "bmm", "matmul", "linear")),
    ("loss (log-softmax, smoothing)", ("log_softmax", "nll_loss", "gather", "scatter", "logsumexp")),
    ("layer norm", ("layer_norm",)),
    ("optimizer (fused Adam), clipping", ("adam", "foreach", "_amp_foreach", "norm", "clamp")),
    ("embeddings", ("embedding",)),
    ("dtype casts (autocast)", ("::to", "_to_copy", "copy_", "::type_as")),
    ("dropout, masks, random", ("dropout", "bernoulli", "rand", "uniform", "masked_fill", "where")),
    ("element-wise, reshapes, the rest", ("",)),
]
PHASES = ("forward", "loss", "backward", "clip", "optimizer")


def group_of(name: str) -> str:
    name = name.lower()
    return next(g for g, frags in GROUPS if any(f in name for f in frags))


def profiled_step(cfg, vocabs, precision: Precision):
    src_vocab, tgt_vocab = vocabs
    torch.manual_seed(0)
    model = build_model(cfg.model, src_vocab.size, tgt_vocab.size, tgt_vocab.pad_id).train()
    opt = make_optimizer(model, cfg.train)

    def step(b):
        with record_function("forward"), autocast_context(torch.device("cpu"), precision):
            logits = model(b.src, b.src_lengths, b.tgt_in)
        with record_function("loss"):
            loss = model.loss(logits, b.tgt_out, cfg.train.label_smoothing) / b.n_tokens
        opt.zero_grad(set_to_none=True)
        with record_function("backward"):
            loss.backward()
        with record_function("clip"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_grad_norm)
        with record_function("optimizer"):
            opt.step()

    return step


def profile_precision(cfg, vocabs, batches, warmup: int, precision: Precision) -> dict:
    step = profiled_step(cfg, vocabs, precision)
    for b in batches[:warmup]:
        step(b)
    timed = batches[warmup:]
    t0 = time.perf_counter()
    for b in timed:
        step(b)
    plain_ms = (time.perf_counter() - t0) * 1000 / len(timed)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in timed:
            step(b)
    groups: dict[str, float] = {}
    phases: dict[str, float] = {}
    for ev in prof.key_averages():
        if ev.key in PHASES:
            phases[ev.key] = ev.cpu_time_total / 1000 / len(timed)
            continue
        if ev.key.startswith("ProfilerStep") or not ev.key.startswith("aten::"):
            continue
        groups[group_of(ev.key)] = groups.get(group_of(ev.key), 0.0) + ev.self_cpu_time_total / 1000 / len(timed)
    total = sum(groups.values())
    return {"ms_per_step": round(plain_ms, 1),
            "tgt_tokens_per_s": round(sum(b.n_tokens for b in timed) / (plain_ms * len(timed) / 1000)),
            "phases_ms": {k: round(phases.get(k, 0.0), 1) for k in PHASES},
            "groups_share": {g: round(v / total, 3) for g, v in sorted(groups.items(), key=lambda kv: -kv[1])},
            "top_ops": [(ev.key, round(ev.self_cpu_time_total / 1000 / len(timed), 2)) for ev in
                        sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = all cores")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides (default: model=transformer)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = args.overrides or ["model=transformer"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"data.root={ROOT.parent}/shared/data/multi30k", *overrides])
    prepare(cfg)  # reused when it is there (the prepared folder's inputs and settings unchanged)
    dd, _, vocabs = load_prepared(Path(cfg.prepared_dir))
    batches = first_batches(cfg, dd["train"], vocabs[1].pad_id, args.warmup + args.steps)
    out = {"overrides": overrides, "threads": torch.get_num_threads(), "steps": args.steps,
           "tgt_tokens_per_step": round(sum(b.n_tokens for b in batches[args.warmup:]) / args.steps)}
    for precision in (Precision.fp32, Precision.bf16):
        res = profile_precision(cfg, vocabs, batches, args.warmup, precision)
        out[str(precision)] = res
        print(f"\n{precision}: {res['ms_per_step']} ms a step, {res['tgt_tokens_per_s']} target tokens/s; phases (ms): "
              + ", ".join(f"{k} {v}" for k, v in res["phases_ms"].items()), file=sys.stderr)
        for g, share in res["groups_share"].items():
            print(f"  {share:6.1%}  {g}", file=sys.stderr)
    out["bf16_speedup"] = round(out["fp32"]["ms_per_step"] / out["bf16"]["ms_per_step"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
