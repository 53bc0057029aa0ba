"""Task metrics of the DANCE benchmark and matching scikit-learn scorers.

Metric functions take ``(truth, prediction)``; scorers take
``(estimator, X, y)`` and can be passed as ``scoring=`` to
:class:`~sklearn.model_selection.GridSearchCV` or
:func:`~sklearn.model_selection.cross_val_score`.

Clustering scorers work for clusterers that only have ``fit_predict``
(graph-based, transductive methods such as :class:`~skdance.clustering.Leiden`):
such an estimator cannot assign new cells to its clusters, so the scorer
clusters the scored cells themselves with an unfitted clone of the estimator.
Estimators (and Pipelines) with ``predict`` are scored with ``predict``.
"""

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from sklearn import get_config
from sklearn.base import clone
from sklearn.metrics import (
    adjusted_rand_score,
    normalized_mutual_info_score,
)
from sklearn.utils.metadata_routing import MetadataRequest

from skdance.utils import MissingSideInfoError

__all__ = [
    "ari_scorer",
    "cluster_accuracy",
    "cluster_accuracy_scorer",
    "graph_connectivity",
    "make_clustering_scorer",
    "masked_mse",
    "masked_rmse",
    "matching_score",
    "matching_scorer",
    "nmi_scorer",
    "proportion_mse",
    "proportion_mse_scorer",
    "rmse",
    "rmse_scorer",
]


def _check_labels(labels_true, labels_pred):
    labels_true = np.asarray(labels_true).ravel()
    labels_pred = np.asarray(labels_pred).ravel()
    if labels_true.shape != labels_pred.shape:
        raise ValueError(
            f"labels_true and labels_pred have different lengths "
            f"({labels_true.shape[0]} and {labels_pred.shape[0]})."
        )
    if labels_true.size == 0:
        raise ValueError("Cannot score empty label arrays.")
    return labels_true, labels_pred


def cluster_accuracy(labels_true, labels_pred):
    """Accuracy of a clustering after the best one-to-one label matching.

    Clusters are matched to classes by the Hungarian algorithm on the
    contingency table (DANCE's and scDeepCluster's "ACC"); cells of unmatched
    clusters count as errors.

    Parameters
    ----------
    labels_true : array-like of shape (n_cells,)
        True classes.
    labels_pred : array-like of shape (n_cells,)
        Cluster labels.

    Returns
    -------
    acc : float
        In [0, 1].

    Examples
    --------
    >>> from skdance.metrics import cluster_accuracy
    >>> cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    labels_true, labels_pred = _check_labels(labels_true, labels_pred)
    classes, t = np.unique(labels_true, return_inverse=True)
    clusters, p = np.unique(labels_pred, return_inverse=True)
    table = np.zeros((clusters.size, classes.size), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / labels_true.size)


def rmse(y_true, y_pred):
    """Root mean squared error over all entries (modality prediction).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_cells, n_features)
        Truth and prediction.

    Returns
    -------
    rmse : float
        Non-negative.

    Examples
    --------
    >>> from skdance.metrics import rmse
    >>> rmse([[0.0, 0.0]], [[3.0, 4.0]])
    3.5355...
    """
    y_true, y_pred = _same_shape(y_true, y_pred, "y_true", "y_pred")
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def _dense(a):
    return a.toarray() if sp.issparse(a) else np.asarray(a, dtype=np.float64)


def _same_shape(a, b, name_a, name_b):
    """Dense float copies of two matrices that must have the same shape."""
    a, b = _dense(a), _dense(b)
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} have different shapes {a.shape} and {b.shape}."
        )
    return a, b


def masked_mse(X_true, X_pred, mask):
    """Mean squared error on the masked (held-out) entries only.

    DANCE evaluates imputation by hiding a random part of the non-zero
    entries, imputing, and comparing the imputed values at exactly those
    entries with the hidden truth.

    Parameters
    ----------
    X_true : array-like or sparse matrix of shape (n_cells, n_genes)
        Expression before masking.
    X_pred : array-like or sparse matrix of shape (n_cells, n_genes)
        Imputed expression.
    mask : array-like or sparse matrix of bool of shape (n_cells, n_genes)
        True at the held-out entries.

    Returns
    -------
    mse : float
        Mean squared error over the masked entries.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.metrics import masked_mse
    >>> masked_mse(np.array([[1.0, 2.0]]), np.array([[0.0, 2.0]]),
    ...            np.array([[True, False]]))
    1.0
    """
    if sp.issparse(mask):
        rows, cols = mask.nonzero()
    else:
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise ValueError("mask must be boolean.")
        rows, cols = np.nonzero(mask)
    shape = np.shape(X_true) if not sp.issparse(X_true) else X_true.shape
    pred_shape = X_pred.shape if sp.issparse(X_pred) else np.shape(X_pred)
    if tuple(shape) != tuple(pred_shape) or tuple(shape) != tuple(mask.shape):
        raise ValueError(
            f"X_true {tuple(shape)}, X_pred {tuple(pred_shape)} and mask "
            f"{tuple(mask.shape)} must have the same shape."
        )
    if rows.size == 0:
        raise ValueError("The mask selects no entries.")

    def pick(a):
        if sp.issparse(a):
            return np.asarray(sp.csr_matrix(a)[rows, cols], dtype=np.float64).ravel()
        return np.asarray(a, dtype=np.float64)[rows, cols]

    diff = pick(X_true) - pick(X_pred)
    if not np.all(np.isfinite(diff)):
        raise ValueError(
            "X_true or X_pred has NaN or infinite values at masked entries."
        )
    return float(np.mean(diff**2))


def masked_rmse(X_true, X_pred, mask):
    """Square root of :func:`masked_mse`.

    Parameters
    ----------
    X_true, X_pred : array-like or sparse matrix of shape (n_cells, n_genes)
        Truth and imputation.
    mask : array-like or sparse matrix of bool of shape (n_cells, n_genes)
        Held-out entries.

    Returns
    -------
    rmse : float
        Root mean squared error over the masked entries.
    """
    return float(np.sqrt(masked_mse(X_true, X_pred, mask)))


def matching_score(scores):
    """Mean probability given to the true pairs of a modality matching.

    Row ``i`` of the first modality is paired with row ``i`` of the second,
    so the score is the mean of the diagonal of the row-stochastic matrix
    (the NeurIPS 2021 / DANCE matching metric).

    Parameters
    ----------
    scores : array-like or sparse matrix of shape (n_cells, n_cells)
        Non-negative matching probabilities, rows summing to 1.

    Returns
    -------
    score : float
        In [0, 1]; 1/n for uniform guessing.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.metrics import matching_score
    >>> matching_score(np.array([[0.5, 0.5], [0.0, 1.0]]))
    0.75
    """
    S = sp.csr_matrix(scores) if sp.issparse(scores) else np.asarray(scores, float)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"scores must be a square matrix, got shape {S.shape}.")
    values = S.data if sp.issparse(S) else S
    if not np.all(np.isfinite(values)) or (values.size and values.min() < 0):
        raise ValueError("scores must be finite and non-negative.")
    rows = np.asarray(S.sum(axis=1)).ravel()
    if not np.allclose(rows, 1.0, atol=1e-6):
        raise ValueError("scores must be row-stochastic (each row sums to 1).")
    return float(np.mean(S.diagonal()))


def graph_connectivity(embedding, labels, *, n_neighbors=15):
    """How connected each cell type stays in the kNN graph of an embedding.

    The graph-connectivity score of scIB (Luecken et al. 2022, *Nat.
    Methods* 19:41-50), one of the NeurIPS 2021 joint-embedding metrics:
    build the ``n_neighbors`` nearest-neighbour graph of all cells
    (symmetrised, as scanpy's connectivities are), keep,
    for each cell type, the subgraph of its cells, and take the fraction
    of those cells in the subgraph's largest connected component; the
    score is the mean over cell types.  1 means every type is one
    connected piece (batches of a type mixed, or at least linked); a type
    split by batch into separate islands scores lower.

    Parameters
    ----------
    embedding : array-like of shape (n_cells, n_dims)
        The (joint) embedding.
    labels : array-like of shape (n_cells,)
        Cell types.
    n_neighbors : int, default=15
        Neighbours per cell (scanpy's default, as scIB).

    Returns
    -------
    score : float
        In (0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.metrics import graph_connectivity
    >>> Z = np.r_[np.zeros((10, 2)), np.full((10, 2), 100.0)]
    >>> Z += np.random.default_rng(0).normal(size=Z.shape)
    >>> graph_connectivity(Z, ["a"] * 20, n_neighbors=5)  # two islands
    0.5
    >>> graph_connectivity(Z, ["a"] * 10 + ["b"] * 10, n_neighbors=5)
    1.0
    """
    from scipy.sparse.csgraph import connected_components
    from sklearn.neighbors import kneighbors_graph

    Z = np.asarray(embedding, dtype=np.float64)
    labels = np.asarray(labels)
    if Z.ndim != 2 or labels.shape != (Z.shape[0],):
        raise ValueError(
            f"embedding must be 2-D with one row per label; got {Z.shape} and "
            f"{labels.shape} labels."
        )
    if not np.all(np.isfinite(Z)):
        raise ValueError("embedding holds NaN or infinite values.")
    if Z.shape[0] <= n_neighbors:
        raise ValueError(
            f"graph_connectivity needs more than n_neighbors={n_neighbors} "
            f"cells; got {Z.shape[0]}."
        )
    graph = kneighbors_graph(Z, n_neighbors, include_self=False)
    scores = []
    for label in np.unique(labels):
        cells = np.flatnonzero(labels == label)
        _, component = connected_components(
            graph[cells][:, cells], directed=True, connection="weak"
        )
        scores.append(np.bincount(component).max() / len(cells))
    return float(np.mean(scores))


def _cluster_labels(estimator, X, params):
    if hasattr(estimator, "predict"):
        return estimator.predict(X)
    return clone(estimator).fit_predict(X, **params)


def _routing_hint(name):
    """Say how to route the side information ``name`` to a clustering scorer."""
    steps = []
    if not get_config()["enable_metadata_routing"]:
        steps.append(
            "enable scikit-learn's metadata routing with "
            "sklearn.set_config(enable_metadata_routing=True)"
        )
    steps.append(
        f"request {name} from the scorer with scorer.set_score_request({name}=True) "
        f"(e.g. scoring=ari_scorer.set_score_request({name}=True))"
    )
    steps.append(
        f"pass {name} to the model-selection call (GridSearchCV(...).fit(X, y, "
        f"{name}={name}) or cross_validate(..., params={{'{name}': {name}}}))"
    )
    return (
        f"The clustering scorer refits a clone of the model on the scored cells "
        f"and received no {name}. To route {name} to it, " + ", ".join(steps) + "."
    )


class _ClusteringScorer:
    """Callable scorer ``(estimator, X, y, **metadata) -> float``.

    Metadata (``coords=``, ``constraint_labels=``, ...) is forwarded to the
    clone's ``fit_predict``.  With metadata routing enabled, request it
    with :meth:`set_score_request`, which returns a new scorer (the shared
    ``ari_scorer`` is never modified).
    """

    def __init__(self, score_func, kwargs, requests=None):
        self._score_func = score_func
        self._kwargs = kwargs
        self._requests = dict(requests or {})
        self.__name__ = f"{getattr(score_func, '__name__', 'clustering')}_scorer"

    def __call__(self, estimator, X, y, **fit_params):
        if y is None:
            raise ValueError(
                "Clustering scorers compare with known labels: pass y to the "
                "model-selection function."
            )
        try:
            labels = _cluster_labels(estimator, X, fit_params)
        except MissingSideInfoError as exc:
            if exc.name is None or exc.name in fit_params:
                raise
            raise MissingSideInfoError(
                f"{exc} {_routing_hint(exc.name)}", name=exc.name
            ) from exc
        return float(self._score_func(np.asarray(y), labels, **self._kwargs))

    def set_score_request(self, **requests):
        """Return a copy of the scorer that requests the given metadata.

        Parameters
        ----------
        **requests : bool or str
            ``coords=True`` routes ``coords`` to the clone's ``fit_predict``
            (a string aliases it), as for scikit-learn's scorers.

        Returns
        -------
        scorer : callable
            The new scorer.
        """
        return type(self)(
            self._score_func, self._kwargs, {**self._requests, **requests}
        )

    def get_metadata_routing(self):
        """Metadata requested by this scorer (scikit-learn routing)."""
        request = MetadataRequest(owner=self.__name__)
        for param, alias in self._requests.items():
            request.score.add_request(param=param, alias=alias)
        return request

    def __repr__(self):
        return f"make_clustering_scorer({getattr(self._score_func, '__name__', '?')})"


def make_clustering_scorer(score_func, **kwargs):
    """Build a scorer ``(estimator, X, y, **metadata) -> float`` for clustering.

    Estimators with ``predict`` are scored on ``predict(X)``; transductive
    ones (only ``fit_predict``) on ``clone(estimator).fit_predict(X,
    **metadata)``, so side information such as spatial ``coords`` reaches
    the clone.  With scikit-learn metadata routing enabled, request the
    metadata with ``scorer.set_score_request(coords=True)``.

    Parameters
    ----------
    score_func : callable
        ``score_func(labels_true, labels_pred, **kwargs)``; higher is better.
    **kwargs
        Passed to ``score_func``.

    Returns
    -------
    scorer : callable
        Usable as ``scoring=`` in scikit-learn model selection.

    Examples
    --------
    >>> from sklearn.metrics import fowlkes_mallows_score
    >>> from skdance.metrics import make_clustering_scorer
    >>> fm_scorer = make_clustering_scorer(fowlkes_mallows_score)
    """
    return _ClusteringScorer(score_func, kwargs)


ari_scorer = make_clustering_scorer(adjusted_rand_score)
nmi_scorer = make_clustering_scorer(normalized_mutual_info_score)
cluster_accuracy_scorer = make_clustering_scorer(cluster_accuracy)


def rmse_scorer(estimator, X, y):
    """Negative RMSE of ``estimator.predict(X)`` (greater is better).

    Parameters
    ----------
    estimator : fitted regressor
        Modality predictor.
    X : array-like
        First modality.
    y : array-like
        True second modality.

    Returns
    -------
    score : float
        ``-rmse(y, estimator.predict(X))``; for a skdance modality
        predictor, its ``score``, which also checks ``y``'s feature names
        against those seen in ``fit``.
    """
    from skdance.multimodal.prediction import BaseModalityPredictor

    if isinstance(estimator, BaseModalityPredictor):
        return estimator.score(X, y)
    return -rmse(y, estimator.predict(X))


def proportion_mse(P_true, P_pred):
    """Mean squared error of cell-type proportions (deconvolution).

    Parameters
    ----------
    P_true, P_pred : array-like of shape (n_spots, n_types)
        True and estimated proportions, columns in the same order.

    Returns
    -------
    mse : float
        Mean over spots and types, as DANCE reports it.

    Examples
    --------
    >>> from skdance.metrics import proportion_mse
    >>> proportion_mse([[0.5, 0.5]], [[1.0, 0.0]])
    0.25
    """
    P_true, P_pred = _same_shape(P_true, P_pred, "P_true", "P_pred")
    return float(np.mean((P_true - P_pred) ** 2))


def proportion_mse_scorer(estimator, X, y, **predict_params):
    """Negative :func:`proportion_mse` of ``estimator.predict(X)``.

    Parameters
    ----------
    estimator : fitted deconvolution estimator
        Has ``predict(X_spots, coords=None)``.
    X : array-like
        Spot counts.
    y : array-like of shape (n_spots, n_types)
        True proportions (columns in ``estimator.classes_`` order).
    **predict_params
        Passed to ``predict`` (``coords=`` for CARD).

    Returns
    -------
    score : float
        ``-proportion_mse(y, estimator.predict(X, **predict_params))``.
    """
    return -proportion_mse(y, estimator.predict(X, **predict_params))


def matching_scorer(estimator, X, y):
    """Score ``estimator.match(X, y)`` on paired cells with matching_score.

    Parameters
    ----------
    estimator : fitted matcher
        Has ``match(X_mod1, X_mod2)`` returning a row-stochastic matrix.
    X : array-like
        First modality.
    y : array-like
        Second modality, row ``i`` paired with row ``i`` of ``X``.

    Returns
    -------
    score : float
        :func:`matching_score` of the match matrix.
    """
    return matching_score(estimator.match(X, y))
