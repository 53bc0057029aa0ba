"""Sphinx configuration (building the docs is not part of CI)."""

project = "skdance"
author = "skdance developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
autosummary_generate = True
numpydoc_show_class_members = False
html_theme = "alabaster"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "scanpy": ("https://scanpy.readthedocs.io/en/stable", None),
}
exclude_patterns = ["_build"]


def _write_vocabulary_table():
    """Write doc/generated/vocabulary.rst from skdance's vocabulary registry."""
    from pathlib import Path

    from skdance.utils import all_estimators
    from skdance.utils._vocabulary import vocabulary_table

    users = {}
    for name, cls in all_estimators():
        for param in cls._get_param_names():
            users.setdefault(param, []).append(name)
    out = Path(__file__).parent / "generated" / "vocabulary.rst"
    out.parent.mkdir(exist_ok=True)
    out.write_text(vocabulary_table(users))


_write_vocabulary_table()
