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

import datasets
import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from nmt.config import check_config
from nmt.checkpoint import load_checkpoint, model_from_checkpoint
from nmt.corpus import DropCounts, clean_chunk, decode_lines, read_parallel
from nmt.encode import encode_source
from nmt.scoring import score_corpus
from nmt.search import Hypothesis
from nmt.store import load_prepared
from nmt.validate import translate_split
from nmt.vocab import EOS_ID, SOS_ID


class Translator:
    """A checkpoint's model and vocabs, with the preprocessing it was trained with."""

    def __init__(self, ckpt_path: Path, device: str = "cpu"):
        self.ckpt = load_checkpoint(ckpt_path)
        self.model, self.src_vocab, self.tgt_vocab, self.model_cfg = model_from_checkpoint(self.ckpt, device)
        self.preprocess = OmegaConf.create(self.ckpt["preprocess"])
        self.device = device

    def texts_to_split(self, texts: list[str]) -> datasets.Dataset:
        """Raw sentences -> a split shaped like a prepared one (cleaned as in prepare, no filtering).
        Sources are not truncated: an RNN reads any length, so nothing the user wrote is dropped;
        a note on stderr counts the lines longer than any the model was trained on."""
        from nmt.config import PreprocessConfig

        pp = OmegaConf.merge(OmegaConf.structured(PreprocessConfig), self.preprocess)
        clean, _ = clean_chunk((texts, texts), pp, False, DropCounts())
        ids = encode_source(self.src_vocab, clean, None)
        longer = sum(len(i) > pp.max_len for i in ids)
        if longer:
            print(f"translate: note: {longer} input line(s) are longer than the training length limit "
                  f"(preprocess.max_len={pp.max_len} tokens); they are translated whole", file=sys.stderr)
        return datasets.Dataset.from_dict({
            "src_ids": ids, "tgt_ids": [[SOS_ID, EOS_ID]] * len(ids), "src_len": [len(i) for i in ids],
            "tgt_len": [2] * len(ids), "src_text": clean, "tgt_text": [""] * len(ids)})

    def translate(self, split: datasets.Dataset, decode_cfg) -> list:
        """Hypotheses for every example of a split, in its order; an empty source gets an empty
        hypothesis without being decoded (empty in, empty out)."""
        lengths = split["src_len"]
        nonempty = [i for i, n in enumerate(lengths) if n > 0]
        hyps = [Hypothesis([], 0.0) for _ in lengths]
        if nonempty:
            sub = split if len(nonempty) == len(lengths) else split.select(nonempty)
            for i, h in zip(nonempty, translate_split(self.model, sub, self.tgt_vocab, self.device, decode_cfg)):
                hyps[i] = h
        return hyps

    def detok(self, hyps) -> list[str]:
        return [self.tgt_vocab.decode(h.tokens) for h in hyps]


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


def plot_attention(tr: Translator, split, decode_cfg, k: int, out_dir: Path) -> list[Path]:
    from nmt.plots import attention_heatmap
    from nmt.search import search

    sub = split.select(range(min(k, len(split))))
    paths = []
    for i, row in enumerate(sub):
        src = torch.tensor([row["src_ids"] or [tr.src_vocab.pad_id]], device=tr.device)
        hyp = search(tr.model, src, torch.tensor([max(len(row["src_ids"]), 1)]), decode_cfg, return_attention=True)[0]
        if hyp.attention is None:
            print("translate: this model has no attention; plots.n_attention ignored", file=sys.stderr)
            break
        out_tokens = tr.tgt_vocab.pieces(hyp.tokens) + ["</s>"]
        paths.append(attention_heatmap(hyp.attention.numpy(), tr.src_vocab.pieces(row["src_ids"]), out_tokens,
                                       out_dir / f"attention_{i:03d}.png"))
    return paths


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Translate as `cfg` says; return {hyps, scores, sentences_per_s}."""
    check_config(cfg)
    if not cfg.ckpt:
        raise FileNotFoundError("no checkpoint given. Fix: ckpt=RUN_DIR/checkpoints/best.pt")
    device = "cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu"
    tr = Translator(Path(cfg.ckpt), device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.input is None and not cfg.split:
        return interactive(tr, cfg.decode)
    refs = None
    if cfg.input is not None:
        texts = read_stdin() if cfg.input == "-" else read_text_file(Path(cfg.input))
        split = tr.texts_to_split(texts)
        name = "stdin" if cfg.input == "-" else Path(cfg.input).name
        if cfg.ref:
            refs = [read_text_file(Path(r)) for r in ([cfg.ref] if isinstance(cfg.ref, str) else cfg.ref)]
    else:
        prepared = Path(tr.ckpt["prepared"]["dir"])
        prepared = prepared if prepared.is_dir() else Path(cfg.prepared_dir)
        dd, _, _ = load_prepared(prepared)
        if cfg.split not in dd:
            raise ValueError(f"split={cfg.split!r} is not in {prepared} (it has {list(dd)})")
        split, name = dd[cfg.split], cfg.split
        refs = [split["tgt_text"]]
    started = time.time()
    hyps = tr.translate(split, cfg.decode)
    seconds = time.time() - started
    lines = tr.detok(hyps)
    run_copy = run_dir / hyp_file_name(name)
    out_file = Path(cfg.output) if cfg.output else run_copy
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text("".join(l + "\n" for l in lines), encoding="utf-8")
    if out_file.resolve() != run_copy.resolve():
        run_copy.write_text(out_file.read_text(encoding="utf-8"), encoding="utf-8")
    result = {"sentences": len(lines), "seconds": round(seconds, 3),
              "sentences_per_s": round(len(lines) / max(seconds, 1e-9), 1), "decode": cfg.decode.kind,
              "beam_size": cfg.decode.beam_size if cfg.decode.kind == "beam" else 1, "hyp_file": str(out_file)}
    print(f"translate: {len(lines)} sentences in {seconds:.1f}s ({result['sentences_per_s']} sentences/s), "
          f"{cfg.decode.kind} search; hypotheses in {out_file}", file=sys.stderr)
    if refs is not None:
        ref_names = ([cfg.ref] if isinstance(cfg.ref, str) else list(cfg.ref)) if cfg.input is not None \
            else [f"split {cfg.split}"]
        for ref_name, r in zip(ref_names, refs):
            if len(r) != len(lines):
                raise ValueError(f"{ref_name}: the reference has {len(r)} lines but the input has {len(lines)}. "
                                 "Fix: pass the reference whose line N translates input line N")
        result["scores"] = score_corpus(lines, refs, cfg.metrics, cfg.tokenize, cfg.lowercase)
        for s in result["scores"]:
            print(s["line"])
        (run_dir / f"scores.{name}.json").write_text(json.dumps(result, indent=2))
    if cfg.plots.n_attention:
        paths = plot_attention(tr, split, cfg.decode, cfg.plots.n_attention, run_dir)
        print(f"translate: {len(paths)} attention heatmaps in {run_dir}", file=sys.stderr)
    result["hyps"] = lines
    return result


def interactive(tr: Translator, decode_cfg) -> dict:
    """Translate standard input line by line, flushing each translation (usable in pipes)."""
    n = 0
    if sys.stdin.isatty():
        print("translate: type a sentence, Enter to translate, Ctrl-D to end", file=sys.stderr)
    for line in iter_stdin():
        hyp = tr.translate(tr.texts_to_split([line]), decode_cfg)
        print(tr.detok(hyp)[0], flush=True)
        n += 1
    return {"sentences": n}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        run(cfg, Path(HydraConfig.get().runtime.output_dir))
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"translate: error: {err}")


if __name__ == "__main__":
    main()
