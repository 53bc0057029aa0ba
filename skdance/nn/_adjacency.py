"""The one place where scipy adjacency matrices become torch/PyG inputs."""

import warnings

import numpy as np
import scipy.sparse as sp

__all__ = [
    "mean_one_edge_weights",
    "normalize_adjacency",
    "to_edge_index",
    "to_torch_sparse",
]


def normalize_adjacency(adj, *, mode="sym", add_self_loops=True):
    """Normalise a scipy adjacency as graph convolutions expect.

    Parameters
    ----------
    adj : scipy.sparse matrix of shape (n, n)
        Non-negative weighted adjacency.
    mode : {"sym", "row", None}, default="sym"
        ``"sym"``: ``D^-1/2 A D^-1/2`` (Kipf & Welling GCN); ``"row"``:
        ``D^-1 A`` (mean aggregation); None: unchanged.
    add_self_loops : bool, default=True
        Add the identity before normalising.

    Returns
    -------
    adj_norm : scipy.sparse.csr_matrix of shape (n, n)
        Normalised adjacency (float32).
    """
    A = sp.csr_matrix(adj, dtype=np.float64)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {A.shape}.")
    if add_self_loops:
        A = A + sp.identity(A.shape[0], format="csr")
    if mode is not None:
        deg = np.asarray(A.sum(axis=1)).ravel()
        if mode == "sym":
            inv = np.zeros_like(deg)
            np.power(deg, -0.5, out=inv, where=deg > 0)
            A = sp.diags(inv) @ A @ sp.diags(inv)
        elif mode == "row":
            inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
            A = sp.diags(inv) @ A
        else:
            raise ValueError(f"mode must be 'sym', 'row' or None, got {mode!r}.")
    return sp.csr_matrix(A, dtype=np.float32)


def mean_one_edge_weights(weights):
    """Rescale every row's non-zero weights to mean 1 (``deg * w / sum(w)``).

    The edge normalisation of scDeepsort (``normalize_weight``) and graph-sc
    (``edge_norm``): a node's incoming edge weights keep their proportions
    but average 1, so a mean aggregation is not shrunk by small weights.

    Parameters
    ----------
    weights : scipy.sparse matrix of shape (n_dst, n_src)
        Non-negative edge weights, one row per receiving node.

    Returns
    -------
    weights_norm : scipy.sparse.csr_matrix of shape (n_dst, n_src)
        Rescaled weights (float64); rows without edges stay empty.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from skdance.nn import mean_one_edge_weights
    >>> mean_one_edge_weights(sp.csr_matrix([[1.0, 3.0, 0.0]])).toarray()
    array([[0.5, 1.5, 0. ]])
    """
    W = sp.csr_matrix(weights, dtype=np.float64, copy=True)
    W.eliminate_zeros()
    deg = np.diff(W.indptr).astype(np.float64)
    total = np.asarray(W.sum(axis=1)).ravel()
    scale = np.divide(deg, total, out=np.zeros_like(deg), where=total > 0)
    return sp.csr_matrix(sp.diags(scale) @ W)


def to_torch_sparse(adj, *, normalize=None, add_self_loops=False, layout="csr"):
    """Turn a scipy adjacency into a torch sparse tensor for ``torch.sparse.mm``.

    Parameters
    ----------
    adj : scipy.sparse matrix of shape (n, m)
        Adjacency (or any sparse operator).
    normalize : {"sym", "row", None}, default=None
        See :func:`normalize_adjacency` (square adjacency only).
    add_self_loops : bool, default=False
        Add the identity first (square adjacency only).
    layout : {"csr", "coo"}, default="csr"
        Torch sparse layout; CSR is the fastest for ``A @ X`` on CPU.

    Returns
    -------
    tensor : torch.Tensor
        float32 sparse tensor of shape (n, m).
    """
    import torch

    if normalize is not None or add_self_loops:
        A = normalize_adjacency(adj, mode=normalize, add_self_loops=add_self_loops)
    else:
        A = sp.csr_matrix(adj, dtype=np.float32, copy=True)
    A.sort_indices()
    if layout == "csr":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
            return torch.sparse_csr_tensor(
                torch.from_numpy(A.indptr.astype(np.int64)),
                torch.from_numpy(A.indices.astype(np.int64)),
                torch.from_numpy(A.data),
                size=A.shape,
                check_invariants=False,
            )
    if layout == "coo":
        C = A.tocoo()
        idx = torch.from_numpy(np.vstack([C.row, C.col]).astype(np.int64))
        return torch.sparse_coo_tensor(
            idx, torch.from_numpy(C.data), size=C.shape, check_invariants=False
        )
    raise ValueError(f"layout must be 'csr' or 'coo', got {layout!r}.")


def to_edge_index(adj):
    """Turn a scipy adjacency into PyG's ``(edge_index, edge_weight)``.

    Parameters
    ----------
    adj : scipy.sparse matrix of shape (n, n)
        Weighted adjacency; entry ``(i, j)`` is an edge from ``j`` to ``i``
        in PyG's message-passing direction (source row 0, target row 1 of the
        transpose), which is the same for the symmetric graphs built here.

    Returns
    -------
    edge_index : torch.LongTensor of shape (2, n_edges)
        Source and target node of each edge.
    edge_weight : torch.FloatTensor of shape (n_edges,)
        Edge weights.
    """
    import torch

    C = sp.coo_matrix(adj)
    edge_index = torch.from_numpy(np.vstack([C.col, C.row]).astype(np.int64))
    return edge_index, torch.from_numpy(C.data.astype(np.float32))
