"""Entry point: train an RNN encoder-decoder on a prepared dataset (nmt.training.Trainer).

    python -m nmt.train prepared_dir=OUT model=gru|lstm|rnn train.max_epochs=N [train.resume=RUN_DIR]
    torchrun --nproc-per-node=2 -m nmt.train prepared_dir=OUT ...
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli import entry_point


def run(cfg, run_dir: Path) -> dict:
    """Train as `cfg` says, writing checkpoints and metrics under `run_dir`; return a summary."""
    import torch

    from nmt.training.trainer import Trainer

    try:
        return Trainer(cfg, run_dir).fit()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _errors():
    from nmt.training.divergence import DivergedError
    from nmt.training.trainer import Interrupted

    return (DivergedError, Interrupted)


main = entry_point("train", run, _errors())


def cli() -> None:
    """`nmt-train` and `python -m nmt.train`: under torchrun the ranks first agree on one run dir."""
    from nmt.distributed import agree_on_run_dir

    agree_on_run_dir()
    main()


if __name__ == "__main__":
    cli()
