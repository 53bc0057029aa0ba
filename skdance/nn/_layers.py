"""Shared network blocks."""

import torch
from torch import nn

__all__ = ["ZINBHeads", "mlp"]


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
