"""Parameter and attribute descriptions shared by estimators, written once.

A class docstring names a shared description by a placeholder alone on its
line, ``{device}`` (or several, ``{device} {verbose}``); :func:`fill_doc`
replaces it at import time, indented like the placeholder, so
``inspect.getdoc`` and the documentation show the full text.  An entry is
either a whole numpydoc item (``"name : type, default=...`` and its
indented description), where every estimator that uses it has the same
type and default, or the description alone, placed under the estimator's
own ``name : type, default=...`` line, where the defaults differ.
"""

import re

__all__ = ["SHARED_PARAMS", "fill_doc"]

SHARED_PARAMS = {
    "device": """\
device : str or torch.device, default="cpu"
    Where to train: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``; a
    ``ValueError`` names an absent device. The fitted module is kept on
    the CPU.""",
    "verbose": """\
verbose : int, default=0
    Show a tqdm progress bar with the losses.""",
    "mudata_mods": """\
mudata_mods : pair of str or None, default=None
    The two modalities to read when the data come as a
    :class:`mudata.MuData`: ``(mod1, mod2)``, e.g. ``("rna", "prot")``;
    None takes its first two.""",
    "spatial_key": """\
spatial_key : str, default="spatial"
    ``obsm`` key of the coordinates when ``X`` is an AnnData.""",
    # Description only: the defaults differ.
    "batch_size": "Cells per mini-batch.",
    "learning_rate": "Adam learning rate.",
    "update_interval": "Epochs between target-distribution updates.",
    "weight_decay": "Adam weight decay.",
    # Attributes
    "n_features_in_": """\
n_features_in_ : int
    Number of genes seen in ``fit``.""",
    "feature_names_in_": """\
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Gene names seen in ``fit``, when the input had them.""",
    "n_features_mod2_": """\
n_features_mod2_ : int
    Number of second-modality features.""",
    "n_iter_": """\
n_iter_ : int
    Number of epochs run.""",
}

_PLACEHOLDERS = re.compile(r"^([ \t]*)((?:\{\w+\}[ \t]*)+)$", re.MULTILINE)


def _fill(doc, entries):
    def replace(match):
        indent, keys = match.groups()
        lines = []
        for key in re.findall(r"\w+", keys):
            if key not in entries:
                raise KeyError(f"no shared docstring entry {key!r}")
            lines += entries[key].splitlines()
        return "\n".join(indent + line if line else line for line in lines)

    return _PLACEHOLDERS.sub(replace, doc)


def fill_doc(obj=None, /, **entries):
    '''Replace the ``{name}`` placeholders of a docstring by shared entries.

    A placeholder is a line holding only ``{name}``, or several of them
    (``{device} {verbose}``: one entry after the other); it becomes the
    entries' text, every line indented like the placeholder.  Other braces
    in the docstring are left alone.

    Parameters
    ----------
    obj : class or function, optional
        The object whose ``__doc__`` is filled.  Without it, ``fill_doc``
        returns a decorator (to pass ``entries``).
    **entries : str
        Entries of a family of estimators, added to :data:`SHARED_PARAMS`
        (an entry of the same name gives way to them).

    Returns
    -------
    obj or callable
        The object, its docstring filled; or the decorator.

    Raises
    ------
    KeyError
        For a placeholder without an entry.

    Examples
    --------
    >>> import inspect
    >>> from skdance.utils import fill_doc
    >>> @fill_doc(alpha="Degrees of freedom of the kernel.")
    ... def kernel(alpha=1.0, spatial_key="spatial"):
    ...     """Kernel.
    ...
    ...     alpha : float, default=1.0
    ...         {alpha}
    ...     {spatial_key}
    ...     """
    >>> print(inspect.getdoc(kernel))
    Kernel.
    <BLANKLINE>
    alpha : float, default=1.0
        Degrees of freedom of the kernel.
    spatial_key : str, default="spatial"
        ``obsm`` key of the coordinates when ``X`` is an AnnData.
    '''
    merged = {**SHARED_PARAMS, **entries}

    def decorate(target):
        if target.__doc__:  # None under ``python -OO``
            target.__doc__ = _fill(target.__doc__, merged)
        return target

    return decorate if obj is None else decorate(obj)
