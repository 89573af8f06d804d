"""`nmt.average`: average the weights of several checkpoints of one run (nmt.runs.average).

    python -m nmt.average average.inputs=[RUN/checkpoints/step_00004000.pt,...] average.output=avg.pt
    python -m nmt.average average.last_n=5 average.run=RUN average.output=RUN/checkpoints/avg5.pt
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path) -> Path:
    from nmt.runs.average import average_into

    return average_into(cfg.average)


main = entry_point("average", run)

if __name__ == "__main__":
    main()
