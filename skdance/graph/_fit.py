"""How a model turns its ``graph`` parameter into an adjacency."""

import scipy.sparse as sp
from sklearn.base import clone

__all__ = ["fit_graph"]


def fit_graph(graph, default, X, *, shape=None, what="adjacency"):
    """Adjacency of ``X`` from a model's ``graph`` parameter.

    A clone of ``graph`` (the user's builder is never fitted in place), or
    the method's own ``default`` builder when ``graph`` is None, is fitted
    on ``X``.

    Parameters
    ----------
    graph : graph builder or None
        The model's ``graph`` parameter.
    default : graph builder
        The method's builder with its published settings.
    X : {ndarray, sparse matrix}
        What the builder links (cells, genes, or both).
    shape : tuple of int, default=None
        Expected shape of the adjacency; a ``ValueError`` otherwise.
    what : str, default="adjacency"
        Name of the expected graph in that error.

    Returns
    -------
    adjacency : scipy.sparse.csr_matrix
        The graph.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import KNNGraph
    >>> from skdance.graph._fit import fit_graph
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> fit_graph(None, KNNGraph(n_neighbors=1), X, shape=(3, 3)).nnz
    4
    """
    builder = default if graph is None else clone(graph)
    adjacency = sp.csr_matrix(builder.fit_transform(X))
    if shape is not None and adjacency.shape != tuple(shape):
        raise ValueError(
            f"graph must return the {what} of shape {tuple(shape)}, got "
            f"{adjacency.shape}."
        )
    return adjacency
