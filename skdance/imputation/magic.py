"""MAGIC-style diffusion imputation: the simple baseline of the imputation task."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA
from sklearn.utils._param_validation import HasMethods, Interval

from skdance.graph import AdaptiveKernelGraph, fit_graph
from skdance.imputation._base import BaseImputer
from skdance.preprocessing import normalize_rows, row_sums, scale_rows
from skdance.utils import check_no_empty_rows, check_random_state_int

__all__ = ["MAGIC"]


class MAGIC(BaseImputer):
    """MAGIC-style diffusion imputation (van Dijk et al. 2018), the baseline.

    Counts are scaled to the median library size and square-root transformed;
    a Markov matrix on ``n_components`` principal components (the ``graph``'s
    affinity, row-normalised; by default MAGIC's adaptive kernel,
    :class:`~skdance.graph.AdaptiveKernelGraph`) is raised to the power
    ``t`` and applied to the transformed expression; the result is squared and
    scaled back to each cell's library size.  Every entry changes (MAGIC has
    no "keep the observed counts" rule).

    Transductive: ``transform(X)`` diffuses over the cells of ``X`` (the graph
    is built on them), so impute all cells at once.  ``fit`` only validates
    and records the genes.  Simplifications against the ``magic`` package: a
    plain adaptive kernel (no ``graphtools`` landmarks or kernel threshold).
    The output is a dense array (every entry is imputed), so select genes
    first on large inputs.

    Parameters
    ----------
    graph : graph builder or None, default=None
        Transformer returning the cell affinity of the principal components
        (cloned in ``transform``); None: ``AdaptiveKernelGraph(n_neighbors=5,
        decay=1.0)`` (MAGIC's ``knn`` and ``decay``).
    t : int, default=3
        Diffusion time (power of the Markov matrix).
    n_components : int, default=100
        Principal components the graph is built on.
    random_state : int, RandomState instance or None, default=None
        Seed of the PCA.

    Attributes
    ----------
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    References
    ----------
    van Dijk et al. (2018), "Recovering gene interactions from single-cell
    data using data diffusion", Cell 174(3), 716-729.

    Examples
    --------
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> from skdance.imputation import MAGIC
    >>> X, _ = load_pbmc_4k_subset()
    >>> MAGIC(random_state=0).fit_transform(X).shape
    (1200, 2000)
    """

    _parameter_constraints = {
        "graph": [HasMethods(["fit_transform"]), None],
        "t": [Interval(Integral, 0, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, graph=None, t=3, n_components=100, random_state=None):
        self.graph = graph
        self.t = t
        self.n_components = n_components
        self.random_state = random_state

    def _fit(self, X):
        return self

    def _transform(self, X):
        check_no_empty_rows(X, whom="MAGIC")
        n, n_genes = X.shape
        library = row_sums(X)
        data = scale_rows(
            sp.csr_matrix(X) if sp.issparse(X) else X, np.median(library) / library
        )
        data = np.sqrt(data.toarray() if sp.issparse(data) else data)
        n_comp = min(self.n_components, n - 1, n_genes - 1)
        seed = check_random_state_int(self.random_state)
        if n_comp >= 1 and n_comp < n_genes:
            Z = PCA(n_comp, random_state=seed).fit_transform(data)
        else:
            Z = data
        if n < 2:
            return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
        default = AdaptiveKernelGraph(n_neighbors=5, decay=1.0)
        affinity = fit_graph(self.graph, default, Z, shape=(n, n), what="cell graph")
        M = normalize_rows(affinity, 1.0)  # the Markov matrix
        for _ in range(self.t):
            data = M @ data
        return (data**2) * (library / np.median(library))[:, None]

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.transductive = True
        tags.rejects_empty_cells = "transform"
        return tags
