"""torchrun support: process group set-up, each rank's device and threads, one Hydra run dir for
all ranks, rank-0-only writes,
and leaving together: the process group is torn down by every rank at once, after the last rank
has finished its work (a rank that tears down while another still works can die with SIGABRT
and make torchrun report a finished run as failed)."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nmt.config.choices import Device


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def leave_together(self) -> None:
        """Wait for every rank, then tear the process group down (each rank calls this once on
        a path every rank takes; a second call does nothing)."""
        if self.enabled and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group torchrun describes in the environment (gloo on CPU, nccl on GPU)."""
    if not launched_by_torchrun():
        return DistInfo()
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def agree_on_run_dir() -> None:
    """Under torchrun every rank runs Hydra; rank 0 picks the run dir and the others use it and
    write no Hydra files of their own. Call before `@hydra.main` parses sys.argv."""
    if not launched_by_torchrun() or any(a.startswith("hydra.run.dir=") for a in sys.argv):
        return
    info = init_distributed()
    chosen = [time.strftime("outputs/%Y-%m-%d/%H-%M-%S") if info.is_main else None]
    dist.broadcast_object_list(chosen, src=0)
    sys.argv.append(f"hydra.run.dir={chosen[0]}")
    if not info.is_main:
        sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


def cpu_threads(asked: int, world_size: int) -> int:
    """train.threads (0: the cores shared among the local processes), at most the cores there are."""
    cores = os.cpu_count() or 1
    if asked > cores:
        print(f"train: note: train.threads={asked} but this machine has {cores} cores; using {cores} "
              "(more threads than cores slows every step)", file=sys.stderr)
    return min(asked, cores) if asked else max(1, cores // world_size)


def pick_device(device: Device, dist: DistInfo) -> torch.device:
    """train.device: cpu, cuda (check_config made sure there is one) or auto."""
    if device == Device.cpu or (device == Device.auto and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", dist.local_rank)
