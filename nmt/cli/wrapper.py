"""The one wrapper behind every program (`python -m nmt.X`, `nmt-X`): Hydra composes the config
from conf/, old flat keys move to their groups (with a note), the config is checked, the program
runs in its Hydra run dir. An `NmtError` (the user's mistake) ends it with one line
`X: error: ...` and exit status 1; any other exception is a bug: its traceback is printed, then a
line asking for a report."""
from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from nmt.config.rules import check_config, upgrade_deprecated_keys
from nmt.config.schema import CONF_DIR
from nmt.errors import NmtError

BUG_LINE = ("{program}: internal error: the traceback above is a bug in nmt or a library it uses, not a mistake "
            "in your input. Please report it with the traceback and the command")


def entry_point(program: str, run: Callable[[Any, Path], Any]) -> Callable[[], None]:
    """The `main()` of program `program`: `run(cfg, run_dir)` under Hydra, user errors as one line."""
    import hydra

    def task(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig

        try:
            upgrade_deprecated_keys(cfg, program)
            check_config(cfg)
            run(cfg, Path(HydraConfig.get().runtime.output_dir))
        except NmtError as err:
            sys.exit(f"{program}: error: {err}")
        except Exception:  # Hydra would shorten it; a bug's traceback is what a report needs
            traceback.print_exc()
            sys.exit(BUG_LINE.format(program=program))

    # Hydra names the job (and its log file) after the task's module: the program's, not this one
    task.__module__ = f"nmt.{program}"
    task.__qualname__ = task.__name__ = "main"
    return hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")(task)
