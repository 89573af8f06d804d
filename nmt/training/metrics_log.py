"""The training log: metrics.jsonl (one JSON object a line), TensorBoard events when
tensorboard is installed, and the learning-curve PNG drawn from it at the end; rank 0 only."""
from __future__ import annotations

import json
from pathlib import Path


class MetricsLog:
    def __init__(self, run_dir: Path, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.file = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
            except ImportError:
                pass

    def write(self, kind: str, step: int, **values) -> None:
        if not self.enabled:
            return
        with open(self.file, "a") as f:
            f.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self, curves_png: Path | None = None) -> None:
        """Close the event writer; draw the learning curves into `curves_png` if given."""
        if self.tb is not None:
            self.tb.close()
        if self.enabled and curves_png is not None and self.file.is_file():
            from nmt.analysis.plots import learning_curves

            learning_curves(self.file, curves_png)
