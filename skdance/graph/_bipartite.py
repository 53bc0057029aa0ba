"""Graphs over genes: the cell-gene bipartite graph, co-expression, gene sets."""

import os
from collections.abc import Mapping
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.graph._base import BaseGraphBuilder
from skdance.preprocessing import normalize_rows

__all__ = [
    "CellGeneGraph",
    "GeneCorrelationGraph",
    "cell_feature_weights",
    "correlation_links",
    "gene_set_links",
    "read_gene_sets",
]


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
    >>> from skdance.graph import correlation_links
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


def cell_feature_weights(X):
    """Cell -> feature edge weights of DANCE eq. 29: ``X`` with zeros dropped.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_cells, n_features)
        Values of the modality (any sign).

    Returns
    -------
    weights : scipy.sparse.csr_matrix of shape (n_cells, n_features)
        One edge per non-zero value, weighted by it (float64, sorted indices).

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import cell_feature_weights
    >>> cell_feature_weights(np.array([[0.0, 2.0], [1.0, 0.0]])).nnz
    2
    """
    W = sp.csr_matrix(X, dtype=np.float64, copy=True)
    W.sum_duplicates()
    W.eliminate_zeros()
    W.sort_indices()
    return W


def read_gene_sets(gene_sets):
    """Gene sets as a dict ``name -> list of feature names``.

    Parameters
    ----------
    gene_sets : dict or path-like
        A mapping from set name to an iterable of feature names, or the path
        of a GMT file (one set per line, tab-separated: name, description,
        members; the MSigDB and Enrichr format).

    Returns
    -------
    sets : dict of str to list of str
        The sets, in file (or mapping) order.

    Examples
    --------
    >>> from skdance.graph import read_gene_sets
    >>> read_gene_sets({"TCR": ("CD3E", "CD3D")})
    {'TCR': ['CD3E', 'CD3D']}
    """
    if isinstance(gene_sets, (str, os.PathLike)):
        sets = {}
        with open(gene_sets, encoding="utf-8") as handle:
            for line in handle:
                parts = line.rstrip("\r\n").split("\t")
                members = [m.strip() for m in parts[2:] if m.strip()]
                if parts[0].strip() and members:
                    sets.setdefault(parts[0].strip(), []).extend(members)
        if not sets:
            raise ValueError(
                f"gene_sets: no gene set found in {os.fspath(gene_sets)!r} (a GMT "
                "file has one set per line: name<TAB>description<TAB>members...)."
            )
        return sets
    if isinstance(gene_sets, Mapping):
        sets = {}
        for name, members in gene_sets.items():
            if isinstance(members, str) or not hasattr(members, "__iter__"):
                raise ValueError(
                    f"gene_sets[{name!r}] must be a list of feature names, got "
                    f"{type(members).__name__}."
                )
            sets[str(name)] = [str(m) for m in members]
        return sets
    raise ValueError(
        "gene_sets must be a dict (set name -> feature names) or the path of a "
        f"GMT file, got {type(gene_sets).__name__}."
    )


def _column_norms(X):
    return np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())


def gene_set_links(gene_sets, feature_names, X):
    """Feature-feature links of scMoGNN's pathway graph.

    Two features are linked when some gene set holds both; the link is
    weighted by the cosine similarity of their values over the cells of
    ``X`` (DANCE's ``pathway_weight="cos"``, the setting of its GEX -> ADT
    command line).  Links of zero similarity are dropped.

    Parameters
    ----------
    gene_sets : dict or path-like
        See :func:`read_gene_sets`.
    feature_names : array-like of str of shape (n_features,)
        Names of the columns of ``X``.
    X : {ndarray, sparse matrix} of shape (n_cells, n_features)
        Values the similarities are computed from (never densified).

    Returns
    -------
    links : scipy.sparse.csr_matrix of shape (n_features, n_features)
        Symmetric, no self links.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import gene_set_links
    >>> X = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    >>> gene_set_links({"s": ["a", "b"]}, ["a", "b", "c"], X).toarray().round(3)
    array([[0.   , 0.707, 0.   ],
           [0.707, 0.   , 0.   ],
           [0.   , 0.   , 0.   ]])
    """
    sets = read_gene_sets(gene_sets)
    names = [str(n) for n in feature_names]
    p = len(names)
    index = {}
    for i, name in enumerate(names):
        index.setdefault(name, i)
    rows, cols = [], []
    for members in sets.values():
        idx = np.unique([index[m] for m in members if m in index])
        if idx.size < 2:
            continue
        r, c = np.meshgrid(idx, idx, indexing="ij")
        keep = r != c
        rows.append(r[keep])
        cols.append(c[keep])
    if not rows:
        return sp.csr_matrix((p, p))
    pattern = sp.csr_matrix(
        (
            np.ones(sum(r.size for r in rows)),
            (np.concatenate(rows), np.concatenate(cols)),
        ),
        shape=(p, p),
    )
    pattern.sum_duplicates()
    pattern.sort_indices()
    Xc = _float_csc(X)
    norms = _column_norms(Xc)
    values = np.empty(pattern.nnz)
    for start in range(0, p, _CHUNK):
        stop = min(start + _CHUNK, p)
        lo, hi = pattern.indptr[start], pattern.indptr[stop]
        if lo == hi:
            continue
        gram = (Xc[:, start:stop].T @ Xc).toarray()  # (chunk, p)
        r = np.repeat(
            np.arange(stop - start), np.diff(pattern.indptr[start : stop + 1])
        )
        c = pattern.indices[lo:hi]
        denom = norms[start + r] * norms[c]
        values[lo:hi] = np.divide(
            gram[r, c], denom, out=np.zeros(hi - lo), where=denom > 0
        )
    links = sp.csr_matrix((values, pattern.indices, pattern.indptr), shape=(p, p))
    links.eliminate_zeros()
    return links
