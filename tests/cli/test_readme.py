"""Every command README.md shows runs, as written, at tiny sizes: the README's Multi30k path is a
tiny corpus here, and each program gets overrides that shrink the model and the budget (appended,
so they win). Programs run in this process where a process adds nothing (tests/cli/test_programs.py
runs them as processes); the members run, the server, curl and the Python snippet run as
processes. `make demo` and `make test` are what CI and the demo run themselves."""
import gzip
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
from helpers import ENV, free_port, stop

from conftest import ROOT, TINY_DE, TINY_EN, TINY_MODEL, write_lines

SHRINK = {  # program -> overrides appended to the README's command
    "prepare": ["vocab=word"],
    "train": ["vocab=word", *TINY_MODEL, "train.max_steps=6", "train.checkpoint_every=2", "train.val_bleu=false",
              "train.early_stopping_metric=loss", "train.length_penalties=[]"],
    "distill": ["vocab=word", *TINY_MODEL, "train.max_steps=4", "train.val_bleu=false", "train.early_stopping_metric=loss",
                "train.length_penalties=[]", "distill.beam_size=2", "decode.max_len_b=3"],
    "translate": ["vocab=word", "decode.max_len_b=3"],
    "evaluate": [],
    "calibrate": ["vocab=word", "decode.max_len_b=3"],
    "average": [],
    "export": ["vocab=word", "decode.max_len_b=3"],
    "serve": ["vocab=word", "serve.log_level=warning"],
    "diagnose": ["vocab=word", "diagnose.sentences=4"],
}


INTEROP = importlib.util.find_spec("ctranslate2") is not None and importlib.util.find_spec("spacy") is not None
# commands whose model needs SentencePiece vocabularies (the rest run on words, faster)
SENTENCEPIECE = {"model=transformer", "export.format=argos", "vocab=joint"}


def readme_commands() -> list[str]:
    """The shell commands README.md shows (indented blocks), in order, and its Python block."""
    text = (ROOT / "README.md").read_text()
    return [line.split("  #")[0].strip() for line in text.splitlines()
            if line.startswith("    ") and line.strip().split(" ", 1)[0] in ("python", "curl", "make")]


def readme_python() -> str:
    return re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)


def tiny_world(tmp_path):
    """cwd for the commands: ../shared/data/multi30k is a tiny corpus, corpus/ the data=files example."""
    multi30k = tmp_path / "shared" / "data" / "multi30k"
    multi30k.mkdir(parents=True)
    for split, n in (("train", 3), ("val", 1), ("test_2016_flickr", 1)):
        for lang, lines in (("de", TINY_DE), ("en", TINY_EN)):
            (multi30k / f"{split}.{lang}.gz").write_bytes(gzip.compress("".join(s + "\n" for s in lines * n).encode()))
    work = tmp_path / "work"
    (work / "corpus").mkdir(parents=True)
    for name, lines in (("train.de", TINY_DE), ("train.en", TINY_EN), ("val.de", TINY_DE), ("val.en", TINY_EN)):
        write_lines(work / "corpus" / name, lines)
    return work


def run_in_process(program: str, args: list[str], default_run_dir):
    """What `python -m nmt.PROGRAM ARGS` runs, in this process (the same composition, checks and
    run function as the program's wrapper); the members run and the server stay processes."""
    import importlib

    from conftest import make_cfg
    from nmt.config.rules import check_config, upgrade_deprecated_keys

    run_dir = next((a.split("=", 1)[1] for a in args if a.startswith("hydra.run.dir=")), default_run_dir)
    cfg = make_cfg(*[a for a in args if not a.startswith("hydra.")])
    upgrade_deprecated_keys(cfg, program)
    check_config(cfg)
    Path(run_dir).mkdir(parents=True, exist_ok=True)  # as Hydra makes it
    return importlib.import_module(f"nmt.cli.{program}").run(cfg, Path(run_dir))


def test_every_readme_command_runs_as_written(tmp_path, monkeypatch):
    commands = readme_commands()
    programs = [shlex.split(c)[2].removeprefix("nmt.") for c in commands if c.startswith("python -m nmt.")]
    assert set(programs) == set(SHRINK), f"the README's programs {programs}: give each one its SHRINK overrides"
    assert {c for c in commands if c.startswith("make")} == {"make demo", "make test"}
    work = tiny_world(tmp_path)
    monkeypatch.chdir(work)
    server, port = None, None
    try:
        for k, command in enumerate(commands):
            words = shlex.split(command)
            if words[0] == "make":
                continue  # the demo and the tests themselves
            if words[0] == "curl":
                assert server is not None, "the README shows curl before serve"
                url = next(w for w in words if "localhost:" in w).replace("localhost:8000", f"127.0.0.1:{port}")
                r = subprocess.run(["curl", "-s", "--max-time", "60", url, *words[3:]], capture_output=True, text=True,
                                   cwd=work, timeout=90)
                assert r.returncode == 0 and len(json.loads(r.stdout)["translations"]) == 1, r.stdout + r.stderr
                continue
            program = words[2].removeprefix("nmt.")
            if "export.format=argos" in words and not INTEROP:
                continue  # the interop extra is not installed (make setup installs it)
            args = [*words[3:], *SHRINK[program]]
            if SENTENCEPIECE.intersection(words):  # an Argos package tokenizes with SentencePiece
                args = [a for a in args if a != "vocab=word"]
            if program == "serve":
                port = free_port()
                args = [a if not a.startswith("serve.port=") else f"serve.port={port}" for a in args]
                server = subprocess.Popen([sys.executable, "-m", "nmt.serve", *args], cwd=work, env=ENV,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                wait_until_up(server, port)
            elif program == "train" and any(a.startswith("train.members=") for a in args):
                r = subprocess.run([sys.executable, "-m", "nmt.train", *args], cwd=work, env=ENV, capture_output=True,
                                   text=True, timeout=300)
                assert r.returncode == 0, f"{command}\n{r.stderr[-3000:]}"
            else:
                run_in_process(program, args, work / "outputs" / f"readme_{k}")
                if program == "prepare" and "vocab=word" in args:  # the SentencePiece data too (1-2 s)
                    run_in_process(program, [a for a in args if a != "vocab=word"], work / "outputs" / f"readme_{k}s")
        r = subprocess.run([sys.executable, "-c", readme_python()], cwd=work, env=ENV, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and r.stdout.startswith("["), r.stderr[-3000:]
    finally:
        if server is not None:
            assert stop(server) == 0
    assert (work / "models" / "de-en" / "config.json").is_file() and (work / "outputs" / "test.en").is_file()
    if INTEROP and any("export.format=argos" in c for c in commands):
        import zipfile

        assert zipfile.is_zipfile(work / "models" / "de_en.argosmodel")
    assert (work / "outputs" / "members" / "member_1" / "checkpoints" / "best.pt").is_file()


def wait_until_up(server, port, seconds: float = 90):
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        assert server.poll() is None, server.stderr.read().decode()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the README's server did not come up")
