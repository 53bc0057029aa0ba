"""Declared runtime dependencies are exactly what the skdance package imports."""

import ast
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
# distribution name -> import name, where they differ
IMPORT_NAMES = {
    "scikit-learn": "sklearn",
    "scikit-misc": "skmisc",
    "torch-geometric": "torch_geometric",
    "umap-learn": "umap",
}


def _third_party_imports(package):
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            found.update(name.split(".")[0] for name in names)
    return found - set(sys.stdlib_module_names) - {package}


def _declared(requirements):
    names = {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0] for req in requirements}
    return {IMPORT_NAMES.get(name, name) for name in names}


# extras that skdance imports only inside the function that needs them, with
# an error naming the extra when they are missing
OPTIONAL_EXTRAS = ("image",)


def test_runtime_dependencies_are_the_package_imports():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _declared(project["dependencies"])
    extras = project["optional-dependencies"]
    optional = _declared([req for name in OPTIONAL_EXTRAS for req in extras[name]])
    imported = _third_party_imports("skdance")
    assert imported - declared - optional == set(), "imported but not declared"
    assert optional <= imported, "an optional extra that skdance never imports"
    assert not optional & declared
    assert declared - imported == set(), "declared but never imported by skdance"


def test_benchmark_imports_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = _declared(project["dependencies"] + extras["benchmarks"])
    imported = _third_party_imports("benchmarks") - {"skdance"}
    assert imported - declared == set()
