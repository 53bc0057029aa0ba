"""Shared parameter descriptions: filled once, correct for every estimator."""

import ast
import inspect
import re

import pytest

from skdance.utils import all_estimators, fill_doc

ESTIMATORS = all_estimators()


def test_fill_doc_indents_like_the_placeholder():
    @fill_doc(alpha="Degrees of freedom.\nAt least 0.")
    class Model:
        """Model.

        Parameters
        ----------
        alpha : float, default=1.0
            {alpha}
        {spatial_key} {n_iter_}
        other : {"a", "b"}, default="a"
            Braces elsewhere stay.
        """

    assert inspect.getdoc(Model).splitlines()[4:] == [
        "alpha : float, default=1.0",
        "    Degrees of freedom.",
        "    At least 0.",
        'spatial_key : str, default="spatial"',
        "    ``obsm`` key of the coordinates when ``X`` is an AnnData.",
        "n_iter_ : int",
        "    Number of epochs run.",
        'other : {"a", "b"}, default="a"',
        "    Braces elsewhere stay.",
    ]


def test_fill_doc_rejects_unknown_entries():
    with pytest.raises(KeyError, match="no_such_entry"):

        @fill_doc
        def f():
            """F.

            {no_such_entry}
            """


def test_family_entries_take_precedence():
    @fill_doc(verbose="Progress bars per phase.")
    def f():
        """F.

        verbose : int, default=0
            {verbose}
        """

    assert inspect.getdoc(f).endswith("    Progress bars per phase.")


@pytest.mark.parametrize("name, cls", ESTIMATORS)
def test_docstring_has_no_placeholder_left(name, cls):
    doc = inspect.getdoc(cls)
    assert not re.search(r"^\s*\{\w+\}\s*$", doc, re.M), name


def _documented_defaults(doc):
    section = doc.split("\nParameters\n----------\n")[1].split("\n\n")[0]
    for match in re.finditer(r"^([\w, ]+) : .*default=(.+)$", section, re.M):
        names = match.group(1).split(", ")
        default = ast.literal_eval(match.group(2))
        # "a, b : float, default=(1, 2)" documents a default each; "a, b :
        # str, default='x'" one for both
        if len(names) > 1 and isinstance(default, tuple):
            yield from zip(names, default, strict=True)
        else:
            yield from ((name, default) for name in names)


@pytest.mark.parametrize("name, cls", ESTIMATORS)
def test_documented_defaults_are_the_defaults(name, cls):
    # Shared entries state one default: it must be that of every estimator
    # that shows it (and any other documented default must be right too).
    doc = inspect.getdoc(cls)
    if "\nParameters\n" not in doc:
        return
    params = cls().get_params(deep=False)
    documented = dict(_documented_defaults(doc))
    assert documented, name
    for param, default in documented.items():
        assert params[param] == default, (name, param)
