"""Sphinx configuration of the skdance documentation.

Build (from the repository root; ``.ci/run`` runs the same command)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

The gallery (``examples/``) runs during the build on the data shipped in
the package, so every example is checked and every figure is current.
Cross-references to other projects' documentation (intersphinx) need the
internet to fetch their inventories; they are off unless
``SKDANCE_DOC_INTERSPHINX=1`` is set, so that an offline build (CI) has no
warnings.  Off, a reference to, say, :class:`sklearn.pipeline.Pipeline` is
written as plain code text instead of a link.
"""

import os
import sys
from pathlib import Path

# The gallery's examples are small: one thread each for torch, BLAS and
# numba is as fast as two and does not slow to a crawl when the machine is
# busy (set these variables to use more)
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

DOC = Path(__file__).resolve().parent
ROOT = DOC.parent
# ``benchmarks`` (the tables and the gallery's benchmark example) and the
# local extensions are imported from the repository, not installed
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOC / "sphinxext"))

import skdance  # noqa: E402

project = "skdance"
author = "skdance developers"
copyright = "2026, skdance developers"
release = skdance.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "skdance_docs",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.md5"]
templates_path = ["_templates"]
default_role = "literal"
nitpicky = False

# -- API pages -------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# the "Examples" sections are doctests run by pytest, not by Sphinx
numpydoc_use_plots = False

# -- other projects (see the module docstring) -----------------------------
if os.environ.get("SKDANCE_DOC_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "anndata": ("https://anndata.readthedocs.io/en/stable", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable", None),
        "mudata": ("https://mudata.readthedocs.io/en/latest", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
    }
else:
    intersphinx_mapping = {}

# -- gallery ---------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "subsection_order": ["../examples/tasks", "../examples/guides", "*"],
    "within_subsection_order": "FileNameSortKey",
    "filename_pattern": "/plot_",
    "ignore_pattern": r"__init__\.py",
    "abort_on_example_error": True,
    "reset_modules": ("matplotlib", "skdance_docs.reset_torch_threads"),
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_signature": False,
    "doc_module": ("skdance",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skdance": None},
    "min_reported_time": 1,
    "matplotlib_animations": False,
}
if os.environ.get("SKDANCE_DOC_NO_GALLERY") == "1":
    # a quick build of the text alone (the gallery pages are not executed)
    sphinx_gallery_conf["plot_gallery"] = "False"

# -- HTML ------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skdance {version}"
html_static_path = []
html_theme_options = {
    "icon_links": [
        {
            "name": "DANCE",
            "url": "https://github.com/OmicsML/dance",
            "icon": "fa-solid fa-flask",
        }
    ],
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "install": []}
html_show_sourcelink = False
