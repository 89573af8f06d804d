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


def index_rows() -> list[tuple[str, str, str]]:
    """(concept, notebook section, dotted name) of each row of tutorials/README.md's concept index."""
    text = (TUTORIALS / "README.md").read_text().split("## Concept index", 1)[1]
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[2].startswith(("`nmt.", "`lm.")):
            rows.append((cells[0], cells[1], cells[2].strip("`")))
    return rows


def resolve(dotted: str):
    """The object a dotted name names: the longest importable module prefix, then attributes
    (`lm.` names are the tutorials' own language model, tutorials/lm.py)."""
    import importlib
    import sys

    if str(TUTORIALS) not in sys.path:
        sys.path.insert(0, str(TUTORIALS))

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


def test_the_concept_index_names_code_that_exists_and_notebooks_that_exist():
    rows = index_rows()
    assert len(rows) >= 30
    for concept, section, dotted in rows:
        try:
            resolve(dotted)
        except (ModuleNotFoundError, AttributeError) as err:
            raise AssertionError(f"concept index, {concept!r}: {dotted} no longer exists ({err})") from None
        number = section.split(",")[0]
        assert any(name.startswith(number + "_") for name in NOTEBOOKS), (concept, section)
        heading = section.split(", ", 1)[1].split(" / ")[0]
        notebook = next(TUTORIALS / n for n in NOTEBOOKS if n.startswith(number + "_"))
        assert f"## {heading}" in notebook.read_text(), (concept, section)
