"""Shared by the benchmarks: the repository root and the checkpoint to measure by default."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def newest_checkpoint(bench: str) -> Path:
    """The most recently written outputs/**/checkpoints/best.pt, or exit with the fix."""
    found = sorted((ROOT / "outputs").glob("**/checkpoints/best.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        sys.exit(f"{bench}: no outputs/**/checkpoints/best.pt. Fix: train one (make demo) or pass --ckpt")
    return found[-1]
