"""`nmt.diagnose`: what vanishing gradients look like (nmt.analysis.gradients), for one or more
models: checkpoints, run folders (the checkpoint each recommends) or model folders.

    python -m nmt.diagnose ckpt=RUN
    python -m nmt.diagnose diagnose.ckpts=[A/checkpoints/best.pt,B/checkpoints/best.pt] prepared_dir=data/...
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point
from nmt.config.rules import ConfigError


def run(cfg, run_dir: Path) -> Path:
    from nmt.analysis.gradients import diagnose, plot, report
    from nmt.config.rules import ckpt_list
    from nmt.runs.run_folder import run_checkpoints

    paths = [c for p in ckpt_list(cfg.ckpt) + list(cfg.diagnose.ckpts) for c in run_checkpoints(Path(p))]
    if not paths:
        raise ConfigError("no checkpoint given. Fix: ckpt=RUN or ckpt=RUN/checkpoints/best.pt, or diagnose.ckpts=[A,B]")
    named = {}
    for p in paths:  # RUN/checkpoints/best.pt -> RUN (the run says which model it is)
        named[p.parents[1].name if p.parent.name == "checkpoints" else p.stem] = p
    length, results = diagnose(named, Path(cfg.prepared_dir), cfg.diagnose.split, cfg.diagnose.sentences,
                               cfg.diagnose.length, cfg.max_params)
    png = plot(length, results, cfg.diagnose.sentences, Path(cfg.diagnose.output or run_dir / "gradients.png"))
    print(report(length, results))
    print(f"diagnose: {png}")
    return png


main = entry_point("diagnose", run)

if __name__ == "__main__":
    main()
