"""The package's layering, read from the source with ``ast`` (nothing imported).

* The bottom layers (``utils``, ``nn``, ``preprocessing``, ``graph``,
  ``datasets``) import no task package: an estimator may build on any of
  them, never the other way round.  ``skdance.utils`` imports no other
  skdance package at all.  ``skdance.testing`` (fast instances, check data)
  and ``skdance.metrics`` (its scorers dispatch on the modality predictors)
  build estimators or know them, so they count as task-level.
* Only the training engine (``skdance/nn/_engine.py``) calls
  ``.backward()``: every model trains through it.
* No module imports a private name (``skdance.x._y`` or ``_z``) of another
  top-level package.

The design: ``doc/architecture.rst``, section ``architecture-import-rule``.
"""

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SKDANCE = Path(__file__).resolve().parents[1] / "skdance"
BOTTOM = ("utils", "nn", "preprocessing", "graph", "datasets")
TASKS = (
    "annotation",
    "clustering",
    "imputation",
    "spatial",
    "multimodal",
    "metrics",
    "plotting",
    "tl",
    "testing",
)
ENGINE = "skdance/nn/_engine.py"


def _module_name(path):
    parts = list(path.relative_to(SKDANCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package(module):
    """Top-level package of a ``skdance.*`` module name (``""`` for skdance)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _parse_all():
    return {
        path: ast.parse(path.read_text(), filename=str(path))
        for path in sorted(SKDANCE.rglob("*.py"))
    }


TREES = _parse_all()


def _imports(path, tree):
    """Yield ``(line, imported module, imported name or None)`` of a file."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                yield node.lineno, target, alias.name


def _cross_package_imports():
    """Yield ``(path, line, importer, target, name)`` across top-level packages."""
    for path, tree in TREES.items():
        importer = _module_name(path)
        for line, target, name in _imports(path, tree):
            if target == "skdance" and name is not None:
                target, name = f"skdance.{name}", None  # from skdance import x
            if not target.startswith("skdance."):
                continue
            if _package(target) != _package(importer):
                yield path, line, importer, target, name


def _where(path, line):
    return f"{path.relative_to(SKDANCE.parent)}:{line}"


def test_the_scan_sees_the_package():
    # guards the tests below against scanning nothing
    packages = {_package(_module_name(p)) for p in TREES}
    assert set(BOTTOM) | set(TASKS) <= packages
    edges = {(_package(i), _package(t)) for _, _, i, t, _ in _cross_package_imports()}
    assert ("clustering", "nn") in edges and ("spatial", "graph") in edges


def test_bottom_layers_import_no_task_package():
    upward = defaultdict(list)
    for path, line, importer, target, _ in _cross_package_imports():
        if _package(importer) in BOTTOM and _package(target) in TASKS:
            edge = f"skdance.{_package(importer)} -> skdance.{_package(target)}"
            upward[edge].append(f"{_where(path, line)} imports {target}")
    assert not upward, "imports from a bottom layer into a task package:\n" + (
        "\n".join(f"{edge}: {'; '.join(sites)}" for edge, sites in upward.items())
    )


def test_utils_imports_no_other_skdance_package():
    found = [
        f"{_where(path, line)} imports {target}"
        for path, line, importer, target, _ in _cross_package_imports()
        if _package(importer) == "utils"
    ]
    assert not found, "skdance.utils is the lowest layer:\n" + "\n".join(found)


def _backward_lines(tree):
    """Lines of the calls ``<anything>.backward(...)`` in a module."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "backward"
    ]


def test_only_the_engine_calls_backward():
    calls = [
        (path.relative_to(SKDANCE.parent).as_posix(), line)
        for path, tree in TREES.items()
        for line in _backward_lines(tree)
    ]
    assert any(path == ENGINE for path, _ in calls)
    outside = [f"{path}:{line}" for path, line in calls if path != ENGINE]
    assert not outside, (
        "train through skdance.nn (training / Trainer) instead of calling "
        ".backward() in a model: " + ", ".join(outside)
    )


def _private_imports():
    """Yield ``((importer, private target), site)`` across top-level packages."""
    for path, line, importer, target, name in _cross_package_imports():
        parts = target.split(".")
        private_module = next(
            (i for i, part in enumerate(parts) if part.startswith("_")), None
        )
        if private_module is not None:
            key = ".".join(parts[: private_module + 1])
        elif name is not None and name.startswith("_"):
            key = f"{target}.{name}"
        else:
            continue
        yield (importer, key), _where(path, line)


def test_no_private_imports_across_packages():
    new = defaultdict(list)
    for edge, site in _private_imports():
        new[edge].append(site)
    assert not new, (
        "private names imported from another top-level package (export the "
        "helper from its package, or keep it inside):\n"
        + "\n".join(
            f"{i} imports {t} ({', '.join(sorted(set(s)))})"
            for (i, t), s in new.items()
        )
    )


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from skdance.clustering import ScDCC\n", "skdance.clustering"),
        ("from ..annotation import ACTINN\n", "skdance.annotation"),
        ("import skdance.spatial.domain\n", "skdance.spatial.domain"),
        ("def f():\n    from skdance.tl import fit\n", "skdance.tl"),
    ],
)
def test_the_scan_resolves_imports(source, expected):
    # a module of skdance.graph: absolute, relative and function-level imports
    path = SKDANCE / "graph" / "_example.py"
    found = [target for _, target, _ in _imports(path, ast.parse(source))]
    assert found == [expected]


def test_the_scan_finds_backward_calls():
    source = (
        "loss.backward()\nx = backward()\nself.loss(x).backward(retain_graph=True)\n"
    )
    assert _backward_lines(ast.parse(source)) == [1, 3]
