"""The likelihoods of the generative models: one registry, one reduction rule.

A :class:`Likelihood` turns distribution parameters into the negative
log-likelihood of every entry (:meth:`Likelihood.nll`, same shape as the
data) and into the distribution's mean.  The one reduction rule: a model's
reconstruction term of a cell is the sum of its entries' negative
log-likelihoods over the features (:meth:`Likelihood.cell_nll`); how cells
are combined (mean over a mini-batch, sum over the data) is the model's
objective, written once in its loss.

The networks' heads differ by model (each keeps its paper's activations);
:class:`LikelihoodHeads` holds the linear layers a likelihood needs, and
:func:`resolve_likelihood` checks a user's choice against what a model
supports, with ``"auto"`` picked from the data.
"""

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "LIKELIHOODS",
    "Bernoulli",
    "Likelihood",
    "LikelihoodHeads",
    "NegativeBinomial",
    "Normal",
    "Poisson",
    "ZeroInflatedNegativeBinomial",
    "get_likelihood",
    "resolve_likelihood",
]

_EPS = 1e-10


class Likelihood:
    """A distribution of the data given decoder outputs.

    Subclasses set :attr:`name`, :attr:`params` (the names of the
    distribution parameters :meth:`nll` takes after the data) and
    :attr:`counts` (whether it models counts scaled by a library size).
    """

    name = None
    params = ()
    counts = False

    @property
    def n_params(self):
        """Number of distribution parameters (decoder heads)."""
        return len(self.params)

    def nll(self, x, *params):
        """Negative log-likelihood of every entry of ``x`` (same shape)."""
        raise NotImplementedError

    def cell_nll(self, x, *params):
        """Negative log-likelihood of every cell: :meth:`nll` summed over features."""
        return self.nll(x, *params).sum(dim=-1)

    def mean(self, *params):
        """Return the expected value of the data under ``params``."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class Normal(Likelihood):
    """Gaussian with mean and variance: ``0.5 (log 2 pi var + (x - mean)^2 / var)``.

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import Normal
    >>> round(float(Normal().nll(torch.tensor(0.0), torch.tensor(0.0),
    ...                          torch.tensor(1.0))), 4)
    0.9189
    """

    name = "normal"
    params = ("mean", "var")

    def nll(self, x, mean, var):
        """Per-entry negative log-likelihood (with the constant)."""
        return 0.5 * (math.log(2 * math.pi) + torch.log(var) + (x - mean) ** 2 / var)

    def mean(self, mean, var=None):
        """Return the mean parameter."""
        return mean


class Bernoulli(Likelihood):
    """Bernoulli from logits (binarised data: ATAC peaks, adjacency entries).

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import Bernoulli
    >>> round(float(Bernoulli().nll(torch.tensor(1.0), torch.tensor(0.0))), 4)
    0.6931
    """

    name = "bernoulli"
    params = ("logits",)

    def nll(self, x, logits):
        """Per-entry ``-x log p - (1 - x) log(1 - p)``, computed stably."""
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none")

    def mean(self, logits):
        """Return the success probability ``sigmoid(logits)``."""
        return torch.sigmoid(logits)


class Poisson(Likelihood):
    """Poisson with a positive rate: ``rate - x log rate + log x!``."""

    name = "poisson"
    params = ("rate",)
    counts = True

    def nll(self, x, rate):
        """Per-entry negative log-likelihood."""
        return rate - x * torch.log(rate + _EPS) + torch.lgamma(x + 1.0)

    def mean(self, rate):
        """Return the rate."""
        return rate


class NegativeBinomial(Likelihood):
    """Negative binomial with mean and dispersion (inverse overdispersion).

    ``Var = mean + mean^2 / disp``; the DCA parameterisation of the count
    models.
    """

    name = "nb"
    params = ("mean", "disp")
    counts = True

    def nll(self, x, mean, disp):
        """Per-entry negative log-likelihood."""
        t1 = (
            torch.lgamma(disp + _EPS)
            + torch.lgamma(x + 1.0)
            - torch.lgamma(x + disp + _EPS)
        )
        t2 = (disp + x) * torch.log1p(mean / (disp + _EPS)) + x * (
            torch.log(disp + _EPS) - torch.log(mean + _EPS)
        )
        return t1 + t2

    def mean(self, mean, disp=None):
        """Return the mean parameter."""
        return mean


class ZeroInflatedNegativeBinomial(Likelihood):
    """Negative binomial with a dropout probability ``pi`` (DCA's ZINB).

    Non-zero counts pay the NB term plus ``-log(1 - pi)``; zeros pay
    ``-log(pi + (1 - pi) NB(0))``.  Counts are mostly zeros, so the
    lgamma-heavy non-zero case is evaluated on the non-zero entries only.
    """

    name = "zinb"
    params = ("mean", "disp", "pi")
    counts = True

    def nll(self, x, mean, disp, pi):
        """Per-entry negative log-likelihood."""
        # NB(0) = exp(-disp * log1p(mean / disp)): the log1p term is shared
        log_ratio = torch.log1p(mean / (disp + _EPS))
        zero_case = -torch.log(pi + (1.0 - pi) * torch.exp(-disp * log_ratio) + _EPS)
        nonzero = x >= 1e-8
        x_nz, mean_nz, disp_nz = x[nonzero], mean[nonzero], disp[nonzero]
        nb_case = (
            torch.lgamma(disp_nz + _EPS)
            + torch.lgamma(x_nz + 1.0)
            - torch.lgamma(x_nz + disp_nz + _EPS)
            + (disp_nz + x_nz) * log_ratio[nonzero]
            + x_nz * (torch.log(disp_nz + _EPS) - torch.log(mean_nz + _EPS))
            - torch.log(1.0 - pi[nonzero] + _EPS)
        )
        return zero_case.masked_scatter(nonzero, nb_case)

    def mean(self, mean, disp=None, pi=None):
        """``(1 - pi) mean`` (the mean parameter when ``pi`` is not given)."""
        return mean if pi is None else (1.0 - pi) * mean


#: The registry: every likelihood skdance's models use, by name.
LIKELIHOODS = {
    lik.name: lik
    for lik in (
        Normal(),
        Bernoulli(),
        Poisson(),
        NegativeBinomial(),
        ZeroInflatedNegativeBinomial(),
    )
}


def get_likelihood(name):
    """Return the registered :class:`Likelihood` called ``name``.

    Raises
    ------
    ValueError
        For a name not in :data:`LIKELIHOODS`.
    """
    try:
        return LIKELIHOODS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown likelihood {name!r}; skdance has {sorted(LIKELIHOODS)}."
        ) from None


def _is_integral(X):
    """Whether every stored value of ``X`` is a non-negative whole number."""
    values = X.data if sp.issparse(X) else np.asarray(X)
    return bool(values.size == 0 or (values.min() >= 0 and np.all(values % 1 == 0)))


def _is_binary(X):
    """Whether every stored value of ``X`` is 0 or 1."""
    values = X.data if sp.issparse(X) else np.asarray(X)
    return bool(np.all((values == 0) | (values == 1)))


def resolve_likelihood(name, X=None, *, allowed, counts="nb", param="likelihood"):
    """Check a model's likelihood parameter; resolve ``"auto"`` from the data.

    Parameters
    ----------
    name : str
        The user's choice: a name in ``allowed`` or ``"auto"``.
    X : array-like or sparse matrix, default=None
        The modality, needed for ``"auto"`` and to check that a count or
        binary likelihood meets count or binary data.
    allowed : sequence of str
        The likelihoods the model supports (names in :data:`LIKELIHOODS`).
    counts : str, default="nb"
        What ``"auto"`` gives for non-negative whole numbers that are not
        all 0/1 (binary data get ``"bernoulli"`` where allowed, anything else
        ``"normal"``).
    param : str, default="likelihood"
        The parameter's name, for the error messages.

    Returns
    -------
    likelihood : Likelihood
        The registered likelihood.

    Raises
    ------
    ValueError
        For a name the model does not support, or a count (binary)
        likelihood asked for data with negative or fractional values (values
        other than 0 and 1).

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.nn import resolve_likelihood
    >>> resolve_likelihood("auto", np.array([[0.0, 3.0]]), allowed=("nb", "normal"))
    NegativeBinomial()
    """
    allowed = tuple(allowed)
    if name != "auto" and name not in allowed:
        raise ValueError(f"{param} must be one of {allowed + ('auto',)}, got {name!r}.")
    if X is None:
        if name == "auto":
            raise ValueError(f"{param}='auto' needs the data to choose from.")
        return get_likelihood(name)
    if name == "auto":
        if _is_binary(X) and "bernoulli" in allowed:
            name = "bernoulli"
        elif _is_integral(X) and counts in allowed:
            name = counts
        else:
            name = "normal"
        return get_likelihood(name)
    likelihood = get_likelihood(name)
    if likelihood.counts and not _is_integral(X):
        raise ValueError(
            f"{param}={name!r} models counts, but the data have negative or "
            "fractional values; pass raw counts or choose 'normal'."
        )
    if name == "bernoulli" and not _is_binary(X):
        raise ValueError(
            f"{param}='bernoulli' models 0/1 data, but the data have other "
            "values; binarise them or choose another likelihood."
        )
    return likelihood


class LikelihoodHeads(nn.Module):
    """The linear output layers of a decoder: one per distribution parameter.

    ``forward`` returns the raw outputs (a list, one tensor per parameter of
    the likelihood); the model applies its own activations to turn them into
    the distribution's parameters.  A ``"normal"`` likelihood gets one head
    (the mean) and a learned per-feature log standard deviation
    :attr:`log_std`, as in scMM, scMVAE and DCCA.

    Parameters
    ----------
    in_dim : int
        Width of the decoder's last hidden layer.
    n_features : int
        Features of the modality.
    likelihood : str or Likelihood
        The likelihood.
    learn_variance : bool, default=True
        Whether a ``"normal"`` likelihood gets the learned :attr:`log_std`;
        False for a model that fixes the variance (a squared-error fit, as
        BABEL and DCCA do).

    Examples
    --------
    >>> import torch
    >>> from skdance.nn import LikelihoodHeads
    >>> heads = LikelihoodHeads(4, 3, "zinb")
    >>> [tuple(p.shape) for p in heads(torch.ones(2, 4))]
    [(2, 3), (2, 3), (2, 3)]
    """

    def __init__(self, in_dim, n_features, likelihood, *, learn_variance=True):
        super().__init__()
        if isinstance(likelihood, str):
            likelihood = get_likelihood(likelihood)
        self.likelihood = likelihood
        n_heads = 1 if likelihood.name == "normal" else likelihood.n_params
        self.heads = nn.ModuleList(
            nn.Linear(in_dim, n_features) for _ in range(n_heads)
        )
        if likelihood.name == "normal" and learn_variance:
            self.log_std = nn.Parameter(torch.zeros(n_features))

    def forward(self, h):
        """Raw outputs of the heads for the hidden representation ``h``."""
        return [head(h) for head in self.heads]

    def variance(self):
        """Return the learned per-feature variance of a ``"normal"`` likelihood."""
        return torch.exp(2.0 * self.log_std)
