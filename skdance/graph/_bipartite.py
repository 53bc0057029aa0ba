"""Graphs over genes: the cell-gene bipartite graph and gene co-expression."""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.graph._base import BaseGraphBuilder
from skdance.preprocessing._utils import normalize_rows

__all__ = ["CellGeneGraph", "GeneCorrelationGraph"]


class CellGeneGraph(BaseGraphBuilder):
    """Bipartite cell-gene graph of graph-sc and scDeepsort.

    Nodes are the ``n_cells`` cells followed by the ``n_genes`` genes; a cell
    is linked to every gene it expresses.  The returned adjacency is the
    symmetric ``(n_cells + n_genes)`` square matrix ``[[0, W], [W.T, 0]]``.

    Parameters
    ----------
    weight : {"expression", "fraction"}, default="expression"
        Edge weight ``W_ij``: the input value (graph-sc links cells and genes
        with the normalised, log-transformed expression it is given), or the
        gene's fraction of the cell's total (scDeepsort's cell-gene weight).
    self_loops : bool, default=False
        Add weight-1 self loops on every node (scDeepsort adds them).

    Attributes
    ----------
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    References
    ----------
    Ciortan & Defrance (2021), "GNN-based embedding for clustering scRNA-seq
    data", Bioinformatics.  Shao et al. (2021), "scDeepSort", NAR.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import CellGeneGraph
    >>> A = CellGeneGraph(weight="fraction").fit_transform(np.array([[1.0, 3.0]]))
    >>> A.toarray()
    array([[0.  , 0.25, 0.75],
           [0.25, 0.  , 0.  ],
           [0.75, 0.  , 0.  ]])
    """

    _counts = True
    _parameter_constraints = {
        "weight": [StrOptions({"expression", "fraction"})],
        "self_loops": ["boolean"],
    }

    def __init__(self, *, weight="expression", self_loops=False):
        self.weight = weight
        self.self_loops = self_loops

    def _build(self, X):
        W = sp.csr_matrix(X, dtype=np.float64, copy=True)
        if self.weight == "fraction":
            W = normalize_rows(W, 1.0)
        W.eliminate_zeros()
        A = sp.bmat([[None, W], [W.T, None]], format="csr")
        n = A.shape[0]
        if self.self_loops:
            A = A + sp.identity(n, format="csr")
        return A

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.output = "bipartite"
        return tags


class GeneCorrelationGraph(BaseGraphBuilder):
    """Gene co-expression graph (GraphSCI): genes linked by Pearson correlation.

    ``transform(X)`` returns an ``(n_genes, n_genes)`` adjacency: genes
    ``a`` and ``b`` are linked with weight ``|r_ab|`` when the absolute
    Pearson correlation of their expression across the cells of ``X`` is at
    least ``threshold``.  Genes with zero variance have no edges.

    Parameters
    ----------
    threshold : float, default=0.5
        Minimum absolute correlation for an edge.
    weighted : bool, default=True
        Weight edges by ``|r|``; False gives a 0/1 adjacency.

    Attributes
    ----------
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import GeneCorrelationGraph
    >>> X = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 1.0], [3.0, 6.0, 0.0]])
    >>> GeneCorrelationGraph(threshold=0.9).fit_transform(X).toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 0., 0.]])
    """

    _parameter_constraints = {
        "threshold": [Interval(Real, 0, 1, closed="both")],
        "weighted": ["boolean"],
    }

    def __init__(self, *, threshold=0.5, weighted=True):
        self.threshold = threshold
        self.weighted = weighted

    def _build(self, X):
        return correlation_links(X, self.threshold, weighted=self.weighted)

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.output = "gene_adjacency"
        return tags


_CHUNK = 512


def _float_csc(X):
    """``X`` as a float64 CSC matrix with zeros dropped.

    Sparse and dense inputs then take the same arithmetic path, so their
    feature graphs agree exactly (a 1e-16 difference in one edge weight is
    enough to make two trainings drift apart).
    """
    X = sp.csc_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    return X


def correlation_links(X, threshold=0.5, *, weighted=True):
    """Feature co-expression links, without densifying ``X``.

    The graph of :class:`~skdance.graph.GeneCorrelationGraph` (features
    linked with weight ``|r|`` when their absolute Pearson correlation over
    the cells is at least ``threshold``; constant features unlinked),
    computed ``X.T @ X`` one block of columns at a time: memory grows with
    ``n_features x 512``, never with a dense cells x features matrix (ATAC
    peaks stay sparse).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_cells, n_features)
        Values.
    threshold : float, default=0.5
        Minimum absolute correlation of a link.
    weighted : bool, default=True
        Weight links by ``|r|``; False gives 0/1 links.

    Returns
    -------
    links : scipy.sparse.csr_matrix of shape (n_features, n_features)
        Symmetric, no self links.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph._bipartite import correlation_links
    >>> X = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 1.0], [3.0, 6.0, 0.0]])
    >>> correlation_links(X, 0.9).toarray()
    array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 0., 0.]])
    """
    n, p = X.shape
    Xc = _float_csc(X)
    mean = np.asarray(Xc.sum(axis=0)).ravel() / max(n, 1)
    sq = np.asarray(Xc.multiply(Xc).sum(axis=0)).ravel()
    centred = np.clip(sq - n * mean**2, 0.0, None)
    ok = centred > 1e-12 * np.maximum(sq, np.finfo(np.float64).tiny)
    norms = np.where(ok, np.sqrt(centred), 1.0)
    rows, cols, vals = [], [], []
    for start in range(0, p, _CHUNK):
        stop = min(start + _CHUNK, p)
        gram = (Xc.T @ Xc[:, start:stop]).toarray()
        corr = (gram - n * np.outer(mean, mean[start:stop])) / np.outer(
            norms, norms[start:stop]
        )
        corr = np.abs(corr)
        corr[~ok, :] = 0.0
        corr[:, ~ok[start:stop]] = 0.0
        corr[np.arange(start, stop), np.arange(stop - start)] = 0.0
        r, c = np.nonzero(corr >= threshold)
        keep = corr[r, c] > 0
        r, c = r[keep], c[keep]
        rows.append(r)
        cols.append(c + start)
        vals.append(corr[r, c] if weighted else np.ones(r.size))
    links = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(p, p),
    )
    links.sort_indices()
    return links
