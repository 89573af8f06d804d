"""The programs as a user runs them: console scripts, python -m."""
import os
import subprocess
import sys

from conftest import ROOT, TINY_EN, write_lines

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}




def test_console_scripts_equal_the_python_m_forms(tmp_path):
    bin_dir = os.path.dirname(sys.executable)
    for name in ("prepare", "train", "translate", "evaluate", "serve", "average"):
        script = os.path.join(bin_dir, f"nmt-{name}")
        assert os.path.isfile(script), f"{script} missing: pip install -e . installs the console scripts"
        r = subprocess.run([script, "--help"], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0 and "Configuration groups" in r.stdout, (name, r.stderr[-1500:])
    hyp = write_lines(tmp_path / "hyp", TINY_EN[:3] + ["a dog"])
    ref = write_lines(tmp_path / "ref", TINY_EN[:4])
    args = [f"evaluate.hyp={hyp}", f"evaluate.ref={ref}", "scoring.metrics=[bleu,chrf]"]
    script = subprocess.run([os.path.join(bin_dir, "nmt-evaluate"), *args], capture_output=True, text=True, cwd=tmp_path)
    module = subprocess.run([sys.executable, "-m", "nmt.evaluate", *args], capture_output=True, text=True,
                            cwd=tmp_path, env=ENV)
    assert script.returncode == module.returncode == 0 and script.stdout == module.stdout and "BLEU" in script.stdout
