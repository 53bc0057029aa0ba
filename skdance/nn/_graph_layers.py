"""Graph layers on a torch sparse (or dense) adjacency: GCN, TAG, attention."""

import warnings

import torch
from torch import nn

__all__ = [
    "GCN",
    "GraphAttention",
    "GraphConv",
    "TAGLayer",
    "propagate_hops",
    "sparse_matmul",
]

_INITS = ("torch", "glorot")


def sparse_matmul(adj, h, adj_t=None):
    """``adj @ h`` for a torch sparse (COO / CSR) or dense ``adj``.

    Parameters
    ----------
    adj : torch.Tensor of shape (n, m)
        Sparse or dense operator, constant (no gradient flows into it when
        ``adj_t`` is given).
    h : torch.Tensor of shape (m, d)
        Features.
    adj_t : torch.Tensor of shape (m, n), default=None
        ``adj``'s transpose, built once by the caller (e.g. a CSR tensor of
        ``A.T.tocsr()``).  The gradient ``adj.T @ grad`` then reuses it,
        where torch's own backward of ``torch.sparse.mm`` transposes
        ``adj`` on every call: worth it for an operator applied every epoch.

    Returns
    -------
    torch.Tensor of shape (n, d)

    Examples
    --------
    >>> import scipy.sparse as sp, torch
    >>> from skdance.nn import sparse_matmul, to_torch_sparse
    >>> A = sp.csr_matrix([[0.0, 2.0], [1.0, 0.0]])
    >>> h = torch.ones(2, 1, requires_grad=True)
    >>> out = sparse_matmul(to_torch_sparse(A), h, to_torch_sparse(A.T))
    >>> (grad,) = torch.autograd.grad(out.sum(), h)
    >>> out.ravel().tolist(), grad.ravel().tolist()
    ([2.0, 1.0], [1.0, 2.0])
    """
    if adj.layout == torch.strided:
        return adj @ h
    if adj_t is not None:
        return _FixedSparseMatmul.apply(h, adj, adj_t)
    return torch.sparse.mm(adj, h)


class _FixedSparseMatmul(torch.autograd.Function):
    """``A @ h`` for a constant sparse ``A`` whose transpose ``A_t`` is given."""

    @staticmethod
    def forward(ctx, h, A, A_t):
        ctx.A_t = A_t
        return torch.sparse.mm(A, h)

    @staticmethod
    def backward(ctx, grad):
        return torch.sparse.mm(ctx.A_t, grad.contiguous()), None, None


class GraphConv(nn.Module):
    """Graph convolution ``A (X W + b)`` (Kipf & Welling's GCN layer).

    ``A`` is the normalised adjacency the caller passes (see
    :func:`~skdance.nn.to_torch_sparse`; a dense tensor works too), so the
    normalisation and the self loops are decided once, outside the layer.
    The bias is added before the propagation, as GraphSCI's and scGNN's
    reference code do (with a row-stochastic ``A`` the two orders agree).

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output widths.
    bias : bool, default=True
        Learn an additive bias.
    init : {"torch", "glorot"}, default="torch"
        Initialisation: ``torch.nn.Linear``'s default, or Glorot-uniform
        weights with a zero bias (Kipf & Welling; DSTG, scDSC).  The
        parameters are drawn by ``torch.nn.Linear`` first; with ``"glorot"``
        they are redrawn at once (and by every :meth:`reset_parameters`).

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import GraphConv
    >>> adj = torch.eye(3).to_sparse()
    >>> GraphConv(4, 2)(torch.ones(3, 4), adj).shape
    torch.Size([3, 2])
    """

    def __init__(self, in_dim, out_dim, *, bias=True, init="torch"):
        super().__init__()
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}.")
        self.init = init
        self.lin = nn.Linear(in_dim, out_dim, bias=bias)
        if init != "torch":
            self.reset_parameters()

    def reset_parameters(self):
        """Redraw the weights with the layer's ``init``."""
        if self.init == "glorot":
            nn.init.xavier_uniform_(self.lin.weight)
            if self.lin.bias is not None:
                nn.init.zeros_(self.lin.bias)
        else:
            self.lin.reset_parameters()

    def forward(self, x, adj):
        """Convolve node features ``x`` of shape (n, in_dim) over ``adj`` (n, n)."""
        return sparse_matmul(adj, self.lin(x))


class GCN(nn.Module):
    """A stack of :class:`GraphConv` layers (PyG's ``BasicGNN`` pattern).

    Layer ``l``: dropout on its input, graph convolution, then the activation
    on every layer but the last (unless ``last_activation``).  All layers are
    created before any is initialised, so ``init="glorot"`` draws the random
    numbers in the order of DSTG's and scDSC's reference code.

    Parameters
    ----------
    dims : sequence of int
        Widths, input first.
    activation : type, default=torch.nn.ReLU
        Activation module class.
    last_activation : bool, default=False
        Apply the activation after the last layer too.
    dropout : float, default=0.0
        Dropout rate on every layer's input.
    bias : bool, default=True
        Layers learn a bias.
    init : {"torch", "glorot"}, default="torch"
        See :class:`GraphConv`.

    Attributes
    ----------
    convs : torch.nn.ModuleList
        The layers (models that interleave other computations between them,
        like scDSC, iterate over it).

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import GCN
    >>> adj = torch.eye(3).to_sparse()
    >>> GCN([4, 8, 2], init="glorot")(torch.ones(3, 4), adj).shape
    torch.Size([3, 2])
    """

    def __init__(
        self,
        dims,
        *,
        activation=nn.ReLU,
        last_activation=False,
        dropout=0.0,
        bias=True,
        init="torch",
    ):
        super().__init__()
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}.")
        self.convs = nn.ModuleList(
            GraphConv(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:])
        )
        for conv in self.convs:
            conv.init = init
        self.activation = activation()
        self.last_activation = last_activation
        self.dropout = nn.Dropout(dropout)
        if init != "torch":
            self.reset_parameters()

    def reset_parameters(self):
        """Redraw every layer's parameters."""
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x, adj):
        """Node outputs of the last layer."""
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(self.dropout(h), adj)
            if self.last_activation or i < len(self.convs) - 1:
                h = self.activation(h)
        return h


def propagate_hops(x, adj, hops):
    """Return ``[x, A x, ..., A^hops x]`` concatenated along features.

    ``adj`` is a torch sparse operator (see :func:`to_torch_sparse`).
    """
    # filled in place (not a list then ``cat``): peak memory is the output
    # plus one hop, not twice the output
    n, d = x.shape
    out = x.new_empty(n, d * (hops + 1))
    out[:, :d] = x
    prev = x
    for k in range(1, hops + 1):
        prev = torch.sparse.mm(adj, prev)
        out[:, k * d : (k + 1) * d] = prev
    return out


class TAGLayer(nn.Module):
    """Topology-adaptive graph convolution ``sum_k W_k A^k x + b`` (Du et al.).

    The same function as PyG's ``TAGConv(normalize=False)`` with one
    ``Linear`` over the concatenated hops, propagated with ``torch.sparse.mm``:
    on CPU it is several times faster than message passing on wide inputs,
    and when the input is fixed its hops can be computed once
    (:func:`propagate_hops`) and passed with ``precomputed=True``.
    """

    def __init__(self, in_dim, out_dim, hops=3):
        super().__init__()
        self.hops = hops
        self.lin = nn.Linear(in_dim * (hops + 1), out_dim)

    def forward(self, x, adj=None, precomputed=False):
        """Convolve ``x`` (or its precomputed hops) over ``adj``."""
        return self.lin(x if precomputed else propagate_hops(x, adj, self.hops))


def _csr(adj):
    """``adj`` as a torch CSR tensor (its pattern is what counts)."""
    if adj.layout == torch.sparse_csr:
        return adj
    if adj.layout == torch.sparse_coo:
        adj = adj.coalesce()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        return adj.to_sparse_csr()


def _csr_tensor(crow, col, values, shape):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class _EdgeMatmul(torch.autograd.Function):
    """``S @ g`` for the CSR matrix ``S = (crow, col, values)``.

    Differentiable in ``values`` and ``g``.  The gradient of ``values`` is
    the product ``grad @ g.T`` sampled on the edges
    (``torch.sparse.sampled_addmm``): torch's own ``sparse.mm`` backward
    forms it densely (n x n), which cost 0.6 s of a 1.7 s step in the
    benchmark of :class:`GraphAttention`.
    """

    @staticmethod
    def forward(ctx, crow, col, values, g):
        n_rows = crow.numel() - 1
        ctx.save_for_backward(crow, col, values, g)
        return torch.sparse.mm(_csr_tensor(crow, col, values, (n_rows, g.shape[0])), g)

    @staticmethod
    def backward(ctx, grad):
        crow, col, values, g = ctx.saved_tensors
        n_rows, n_cols = crow.numel() - 1, g.shape[0]
        grad_values = grad_g = None
        if ctx.needs_input_grad[2]:
            pattern = _csr_tensor(crow, col, torch.zeros_like(values), (n_rows, n_cols))
            grad_values = torch.sparse.sampled_addmm(
                pattern, grad.contiguous(), g.T, beta=0.0
            ).values()
        if ctx.needs_input_grad[3]:
            # S.T @ grad, with S.T in CSR: the edges sorted by column
            rows = torch.repeat_interleave(
                torch.arange(n_rows, device=crow.device), crow[1:] - crow[:-1]
            )
            order = torch.argsort(col * n_rows + rows)
            crow_t = torch.zeros(n_cols + 1, dtype=crow.dtype, device=crow.device)
            crow_t[1:] = torch.cumsum(torch.bincount(col, minlength=n_cols), 0)
            transposed = _csr_tensor(
                crow_t, rows[order], values[order], (n_cols, n_rows)
            )
            grad_g = torch.sparse.mm(transposed, grad)
        return None, None, grad_values, grad_g


class GraphAttention(nn.Module):
    """STAGATE's graph attention layer on a sparse adjacency.

    For node ``i`` with neighbours ``S_i`` (the stored entries of row ``i``
    of ``adj``; add self loops to the adjacency to include the node itself,
    as STAGATE does) and ``g = x W``::

        e_ij   = sigmoid(v_s . g_i + v_n . g_j)          (DANCE eq. 66)
        att_ij = exp(e_ij) / sum_{j' in S_i} exp(e_ij')  (eq. 67)
        out_i  = sum_{j in S_i} att_ij g_j               (eq. 64, before sigma)

    One head, no bias, no attention dropout, the adjacency's values ignored
    (only its pattern counts), as Dong & Zhang's STAGATE.  The activation
    is left to the model.  STAGATE's tied decoder is supported by
    ``forward``'s ``weight`` (e.g. ``encoder.weight.T``) and ``attention``
    (the encoder layer's, from ``return_attention=True``) arguments, and its
    attention-free layers by ``adj=None`` (``x W`` alone).

    Implemented with torch index operations on the CSR edges,
    ``torch.sparse.mm`` and a sampled product for the attention gradient.
    Timed against PyG's ``GATConv`` (1 head, no self loops added, no bias,
    same widths; its LeakyReLU attention costs what the sigmoid does) on a
    4,000-node 6-NN graph with self loops (32,374 edges), 3,000 -> 512
    features, forward + backward, median of 5 repeats on a contended 2-core
    CPU (load average 9), two runs: this layer 0.95 and 1.04 s, ``GATConv``
    1.74 and 1.85 s, the ``x W`` product alone 0.77 and 0.73 s
    (``benchmarks/results/gat_layer.md``; ``python -m benchmarks.gat_layer``).
    PyG gathers the 512-wide features of both ends of every edge; here only
    the attention scalars are gathered, so this layer is used and PyG is not
    needed.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output widths.

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (in_dim, out_dim)
        ``W`` (Xavier-normal with gain 1.414, as STAGATE).
    att_self, att_neighbor : torch.nn.Parameter of shape (out_dim,)
        ``v_s`` and ``v_n`` (Glorot-uniform, as STAGATE).

    References
    ----------
    Dong & Zhang (2022), "Deciphering spatial domains from spatially resolved
    transcriptomics with an adaptive graph attention auto-encoder", Nature
    Communications 13, 1739.

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import GraphAttention
    >>> adj = torch.ones(3, 3).to_sparse()
    >>> out, att = GraphAttention(4, 2)(torch.ones(3, 4), adj, return_attention=True)
    >>> out.shape, att.shape  # att: one weight per edge, rows sum to 1
    (torch.Size([3, 2]), torch.Size([9]))
    """

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_dim, out_dim))
        self.att_self = nn.Parameter(torch.empty(out_dim))
        self.att_neighbor = nn.Parameter(torch.empty(out_dim))
        self.reset_parameters()

    def reset_parameters(self):
        """STAGATE's initialisation."""
        nn.init.xavier_normal_(self.weight, gain=1.414)
        bound = (6.0 / (1 + self.att_self.numel())) ** 0.5  # PyG's glorot
        nn.init.uniform_(self.att_self, -bound, bound)
        nn.init.uniform_(self.att_neighbor, -bound, bound)

    def attention(self, g, adj):
        """Attention ``att_ij`` of every edge of ``adj``.

        Parameters
        ----------
        g : torch.Tensor of shape (n, out_dim)
            Transformed node features ``x W``.
        adj : torch.Tensor of shape (n, n)
            Sparse (CSR or COO) or dense adjacency; its pattern is used.

        Returns
        -------
        attention : torch.Tensor of shape (n_edges,)
            One weight per stored entry of ``adj`` in CSR (row-major) order;
            each row's weights sum to 1.
        """
        adj = _csr(adj)
        crow = adj.crow_indices()
        rows = torch.repeat_interleave(
            torch.arange(adj.shape[0], device=crow.device), crow[1:] - crow[:-1]
        )
        score = (g @ self.att_self)[rows] + (g @ self.att_neighbor)[adj.col_indices()]
        # e_ij lies in (0, 1): exp cannot overflow, no max shift needed
        weight = torch.exp(torch.sigmoid(score))
        total = torch.zeros(adj.shape[0], dtype=g.dtype, device=g.device)
        return weight / total.index_add(0, rows, weight)[rows]

    def forward(
        self, x, adj=None, *, weight=None, attention=None, return_attention=False
    ):
        """Attend over the neighbours of every node.

        Parameters
        ----------
        x : torch.Tensor of shape (n, in_dim)
            Node features.
        adj : torch.Tensor of shape (n, n) or None, default=None
            Sparse adjacency; None returns ``x W`` (no propagation; STAGATE's
            ``attention=False`` layers).
        weight : torch.Tensor of shape (in_dim, out_dim), default=None
            Use this ``W`` instead of the layer's own (tied decoders).
        attention : torch.Tensor of shape (n_edges,), default=None
            Use these edge weights on ``adj`` (e.g. the encoder layer's)
            instead of computing them.
        return_attention : bool, default=False
            Also return the edge weights.

        Returns
        -------
        out : torch.Tensor of shape (n, out_dim)
            Aggregated features.
        attention : torch.Tensor of shape (n_edges,)
            Edge weights in ``adj``'s CSR order; only with
            ``return_attention``.
        """
        g = x @ (self.weight if weight is None else weight)
        if adj is None:
            return g
        adj = _csr(adj)
        if attention is None:
            attention = self.attention(g, adj)
        out = self.propagate(g, adj, attention)
        return (out, attention) if return_attention else out

    @staticmethod
    def propagate(g, adj, attention):
        """Aggregate already transformed features with given edge weights.

        Parameters
        ----------
        g : torch.Tensor of shape (n, d)
            Node features (``x W`` or any other transform).
        adj : torch.Tensor of shape (n, n)
            Sparse adjacency (CSR or COO); its pattern is used.
        attention : torch.Tensor of shape (n_edges,)
            Edge weights in ``adj``'s CSR order (e.g. from :meth:`attention`).

        Returns
        -------
        out : torch.Tensor of shape (n, d)
            ``sum_j att_ij g_j`` for every node ``i``.
        """
        adj = _csr(adj)
        return _EdgeMatmul.apply(adj.crow_indices(), adj.col_indices(), attention, g)
