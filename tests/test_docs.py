"""Shared parameter descriptions: filled once, correct for every estimator."""

import ast
import inspect
import re

import pytest

from skdance.utils import SHARED_PARAMS, all_estimators, fill_doc

ESTIMATORS = all_estimators()


def test_fill_doc_indents_like_the_placeholder():
    @fill_doc(alpha="Degrees of freedom.\nAt least 0.")
    class Model:
        """Model.

        Parameters
        ----------
        alpha : float, default=1.0
            {alpha}
        {spatial_key}
        other : {"a", "b"}, default="a"
            Braces elsewhere stay.
        """

    assert inspect.getdoc(Model).splitlines()[4:] == [
        "alpha : float, default=1.0",
        "    Degrees of freedom.",
        "    At least 0.",
        'spatial_key : str, default="spatial"',
        "    ``obsm`` key of the coordinates when ``X`` is an AnnData.",
        'other : {"a", "b"}, default="a"',
        "    Braces elsewhere stay.",
    ]


def test_fill_doc_rejects_unknown_and_redefined_entries():
    with pytest.raises(KeyError, match="no_such_entry"):

        @fill_doc
        def f():
            """F.

            {no_such_entry}
            """

    with pytest.raises(ValueError, match="device"):
        fill_doc(device="Somewhere.")


@pytest.mark.parametrize("name, cls", ESTIMATORS)
def test_docstring_has_no_placeholder_left(name, cls):
    doc = inspect.getdoc(cls)
    assert not re.search(r"^\s*\{\w+\}\s*$", doc, re.M), name


def _documented_defaults(doc):
    section = doc.split("\nParameters\n----------\n")[1].split("\n\n")[0]
    for match in re.finditer(r"^(\w+) : .*default=(.+)$", section, re.M):
        yield match.group(1), match.group(2)


@pytest.mark.parametrize("name, cls", ESTIMATORS)
def test_shared_entries_state_the_estimator_default(name, cls):
    # A shared whole entry states one default: it must be the default of
    # every estimator that shows it.
    doc = inspect.getdoc(cls)
    params = cls().get_params(deep=False) if "Parameters" in doc else {}
    for key, text in SHARED_PARAMS.items():
        header = text.splitlines()[0]
        if not header.startswith(f"{key} : ") or f"\n{text}\n" not in f"\n{doc}\n":
            continue
        default = ast.literal_eval(header.split("default=")[1])
        assert params[key] == default, (name, key)
