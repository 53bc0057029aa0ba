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
