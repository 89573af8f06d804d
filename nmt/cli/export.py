"""Entry point: a checkpoint as a shareable model folder (nmt.model_folder).

    python -m nmt.export ckpt=RUN/checkpoints/best.pt export.output=models/de-en
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path) -> Path:
    from nmt.runs.model_folder import export

    return export(cfg)


main = entry_point("export", run)

if __name__ == "__main__":
    main()
