"""nmt's decoder against CTranslate2 on the same Transformer weights (nmt.export
export.format=ctranslate2): do they agree, and how far is nmt from CTranslate2's speed?

    python bench/vs_ctranslate2.py --ckpt RUN [--rounds 2] [--batch1-sentences 200] [--profile]
                                   [--skip-agreement] [--skip-speed] [--threads 1 2]

1. Agreement on test_2016_flickr (fp32, one thread, nmt's per-sentence length limit): identical
   greedy outputs, BLEU of both with greedy and beam 5, at length penalty 0 (the same penalty in
   both) and at the model's own (nmt: ((5 + L) / 6) ** a, CTranslate2: L ** a).
2. Speed: nmt fp32 and int8 (decode.quantize) against CTranslate2 float32 and int8, greedy and
   beam 5, batch 1 and 32, one thread and two. Rounds interleave the engines; the median counts.
   Batch 1 decodes the first --batch1-sentences sentences, batch 32 all of them, in corpus order.
   Prints sentences/s and nmt's time over CTranslate2's for each setting, then one JSON object.
3. --profile: where nmt's time goes at batch 1, beam 5, one thread (cProfile, by own time).

Needs the interop extra (pip install -e '.[interop]') and a model=transformer checkpoint.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.analysis.scoring import score_corpus  # noqa: E402
from nmt.data.collate import collate_sources  # noqa: E402
from nmt.data.store import load_prepared  # noqa: E402
from nmt.inference.search import max_lengths, search  # noqa: E402
from nmt.inference.translator import Translator, search_options  # noqa: E402
from nmt.interop.ctranslate2_model import Ct2Decoder, write_ctranslate2  # noqa: E402
from nmt.runs.model_folder import read_model  # noqa: E402
from nmt.runs.run_folder import run_checkpoints  # noqa: E402


def nmt_decode(tr: Translator, sources: list[list[int]], beam: int, alpha: float, batch_size: int) -> list[list[int]]:
    """nmt's search over input-order batches of `batch_size` (as CTranslate2 gets them)."""
    options = search_options("greedy" if beam == 1 else "beam", beam_size=beam, length_penalty=alpha)
    out: list[list[int]] = [[] for _ in sources]
    for start in range(0, len(sources), batch_size):
        rows = list(range(start, min(start + batch_size, len(sources))))
        batch = collate_sources([(i, torch.as_tensor(sources[i])) for i in rows])
        for i, h in zip(batch.indices.tolist(), search(tr.model, batch.src, batch.src_lengths, options)):
            out[i] = h.tokens
    return out


def limits_of(sources: list[list[int]], tr: Translator) -> list[int]:
    o = tr.options
    return max_lengths(torch.tensor([len(s) for s in sources]), o.max_len_a, o.max_len_b, o.max_output_len).tolist()


def bleu(tr: Translator, ids: list[list[int]], refs: list[str]) -> float:
    return round(score_corpus(tr.tgt_vocab.to_texts(ids), [refs], ["bleu"])[0]["score"], 2)


def agreement(tr: Translator, ct2: Ct2Decoder, ct2_int8: Ct2Decoder, sources, refs, alpha: float) -> dict:
    limits = limits_of(sources, tr)
    res = {}
    ours, theirs = nmt_decode(tr, sources, 1, 0.0, 32), ct2.decode(sources, limits, 1)
    res["greedy"] = {"identical": sum(a == b for a, b in zip(ours, theirs)), "of": len(sources),
                     "bleu_nmt": bleu(tr, ours, refs), "bleu_ctranslate2": bleu(tr, theirs, refs)}
    int8 = ct2_int8.decode(sources, limits, 1)
    res["greedy_ct2_int8"] = {"identical_to_nmt_fp32": sum(a == b for a, b in zip(ours, int8)),
                              "bleu": bleu(tr, int8, refs)}
    for a in sorted({0.0, alpha}):
        ours, theirs = nmt_decode(tr, sources, 5, a, 32), ct2.decode(sources, limits, 5, a)
        res[f"beam5_alpha{a:g}"] = {"identical": sum(x == y for x, y in zip(ours, theirs)),
                                    "bleu_nmt": bleu(tr, ours, refs), "bleu_ctranslate2": bleu(tr, theirs, refs)}
    return res


# seconds of rest before each timed run: torch's and CTranslate2's OpenMP threads keep spinning
# for a while after their last parallel region, and with two threads they would take the second
# core from the engine timed next (measured: 2-5x slower two-thread runs without the pause)
PAUSE = 1.0


def speed(engines: dict, sources, batch1: int, rounds: int, threads=(1, 2)) -> dict:
    """engines: name -> decode(sources, beam, batch_size, threads). Rounds interleave them."""
    settings = [(beam, bs, th) for beam in (1, 5) for bs in (1, 32) for th in threads]
    times: dict[tuple, list[float]] = {}
    for _ in range(rounds):
        for beam, bs, th in settings:
            src = sources[:batch1] if bs == 1 else sources
            for name, decode in engines.items():
                torch.set_num_threads(th)
                time.sleep(PAUSE)
                t0 = time.perf_counter()
                decode(src, beam, bs, th)
                times.setdefault((name, beam, bs, th), []).append(time.perf_counter() - t0)
    table = {}
    for beam, bs, th in settings:
        n = batch1 if bs == 1 else len(sources)
        row = {name: round(n / statistics.median(times[(name, beam, bs, th)]), 1) for name in engines}
        row["nmt_fp32/ct2_fp32_time"] = round(row["ct2_fp32"] / row["nmt_fp32"], 2)
        row["nmt_int8/ct2_int8_time"] = round(row["ct2_int8"] / row["nmt_int8"], 2)
        table[f"{'greedy' if beam == 1 else 'beam5'} batch{bs} threads{th}"] = row
    return table


def profile(tr: Translator, sources, n: int = 60) -> str:
    torch.set_num_threads(1)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    nmt_decode(tr, sources[:n], 5, 1.0, 1)
    prof.disable()
    wall = time.perf_counter() - t0
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(14)
    return f"nmt beam 5, batch 1, one thread, {n} sentences: {wall:.2f} s\n" + buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", type=Path, required=True, help="a model=transformer checkpoint, run or model folder")
    ap.add_argument("--split", default="test")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch1-sentences", type=int, default=200)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-agreement", action="store_true")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="the thread counts timed")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    source = run_checkpoints(args.ckpt)[0]
    ckpt = read_model(source)
    trs = {w: Translator.from_checkpoint(source, quantize=None if w == "fp32" else w) for w in ("fp32", "int8")}
    tr = trs["fp32"]
    alpha = float(tr.options.length_penalty)
    dd, _, _ = load_prepared(Path(tr.prepared_dir))
    split = dd[args.split]
    sources, refs = split["src_ids"], split["tgt_text"]
    with tempfile.TemporaryDirectory() as tmp:
        write_ctranslate2(ckpt, Path(tmp))
        ct2 = {(ct, th): Ct2Decoder(Path(tmp), tr.src_vocab, tr.tgt_vocab, ct, th)
               for ct in ("float32", "int8") for th in sorted({1, *args.threads})}
    out = {"ckpt": str(source), "sentences": len(sources), "length_penalty": alpha,
           "model": {k: ckpt.model_config[k] for k in ("emb_dim", "heads", "ff_dim", "enc_layers", "dec_layers")},
           "cpu_threads_available": torch.get_num_threads()}
    if not args.skip_agreement:
        out["agreement"] = agreement(tr, ct2[("float32", 1)], ct2[("int8", 1)], sources, refs, alpha)
        print(json.dumps(out["agreement"], indent=1), flush=True)
    if not args.skip_speed:
        limits = limits_of(sources, tr)
        lim = dict(zip(map(tuple, sources), limits))

        def ct2_engine(ct):
            return lambda src, beam, bs, th: ct2[(ct, th)].decode(src, [lim[tuple(s)] for s in src], beam, 1.0, bs)

        engines = {"nmt_fp32": lambda src, beam, bs, th: nmt_decode(trs["fp32"], src, beam, 1.0, bs),
                   "ct2_fp32": ct2_engine("float32"),
                   "nmt_int8": lambda src, beam, bs, th: nmt_decode(trs["int8"], src, beam, 1.0, bs),
                   "ct2_int8": ct2_engine("int8")}
        for e in engines.values():  # warm-up
            e(sources[:32], 5, 32, 1)
        out["speed_sentences_per_s"] = speed(engines, sources, args.batch1_sentences, args.rounds, args.threads)
        for key, row in out["speed_sentences_per_s"].items():
            print(f"{key:24s} " + "  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    if args.profile:
        print(profile(tr, sources))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
