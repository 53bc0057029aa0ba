"""scGNN's cell graph: k nearest neighbours with outlier edges pruned."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.graph._base import BaseGraphBuilder

__all__ = ["PrunedKNNGraph", "prune_knn_graph"]


def prune_knn_graph(
    Z, n_neighbors=10, method="isolation_forest", n_trees=20, random_state=None
):
    """Build scGNN's cell graph: k nearest neighbours, outlier edges pruned.

    ``"isolation_forest"`` (scGNN's ``KNNgraphML``): for every cell an
    isolation forest is fitted to the embeddings of the cell and its
    neighbours and the neighbours it flags as outliers lose their edge.
    ``"stats"`` (``KNNgraphStats``): neighbours farther than the mean plus one
    standard deviation of the cell's neighbour distances are dropped.
    ``n_neighbors`` is capped at ``n_cells - 1``.

    Returns a symmetric 0/1 CSR adjacency without self loops.
    """
    n = Z.shape[0]
    k = min(n_neighbors, n - 1)
    dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z)
    dist, idx = dist[:, 1:], idx[:, 1:]
    keep = np.ones_like(idx, dtype=bool)
    if method == "stats":
        limit = dist.mean(axis=1) + dist.std(axis=1)
        keep = dist <= limit[:, None]
    elif k >= 2:
        forest = IsolationForest(
            n_estimators=n_trees, contamination="auto", random_state=random_state
        )
        for i in range(n):
            points = Z[np.concatenate([[i], idx[i]])]
            keep[i] = forest.fit_predict(points)[1:] == 1
    rows = np.repeat(np.arange(n), k)[keep.ravel()]
    A = sp.csr_matrix(
        (np.ones(rows.size), (rows, idx.ravel()[keep.ravel()])), shape=(n, n)
    )
    A = ((A + A.T) > 0).astype(np.float64)
    A.setdiag(0)
    A.eliminate_zeros()
    return sp.csr_matrix(A)


class PrunedKNNGraph(BaseGraphBuilder):
    """k-nearest-neighbour graph with outlier edges pruned (scGNN's cell graph).

    Each cell is linked to its ``n_neighbors`` nearest neighbours (Euclidean,
    capped at ``n_cells - 1``); edges to neighbours that look like outliers
    are dropped (:func:`prune_knn_graph`): by an isolation forest fitted per
    cell to the cell and its neighbours (``prune="isolation_forest"``,
    scGNN's ``KNNgraphML``) or beyond the mean plus one standard deviation of
    the cell's neighbour distances (``"stats"``, ``KNNgraphStats``).  The
    result is symmetric, 0/1, without self loops.

    Parameters
    ----------
    n_neighbors : int, default=10
        Neighbours per cell before pruning.
    prune : {"isolation_forest", "stats"}, default="isolation_forest"
        Pruning rule.
    n_trees : int, default=20
        Trees of each isolation forest.
    random_state : int, RandomState instance or None, default=None
        Seed of the isolation forests.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when the input had them.

    References
    ----------
    Wang et al. (2021), "scGNN is a novel graph neural network framework for
    single-cell RNA-Seq analyses", Nature Communications 12, 1882.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import PrunedKNNGraph
    >>> X = np.array([[0.0], [1.0], [2.0], [10.0]])
    >>> PrunedKNNGraph(n_neighbors=1, prune="stats").fit_transform(X).toarray()
    array([[0., 1., 0., 0.],
           [1., 0., 1., 0.],
           [0., 1., 0., 1.],
           [0., 0., 1., 0.]])
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "prune": [StrOptions({"isolation_forest", "stats"})],
        "n_trees": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self, *, n_neighbors=10, prune="isolation_forest", n_trees=20, random_state=None
    ):
        self.n_neighbors = n_neighbors
        self.prune = prune
        self.n_trees = n_trees
        self.random_state = random_state

    def _build(self, X):
        if X.shape[0] < 2:
            return sp.csr_matrix((X.shape[0], X.shape[0]))
        Z = X.toarray() if sp.issparse(X) else np.asarray(X)
        return prune_knn_graph(
            Z, self.n_neighbors, self.prune, self.n_trees, self.random_state
        )
