"""Training throughput on Multi30k (spm vocab) at the reference size, against this CPU's matmul rate.

    python bench/train.py [--steps 60] [--warmup 5] [HYDRA_OVERRIDE ...]

Reference size: embedding 256, hidden 256, bidirectional 1-layer encoder, 1-layer decoder with
attention; GRU and LSTM; and `model=transformer` (conf/model/transformer.yaml). Batches come
from the real bucketing loader. FLOPs are counted with
torch's FlopCounterMode (forward + backward matmuls) on the timed batches. The timed batches run
five times; the median round counts. For GRU the same batches also run with torch's
cross_entropy and the per-parameter Adam loop (`speedup_vs_unfused`), and with the encoder run
through pack_padded_sequence and torch's dropout (`speedup_vs_torch_rnn_paths`), and under bf16
autocast (`bf16_speedup`, `train.precision=bf16`; null where this CPU's bf16 matmul is slower
than its fp32 one), rounds interleaved. `gru.members`: as many one-thread processes as there
are threads, stepping side by side, against one process with all of them (`train.members`'s
premise: `members_speedup` is their target tokens/s in all over the one process's), in fp32
and, where it pays, bf16. Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402

import nmt.config.schema  # noqa: E402,F401
from nmt.config.schema import Precision  # noqa: E402
from nmt.data.batching import LengthBatchSampler  # noqa: E402
from nmt.data.collate import make_loader  # noqa: E402
from nmt.data.prepare import prepare  # noqa: E402
from nmt.data.store import load_prepared  # noqa: E402
from nmt.model import build_model  # noqa: E402
from nmt.model.dropout import Dropout  # noqa: E402
from nmt.training.optim import autocast_context, make_optimizer  # noqa: E402


def matmul_rate(dtype: torch.dtype, n: int = 1024, reps: int = 20) -> float:
    """GFLOP/s of an n x n matmul in `dtype`."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def make_step(cfg, vocabs, unfused: bool = False, torch_rnn_paths: bool = False, bf16: bool = False):
    """A training step on a fresh model. unfused: torch's cross_entropy and the per-parameter
    Adam loop instead of nmt's loss and fused Adam; torch_rnn_paths: the RNN encoder through
    pack_padded_sequence and torch's dropout, instead of the encoder's per-direction run and
    nmt's CPU dropout; bf16: the forward under bf16 autocast, as `train.precision=bf16` runs it
    (the comparisons for this bench's ratios)."""
    src_vocab, tgt_vocab = vocabs
    torch.manual_seed(0)
    model = build_model(cfg.model, src_vocab.size, tgt_vocab.size, tgt_vocab.pad_id).train()
    if torch_rnn_paths:
        model.encoder.packed = True
        for module in model.modules():
            if isinstance(module, Dropout):
                module.fast = False
    opt = (torch.optim.Adam(model.parameters(), lr=cfg.train.lr, fused=False, foreach=False) if unfused
           else make_optimizer(model, cfg.train))

    def loss_fn(logits, tgt_out):
        if unfused:
            return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1), ignore_index=model.pad_id,
                                   label_smoothing=cfg.train.label_smoothing, reduction="sum")
        return model.loss(logits, tgt_out, cfg.train.label_smoothing)

    def step(b):
        with autocast_context(torch.device("cpu"), Precision.bf16 if bf16 else Precision.fp32):
            logits = model(b.src, b.src_lengths, b.tgt_in)
        loss = loss_fn(logits, b.tgt_out) / b.n_tokens
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.clip_grad_norm)
        opt.step()

    return step


def first_batches(cfg, train_split, pad_id: int, n: int) -> list:
    """The first `n` batches the real bucketing loader gives."""
    sampler = LengthBatchSampler.from_config(train_split, cfg.train.batching)
    batches = []
    for b in make_loader(train_split, sampler, pad_id):
        batches.append(b)
        if len(batches) == n:
            break
    return batches


def train_rate(cfg, train_split, vocabs, steps: int, warmup: int, rounds_n: int = 5, compare: bool = False,
               bf16: bool = False) -> dict:
    """Target tokens/s over `steps` real batches (median of `rounds_n` rounds); compare: also
    the unfused step, the step on torch's RNN paths (packed encoder, torch's dropout) and the
    bf16-autocast step (only with bf16=True), their rounds interleaved with these, and the ratios."""
    batches = first_batches(cfg, train_split, vocabs[1].pad_id, warmup + steps)
    variants = {"nmt": make_step(cfg, vocabs)}
    if compare:
        variants["unfused"] = make_step(cfg, vocabs, unfused=True)
        variants["torch_rnn_paths"] = make_step(cfg, vocabs, torch_rnn_paths=True)
        if bf16:
            variants["bf16"] = make_step(cfg, vocabs, bf16=True)
    timed = batches[warmup:]
    rounds = {name: [] for name in variants}
    for name, step in variants.items():
        for b in batches[:warmup]:
            step(b)
    for _ in range(rounds_n):  # interleaved rounds; the median counts: this machine is noisy
        for name, step in variants.items():
            t0 = time.perf_counter()
            for b in timed:
                step(b)
            rounds[name].append(time.perf_counter() - t0)
    tokens = sum(b.n_tokens for b in timed)
    tok_s = {name: tokens / sorted(r)[len(r) // 2] for name, r in rounds.items()}
    counter = FlopCounterMode(display=False)
    with counter:
        for b in timed[:5]:
            variants["nmt"](b)
    flops_per_token = counter.get_total_flops() / sum(b.n_tokens for b in timed[:5])
    out = {"tgt_tokens_per_s": round(tok_s["nmt"]), "flops_per_tgt_token": round(flops_per_token),
           "achieved_gflops": round(flops_per_token * tok_s["nmt"] / 1e9, 1), "steps": len(timed),
           "batch_size": cfg.train.batching.batch_size}
    if compare:
        out["unfused_tgt_tokens_per_s"] = round(tok_s["unfused"])
        out["speedup_vs_unfused"] = round(tok_s["nmt"] / tok_s["unfused"], 3)
        out["torch_rnn_paths_tgt_tokens_per_s"] = round(tok_s["torch_rnn_paths"])
        out["speedup_vs_torch_rnn_paths"] = round(tok_s["nmt"] / tok_s["torch_rnn_paths"], 3)
        if bf16:
            out["bf16_tgt_tokens_per_s"] = round(tok_s["bf16"])
            out["bf16_speedup"] = round(tok_s["bf16"] / tok_s["nmt"], 3)
        else:
            out["bf16_speedup"] = None  # skipped: this CPU's bf16 matmul is slower than its fp32 one
    return out


def _member_worker(overrides: list[str], prep: str, steps: int, warmup: int, rounds_n: int, bf16: bool,
                   barrier, results) -> None:
    """One member of `members_rate`: one thread, the same batches, timed between barriers."""
    torch.set_num_threads(1)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    dd, _, vocabs = load_prepared(Path(prep))
    batches = first_batches(cfg, dd["train"], vocabs[1].pad_id, warmup + steps)
    step = make_step(cfg, vocabs, bf16=bf16)
    for b in batches[:warmup]:
        step(b)
    for _ in range(rounds_n):
        barrier.wait()  # start together
        t0 = time.perf_counter()
        for b in batches[warmup:]:
            step(b)
        results.put(time.perf_counter() - t0)
        barrier.wait()  # the parent's own round runs while the members wait here


def members_rate(cfg, overrides: list[str], prep: Path, vocabs, steps: int, warmup: int, bf16: bool,
                 n: int = 2, rounds_n: int = 3) -> dict:
    """`train.members=n`'s premise: n one-thread processes training side by side against one
    process with all the threads, on the same batches, rounds interleaved. Returns target
    tokens/s of each (the members' in all: n x their batches' tokens / the slowest member's time)."""
    import multiprocessing as mp

    dd = load_prepared(prep)[0]
    batches = first_batches(cfg, dd["train"], vocabs[1].pad_id, warmup + steps)
    tokens = sum(b.n_tokens for b in batches[warmup:])
    step = make_step(cfg, vocabs, bf16=bf16)
    for b in batches[:warmup]:
        step(b)
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(n + 1), ctx.Queue()
    workers = [ctx.Process(target=_member_worker, args=(overrides, str(prep), steps, warmup, rounds_n, bf16,
                                                          barrier, results)) for _ in range(n)]
    for w in workers:
        w.start()
    one, together = [], []
    for _ in range(rounds_n):
        t0 = time.perf_counter()
        for b in batches[warmup:]:
            step(b)
        one.append(time.perf_counter() - t0)
        barrier.wait()  # members run
        barrier.wait()  # members done
        together.append(max(results.get() for _ in range(n)))
    for w in workers:
        w.join()
    single = tokens / sorted(one)[len(one) // 2]
    members = n * tokens / sorted(together)[len(together) // 2]
    return {"precision": "bf16" if bf16 else "fp32", "one_process_tgt_tokens_per_s": round(single),
            "members": n, "members_tgt_tokens_per_s": round(members), "per_member": round(members / n),
            "members_speedup": round(members / single, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=["gru", "lstm", "transformer"])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. vocab.vocab_size=5000")
    args = ap.parse_args()
    # `--models gru model.hidden_dim=384`: argparse hands the override to --models; move it back
    args.overrides += [m for m in args.models if "=" in m]
    args.models = [m for m in args.models if "=" not in m]
    torch.set_num_threads(torch.get_num_threads())
    with tempfile.TemporaryDirectory() as tmp:
        out = {"threads": torch.get_num_threads()}
        out["matmul_fp32_gflops"] = round(matmul_rate(torch.float32), 1)
        out["matmul_bf16_gflops"] = round(matmul_rate(torch.bfloat16, reps=2), 1)
        # without bf16 units (AVX-512 BF16 / AMX) a bf16 matmul runs at ~1/170 of fp32: the bf16
        # variant would take hours there and says nothing, so it runs only where bf16 is faster
        bf16_pays = out["matmul_bf16_gflops"] > out["matmul_fp32_gflops"]
        for cell in args.models:
            with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
                cfg = compose("config", overrides=[f"data.root={ROOT.parent}/shared/data/multi30k",
                                                   f"prepared_dir={tmp}/prep", f"model={cell}", *args.overrides])
            prepare(cfg)
            dd, meta, vocabs = load_prepared(Path(tmp) / "prep")
            out[cell] = train_rate(cfg, dd["train"], vocabs, args.steps, args.warmup, compare=cell == "gru",
                                   bf16=bf16_pays)
            if cell == "gru" and torch.get_num_threads() > 1:
                members_overrides = [f"prepared_dir={tmp}/prep", f"model={cell}", *args.overrides]
                out[cell]["members"] = [members_rate(cfg, members_overrides, Path(tmp) / "prep", vocabs, args.steps,
                                                     args.warmup, bf16, n=torch.get_num_threads())
                                        for bf16 in ([False, True] if bf16_pays else [False])]
            epoch_tokens = int(dd["train"].data.column("tgt_len").to_numpy().sum()) - len(dd["train"])
            out[cell]["epoch_seconds"] = round(epoch_tokens / out[cell]["tgt_tokens_per_s"], 1)
            out["vocab"] = meta.vocab.model_dump()
        for cell in args.models:
            out[cell]["fraction_of_fp32_matmul"] = round(out[cell]["achieved_gflops"] / out["matmul_fp32_gflops"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
