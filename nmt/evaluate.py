"""Entry point: score a hypothesis file against reference files with sacreBLEU.

    python -m nmt.evaluate hyp=FILE ref=FILE [metrics=[bleu,chrf,ter]] [tokenize=13a] [lowercase=true]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nmt.config import CONF_DIR, check_config
from nmt.corpus import CorpusError
from nmt.scoring import score_corpus


def read_lines(path: Path) -> list[str]:
    """A file's lines, split on "\\n" only (as sacrebleu reads them); clear errors for the rest."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise CorpusError(f"{path}:{line}: invalid UTF-8. Fix: re-encode the file as UTF-8") from None
    if not text:
        raise CorpusError(f"{path}: empty file. Fix: pass a file with one sentence a line")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def evaluate(hyp: Path, refs: list[Path], metrics, tokenize=None, lowercase=False) -> list[dict]:
    hyps = read_lines(hyp)
    ref_lines = [read_lines(r) for r in refs]
    for r, lines in zip(refs, ref_lines):
        if len(lines) != len(hyps):
            raise CorpusError(f"{hyp} has {len(hyps)} lines but {r} has {len(lines)}. "
                              "Fix: line N of the hypotheses must translate line N of each reference")
    return score_corpus(hyps, ref_lines, list(metrics), tokenize, lowercase)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    try:
        check_config(cfg)
    except ValueError as err:
        sys.exit(f"evaluate: error: {err}")
    if not cfg.hyp or not cfg.ref:
        sys.exit("evaluate: error: pass hyp=FILE and ref=FILE (or ref=[A,B] for several references)")
    refs = [cfg.ref] if isinstance(cfg.ref, str) else list(cfg.ref)
    try:
        scores = evaluate(Path(cfg.hyp), [Path(r) for r in refs], cfg.metrics, cfg.tokenize, cfg.lowercase)
    except (CorpusError, ValueError) as err:
        sys.exit(f"evaluate: error: {err}")
    for s in scores:
        print(s["line"])
    out = Path(HydraConfig.get().runtime.output_dir) / "scores.json"
    out.write_text(json.dumps({"hyp": cfg.hyp, "refs": refs, "scores": scores}, indent=2))
    print(f"evaluate: scores written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
