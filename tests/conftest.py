"""Shared fixtures: the real config composed with overrides, and the real Multi30k."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import nmt.config  # noqa: F401  (registers the schema)

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"


def make_cfg(*overrides: str):
    """Compose conf/config.yaml exactly as the entry points do, with overrides."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=list(overrides))


def write_lines(path: Path, lines: list[str] | bytes, gz: bool = False) -> Path:
    data = lines if isinstance(lines, bytes) else "".join(f"{l}\n" for l in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture(scope="session")
def multi30k_dir() -> Path:
    if not (MULTI30K / "train.de.gz").is_file():
        pytest.fail(f"{MULTI30K} is missing: the tests need ../shared beside the checkout")
    return MULTI30K


@pytest.fixture(scope="session")
def prepared_spm(tmp_path_factory, multi30k_dir) -> Path:
    """Multi30k de->en prepared once per session with the default (spm) vocab."""
    from nmt.prepare import prepare

    out = tmp_path_factory.mktemp("prepared") / "m30k_spm"
    prepare(make_cfg(f"data.root={multi30k_dir}", f"prepared_dir={out}"))
    return out
