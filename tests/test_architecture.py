"""The house rules, checked on the code as it is: docs made from the code are current, the
README is the front door, no import cycle, no module names that differ by a suffix, every module
says its concern, no program imports another."""
import ast
import importlib.util
import re
import subprocess
import sys

from conftest import ROOT


def generate_module():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_are_what_the_code_makes_now():
    r = subprocess.run([sys.executable, "docs/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"


def test_the_readme_is_the_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for link in re.findall(r"\]\(([^)#]+)", readme):
        assert (ROOT / link).exists(), f"README links to {link}, which is not there"


def test_no_import_cycle_between_modules_or_packages():
    generate = generate_module()
    graph = generate.import_graph()
    assert generate.cycles(graph) == []
    assert generate.cycles(generate.package_graph(graph)) == []


def stem(name: str) -> str:
    for suffix in ("ation", "ing", "ion", "is", "e", "s"):  # prepare/preparation, average/averaging, diagnose/diagnosis
        if name.endswith(suffix) and len(name) - len(suffix) >= 4:
            return name[: -len(suffix)]
    return name


def test_no_two_modules_differ_only_by_a_suffix():
    names = {p.stem for p in (ROOT / "nmt").rglob("*.py") if p.stem != "__init__"}
    by_stem = {}
    for name in sorted(names):
        by_stem.setdefault(stem(name), []).append(name)
    assert not [group for group in by_stem.values() if len(group) > 1]


def test_every_module_says_its_concern_and_no_program_imports_another():
    programs = {p.stem for p in (ROOT / "nmt" / "cli").glob("*.py")} - {"__init__", "wrapper"}
    for path in (ROOT / "nmt").rglob("*.py"):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no docstring"
        if path.parent.name == "cli":
            imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
            assert not {f"nmt.cli.{p}" for p in programs - {path.stem}} & imported, path


def test_every_program_has_its_module_its_shim_its_console_script_and_is_listed():
    import tomllib

    programs = {p.stem for p in (ROOT / "nmt" / "cli").glob("*.py")} - {"__init__", "wrapper"}
    listed = next(ast.literal_eval(n.value) for n in ast.parse((ROOT / "nmt" / "__main__.py").read_text()).body
                  if isinstance(n, ast.Assign) and n.targets[0].id == "PROGRAMS")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(listed) == programs
    assert {name.removeprefix("nmt-") for name in scripts} == programs
    assert all((ROOT / "nmt" / f"{p}.py").is_file() for p in programs)
