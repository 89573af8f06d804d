"""`nmt.translate`: translate a prepared split, a text file or standard input with a checkpoint
(nmt.inference.translate_job).

    python -m nmt.translate ckpt=RUN/checkpoints/best.pt translate.split=test decode=beam
    python -m nmt.translate ckpt=... translate.input=FILE translate.output=FILE [translate.ref=FILE]
    echo "Ein Hund läuft." | python -m nmt.translate ckpt=...
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path) -> dict:
    """Translate as `cfg.translate` says; return {hyps, scores, sentences_per_s, ...}."""
    from nmt.inference.translate_job import translate_job

    return translate_job(cfg, run_dir)


main = entry_point("translate", run)

if __name__ == "__main__":
    main()
