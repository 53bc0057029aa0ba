"""Fit any skdance estimator on small real data, as its task requires.

skdance's own common checks (``tests/test_common.py``, ``test_bad_input.py``)
call every discovered estimator the same way: the estimator's skdance tags
(:mod:`skdance.utils._tags`) say whether ``fit`` takes labels (annotation,
deconvolution), whether coordinates are side information of ``fit``,
``predict`` or ``transform``, and what the output is.
"""

import inspect

import numpy as np
import scipy.sparse as sp

from skdance.testing._instances import fast_instance
from skdance.utils import get_skdance_tags

__all__ = [
    "CheckData",
    "check_data",
    "check_instance",
    "fit_estimator",
    "estimator_output",
]


class CheckData:
    """Cells x genes counts, labels and spot coordinates for the checks.

    Parameters
    ----------
    X : ndarray of shape (n_cells, n_genes)
        Raw counts, every cell non-empty.
    y : ndarray of shape (n_cells,)
        Cell-type labels.
    coords : ndarray of shape (n_cells, 2)
        Positions (the cells play spots for deconvolution / spatial models).
    genes : ndarray of shape (n_genes,)
        Gene names.

    Attributes
    ----------
    mod2 : ndarray of shape (n_cells, 20)
        Paired second modality for the multimodal tasks.
    n_features_mod1 : int
        Where the joint embeddings split ``X`` into ``[mod1 | mod2]``
        column blocks: all genes but the last 20 are mod1.
    """

    def __init__(self, X, y, coords, genes):
        self.X = X
        self.y = y
        self.coords = coords
        self.genes = genes
        # a paired second modality of the same cells (multimodal tasks):
        # log-normalised expression of 20 genes, a per-cell function of X
        totals = X.sum(axis=1, keepdims=True)
        self.mod2 = np.log1p(X[:, :20] / totals * 1e4)
        self.n_features_mod1 = X.shape[1] - 20


_CACHE = {}


def check_data():
    """Return the shared :class:`CheckData`: 120 real PBMC cells x 150 genes."""
    if "data" not in _CACHE:
        from skdance.datasets import load_pbmc_4k_subset

        X, y = load_pbmc_4k_subset()
        rows = np.r_[0:60, 600:660]
        X = sp.csr_matrix(X)[rows][:, :150].toarray().astype(np.float64)
        keep = X.sum(axis=1) > 0
        X, y = X[keep], np.asarray(y)[rows][keep]
        coords = np.random.default_rng(0).uniform(0, 10, size=(X.shape[0], 2))
        genes = np.array([f"gene{i}" for i in range(X.shape[1])], dtype=object)
        _CACHE["data"] = CheckData(X, y, coords, genes)
    return _CACHE["data"]


def check_instance(Estimator):
    """Return the fast instance of ``Estimator`` for :func:`check_data`.

    :func:`~skdance.testing.fast_instance`, except that the
    joint embeddings split the check data's genes at
    :attr:`CheckData.n_features_mod1`: their fast instance takes only the
    first column as mod1, so that scikit-learn's checks (as few as 2
    features) can run it, which would leave one gene of the 150 as mod1.

    Parameters
    ----------
    Estimator : type
        A public skdance estimator class.

    Returns
    -------
    estimator : Estimator
        Unfitted, with fast parameters.
    """
    estimator = fast_instance(Estimator)
    if get_skdance_tags(estimator).task == "joint_embedding":
        estimator.set_params(n_features_mod1=check_data().n_features_mod1)
    return estimator


def _side(tags, method, coords):
    return {"coords": coords} if tags.requires_coords == method else {}


def fit_estimator(estimator, X, data, *, coords=True):
    """Fit ``estimator`` on ``X`` (data.X in any format) as its task requires.

    Parameters
    ----------
    estimator : estimator
        Unfitted skdance estimator.
    X : array-like, sparse matrix, DataFrame or AnnData
        The cells to fit on (rows of ``data.X``).
    data : CheckData
        Labels and coordinates aligned with ``X``'s rows.
    coords : bool, default=True
        Pass coordinates where the estimator needs them.

    Returns
    -------
    estimator : estimator
        The fitted estimator.
    """
    tags = get_skdance_tags(estimator)
    n = X.shape[0]
    side = _side(tags, "fit", data.coords[:n]) if coords else {}
    if tags.task in ("annotation", "deconvolution"):
        return estimator.fit(X, data.y[:n], **side)
    if tags.task in ("modality_prediction", "modality_matching"):
        return estimator.fit(X, data.mod2[:n], **side)
    if (
        tags.task == "joint_embedding"
        and estimator.__sklearn_tags__().target_tags.required
    ):
        # X holds both modalities as column blocks; y = cell types (JAE)
        return estimator.fit(X, data.y[:n], **side)
    return estimator.fit(X, **side)


def estimator_output(estimator, X, data, *, coords=True):
    """Return the fitted estimator's result on ``X`` as one dense array.

    ``predict`` for classifiers, deconvolution (proportions) and modality
    prediction, ``match`` against ``data.mod2`` for modality matching,
    ``transform`` for transformers and embedding clusterers, ``labels_`` for
    clusterers without ``transform``.
    """
    tags = get_skdance_tags(estimator)
    n = X.shape[0]

    def side(method):
        # coordinates for the methods that take them (spatial-domain models'
        # transform embeds the spots passed, so it needs their positions too)
        takes = "coords" in inspect.signature(method).parameters
        if coords and tags.requires_coords is not None and takes:
            return {"coords": data.coords[:n]}
        return {}

    if tags.task in ("annotation", "deconvolution", "modality_prediction"):
        out = estimator.predict(X, **side(estimator.predict))
    elif tags.task == "modality_matching":
        out = estimator.match(X, data.mod2[:n])
    elif hasattr(estimator, "transform"):
        out = estimator.transform(X, **side(estimator.transform))
    else:
        out = estimator.labels_
    if sp.issparse(out):
        out = out.toarray()
    return np.asarray(out)
