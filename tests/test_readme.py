"""The README's quick-start example runs exactly as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.rst"


def _python_blocks():
    text = README.read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return [re.sub(r"^    ", "", b, flags=re.M) for b in blocks]


def test_readme_setup_commands():
    text = README.read_text()
    assert "pip install -r requirements.txt" in text
    assert "python -m pytest" in text
    assert "python -m benchmarks all --quick" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert "\npip install -r requirements.txt\n" in ci and "\npython -m pytest\n" in ci


def test_readme_grid_search_example(data_home, capsys):
    code = _python_blocks()[0]
    assert "GridSearchCV" in code and "stratify=y" in code and "SVM" in code
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    search = namespace["search"]
    assert search.best_params_["svm__C"] in (0.01, 1.0)
    # DANCE-level annotation accuracy on PBMC with a linear SVM
    assert namespace["test_accuracy"] > 0.8
    assert "test accuracy" in capsys.readouterr().out


def test_readme_history_example(capsys):
    code = _python_blocks()[1]
    assert "history_" in code and 'device="cpu"' in code
    exec(compile(code, "README.rst", "exec"), {})
    out = capsys.readouterr().out
    assert "pretrain" in out and "cluster" in out


def test_readme_routing_example(capsys):
    code = _python_blocks()[2]
    assert "constraint_labels=known" in code and "enable_metadata_routing" in code
    namespace = {}
    exec(compile(code, "README.rst", "exec"), namespace)
    search = namespace["search"]
    assert search.best_params_["scdcc__ml_weight"] in (0.5, 1.0)
    assert 0.2 < search.best_score_ <= 1.0  # far above chance on 8 types
    assert "scdcc__ml_weight" in capsys.readouterr().out
