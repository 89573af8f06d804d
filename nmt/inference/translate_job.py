"""The `nmt.translate` program: translate a text file, all of stdin, stdin line by line, or a
prepared split; write the hypotheses, score them against references, plot attention."""
from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nmt.analysis.scoring import as_list, score_corpus
from nmt.data.store import PreparedDataError, load_prepared, split_table
from nmt.data.textio import check_references, iter_stdin, read_lines, read_stdin
from nmt.files import atomic_file, check_output_file
from nmt.inference.sentences import TextLayout
from nmt.inference.translator import Translator


LINE_BREAKS = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")  # what str.splitlines splits on


@dataclass
class Job:
    """What to translate: source ids, a name for the output files, references (with names)."""

    name: str
    sources: list[list[int]]
    refs: list[list[str]] = field(default_factory=list)
    ref_names: list[str] = field(default_factory=list)
    layouts: list[TextLayout] | None = None  # input lines cut into sentences (sources); None: a sentence each

    def lines(self, translations: list[str]) -> list[str]:
        """The translations of `sources` as output lines (each line's sentences joined back; a
        "\r" or U+2028 the input line held between sentences becomes a space: one line in, one out)."""
        if self.layouts is None:
            return translations
        it = iter(translations)
        return [LINE_BREAKS.sub(" ", layout.join([next(it) for _ in layout.sentences])) for layout in self.layouts]


def hyp_file_name(name: str) -> str:
    """hyp.NAME.txt for a split or an input file (in.de -> hyp.in.de.txt, a.txt.gz -> hyp.a.txt)."""
    for suffix in (".gz", ".txt"):
        name = name.removesuffix(suffix)
    return f"hyp.{name}.txt"


def text_job(tr: Translator, tcfg) -> Job:
    """`translate.input=FILE` (or `-`: all of stdin), with `translate.ref` references."""
    texts = read_stdin() if tcfg.input == "-" else read_lines(Path(tcfg.input))
    layouts = tr.layouts(texts)  # a line of several sentences is translated sentence by sentence
    sources, _ = tr.encode([s for layout in layouts for s in layout.sentences])
    ref_names = as_list(tcfg.ref)
    refs = [read_lines(Path(r)) for r in ref_names]
    return Job("stdin" if tcfg.input == "-" else Path(tcfg.input).name, sources, refs, ref_names, layouts)


def split_job(tr: Translator, split_name: str, fallback_dir: str) -> Job:
    """`translate.split=NAME` of the folder the model's data was prepared in (else `prepared_dir`),
    which must hold the vocabularies the model was trained with."""
    from nmt.data.store import VOCAB_DIR
    from nmt.runs.checkpoint import vocab_files, vocab_fingerprint

    prepared = Path(tr.prepared_dir or fallback_dir)
    prepared = prepared if (prepared / VOCAB_DIR).is_dir() else Path(fallback_dir)
    data, _, _ = load_prepared(prepared)
    if tr.vocab_fingerprint and vocab_fingerprint(vocab_files(prepared / VOCAB_DIR)) != tr.vocab_fingerprint:
        raise PreparedDataError(f"translate.split={split_name}: {prepared} holds other vocabularies than the checkpoint was "
                         f"trained with (prepared in {tr.prepared_dir}), so its ids would be read as other pieces. "
                         "Fix: prepared_dir= the folder the model was trained on, or translate.input=FILE with raw text")
    if split_name not in data:
        raise PreparedDataError(f"translate.split={split_name!r} is not in {prepared} (it has {list(data)})")
    table = split_table(data[split_name])
    return Job(split_name, table.column("src_ids").to_pylist(), [table.column("tgt_text").to_pylist()],
               [f"split {split_name}"])


def writes_stdout(tcfg) -> bool:
    """Unix conventions: `translate.output=-`, or stdin in (`translate.input=-`) with no output
    named, write the translations to standard output (and nothing else there)."""
    return tcfg.output == "-" or (tcfg.input == "-" and tcfg.output is None)


def write_hypotheses(lines: list[str], output: str | None, run_dir: Path, name: str, to_stdout: bool) -> str:
    """The hypotheses to `output` (default: hyp.NAME.txt in the run dir) or standard output,
    with a copy in the run dir; where they went. A file is written under a scratch name and
    renamed into place (a device such as /dev/null is written directly)."""
    run_copy = run_dir / hyp_file_name(name)
    text = "".join(line + "\n" for line in lines)
    write_text_atomically(run_copy, text)
    if to_stdout:
        sys.stdout.write(text)
        sys.stdout.flush()
        return "<stdout>"
    out_file = Path(output) if output else run_copy
    if out_file.resolve() != run_copy.resolve():
        if out_file.exists() and not out_file.is_file():
            out_file.write_text(text, encoding="utf-8")
        else:
            write_text_atomically(out_file, text)
    return str(out_file)


def write_sentence_scores(job: Job, hyps, confidence: list, run_dir: Path) -> Path:
    """sentences.NAME.tsv in the run dir: per output line its log-probability and confidence in
    [0, 1] (null without a calibration: python -m nmt.calibrate). A line of several sentences adds
    their log-probabilities and averages their confidences."""
    per_line = [[(h.score, c)] for h, c in zip(hyps, confidence)]
    if job.layouts is not None:
        it = iter(zip(hyps, confidence))
        per_line = [[(h.score, c) for h, c in (next(it) for _ in layout.sentences)] for layout in job.layouts]
    rows = ["line\tlog_probability\tconfidence\n"]
    for n, parts in enumerate(per_line, start=1):
        known = [c for _, c in parts if c is not None]
        conf = f"{sum(known) / len(known):.4f}" if known and len(known) == len(parts) else "null"
        rows.append(f"{n}\t{sum(s for s, _ in parts):.4f}\t{conf}\n")
    path = run_dir / f"sentences.{hyp_file_name(job.name).removeprefix('hyp.').removesuffix('.txt')}.tsv"
    write_text_atomically(path, "".join(rows))
    return path


def write_text_atomically(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def plot_attention(tr: Translator, sources: list[list[int]], k: int, out_dir: Path) -> list[Path]:
    """Heatmaps of the first `k` sentences' attention (best hypothesis), as PNG files."""
    from nmt.analysis.plots import attention_heatmap

    sources = sources[:k]
    paths = []
    for i, (src, hyp) in enumerate(zip(sources, tr.translate_ids(sources, attention=True))):
        if not src:
            continue
        if hyp.attention is None:
            print("translate: this model has no attention; plots.n_attention ignored", file=sys.stderr)
            break
        out_tokens = tr.tgt_vocab.pieces(hyp.tokens) + ["</s>"]
        title = f"{tr.tgt_vocab.to_text(hyp.tokens)}\nlog-probability {hyp.score:.2f} ({len(hyp.tokens) + 1} pieces)"
        paths.append(attention_heatmap(hyp.attention.numpy(), tr.src_vocab.pieces(src), out_tokens,
                                       out_dir / f"attention_{i:03d}.png", title))
    return paths


def translate_job(cfg, run_dir: Path) -> dict:
    """Translate as `cfg.translate` says with the checkpoint `cfg.ckpt`; return {hyps, scores?, ...}."""
    tr = Translator.from_config(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tcfg = cfg.translate
    if tcfg.input is None and not tcfg.split:
        return interactive(tr)
    started = time.time()
    job = text_job(tr, tcfg) if tcfg.input is not None else split_job(tr, tcfg.split, cfg.prepared_dir)
    to_stdout = writes_stdout(tcfg)
    check_output_file(Path(tcfg.output) if tcfg.output and not to_stdout else run_dir / hyp_file_name(job.name),
                      "translate.output")  # before decoding, not after
    attention = bool(tr.calibration and tr.calibration.needs_attention)  # the RNN's confidence reads it
    hyps = tr.translate_ids(job.sources, attention=attention, progress=True)
    lines = job.lines(tr.detokenize(hyps))
    seconds = time.time() - started
    out_file = write_hypotheses(lines, tcfg.output, run_dir, job.name, to_stdout)
    sentence_file = write_sentence_scores(job, hyps, tr.confidences(job.sources, hyps), run_dir)
    result = {"sentences": len(lines), "seconds": round(seconds, 3),
              "sentences_per_s": round(len(lines) / max(seconds, 1e-9), 1), "decode": str(tr.options.kind),
              "beam_size": tr.options.beam_size if tr.options.kind == "beam" else 1,
              "quantize": tr.info.get("quantize", "none"), "hyp_file": out_file,
              "sentence_scores_file": str(sentence_file), "calibrated": tr.calibration is not None}
    search = f"{tr.options.kind} search"
    if tr.options.kind == "beam":
        result["length_penalty"] = tr.options.length_penalty
        search = f"beam search ({tr.options.beam_size}, length penalty {tr.options.length_penalty:g})"
    print(f"translate: {len(lines)} sentences in {seconds:.1f}s ({result['sentences_per_s']} sentences/s), "
          f"{search}; hypotheses in {out_file}", file=sys.stderr)
    if job.refs:
        check_references(job.refs, job.ref_names, len(lines), "the input")
        s = cfg.scoring
        result["scores"] = score_corpus(lines, job.refs, s.metrics, s.tokenize, s.lowercase)
        for score in result["scores"]:  # on stderr when stdout carries the translations
            print(score["line"], file=sys.stderr if to_stdout else sys.stdout)
        (run_dir / f"scores.{job.name}.json").write_text(json.dumps(result, indent=2))
    if cfg.plots.n_attention:
        paths = plot_attention(tr, job.sources, cfg.plots.n_attention, run_dir)
        print(f"translate: {len(paths)} attention heatmaps in {run_dir}", file=sys.stderr)
    result["hyps"] = lines
    return result


def interactive(tr: Translator) -> dict:
    """Translate standard input line by line, flushing each translation (usable in pipes)."""
    n = 0
    if sys.stdin.isatty():
        print("translate: type a sentence, Enter to translate, Ctrl-D to end", file=sys.stderr)
    for line in iter_stdin():
        print(LINE_BREAKS.sub(" ", tr.translate([line])[0]), flush=True)  # one line in, one line out
        n += 1
    return {"sentences": n}
