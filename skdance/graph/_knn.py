"""Cell-cell neighbour graphs: k nearest neighbours and mutual neighbours."""

import sys
from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.graph._base import BaseGraphBuilder
from skdance.utils import resolve_side_info

__all__ = ["KNNGraph", "MutualNNGraph"]


def _check_k(n_neighbors, n_samples, whom):
    if n_neighbors >= n_samples:
        raise ValueError(
            f"{whom}: n_neighbors={n_neighbors} must be smaller than the number of "
            f"cells (n_samples={n_samples})."
        )


class KNNGraph(BaseGraphBuilder):
    """k-nearest-neighbour graph between the cells (rows) of ``X``.

    Parameters
    ----------
    n_neighbors : int, default=15
        Neighbours per cell, not counting the cell itself.
    mode : {"connectivity", "distance", "umap"}, default="connectivity"
        Edge weights: 1, the distance, or scanpy's default UMAP fuzzy
        connectivities (:func:`scanpy.pp.neighbors`, which counts the cell
        itself among its ``n_neighbors + 1`` neighbours).
    metric : str, default="euclidean"
        Any metric of :class:`sklearn.neighbors.NearestNeighbors`.
    symmetrize : bool, default=True
        Make the graph undirected (an edge wherever either cell lists the
        other; the larger weight is kept).  UMAP weights are always symmetric.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when the input had them.

    See Also
    --------
    sklearn.neighbors.KNeighborsTransformer : neighbours against fitted data.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import KNNGraph
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> KNNGraph(n_neighbors=1).fit_transform(X).toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 1., 0.],
           [0., 1., 0., 1.],
           [0., 0., 1., 0.]])
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions({"connectivity", "distance", "umap"})],
        "metric": [str, callable],
        "symmetrize": ["boolean"],
    }

    def __init__(
        self,
        *,
        n_neighbors=15,
        mode="connectivity",
        metric="euclidean",
        symmetrize=True,
    ):
        self.n_neighbors = n_neighbors
        self.mode = mode
        self.metric = metric
        self.symmetrize = symmetrize

    def _build(self, X):
        n = X.shape[0]
        _check_k(self.n_neighbors, n, type(self).__name__)
        metric = self.metric
        angular = metric in ("correlation", "cosine")
        if angular:
            # 1 - r (or 1 - cos) = ||u - v||^2 / 2 for centred (or not),
            # unit-norm rows: the fast euclidean search gives the same
            # neighbours, ten times faster than scipy's correlation distance
            X = unit_rows(X, center=metric == "correlation")
            metric = "euclidean"
        nn = NearestNeighbors(n_neighbors=self.n_neighbors + 1, metric=metric)
        nn.fit(X)
        if self.mode == "umap":  # scanpy counts the cell itself as a neighbour
            dist, ind = nn.kneighbors(X)
            if angular:
                dist = dist**2 / 2
            return _umap_connectivities(ind, dist, n)
        # query None: each cell's neighbours among the others (self excluded)
        A = nn.kneighbors_graph(None, self.n_neighbors, mode=self.mode)
        if angular and self.mode == "distance":
            A.data = A.data**2 / 2
        if self.symmetrize:
            A = A.maximum(A.T)
        return A


def unit_rows(X, center=False):
    """Rows scaled to unit Euclidean norm (all-zero rows stay zero).

    Cosine similarity is then a dot product of rows, and the Euclidean
    distance between rows a monotone function of it; with ``center=True``
    each row is centred first, which turns the dot product into Pearson's
    correlation.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    center : bool, default=False
        Subtract each row's mean before scaling.

    Returns
    -------
    ndarray of shape (n_samples, n_features)
        Dense, float64.

    Examples
    --------
    >>> from skdance.graph import unit_rows
    >>> unit_rows([[3.0, 4.0], [0.0, 0.0]])
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    if center:
        X = X - X.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def _umap_connectivities(knn_indices, knn_dists, n):
    """Fuzzy simplicial set weights, as scanpy's default neighbour graph."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's import-time numba warnings
        from umap.umap_ import fuzzy_simplicial_set

    # numba's parallel runtime, started by the first call, resets the OpenMP
    # thread count that torch also uses; keep the caller's setting, so that a
    # Leiden fit does not change how (and how reproducibly) torch models train
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    graph = fuzzy_simplicial_set(
        sp.coo_matrix((n, 1)),
        knn_indices.shape[1],
        None,
        None,
        knn_indices=knn_indices,
        knn_dists=knn_dists,
        set_op_mix_ratio=1.0,
        local_connectivity=1.0,
    )[0]
    if threads is not None:
        torch.set_num_threads(threads)
    graph = sp.csr_matrix(graph)
    graph.setdiag(0)
    graph.eliminate_zeros()
    return graph


class MutualNNGraph(BaseGraphBuilder):
    """Mutual-nearest-neighbour graph (DSTG's link graph).

    Cells ``i`` and ``j`` are linked when each is among the other's
    ``n_neighbors`` nearest neighbours.  With ``batch`` given to
    ``transform``, neighbours are searched only in the other batch, which
    links cells across datasets (DSTG links pseudo-spots to real spots this
    way in a shared, e.g. CCA, space).

    Parameters
    ----------
    n_neighbors : int, default=10
        Neighbours searched per cell.
    metric : str, default="euclidean"
        Any metric of :class:`sklearn.neighbors.NearestNeighbors`.
    batch_key : str or None, default=None
        ``obs`` column holding the dataset of each cell when ``X`` is an
        AnnData and ``batch`` is not passed to ``transform``.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when the input had them.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import MutualNNGraph
    >>> X = np.array([[0.0], [0.1], [5.0], [5.1]])
    >>> MutualNNGraph(n_neighbors=1).fit_transform(X).toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 0., 0.],
           [0., 0., 0., 1.],
           [0., 0., 1., 0.]])
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [str, callable],
        "batch_key": [str, None],
    }
    __metadata_request__transform = {"batch": True}

    def __init__(self, *, n_neighbors=10, metric="euclidean", batch_key=None):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.batch_key = batch_key

    def fit_transform(self, X, y=None, batch=None):
        """Fit to ``X`` and return its mutual-neighbour adjacency.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Cells in a shared space.
        y : None
            Ignored.
        batch : array-like of shape (n_samples,), default=None
            Dataset of each cell (see ``transform``).

        Returns
        -------
        adjacency : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
            Symmetric 0/1 adjacency.
        """
        return self.fit(X).transform(X, batch=batch)

    def transform(self, X, batch=None):
        """Build the mutual-neighbour adjacency of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_samples, n_features)
            Cells in a shared space.
        batch : array-like of shape (n_samples,), default=None
            Dataset of each cell; when given (or found in
            ``adata.obs[batch_key]``), only cross-dataset links are made.

        Returns
        -------
        adjacency : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
            Symmetric 0/1 adjacency.
        """
        self._batch = resolve_side_info(
            X,
            batch,
            name="batch",
            key=self.batch_key,
            slot="obs",
            required=False,
            whom="MutualNNGraph",
            kind="vector",
        )
        try:
            return super().transform(X)
        finally:
            del self._batch

    def _build(self, X):
        n = X.shape[0]
        batch = getattr(self, "_batch", None)
        if batch is None:
            _check_k(self.n_neighbors, n, type(self).__name__)
            A = KNNGraph(
                n_neighbors=self.n_neighbors, metric=self.metric, symmetrize=False
            )._build(X)
        else:
            rows, cols = [], []
            for b in np.unique(batch):
                inside, outside = np.flatnonzero(batch == b), np.flatnonzero(batch != b)
                if outside.size == 0:
                    raise ValueError("batch has a single value: no cross links.")
                k = min(self.n_neighbors, outside.size)
                nn = NearestNeighbors(n_neighbors=k, metric=self.metric)
                ind = nn.fit(X[outside]).kneighbors(X[inside], return_distance=False)
                rows.append(np.repeat(inside, k))
                cols.append(outside[ind.ravel()])
            rows, cols = np.concatenate(rows), np.concatenate(cols)
            A = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
        A.eliminate_zeros()
        A.data[:] = 1.0
        return A.minimum(A.T)
