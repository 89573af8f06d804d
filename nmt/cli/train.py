"""`nmt.train`: train a model on a prepared dataset (nmt.training.trainer.Trainer), or several side
by side (nmt.training.members).

    python -m nmt.train prepared_dir=OUT model=gru|lstm|rnn train.max_epochs=N [train.resume=RUN_DIR]
    python -m nmt.train train.members=2 ...   # two seeds side by side, one ensemble
    torchrun --nproc-per-node=2 -m nmt.train prepared_dir=OUT ...
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path):
    """Train as `cfg` says, writing checkpoints and metrics under `run_dir`; return its RunSummary.
    train.members=N > 1: N member runs side by side under `run_dir` (nmt.training.members)."""
    from hydra.core.hydra_config import HydraConfig

    from nmt.training.members import train_run

    members_overrides = list(HydraConfig.get().overrides.task) if cfg.train.members > 1 else []  # what members are given
    return train_run(cfg, run_dir, members_overrides)


main = entry_point("train", run)


def refuse_busy_run_dir(argv: list[str]) -> None:
    """Before Hydra writes `.hydra/` into an explicit `hydra.run.dir=`, refuse it when a training
    is writing there (the Trainer holds the same lock for the whole run)."""
    import sys

    from nmt.files import RunDirBusy, run_dir_lock

    given = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    if given and Path(given[-1]).is_dir():
        try:
            with run_dir_lock(Path(given[-1]), "train"):
                pass
        except RunDirBusy as err:
            sys.exit(f"train: error: {err}")


def cli() -> None:
    """`nmt-train` and `python -m nmt.train`: a busy run dir is refused before Hydra writes to it;
    under torchrun the ranks first agree on one run dir."""
    import sys

    from nmt.training.distributed import agree_on_run_dir, launched_by_torchrun

    if not launched_by_torchrun():
        refuse_busy_run_dir(sys.argv)
    agree_on_run_dir()
    main()


if __name__ == "__main__":
    cli()
