"""`nmt.distill`: sequence-level knowledge distillation. The teacher translates the training source
with beam search (nmt.training.distilled_data), then a student (the model and train groups, as for
nmt.train) is trained on those translations.

    python -m nmt.distill distill.teacher=RUN_DIR [model.hidden_dim=128] [train.max_minutes=30]
    python -m nmt.distill distill.teacher=RUN_DIR distill.train=false   # the data only (then torchrun nmt.train)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path):
    """Build (or reuse) the distilled data, then train the student in `run_dir` on it; return
    the student's RunSummary (None with distill.train=false)."""
    from nmt.config.rules import ConfigError
    from nmt.training.distilled_data import build_distilled_data
    from nmt.training.distributed import launched_by_torchrun

    if launched_by_torchrun():
        raise ConfigError("nmt.distill translates in one process. Fix: python -m nmt.distill distill.train=false "
                          "(it prints the distilled prepared_dir), then torchrun ... -m nmt.train prepared_dir=THAT")
    distilled = build_distilled_data(cfg)
    print(f"distill: the student's data: prepared_dir={distilled.prepared_dir}", file=sys.stderr)
    if not cfg.distill.train:
        return None
    from hydra.core.hydra_config import HydraConfig

    from nmt.training.members import train_run

    cfg.prepared_dir = str(distilled.prepared_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "distill.json").write_text(json.dumps(
        {**distilled.info, "distilled_prepared_dir": str(distilled.prepared_dir.resolve())}, indent=2) + "\n")
    overrides = list(HydraConfig.get().overrides.task) if cfg.train.members > 1 else []  # what members are given
    return train_run(cfg, run_dir, overrides, replace={"prepared_dir": cfg.prepared_dir})  # members train on it too


main = entry_point("distill", run)

if __name__ == "__main__":
    main()
