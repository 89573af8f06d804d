"""`nmt.prepare`: raw parallel text -> cleaned -> vocab -> ids -> Arrow dataset under data/
(the pipeline: nmt.preparation).

    python -m nmt.prepare data=multi30k data.root=DIR vocab=spm prepared_dir=OUT [prepare.force=true]
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path) -> Path:
    from nmt.data.prepare import prepare

    return prepare(cfg)


main = entry_point("prepare", run)

if __name__ == "__main__":
    main()
