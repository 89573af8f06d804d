"""The real LibreTranslate server serves an nmt model: the exported .argosmodel installed into its
Argos data folder, `libretranslate` started on 127.0.0.1, translations asked for with
libretranslatepy. LibreTranslate lives in its own environment (it pins numpy<2 and its own Argos
fork): `make test-libretranslate` makes it and runs this; `make test` leaves it out (marker)."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import cli, free_port, stop
from interop.test_argos import argos_env, ended_greedy
from nmt.data.store import load_prepared
from nmt.inference.translator import Translator

pytestmark = pytest.mark.libretranslate
ROOT = Path(__file__).resolve().parents[2]


def libretranslate() -> Path:
    path = Path(os.environ.get("NMT_LIBRETRANSLATE") or ROOT / ".venv-libretranslate" / "bin" / "libretranslate")
    if not path.is_file():
        pytest.fail(f"no LibreTranslate at {path}. Fix: make test-libretranslate (makes .venv-libretranslate), or "
                    "NMT_LIBRETRANSLATE=PATH/bin/libretranslate")
    return path


def test_libretranslate_serves_an_exported_nmt_model(m30k_transformer_joint, tmp_path):
    from libretranslatepy import LibreTranslateAPI

    server = libretranslate()
    package = tmp_path / "de_en.argosmodel"
    rc, _, err = cli("export", f"ckpt={m30k_transformer_joint}", "export.format=argos", f"export.output={package}",
                     "export.score=false", f"hydra.run.dir={tmp_path / 'h'}")
    assert rc == 0, err
    home = tmp_path / "lt_home"
    env = argos_env(home)
    # with one package installed, LibreTranslate would fetch Argos's package index at start-up
    (home / "data" / "argos-translate").mkdir(parents=True)
    (home / "data" / "argos-translate" / "index.json").write_text("[]")
    python = server.parent / "python"
    subprocess.run([str(python), "-c", "import sys, argostranslate.package as p; p.install_from_path(sys.argv[1])",
                    str(package)], env=env, check=True, timeout=120)
    port = free_port()
    proc = subprocess.Popen([str(server), "--host", "127.0.0.1", "--port", str(port), "--load-only", "de,en",
                             "--disable-web-ui", "--disable-files-translation"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        api = LibreTranslateAPI(url)
        started = time.monotonic()
        deadline = started + 180
        while True:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            try:
                languages = api.languages()
                print(f"libretranslate: up in {time.monotonic() - started:.1f} s")
                break
            except Exception:  # not listening yet
                assert time.monotonic() < deadline, "LibreTranslate did not start in 180 s"
                time.sleep(1)
        assert {"code": "de", "name": "German"}.items() <= languages[0].items() or \
            any(lang["code"] == "de" and "en" in lang.get("targets", ["en"]) for lang in languages)

        tr = Translator.from_checkpoint(m30k_transformer_joint, decode="greedy")
        dd, _, _ = load_prepared(Path(tr.prepared_dir))
        split = dd["test"].select(range(30))
        ended, translations = ended_greedy(tr, split)
        ours = [translations[i] for i in ended]
        theirs = [api.translate(split[i]["src_text"], "de", "en") for i in ended]
        same = sum(a == b for a, b in zip(ours, theirs))
        print(f"libretranslate: answered after {time.monotonic() - started:.1f} s; {same} of {len(ended)} "
              "translations identical to nmt's")
        assert len(ended) >= 15 and same >= 0.9 * len(ended), json.dumps(list(zip(ours, theirs)), indent=1)
    finally:
        stop(proc)
