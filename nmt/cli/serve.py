"""`nmt.serve`: the HTTP translation server with dynamic batching (nmt.inference.server.app).

    python -m nmt.serve ckpt=RUN/checkpoints/best.pt [serve.host=127.0.0.1 serve.port=8000]
        [decode=beam decode.beam_size=5 decode.quantize=int8] [serve.max_wait_ms=2 serve.max_batch_sentences=64]
"""
from __future__ import annotations

from pathlib import Path

from nmt.cli.wrapper import entry_point


def run(cfg, run_dir: Path) -> None:
    """Load the checkpoint and serve until SIGTERM / Ctrl-C."""
    from nmt.inference.server.app import serve

    serve(cfg)


main = entry_point("serve", run)

if __name__ == "__main__":
    main()
