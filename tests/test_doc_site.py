"""The documentation site: complete API pages, one page and example per task.

The site itself is built by ``.ci/run`` (``sphinx -W``); these tests keep
its sources complete and its helpers honest without a build.
"""

import importlib
import pkgutil
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

import skdance
from benchmarks.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "doc"
sys.path.insert(0, str(DOC))
sys.path.insert(0, str(DOC / "sphinxext"))

import check_links  # noqa: E402
import skdance_docs  # noqa: E402


def _packages():
    names = ["skdance"]
    for info in pkgutil.walk_packages(skdance.__path__, "skdance."):
        if info.ispkg and not any(p.startswith("_") for p in info.name.split(".")):
            names.append(info.name)
    return names


def _api_objects():
    """The objects listed in doc/api.rst's autosummary tables, by identity."""
    documented, module, in_table = {}, None, False
    for line in (DOC / "api.rst").read_text().splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match.group(1)
        elif line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and re.fullmatch(r"   [A-Za-z_][\w.]*", line):
            owner, _, attr = f"{module}.{line.strip()}".rpartition(".")
            documented[id(getattr(importlib.import_module(owner), attr))] = line
        elif line and not line.startswith(" "):
            in_table = False
    return documented


def test_every_public_name_has_an_api_page():
    documented = _api_objects()
    missing = []
    for package in _packages():
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if type(obj).__name__ != "module" and id(obj) not in documented:
                missing.append(f"{package}.{name}")
    assert not missing, f"add to doc/api.rst: {missing}"


@pytest.mark.parametrize("task", list(TASKS))
def test_each_task_has_a_choosing_page_with_its_results(task):
    page = (DOC / "choosing" / f"{task}.rst").read_text()
    assert f".. benchmark-results:: {task}" in page
    assert (ROOT / "benchmarks" / "results" / f"{task}.csv").exists()


@pytest.mark.parametrize("task", list(TASKS))
def test_each_task_has_a_gallery_example(task):
    example = ROOT / "examples" / "tasks" / f"plot_{task}.py"
    text = example.read_text()
    assert text.startswith('"""'), "a sphinx-gallery example starts with its title"
    assert "plt." in text or "skdance.plotting" in text or "sc.pl." in text


def test_the_gallery_has_at_least_thirteen_examples():
    assert len(list((ROOT / "examples").rglob("plot_*.py"))) >= 13


def test_dataset_option_selects_names_and_first_words():
    names = ["cite GEX2ADT", "cite ADT2GEX", "tea GEX2ADT", "dlpfc"]
    assert skdance_docs._select(names, None) == names
    assert skdance_docs._select(names, "cite") == ["cite GEX2ADT", "cite ADT2GEX"]
    assert skdance_docs._select(names, "dlpfc, tea GEX2ADT") == [
        "tea GEX2ADT",
        "dlpfc",
    ]
    assert skdance_docs._select(["a", "b", "c"], "c a") == ["a", "c"]
    with pytest.raises(ValueError, match="no data set 'x'"):
        skdance_docs._select(names, "x")


def test_results_figure_is_drawn_from_the_csv(tmp_path):
    task = TASKS["spatial_domain"]
    df = pd.DataFrame(
        {
            "dataset": ["d"] * 4,
            "model": ["STAGATE", "STAGATE", "smoothed PCA", "smoothed PCA"],
            "seed": [0, 1, 0, 1],
            "ari": [0.5, 0.6, 0.4, 0.4],
            "dance_reported": [0.59, 0.59, None, None],
        }
    )
    path = tmp_path / "chart.png"
    skdance_docs._figure(task, df, ["d"], path)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_list_table_escapes_and_marks_missing_values():
    frame = pd.DataFrame({"model": ["a|b"], "score": [float("nan")]})
    assert skdance_docs._list_table("t", frame) == [
        ".. list-table:: t",
        "   :header-rows: 1",
        "",
        "   * - model",
        "     - score",
        "   * - a\\|b",
        "     - —",
        "",
    ]


def test_link_checker_finds_missing_pages_and_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/page.html#gone">x</a>'
        '<a href="missing.html">y</a> <a href="https://example.org">ext</a>'
        '<img src="sub/pic.png">'
    )
    (tmp_path / "sub" / "page.html").write_text('<h1 id="here">t</h1>')
    _, n_pages, broken = check_links.broken_links(tmp_path)
    assert n_pages == 2
    assert sorted((link, reason) for _, link, reason in broken) == [
        ("missing.html", "no such file"),
        ("sub/page.html#gone", "no such anchor"),
        ("sub/pic.png", "no such file"),
    ]
