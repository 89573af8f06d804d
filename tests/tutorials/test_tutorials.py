"""Every tutorial notebook runs from top to bottom (`make test-tutorials`, which CI runs after
`make test`): the text notebooks (jupytext percent format) are read with jupytext and executed
by nbclient in a real Jupyter kernel of this environment, so a change to nmt that breaks a
notebook fails CI. Each notebook's cells assert what they show (the hand-written cell equals
torch's, beam search finds a higher score than greedy...). The time each took is printed."""
import time

import pytest

from conftest import ROOT

TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))


def test_the_notebooks_are_numbered_and_listed():
    listed = (TUTORIALS / "README.md").read_text()
    assert NOTEBOOKS and all(name in listed for name in NOTEBOOKS)


@pytest.mark.tutorials
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path):
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    notebook = jupytext.read(TUTORIALS / name)
    started = time.perf_counter()
    client = NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(TUTORIALS)}})
    try:
        client.execute()
    finally:
        nbformat.write(notebook, tmp_path / name.replace(".py", ".ipynb"))  # executed, with its figures
    seconds = time.perf_counter() - started
    figures = sum("image/png" in out.get("data", {}) for cell in notebook.cells for out in cell.get("outputs", []))
    print(f"{name}: {seconds:.1f} s, {figures} figures; executed copy in {tmp_path}")
