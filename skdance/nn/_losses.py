"""Losses shared by the models: Gaussian KL, graph-autoencoder BCE.

The per-entry likelihoods are in :mod:`skdance.nn._likelihoods`.
"""

import math

import torch
from torch.nn import functional as F

__all__ = [
    "balanced_adjacency_bce",
    "gaussian_kl",
    "reparameterize",
]


def gaussian_kl(mean, log_var=None, *, log_std=None, prior_mean=None, prior_var=None):
    """``KL(N(mean, sigma^2) || prior)`` of every row, summed over its last axis.

    To ``N(0, I)`` (the default): ``-0.5 * sum(1 + log sigma^2 - mean^2 -
    sigma^2)``, from the log variance or, with ``log_std``, from the log
    standard deviation (the two parameterisations of the variational
    autoencoders here, each kept in its own arithmetic).  To a given normal
    ``N(prior_mean, prior_var)``: ``0.5 * sum(log prior_var - log sigma^2 +
    (sigma^2 + (mean - prior_mean)^2) / prior_var - 1)``.

    Parameters
    ----------
    mean : torch.Tensor of shape (..., latent_dim)
        Posterior means.
    log_var : torch.Tensor of shape (..., latent_dim), default=None
        Posterior log variances.
    log_std : torch.Tensor of shape (..., latent_dim), default=None
        Posterior log standard deviations (instead of ``log_var``).
    prior_mean, prior_var : float or torch.Tensor, default=None
        Mean and variance of a normal prior (both or neither); the standard
        normal when None.

    Returns
    -------
    kl : torch.Tensor of shape (...,)
        One divergence per row.

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import gaussian_kl
    >>> gaussian_kl(torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2))  # N(1, 1), N(0, 1)
    tensor([0.5000])
    >>> gaussian_kl(torch.zeros(1, 1), torch.zeros(1, 1), prior_mean=0.0, prior_var=1.0)
    tensor([0.])
    """
    if (log_var is None) == (log_std is None):
        raise ValueError("give exactly one of log_var and log_std.")
    if (prior_mean is None) != (prior_var is None):
        raise ValueError("give both prior_mean and prior_var, or neither.")
    if prior_var is not None:
        if log_var is None:
            log_var = 2.0 * log_std
        var = torch.exp(log_var)
        log_prior_var = (
            torch.log(prior_var)
            if isinstance(prior_var, torch.Tensor)
            else math.log(prior_var)
        )
        term = log_prior_var - log_var + (var + (mean - prior_mean) ** 2) / prior_var
        return 0.5 * torch.sum(term - 1.0, dim=-1)
    if log_std is not None:
        term = 1 + 2 * log_std - mean**2 - torch.exp(log_std) ** 2
    else:
        term = 1 + log_var - mean**2 - log_var.exp()
    return -0.5 * torch.sum(term, dim=-1)


def reparameterize(mean, log_var, sample=True):
    """Return ``mean + eps * exp(log_var / 2)`` when ``sample``, else ``mean``.

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import reparameterize
    >>> reparameterize(torch.ones(2), torch.zeros(2), sample=False)
    tensor([1., 1.])
    """
    if not sample:
        return mean
    return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)


def balanced_adjacency_bce(logits, target):
    """Graph-autoencoder reconstruction loss with class balancing (Kipf's GAE).

    Binary cross-entropy of adjacency logits against a 0/1 target, positives
    up-weighted by ``n_neg / n_pos`` and the mean scaled by
    ``n_total / (2 * n_neg)`` (graph-sc's, GraphSCI's and scGNN's ``norm``).

    Parameters
    ----------
    logits : torch.Tensor of shape (n, n)
        Decoder outputs before the sigmoid.
    target : torch.Tensor of shape (n, n)
        0/1 adjacency (self loops included where the model reconstructs them).

    Returns
    -------
    loss : torch.Tensor
        Scalar.

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import balanced_adjacency_bce
    >>> round(float(balanced_adjacency_bce(torch.zeros(2, 2), torch.eye(2))), 4)
    0.6931
    """
    n_total = target.numel()
    n_pos = float(target.sum())
    n_neg = max(n_total - n_pos, 1.0)
    pos_weight = torch.tensor(n_neg / max(n_pos, 1.0))
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
    return n_total / (2.0 * n_neg) * bce
