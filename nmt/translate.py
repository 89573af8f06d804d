"""Entry point: translate a prepared split, a text file or standard input with a checkpoint.

    python -m nmt.translate ckpt=RUN/checkpoints/best.pt split=test decode=beam
    python -m nmt.translate ckpt=... input=FILE output=FILE [ref=FILE]
    echo "Ein Hund läuft." | python -m nmt.translate ckpt=...
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from nmt.config import CONF_DIR, check_config
from nmt.collate import arrow_table
from nmt.corpus import decode_lines, read_parallel
from nmt.scoring import score_corpus
from nmt.store import load_prepared
from nmt.translator import Translator


def read_stdin(stream=None) -> list[str]:
    """All of standard input as lines split on "\\n" only (as files are read: a "\\r" or U+2028
    inside a line is part of it), validated as UTF-8 with the line of any error."""
    stream = stream if stream is not None else sys.stdin.buffer
    return decode_lines([stream.read()], "<stdin>", 1)


def iter_stdin(stream=None):
    """Standard input one line at a time (split on "\\n" only, UTF-8 checked), for pipes."""
    stream = stream if stream is not None else sys.stdin.buffer
    for n, raw in enumerate(iter(stream.readline, b""), start=1):
        yield decode_lines([raw], "<stdin>", n)[0]


def hyp_file_name(name: str) -> str:
    """hyp.NAME.txt for a split or an input file (in.de -> hyp.in.de.txt, a.txt.gz -> hyp.a.txt)."""
    for suffix in (".gz", ".txt"):
        name = name.removesuffix(suffix)
    return f"hyp.{name}.txt"


def read_text_file(path: Path) -> list[str]:
    """One sentence a line (plain or gzip), validated as prepare validates its inputs."""
    lines: list[str] = []
    for chunk, _ in read_parallel(Path(path), Path(path)):
        lines += chunk
    return lines


def plot_attention(tr: Translator, sources: list[list[int]], k: int, out_dir: Path) -> list[Path]:
    """Heatmaps of the first `k` sentences' attention (best hypothesis), as PNG files."""
    from nmt.plots import attention_heatmap

    sources = sources[:k]
    paths = []
    for i, (src, hyp) in enumerate(zip(sources, tr.decode_ids(sources, attention=True))):
        if not src:
            continue
        if hyp.attention is None:
            print("translate: this model has no attention; plots.n_attention ignored", file=sys.stderr)
            break
        out_tokens = tr.tgt_vocab.pieces(hyp.tokens) + ["</s>"]
        paths.append(attention_heatmap(hyp.attention.numpy(), tr.src_vocab.pieces(src), out_tokens,
                                       out_dir / f"attention_{i:03d}.png"))
    return paths


def load_translator(cfg: DictConfig) -> Translator:
    """The Translator for `ckpt=` with the `decode` group's options (and decode.quantize)."""
    if not cfg.ckpt:
        raise FileNotFoundError("no checkpoint given. Fix: ckpt=RUN_DIR/checkpoints/best.pt")
    quantize = None if cfg.decode.quantize == "none" else cfg.decode.quantize
    device = "cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" and not quantize else "cpu"
    return Translator.from_checkpoint(Path(cfg.ckpt), cfg.decode, device, quantize)


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Translate as `cfg` says; return {hyps, scores, sentences_per_s}."""
    check_config(cfg)
    tr = load_translator(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.input is None and not cfg.split:
        return interactive(tr)
    refs, ref_names = None, []
    started = time.time()
    if cfg.input is not None:
        texts = read_stdin() if cfg.input == "-" else read_text_file(Path(cfg.input))
        sources, _ = tr.encode(texts)
        name = "stdin" if cfg.input == "-" else Path(cfg.input).name
        if cfg.ref:
            ref_names = [cfg.ref] if isinstance(cfg.ref, str) else list(cfg.ref)
            refs = [read_text_file(Path(r)) for r in ref_names]
    else:
        prepared = Path(tr.info.get("prepared_dir") or cfg.prepared_dir)
        prepared = prepared if prepared.is_dir() else Path(cfg.prepared_dir)
        dd, _, _ = load_prepared(prepared)
        if cfg.split not in dd:
            raise ValueError(f"split={cfg.split!r} is not in {prepared} (it has {list(dd)})")
        split, name = dd[cfg.split], cfg.split
        sources = arrow_table(split).column("src_ids").to_pylist()
        refs, ref_names = [split["tgt_text"]], [f"split {cfg.split}"]
    hyps = tr.decode_ids(sources)
    seconds = time.time() - started
    lines = tr.detokenize(hyps)
    run_copy = run_dir / hyp_file_name(name)
    out_file = Path(cfg.output) if cfg.output else run_copy
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("".join(l + "\n" for l in lines), encoding="utf-8")
    if out_file.resolve() != run_copy.resolve():
        run_copy.write_text(out_file.read_text(encoding="utf-8"), encoding="utf-8")
    result = {"sentences": len(lines), "seconds": round(seconds, 3),
              "sentences_per_s": round(len(lines) / max(seconds, 1e-9), 1), "decode": tr.decode.kind,
              "beam_size": tr.decode.beam_size if tr.decode.kind == "beam" else 1,
              "quantize": tr.info.get("quantize", "none"), "hyp_file": str(out_file)}
    print(f"translate: {len(lines)} sentences in {seconds:.1f}s ({result['sentences_per_s']} sentences/s), "
          f"{tr.decode.kind} search; hypotheses in {out_file}", file=sys.stderr)
    if refs is not None:
        for ref_name, r in zip(ref_names, refs):
            if len(r) != len(lines):
                raise ValueError(f"{ref_name}: the reference has {len(r)} lines but the input has {len(lines)}. "
                                 "Fix: pass the reference whose line N translates input line N")
        result["scores"] = score_corpus(lines, refs, cfg.metrics, cfg.tokenize, cfg.lowercase)
        for s in result["scores"]:
            print(s["line"])
        (run_dir / f"scores.{name}.json").write_text(json.dumps(result, indent=2))
    if cfg.plots.n_attention:
        paths = plot_attention(tr, sources, cfg.plots.n_attention, run_dir)
        print(f"translate: {len(paths)} attention heatmaps in {run_dir}", file=sys.stderr)
    result["hyps"] = lines
    return result


def interactive(tr: Translator) -> dict:
    """Translate standard input line by line, flushing each translation (usable in pipes)."""
    n = 0
    if sys.stdin.isatty():
        print("translate: type a sentence, Enter to translate, Ctrl-D to end", file=sys.stderr)
    for line in iter_stdin():
        print(tr.translate([line])[0], flush=True)
        n += 1
    return {"sentences": n}


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"translate: error: {err}")


if __name__ == "__main__":
    main()
