"""scMVAE's multimodal VAE with a Gaussian-mixture prior (the torch module).

scMVAE (Zuo & Chen 2021) embeds paired transcriptome and chromatin (or
protein) profiles of the same cells with one variational autoencoder: both
modalities are encoded into one latent code ``z`` (by a product of experts,
by a network on the concatenated hidden layers, or by one encoder of the
concatenated features), ``z`` has a Gaussian-mixture prior ``p(z | c)
p(c)`` with learnable weights, means and variances (as in VaDE / SCALE),
each count modality has a latent log library size ``l`` with a log-normal
prior, and a shared decoder followed by one decoder per modality
reconstructs the data with a ZINB (or NB, Bernoulli, Gaussian) likelihood
(DANCE paper, appendix D.2, eqs. 53-55).

This module holds the torch module :class:`ScMVAEModule`, its pieces and
the losses; the estimator is
:class:`skdance.multimodal.embedding.ScMVAE`.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from skdance.nn import (
    FCLayers,
    bernoulli_nll,
    gaussian_nll,
    nb_nll,
    zinb_nll,
)

__all__ = [
    "COMBINATIONS",
    "LIKELIHOODS",
    "ScMVAEModule",
    "gmm_kl",
    "normal_kl",
    "product_of_experts",
]

#: Per-modality likelihoods.
LIKELIHOODS = ("zinb", "nb", "bernoulli", "normal")
#: How the two modalities are combined into the latent code.
COMBINATIONS = ("poe", "nn", "concat")
#: Likelihoods of count data, with a library size.
COUNT_LIKELIHOODS = ("zinb", "nb")

# Bounds of the log dispersion, the log library size and the log variances,
# against overflow in exp (the original code has none).
_LOG_THETA_MAX = 12.0
_LOG_LIB_MAX = 20.0
_EPS = 1e-8


def _layers(dims, dropout):
    """Return scMVAE's ``build_multi_layers``: Linear, BatchNorm, ReLU, Dropout."""
    net = FCLayers(dims, batch_norm=True, dropout=dropout, dropout_input=False)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.momentum, module.eps = 0.01, 1e-3
    if dropout > 0:  # the original drops after every block, the last included
        net[-1].append(nn.Dropout(dropout))
    return net


class GaussianHead(nn.Module):
    """Mean and log-variance layers of a diagonal Gaussian posterior."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.mean = nn.Linear(in_dim, out_dim)
        self.log_var = nn.Linear(in_dim, out_dim)

    def forward(self, h):
        """Return ``(mean, log_var)``."""
        return self.mean(h), self.log_var(h)


def reparameterize(mean, log_var, sample):
    """Return ``mean + eps * exp(log_var / 2)`` when ``sample``, else ``mean``."""
    if not sample:
        return mean
    return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)


def product_of_experts(means, log_vars):
    """Product of Gaussian experts with a standard-normal prior expert.

    ``precision = 1 + sum_m 1 / var_m``, ``mean = sum_m mean_m / var_m /
    precision`` (the prior expert contributes precision 1 at mean 0), the
    scMVAE / MVAE (Wu & Goodman 2018) combination.

    Parameters
    ----------
    means, log_vars : list of torch.Tensor of shape (n, d)
        Each expert's mean and log variance.

    Returns
    -------
    mean, log_var : torch.Tensor of shape (n, d)
        The product's mean and log variance.

    Examples
    --------
    >>> import torch
    >>> from skdance.multimodal._scmvae import product_of_experts
    >>> m, lv = product_of_experts([torch.ones(1, 1)], [torch.zeros(1, 1)])
    >>> float(m), round(float(lv.exp()), 4)
    (0.5, 0.5)
    """
    precision = torch.ones_like(means[0])
    weighted = torch.zeros_like(means[0])
    for mean, log_var in zip(means, log_vars):
        inv = 1.0 / (torch.exp(log_var) + _EPS)
        precision = precision + inv
        weighted = weighted + mean * inv
    return weighted / precision, -torch.log(precision)


def normal_kl(mean, log_var, prior_mean, prior_var):
    """``KL(N(mean, exp(log_var)) || N(prior_mean, prior_var))``, summed per row.

    Examples
    --------
    >>> import torch
    >>> from skdance.multimodal._scmvae import normal_kl
    >>> float(normal_kl(torch.zeros(1, 1), torch.zeros(1, 1), 0.0, 1.0))
    0.0
    """
    var = torch.exp(log_var)
    term = math.log(prior_var) - log_var + (var + (mean - prior_mean) ** 2) / prior_var
    return 0.5 * torch.sum(term - 1.0, dim=-1)


def gmm_kl(z, mean, log_var, log_pi, mu_c, log_var_c):
    """VaDE's ``KL(q(z, c | x) || p(z, c))`` per cell, Gaussian-mixture prior.

    ``q(c | x)`` is the responsibility ``gamma`` of the components for the
    code ``z`` (a posterior draw in training); with ``q(z | x) = N(mean,
    exp(log_var))``::

        KL = -E[log p(z | c)] - E[log p(c)] - H[q(z | x)] + E[log q(c | x)]

    where ``E[log p(z | c)] = -1/2 sum_c gamma_c sum_d (log 2 pi + log
    var_cd + (var_d + (mean_d - mu_cd)^2) / var_cd)`` (scMVAE's
    ``GMM_loss``).

    Parameters
    ----------
    z : torch.Tensor of shape (n, d)
        Latent codes that give the responsibilities.
    mean, log_var : torch.Tensor of shape (n, d)
        Posterior mean and log variance.
    log_pi : torch.Tensor of shape (k,)
        Log mixture weights (normalised).
    mu_c, log_var_c : torch.Tensor of shape (d, k)
        Component means and log variances.

    Returns
    -------
    kl : torch.Tensor of shape (n,)
        One divergence per cell.
    """
    var_c = torch.exp(log_var_c)  # (d, k)
    # log p(z | c) + log p(c) for the responsibilities, (n, k)
    log_pz_c = -0.5 * torch.sum(
        math.log(2 * math.pi) + log_var_c + (z.unsqueeze(-1) - mu_c) ** 2 / var_c,
        dim=1,
    )
    gamma = torch.softmax(log_pz_c + log_pi, dim=-1)
    expected = torch.sum(
        math.log(2 * math.pi)
        + log_var_c
        + (torch.exp(log_var).unsqueeze(-1) + (mean.unsqueeze(-1) - mu_c) ** 2) / var_c,
        dim=1,
    )  # (n, k)
    log_p_zc = -0.5 * torch.sum(gamma * expected, dim=-1)
    log_pc = torch.sum(gamma * log_pi, dim=-1)
    entropy = 0.5 * torch.sum(1.0 + log_var + math.log(2 * math.pi), dim=-1)
    log_qc = torch.sum(gamma * torch.log(gamma + 1e-10), dim=-1)
    return -log_p_zc - log_pc - entropy + log_qc


class ModalityDecoder(nn.Module):
    """One modality's decoder: hidden layers, then the likelihood's heads.

    ``"zinb"`` / ``"nb"``: ``mean = exp(l) * softmax(.)`` (a cell's
    expression proportions times its library size), dispersion ``exp(.)``
    and, for ZINB, dropout logits; ``"bernoulli"``: logits; ``"normal"``:
    the mean, with a per-feature learned log standard deviation.
    """

    def __init__(self, dims, n_features, likelihood, dropout):
        super().__init__()
        self.likelihood = likelihood
        self.hidden = _layers(dims, dropout)
        n_heads = {"zinb": 3, "nb": 2, "bernoulli": 1, "normal": 1}[likelihood]
        self.heads = nn.ModuleList(
            nn.Linear(dims[-1], n_features) for _ in range(n_heads)
        )
        if likelihood == "normal":
            self.log_std = nn.Parameter(torch.zeros(n_features))

    def forward(self, h):
        """Return the raw head outputs."""
        h = self.hidden(h)
        return [head(h) for head in self.heads]

    def nll(self, x, params, log_library):
        """Return the rows' negative log-likelihood (feature sum, row mean)."""
        n = x.shape[0]
        if self.likelihood == "bernoulli":
            return bernoulli_nll(x, params[0]).sum() / n
        if self.likelihood == "normal":
            var = torch.exp(2.0 * self.log_std)
            return gaussian_nll(x, params[0], var).sum() / n
        library = torch.exp(log_library.clamp(max=_LOG_LIB_MAX))
        mean = F.softmax(params[0], dim=-1) * library
        theta = torch.exp(params[1].clamp(max=_LOG_THETA_MAX))
        if self.likelihood == "nb":
            return nb_nll(x, mean, theta).sum() / n
        pi = torch.sigmoid(params[2])
        return zinb_nll(x, mean, theta, pi) * x.shape[1]


class ScMVAEModule(nn.Module):
    """scMVAE's two-modality VAE with a Gaussian-mixture prior.

    Encoders (``Linear -> BatchNorm -> ReLU -> Dropout`` blocks of
    ``hidden_dims``) read ``log1p`` of a count modality, the 0/1 values of a
    Bernoulli one and the values of a Gaussian one.  ``combination``:

    * ``"poe"`` (scMVAE-PoE, the paper's and DANCE's model): one Gaussian
      posterior per modality, combined with a standard-normal prior expert
      by :func:`product_of_experts`;
    * ``"nn"`` (scMVAE-NN): the two encoders' last hidden layers are
      concatenated and a shared layer of width ``hidden_dims[-1]`` gives
      the posterior;
    * ``"concat"`` (scMVAE-direct): one encoder of the concatenated inputs.

    Decoder (scMVAE's ``model=1``): a shared network ``latent_dim ->
    hidden_dims[-1] -> 2 * hidden_dims[-1]`` whose output is split in two
    halves, one per modality, each followed by ``hidden_dims[-1] ->
    reversed(hidden_dims[:-1])`` and the likelihood's heads
    (:class:`ModalityDecoder`).  A count modality also has a library
    encoder (one hidden layer of width ``hidden_dims[-1]``) giving the
    Gaussian posterior of its log library size.

    Parameters
    ----------
    n_features : tuple of int
        Features of the two modalities.
    likelihoods : tuple of str
        Likelihood of each modality, one of :data:`LIKELIHOODS`.
    hidden_dims : tuple of int
        Encoder widths.
    latent_dim : int
        Latent dimensions.
    n_clusters : int
        Components of the Gaussian-mixture prior.
    combination : {"poe", "nn", "concat"}
        How the modalities are combined.
    dropout : float
        Dropout rate of every hidden block.
    library_priors : tuple of (float, float) or None
        Mean and variance of each count modality's log library size over
        the training cells (None for the others).
    """

    def __init__(
        self,
        n_features,
        likelihoods,
        hidden_dims,
        latent_dim,
        n_clusters,
        combination,
        dropout,
        library_priors,
    ):
        super().__init__()
        if combination not in COMBINATIONS:
            raise ValueError(f"combination must be one of {COMBINATIONS}.")
        self.likelihoods = tuple(likelihoods)
        self.combination = combination
        self.library_priors = tuple(library_priors)
        width = hidden_dims[-1]
        if combination == "poe":
            self.encoders = nn.ModuleList(
                _layers([n, *hidden_dims], dropout) for n in n_features
            )
            self.posteriors = nn.ModuleList(
                GaussianHead(width, latent_dim) for _ in n_features
            )
        elif combination == "nn":
            self.encoders = nn.ModuleList(
                _layers([n, *hidden_dims], dropout) for n in n_features
            )
            self.shared_encoder = _layers([2 * width, width], dropout)
            self.posterior = GaussianHead(width, latent_dim)
        else:
            self.encoder = _layers([sum(n_features), *hidden_dims], dropout)
            self.posterior = GaussianHead(width, latent_dim)
        self.library_encoders = nn.ModuleList(
            nn.Sequential(_layers([n, width], dropout), GaussianHead(width, 1))
            if lik in COUNT_LIKELIHOODS
            else nn.Identity()
            for n, lik in zip(n_features, likelihoods)
        )
        self.shared_decoder = _layers([latent_dim, width, 2 * width], dropout)
        self.split = width
        dec_dims = [width, *reversed(hidden_dims[:-1])]
        self.decoders = nn.ModuleList(
            ModalityDecoder(dec_dims, n, lik, dropout)
            for n, lik in zip(n_features, likelihoods)
        )
        # Gaussian-mixture prior: weights (softmax of logits), means and
        # log variances, shape (latent_dim, n_clusters) as in scMVAE.
        self.pi_logits = nn.Parameter(torch.zeros(n_clusters))
        self.mu_c = nn.Parameter(torch.zeros(latent_dim, n_clusters))
        self.log_var_c = nn.Parameter(torch.zeros(latent_dim, n_clusters))

    def encode(self, inputs):
        """Posterior ``(mean, log_var)`` of ``z`` from both modalities' inputs."""
        if self.combination == "poe":
            stats = [
                head(enc(x))
                for enc, head, x in zip(self.encoders, self.posteriors, inputs)
            ]
            return product_of_experts([s[0] for s in stats], [s[1] for s in stats])
        if self.combination == "nn":
            h = torch.cat([enc(x) for enc, x in zip(self.encoders, inputs)], dim=-1)
            return self.posterior(self.shared_encoder(h))
        return self.posterior(self.encoder(torch.cat(inputs, dim=-1)))

    def loss(self, inputs, targets, kl_weight=1.0, mod1_weight=1.0):
        """Return scMVAE's objective (eq. 55) on a batch, as scalar tensors.

        ``total = mod1_weight * rec_1 + rec_2 + kl_l1 + kl_l2 + kl_weight *
        kl_z``, each term averaged over the cells of the batch:
        reconstruction negative log-likelihoods summed over features, the
        KL of each count modality's log library size to its log-normal
        prior, and VaDE's KL to the Gaussian-mixture prior (:func:`gmm_kl`).
        Codes are drawn in training mode; the posterior means are used in
        evaluation mode.

        Parameters
        ----------
        inputs : list of torch.Tensor
            Encoder inputs of the two modalities (``log1p`` counts, 0/1
            values or the values as given).
        targets : list of torch.Tensor
            What each decoder reconstructs (counts, 0/1 values or values).
        kl_weight : float, default=1.0
            Weight of ``kl_z`` (the KL warm-up).
        mod1_weight : float, default=1.0
            Weight of the first modality's reconstruction.

        Returns
        -------
        losses : dict of str to torch.Tensor
            ``total``, ``rec_1``, ``rec_2``, ``kl_l1``, ``kl_l2``, ``kl_z``.
        """
        sample = self.training
        mean, log_var = self.encode(inputs)
        z = reparameterize(mean, log_var, sample)
        shared = self.shared_decoder(z)
        halves = (shared[:, : self.split], shared[:, self.split :])
        out = {}
        total = 0.0
        for m, (x_in, x, half) in enumerate(zip(inputs, targets, halves)):
            kl_l = torch.zeros((), device=mean.device)
            log_lib = None
            if self.likelihoods[m] in COUNT_LIKELIHOODS:
                lib_mean, lib_log_var = self.library_encoders[m](x_in)
                log_lib = reparameterize(lib_mean, lib_log_var, sample)
                prior_mean, prior_var = self.library_priors[m]
                kl_l = normal_kl(lib_mean, lib_log_var, prior_mean, prior_var).mean()
            decoder = self.decoders[m]
            rec = decoder.nll(x, decoder(half), log_lib)
            weight = mod1_weight if m == 0 else 1.0
            total = total + weight * rec + kl_l
            out[f"rec_{m + 1}"], out[f"kl_l{m + 1}"] = rec, kl_l
        log_pi = torch.log_softmax(self.pi_logits, dim=-1)
        kl_z = gmm_kl(z, mean, log_var, log_pi, self.mu_c, self.log_var_c).mean()
        out["kl_z"] = kl_z
        out["total"] = total + kl_weight * kl_z
        return out

    def latent(self, inputs):
        """Posterior mean of ``z`` (the joint embedding)."""
        return self.encode(inputs)[0]

    def sample_latent(self, inputs):
        """Return a posterior draw of ``z`` (to initialise the mixture prior)."""
        mean, log_var = self.encode(inputs)
        return reparameterize(mean, log_var, True)
