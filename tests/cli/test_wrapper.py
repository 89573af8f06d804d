"""The one wrapper: a user's mistake (NmtError) is one line; a bug keeps its traceback and asks for a report."""
import subprocess
import sys

from helpers import ENV

from conftest import ROOT

PROGRAM = """
import os
import sys
from nmt.cli.wrapper import entry_point
from nmt.errors import NmtError

def run(cfg, run_dir):
    if os.environ["MODE"] == "user":
        raise NmtError("data.root=/nowhere: no such folder. Fix: data.root=DIR")
    {}["bug"]  # a KeyError: nmt's own mistake

sys.argv = ["nmt.x", "hydra.run.dir=" + sys.argv[1], "hydra.output_subdir=null"]
entry_point("x", run)()
"""


def run_program(tmp_path, mode):
    return subprocess.run([sys.executable, "-c", PROGRAM, str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, env={**ENV, "MODE": mode}, timeout=120)


def test_a_user_error_is_one_line_and_a_bug_keeps_its_traceback(tmp_path):
    user = run_program(tmp_path, "user")
    assert user.returncode == 1 and "Traceback" not in user.stderr
    assert user.stderr.strip().splitlines()[-1] == "x: error: data.root=/nowhere: no such folder. Fix: data.root=DIR"
    bug = run_program(tmp_path, "bug")
    assert bug.returncode == 1
    assert "Traceback" in bug.stderr and "KeyError: 'bug'" in bug.stderr
    assert bug.stderr.strip().splitlines()[-1].startswith("x: internal error:") and "report" in bug.stderr
