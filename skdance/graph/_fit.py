"""How a model turns its graph parameter into an adjacency.

One path for every builder: :func:`build_graph` fits a builder and, where
the model has spot coordinates, hands them over as the builder declares it
needs them (its ``requires_coords`` tag): a spatial builder
(:class:`~skdance.graph.RadiusGraph`,
:class:`~skdance.graph.SpatialGaussianGraph`) receives the cells and the
coordinates as side information, any other builder (e.g. a
:class:`~skdance.graph.KNNGraph`) links the positions themselves.
"""

import scipy.sparse as sp
from sklearn.base import clone

from skdance.utils import get_skdance_tags

__all__ = ["build_graph", "fit_graph", "needs_coords"]


def needs_coords(builder):
    """Whether a graph builder takes spot coordinates as side information.

    Read from the builder's declared need (its ``requires_coords`` tag),
    which also sets its metadata-routing request for ``coords``.

    Parameters
    ----------
    builder : graph builder
        An instance or a class.

    Returns
    -------
    needs : bool

    Examples
    --------
    >>> from skdance.graph import KNNGraph, RadiusGraph
    >>> from skdance.graph._fit import needs_coords
    >>> needs_coords(RadiusGraph()), needs_coords(KNNGraph())
    (True, False)
    """
    return get_skdance_tags(builder).requires_coords is not None


def build_graph(builder, X, *, coords=None, shape=None, name="graph", what="adjacency"):
    """Fit ``builder`` (in place) and return its adjacency.

    Parameters
    ----------
    builder : graph builder
        Fitted here; pass a clone to keep the user's builder unfitted.
    X : {ndarray, sparse matrix}
        What the builder links (cells, genes, or both): the rows of the
        graph.
    coords : ndarray of shape (n_cells, n_dims) or None, default=None
        The cells' positions, for a spatial graph.  A builder that declares
        it needs coordinates (:func:`needs_coords`) gets
        ``fit_transform(X, coords=coords)``; any other builder is fitted on
        ``coords`` (the positions are its input).  None: the builder is
        fitted on ``X``.
    shape : tuple of int, default=None
        Expected shape of the adjacency; a ``ValueError`` otherwise.
    name : str, default="graph"
        The model's parameter holding the builder, for that error.
    what : str, default="adjacency"
        Name of the expected graph in that error.

    Returns
    -------
    adjacency : scipy.sparse.csr_matrix
        The graph.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.graph import KNNGraph, RadiusGraph
    >>> from skdance.graph._fit import build_graph
    >>> X = np.ones((3, 2))
    >>> coords = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    >>> build_graph(RadiusGraph(radius=2.0), X, coords=coords).nnz
    2
    >>> build_graph(KNNGraph(n_neighbors=1), X, coords=coords).nnz
    4
    """
    if coords is None:
        adjacency = builder.fit_transform(X)
    elif needs_coords(builder):
        adjacency = builder.fit_transform(X, coords=coords)
    else:
        adjacency = builder.fit_transform(coords)
    adjacency = sp.csr_matrix(adjacency)
    if shape is not None and adjacency.shape != tuple(shape):
        raise ValueError(
            f"{name} must return the {what} of shape {tuple(shape)}, got "
            f"{adjacency.shape}."
        )
    return adjacency


def fit_graph(
    graph, default, X, *, coords=None, shape=None, name="graph", what="adjacency"
):
    """Adjacency of ``X`` from a model's graph parameter.

    A clone of ``graph`` (the user's builder is never fitted in place), or
    the method's own ``default`` builder when ``graph`` is None, is fitted
    by :func:`build_graph`.

    Parameters
    ----------
    graph : graph builder or None
        The model's ``graph`` (or ``spatial_graph``) parameter.
    default : graph builder
        The method's builder with its published settings.
    X : {ndarray, sparse matrix}
        What the builder links (cells, genes, or both).
    coords : ndarray of shape (n_cells, n_dims) or None, default=None
        The cells' positions, for a spatial graph (see :func:`build_graph`).
    shape : tuple of int, default=None
        Expected shape of the adjacency; a ``ValueError`` otherwise.
    name : str, default="graph"
        The model's parameter, for that error.
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
    return build_graph(builder, X, coords=coords, shape=shape, name=name, what=what)
