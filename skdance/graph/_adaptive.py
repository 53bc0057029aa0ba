"""MAGIC's adaptive-bandwidth kernel graph."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._param_validation import Interval

from skdance.graph._base import BaseGraphBuilder

__all__ = ["AdaptiveKernelGraph"]


class AdaptiveKernelGraph(BaseGraphBuilder):
    """Adaptive-bandwidth kernel between neighbouring cells (MAGIC's affinity).

    ``K_ij = exp(-(d_ij / sigma_i) ** decay)`` with ``sigma_i`` the distance
    from cell ``i`` to its ``n_neighbors``-th neighbour, evaluated on its
    ``n_extended * n_neighbors`` nearest neighbours (itself included, weight
    1), then symmetrised ``(K + K.T) / 2``.  MAGIC row-normalises it into its
    Markov matrix.

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbour defining each cell's bandwidth (MAGIC's ``knn``).
    decay : float, default=1.0
        Kernel exponent (MAGIC's ``decay``).
    n_extended : int, default=3
        The kernel is evaluated on ``n_extended * n_neighbors`` neighbours
        (capped at ``n_cells - 1``).

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when the input had them.

    References
    ----------
    van Dijk et al. (2018), "Recovering gene interactions from single-cell
    data using data diffusion", Cell 174(3), 716-729.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import AdaptiveKernelGraph
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> K = AdaptiveKernelGraph(n_neighbors=1, n_extended=1).fit_transform(X)
    >>> K.toarray().round(3)
    array([[1.   , 0.368, 0.   ],
           [0.368, 1.   , 0.184],
           [0.   , 0.184, 1.   ]])
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "decay": [Interval(Real, 0, None, closed="neither")],
        "n_extended": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, n_neighbors=5, decay=1.0, n_extended=3):
        self.n_neighbors = n_neighbors
        self.decay = decay
        self.n_extended = n_extended

    def _build(self, X):
        n = X.shape[0]
        if n < 2:
            return sp.identity(n, format="csr")
        k = min(n - 1, max(1, self.n_neighbors * self.n_extended))
        dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
        sigma = dist[:, min(self.n_neighbors, k)]
        sigma = np.where(sigma > 0, sigma, np.maximum(dist[:, -1], 1e-12))
        weights = np.exp(-((dist / sigma[:, None]) ** self.decay))
        K = sp.csr_matrix(
            (weights.ravel(), idx.ravel(), np.arange(0, n * (k + 1) + 1, k + 1)),
            shape=(n, n),
        )
        return (K + K.T) / 2.0
