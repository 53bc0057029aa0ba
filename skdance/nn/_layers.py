"""Shared network blocks."""

import torch
from torch import nn

__all__ = ["TAGLayer", "ZINBHeads", "mlp", "propagate_hops"]


def mlp(dims, activation=nn.ReLU, last_activation=True):
    """Stack of ``Linear`` layers with activations between (and after) them.

    Parameters
    ----------
    dims : sequence of int
        Layer widths, input first.
    activation : type, default=torch.nn.ReLU
        Activation module class.
    last_activation : bool, default=True
        Apply the activation after the last layer too.

    Returns
    -------
    net : torch.nn.Sequential
        The network.
    """
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or i < len(dims) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class ZINBHeads(nn.Module):
    """Mean, dispersion and dropout heads of a ZINB decoder (DCA's activations).

    ``mean = clamp(exp(.), 1e-5, 1e6)``, ``disp = clamp(softplus(.), 1e-4,
    1e4)``, ``pi = sigmoid(.)``.
    """

    def __init__(self, in_dim, n_genes):
        super().__init__()
        self.mean = nn.Linear(in_dim, n_genes)
        self.disp = nn.Linear(in_dim, n_genes)
        self.pi = nn.Linear(in_dim, n_genes)

    def forward(self, h):
        """Return ``(mean, disp, pi)`` for hidden representation ``h``."""
        mean = torch.clamp(torch.exp(torch.clamp(self.mean(h), max=15.0)), 1e-5, 1e6)
        disp = torch.clamp(nn.functional.softplus(self.disp(h)), 1e-4, 1e4)
        return mean, disp, torch.sigmoid(self.pi(h))


def propagate_hops(x, adj, hops):
    """Return ``[x, A x, ..., A^hops x]`` concatenated along features.

    ``adj`` is a torch sparse operator (see :func:`to_torch_sparse`).
    """
    out = [x]
    for _ in range(hops):
        out.append(torch.sparse.mm(adj, out[-1]))
    return torch.cat(out, dim=1)


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
