"""`nmt.calibrate`: a confidence per translated sentence, fitted on val (nmt.inference.calibrate_job).

    python -m nmt.calibrate ckpt=RUN [calibrate.split=valid] [calibrate.report_split=test]
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path) -> dict:
    from nmt.inference.calibrate_job import calibrate_job

    return calibrate_job(cfg, run_dir)


main = entry_point("calibrate", run)

if __name__ == "__main__":
    main()
