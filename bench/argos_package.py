"""The model LibreTranslate runs: an exported Argos package (`nmt.export export.format=argos`)
scored and timed as Argos decodes it, against nmt's own decoding of other models.

    python bench/argos_package.py --package models/de_en.argosmodel --against outputs/gru [--split test]
    python bench/argos_package.py --package P --against RUN --argos     # also through argostranslate itself

1. Quality on the prepared split (--data, default: the first --against run's prepared data; the
   source and reference text are the same in every vocabulary's folder): the package's
   CTranslate2 model decodes the split's source text tokenized with the package's
   `sentencepiece.model`, beam --beam, CTranslate2's length penalty --length-penalty (0.2 is
   what Argos Translate 1.9-1.11 passes), and the pieces are joined back with the same model.
   BLEU and chrF with sacreBLEU's signatures. --length-penalties A B ...: CTranslate2's length
   penalty chosen on val among these (fp32), the test scored with it too (what a CTranslate2 user
   can set; Argos cannot). --argos: the same sentences through the real
   argostranslate (installed from the package into a scratch home, offline, ARGOS_BEAM_SIZE=--beam).
2. Speed, --threads threads each, rounds interleaved, the median counting: CTranslate2 (fp32 and
   int8) against nmt's beam search of each --against model (fp32), all of the split. Each --against
   model is scored too (nmt's beam --beam with its own tuned length penalty).
Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nmt.analysis.scoring import score_corpus  # noqa: E402
from nmt.data.store import load_prepared  # noqa: E402
from nmt.inference.translator import Translator, search_options  # noqa: E402

ARGOS_LENGTH_PENALTY = 0.2  # argostranslate.translate's translate_batch call (1.9-1.11)


def unpack(package: Path, into: Path) -> Path:
    """The package's top-level folder (model/, sentencepiece.model, metadata.json)."""
    with zipfile.ZipFile(package) as zf:
        zf.extractall(into)
    (root,) = [p for p in into.iterdir() if p.is_dir()]
    return root


class Ct2Package:
    """The package's model, driven as Argos drives it: text in, SentencePiece pieces, CTranslate2's
    beam search, the pieces joined back with the same SentencePiece model."""

    def __init__(self, root: Path, compute_type: str, threads: int):
        """`threads` workers of one thread each (inter_threads): batches of 32 decode side by side.
        On 2 cores that took 1.55 s for test_2016_flickr at beam 5 against 3.79 s for one worker of
        two threads (fp32; int8 0.81 s against 3.37 s; docs/results.md, 2026-12-04)."""
        import ctranslate2
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(root / "sentencepiece.model"))
        self.translator = ctranslate2.Translator(str(root / "model"), device="cpu", compute_type=compute_type,
                                                 inter_threads=threads, intra_threads=1)

    def translate(self, texts: list[str], beam: int, length_penalty: float) -> list[str]:
        pieces = self.sp.encode(texts, out_type=str)
        results = self.translator.translate_batch(pieces, beam_size=beam, length_penalty=length_penalty,
                                                  max_batch_size=32, replace_unknowns=True)
        return [self.sp.decode(r.hypotheses[0]) for r in results]


ARGOS_SCRIPT = """
import json, sys
import argostranslate.package, argostranslate.translate
argostranslate.package.install_from_path(sys.argv[1])
(p,) = argostranslate.package.get_installed_packages()
print(json.dumps([argostranslate.translate.translate(t, p.from_code, p.to_code) for t in json.load(sys.stdin)]))
"""


def through_argos(package: Path, texts: list[str], beam: int, threads: int) -> list[str]:
    """`texts` translated by the real argostranslate, offline, in a scratch home (see
    tests/interop/test_argos.py's argos_env for why each variable is set)."""
    with tempfile.TemporaryDirectory(prefix="argos-home-") as home:
        h = Path(home)
        env = {**os.environ, "HOME": home, "XDG_DATA_HOME": str(h / "data"), "XDG_CONFIG_HOME": str(h / "config"),
               "XDG_CACHE_HOME": str(h / "cache"), "ARGOS_CHUNK_TYPE": "SPACY", "ARGOS_DEVICE_TYPE": "cpu",
               "ARGOS_BEAM_SIZE": str(beam), "ARGOS_INTRA_THREADS": str(threads), "ARGOS_INTER_THREADS": "1"}
        env.pop("ARGOS_PACKAGES_DIR", None)
        senter = h / "cache" / "argos-translate" / "spacy" / "senter"
        senter.mkdir(parents=True)
        (senter / "model").touch()
        proc = subprocess.run([sys.executable, "-c", ARGOS_SCRIPT, str(package)], env=env, input=json.dumps(texts),
                              capture_output=True, text=True, timeout=3600)
        if proc.returncode:
            sys.exit(f"bench/argos_package.py: argostranslate failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def scores(hyps: list[str], refs: list[str]) -> dict:
    return {s["name"]: {"score": round(s["score"], 2), "signature": s["signature"]}
            for s in score_corpus(hyps, [refs], ("bleu", "chrf"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", type=Path, required=True)
    ap.add_argument("--against", type=Path, nargs="*", default=[], help="nmt runs or checkpoints to time against")
    ap.add_argument("--data", type=Path, default=None, help="a prepared folder (default: the first --against run's)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--length-penalty", type=float, default=ARGOS_LENGTH_PENALTY)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--argos", action="store_true", help="also decode through argostranslate itself")
    ap.add_argument("--length-penalties", type=float, nargs="*", default=[],
                    help="also: CTranslate2's length penalty chosen on val among these")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    nmt_models = [Translator.from_checkpoint(p, beam_size=args.beam, split_sentences=False) for p in args.against]
    data = args.data or (Path(nmt_models[0].prepared_dir) if nmt_models else None)
    if data is None:
        sys.exit("bench/argos_package.py: give --data PREPARED_DIR or --against RUN")
    splits = load_prepared(data)[0]
    split = splits[args.split]
    texts, refs = list(split["src_text"]), list(split["tgt_text"])
    with tempfile.TemporaryDirectory(prefix="argos-package-") as tmp:
        root = unpack(args.package, Path(tmp))
        engines = {f"ctranslate2_{ct}": Ct2Package(root, ct, args.threads) for ct in ("float32", "int8")}
        out = {"package": str(args.package), "split": args.split, "sentences": len(texts), "beam": args.beam,
               "ctranslate2_length_penalty": args.length_penalty, "threads": args.threads,
               "cpu": cpu_name()}
        runs = {name: (lambda xs, e=e: e.translate(xs, args.beam, args.length_penalty)) for name, e in engines.items()}
        for path, tr in zip(args.against, nmt_models):
            runs[f"nmt:{path}"] = lambda xs, tr=tr: tr.detokenize(tr.translate_ids(tr.encode(xs)[0]))
        for run in runs.values():  # warm-up: allocations, thread pools
            run(texts[:64])
        seconds: dict[str, list[float]] = {k: [] for k in runs}
        hyps: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for name, run in runs.items():
                t0 = time.perf_counter()
                hyps[name] = run(texts)
                seconds[name].append(time.perf_counter() - t0)
        for name in runs:
            median = statistics.median(seconds[name])
            out[name] = {"seconds": round(median, 2), "sentences_per_s": round(len(texts) / median, 1),
                         **scores(hyps[name], refs)}
        base = statistics.median(seconds["ctranslate2_float32"])
        out["speedup_of_ctranslate2_float32_over"] = {name: round(statistics.median(seconds[name]) / base, 2)
                                                      for name in runs if name.startswith("nmt:")}
        out["speedup_of_ctranslate2_int8_over"] = {
            name: round(statistics.median(seconds[name]) / statistics.median(seconds["ctranslate2_int8"]), 2)
            for name in runs if name.startswith("nmt:")}
        if args.length_penalties:
            val = splits["valid"]
            val_texts, val_refs = list(val["src_text"]), list(val["tgt_text"])
            engine = engines["ctranslate2_float32"]
            on_val = {lp: scores(engine.translate(val_texts, args.beam, lp), val_refs)["BLEU"]["score"]
                      for lp in args.length_penalties}
            best = max(on_val, key=on_val.get)
            out["ctranslate2_float32_length_penalty_on_val"] = {
                "val_bleu": on_val, "chosen": best, "test": scores(engine.translate(texts, args.beam, best), refs)}
        if args.argos:
            t0 = time.perf_counter()
            argos = through_argos(args.package, texts, args.beam, args.threads)
            out["argostranslate"] = {"seconds_with_start": round(time.perf_counter() - t0, 1), **scores(argos, refs),
                                     "identical_to_ctranslate2_float32": sum(
                                         a == c for a, c in zip(argos, hyps["ctranslate2_float32"]))}
    print(json.dumps(out))


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()
