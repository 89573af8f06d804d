"""The one wrapper behind every entry point (`python -m nmt.X`, `nmt-X`): Hydra composes the
config from conf/, old flat keys move to their groups (with a note), the config is checked,
the program runs in its Hydra run dir, and a user-facing error ends it with one line
`X: error: ...` and exit status 1 (no traceback)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from nmt.config.schema import CONF_DIR
from nmt.config.rules import check_config, upgrade_deprecated_keys

# bad input, bad config, missing or damaged files: all raise subclasses of these
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError)


def entry_point(program: str, run: Callable[[Any, Path], Any],
                errors: tuple[type[BaseException], ...] = ()) -> Callable[[], None]:
    """The `main()` of program `program`: `run(cfg, run_dir)` under Hydra, errors as one line."""
    import hydra

    def task(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig

        try:
            upgrade_deprecated_keys(cfg, program)
            check_config(cfg)
            run(cfg, Path(HydraConfig.get().runtime.output_dir))
        except USER_ERRORS + errors as err:
            sys.exit(f"{program}: error: {err}")

    # Hydra names the job (and its log file) after the task's module: the program's, not this one
    task.__module__ = f"nmt.{program}"
    task.__qualname__ = task.__name__ = "main"
    return hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")(task)
