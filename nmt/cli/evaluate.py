"""`nmt.evaluate`: score a hypothesis file against reference files with sacreBLEU (nmt.analysis.scoring).

    python -m nmt.evaluate evaluate.hyp=FILE evaluate.ref=FILE [scoring.metrics=[bleu,chrf,ter]]
        [scoring.tokenize=13a] [scoring.lowercase=true]
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path) -> list[dict]:
    from nmt.analysis.scoring import evaluate_files

    return evaluate_files(cfg.evaluate, cfg.scoring, run_dir)


main = entry_point("evaluate", run)

if __name__ == "__main__":
    main()
