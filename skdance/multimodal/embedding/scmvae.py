"""scMVAE: joint embedding by a multimodal VAE with a Gaussian-mixture prior.

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

This module holds the estimator :class:`ScMVAE`, its torch module
:class:`ScMVAEModule`, the module's pieces and the losses.
"""

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.mixture import GaussianMixture
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.nn import (
    CHUNK_ROWS,
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    FCLayers,
    GaussianEncoder,
    LikelihoodHeads,
    RowSource,
    gaussian_kl,
    get_likelihood,
    reparameterize,
    resolve_likelihood,
    training,
    validation_split,
)
from skdance.utils import Widths, check_random_state_int, fill_doc

__all__ = [
    "COMBINATIONS",
    "ScMVAE",
    "ScMVAEModule",
    "gmm_kl",
    "product_of_experts",
]

# The likelihoods a modality may have (from skdance.nn.LIKELIHOODS).
_SUPPORTED = ("zinb", "nb", "bernoulli", "normal")
#: How the two modalities are combined into the latent code.
COMBINATIONS = ("poe", "nn", "concat")
# Bounds of the log dispersion, the log library size and the log variances,
# against overflow in exp (the original code has none).
_LOG_THETA_MAX = 12.0
_LOG_LIB_MAX = 20.0
_EPS = 1e-8
# scMVAE's BatchNorm1d settings (``build_multi_layers``).
_BATCH_NORM = {"momentum": 0.01, "eps": 1e-3}


def _layers(dims, dropout):
    """Return scMVAE's ``build_multi_layers``: Linear, BatchNorm, ReLU, Dropout.

    The original drops out after every block, the last included.
    """
    return FCLayers(dims, batch_norm=_BATCH_NORM, dropout=dropout, dropout_last=True)


def _posterior(encoder, h):
    """``(mean, log_var)`` of a :class:`~skdance.nn.GaussianEncoder`, no draw."""
    _, mean, log_var = encoder(h, sample=False)
    return mean, log_var


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
    >>> from skdance.multimodal.embedding.scmvae import product_of_experts
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
    the mean, with a per-feature learned log standard deviation.  The
    negative log-likelihoods are those of :data:`skdance.nn.LIKELIHOODS`.
    """

    def __init__(self, dims, n_features, likelihood, dropout):
        super().__init__()
        self.likelihood = get_likelihood(likelihood)
        self.hidden = _layers(dims, dropout)
        self.heads = LikelihoodHeads(dims[-1], n_features, self.likelihood)

    def forward(self, h):
        """Return the raw head outputs."""
        return self.heads(self.hidden(h))

    def distribution(self, params, log_library):
        """Return the likelihood's parameters from the raw head outputs."""
        name = self.likelihood.name
        if name == "bernoulli":
            return [params[0]]
        if name == "normal":
            return [params[0], self.heads.variance()]
        library = torch.exp(log_library.clamp(max=_LOG_LIB_MAX))
        mean = F.softmax(params[0], dim=-1) * library
        theta = torch.exp(params[1].clamp(max=_LOG_THETA_MAX))
        if name == "nb":
            return [mean, theta]
        return [mean, theta, torch.sigmoid(params[2])]

    def nll(self, x, params, log_library):
        """Return the rows' negative log-likelihood (feature sum, row mean)."""
        dist = self.distribution(params, log_library)
        return self.likelihood.nll(x, *dist).sum() / x.shape[0]


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
        Likelihood of each modality: ``"zinb"``, ``"nb"``, ``"bernoulli"``
        or ``"normal"``.
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
                GaussianEncoder(width, latent_dim) for _ in n_features
            )
        elif combination == "nn":
            self.encoders = nn.ModuleList(
                _layers([n, *hidden_dims], dropout) for n in n_features
            )
            self.shared_encoder = _layers([2 * width, width], dropout)
            self.posterior = GaussianEncoder(width, latent_dim)
        else:
            self.encoder = _layers([sum(n_features), *hidden_dims], dropout)
            self.posterior = GaussianEncoder(width, latent_dim)
        self.library_encoders = nn.ModuleList(
            nn.Sequential(_layers([n, width], dropout), GaussianEncoder(width, 1))
            if get_likelihood(lik).counts
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
                _posterior(head, enc(x))
                for enc, head, x in zip(self.encoders, self.posteriors, inputs)
            ]
            return product_of_experts([s[0] for s in stats], [s[1] for s in stats])
        if self.combination == "nn":
            h = torch.cat([enc(x) for enc, x in zip(self.encoders, inputs)], dim=-1)
            return _posterior(self.posterior, self.shared_encoder(h))
        return _posterior(self.posterior, self.encoder(torch.cat(inputs, dim=-1)))

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
            if get_likelihood(self.likelihoods[m]).counts:
                # a draw of the log library size in training mode, its mean else
                log_lib, lib_mean, lib_log_var = self.library_encoders[m](x_in)
                prior_mean, prior_var = self.library_priors[m]
                kl_l = gaussian_kl(
                    lib_mean, lib_log_var, prior_mean=prior_mean, prior_var=prior_var
                ).mean()
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


# DANCE's feature filter before the selection (``filter_genes(min_counts=3)``).
_MIN_FEATURE_COUNTS = 3
# Floor of the variance of a log library-size prior (all-equal libraries).
_MIN_LIBRARY_VAR = 1e-2
# scMVAE's learning-rate decay: times 0.9 every 10 epochs, down to the floor.
_LR_DECAY, _LR_DECAY_EPOCHS = 0.9, 10
# Optimiser steps of the default schedule (the original's ``max_iteration``).
_STEP_BUDGET = 3000
# scMVAE's Adam epsilon.
_ADAM_EPS = 0.01


def _values(X):
    return X.data if sp.issparse(X) else np.asarray(X).ravel()


def _resolve_likelihood(likelihood, X, name):
    """Return the likelihood's name for a modality (``"auto"`` decides from the values).

    ``"auto"``: ``"bernoulli"`` for 0/1 values, ``"zinb"`` for non-negative
    integers, ``"normal"`` otherwise; ``"bernoulli"`` binarises any
    non-negative values.
    """
    if likelihood == "bernoulli":
        values = _values(X)
        if values.size and values.min() < 0:
            raise ValueError(
                f"{name}_likelihood='bernoulli' models binarised (x > 0) data, but "
                f"the {name} values are negative (min {float(values.min()):.4g})."
            )
        return likelihood
    return resolve_likelihood(
        likelihood, X, allowed=_SUPPORTED, counts="zinb", param=f"{name}_likelihood"
    ).name


def _select_features(X, likelihood, n_top):
    """Columns kept for one modality (DANCE's ``feature_selection``)."""
    n_features = X.shape[1]
    columns = np.arange(n_features)
    if likelihood == "normal":
        if n_top is None or n_features <= n_top:
            return columns
        sq = X.multiply(X).mean(axis=0) if sp.issparse(X) else np.mean(X * X, axis=0)
        mean = np.asarray(X.mean(axis=0)).ravel()
        var = np.asarray(sq).ravel() - mean**2
        return np.sort(np.argsort(-var, kind="stable")[:n_top])
    if likelihood == "bernoulli":
        X = _binarize(X)
    totals = np.asarray(X.sum(axis=0)).ravel()
    kept = np.flatnonzero(totals >= _MIN_FEATURE_COUNTS)
    if kept.size == 0:
        return columns
    if n_top is None or kept.size <= n_top:
        return kept
    from skdance.preprocessing import HighlyVariableGenes

    try:
        hvg = HighlyVariableGenes(n_top_genes=n_top, flavor="seurat_v3", span=0.3)
        hvg.fit(X[:, kept])
    except ValueError:  # the loess fit needs hundreds of features
        hvg = HighlyVariableGenes(n_top_genes=n_top, flavor="seurat").fit(X[:, kept])
    return kept[hvg.highly_variable_]


def _binarize(X):
    if sp.issparse(X):
        X = sp.csr_matrix(X, copy=True)
        X.data = (X.data > 0).astype(np.float32)
        X.eliminate_zeros()
        return X
    return (np.asarray(X) > 0).astype(np.float32)


def _modality_rows(X, likelihood, columns):
    """One modality's kept columns as a row source (Bernoulli: binarised)."""
    X = X[:, columns]
    if likelihood == "bernoulli":
        X = _binarize(X)
    return RowSource(X)


def _adam(params, lr, weight_decay):
    """Adam with scMVAE's epsilon; the fused kernel where the device has one.

    The fused step computes the same update as the loop (up to float
    rounding) about seven times faster on a CPU for scMVAE's 20-million
    parameters.
    """
    params = list(params)
    try:
        return torch.optim.Adam(
            params, lr=lr, weight_decay=weight_decay, eps=_ADAM_EPS, fused=True
        )
    except (RuntimeError, ValueError):  # pragma: no cover - device without it
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, eps=_ADAM_EPS)


def _batches(modalities, likelihoods, idx, device):
    """Return the encoder inputs and targets of the rows ``idx`` of both modalities.

    The target is the values (counts, 0/1 values or values); a count
    modality's encoder reads ``log1p`` of its counts, the others their values.
    """
    inputs, targets = [], []
    for rows, lik in zip(modalities, likelihoods):
        target = rows.batch(idx, device)
        inputs.append(torch.log1p(target) if get_likelihood(lik).counts else target)
        targets.append(target)
    return inputs, targets


@fill_doc
class ScMVAE(BaseJointEmbedding):
    """scMVAE: a multimodal VAE with a Gaussian-mixture prior (joint embedding).

    The model of Zuo & Chen (2021) as its code and DANCE's version build
    and train it (DANCE paper, appendix D.2, eqs. 53-55), on raw counts:

    1. Feature selection (DANCE's ``feature_selection``): in each count
       modality the features with fewer than 3 counts are dropped and,
       where more than ``n_top_genes`` remain, the ``n_top_genes`` most
       variable (``seurat_v3``, span 0.3; the ``seurat`` flavour where
       too few features for its loess fit) are kept; Gaussian modalities
       keep their ``n_top_genes`` features of largest variance.
    2. Encoders (``Linear -> BatchNorm -> ReLU -> Dropout`` blocks of
       ``hidden_dims``) read ``log1p`` of the counts and give the Gaussian
       posterior of the joint code ``z`` (``latent_dim``); ``combination``
       ``"poe"`` (the paper's and DANCE's scMVAE-PoE): one posterior per
       modality, multiplied with a standard-normal prior expert;
       ``"nn"`` (scMVAE-NN): a shared layer on the concatenated last
       hidden layers; ``"concat"`` (scMVAE-direct): one encoder of the
       concatenated inputs.  A library encoder per count modality gives
       the posterior of its log library size, whose prior is a normal with
       the mean and variance of the log totals of the training cells
       (``l ~ LogNormal``).
    3. Prior ``p(z, c) = N(z; mu_c, diag(var_c)) pi_c`` with
       ``n_clusters`` components, weights, means and variances learnt
       (VaDE); means and variances are initialised by a diagonal Gaussian
       mixture fitted to posterior draws of the training cells before
       training, as in the original.
    4. Decoder (scMVAE's ``model=1``): a shared network from ``z`` whose
       output is split in one half per modality, then one decoder per
       modality with the likelihood of ``mod1_likelihood`` /
       ``mod2_likelihood``: ZINB (mean = library size x softmax
       proportions, dispersion, dropout), NB, Bernoulli (binarised
       peaks) or Gaussian.
    5. Loss per cell: ``mod1_weight * rec_1 + rec_2 + KL_l1 + KL_l2 +
       beta * KL(q(z, c | x) || p(z, c))`` with ``beta`` raised linearly
       over ``kl_warmup_epochs`` (``beta = min(1, epoch /
       kl_warmup_epochs)``), Adam (epsilon 0.01, ``weight_decay``) with
       the learning rate times 0.9 every 10 epochs down to
       ``min_learning_rate``; the validation loss (same weights) on
       ``validation_fraction`` of the cells is computed after every epoch,
       and the state with the lowest is kept.
    6. ``transform``: the posterior mean of ``z`` (evaluation mode), of
       ``latent_dim`` dimensions.

    Embedding size: ``latent_dim=22`` (the paper's and DANCE's, with
    ``n_clusters=22`` mixture components), not the competition's 100: the
    Gaussian-mixture prior and the product of experts are fitted in that
    space, and a 100-dimensional code would be mostly empty dimensions
    pulled to the prior.

    Likelihoods and units: scMVAE models raw counts (ZINB for RNA, ZINB or
    Bernoulli for ATAC; DANCE uses ZINB for both GEX and ADT / ATAC).  With
    ``"auto"`` (default) a modality of non-negative integers gets ZINB,
    one of only 0 and 1 values gets Bernoulli, and anything else
    (log-normalised GEX, CLR proteins, shipped without counts) a Gaussian
    on the values as given (documented fallback, not the paper's model:
    no library size, no ``log1p``).  An explicit ``"zinb"`` / ``"nb"`` on
    values that are not non-negative integers raises a ``ValueError``;
    ``"bernoulli"`` binarises raw counts (``x > 0``).

    Deliberate differences from the original code: the mixture weights
    are a softmax of free parameters and the component variances an
    ``exp`` of free log variances (the original trains both raw, which can
    leave the simplex or turn negative); the library-size KL uses the
    posterior standard deviation (the original passes the log variance or
    the sample as the scale) and each count modality's own prior (DANCE
    uses the first modality's for both); the log library size and the log
    dispersion are clamped against overflow; the posterior mean is the
    embedding (DANCE too); there is no relative-change stopping rule, only
    ``patience``.

    Memory: sparse input stays sparse; one mini-batch of cells is dense
    during training, 4,096 cells at a time for validation and
    ``transform``.

    Parameters
    ----------
    n_features_mod1 : int or None, default=None
        Number of first-modality (GEX) columns when ``X`` is ``[mod1 |
        mod2]`` column blocks (not needed when ``X`` is a pair).
    combination : {"poe", "nn", "concat"}, default="poe"
        How the modalities form the joint code (see above).
    latent_dim : int, default=22
        Dimensions of ``z`` (the embedding).
    n_clusters : int, default=22
        Components of the Gaussian-mixture prior (the original's
        ``n_centroids``); at most the number of training cells are used.
    hidden_dims : tuple of int, default=(1024, 128, 128)
        Encoder widths (the decoders use ``hidden_dims[-1]`` then the
        others in reverse; the library encoders one layer of
        ``hidden_dims[-1]``).
    dropout : float, default=0.1
        Dropout rate after every hidden block.
    mod1_likelihood, mod2_likelihood : {"auto", "zinb", "nb", "bernoulli", \
"normal"}, default="auto"
        Likelihood of each modality, see above.
    n_top_genes : int or None, default=3000
        Most variable features kept in each modality (DANCE's
        ``selection_threshold``); None keeps every feature that passes the
        count filter.
    mod1_weight : float, default=4.0
        Weight of the first modality's reconstruction loss (the
        original's ``scale_factor``).
    kl_warmup_epochs : int, default=200
        Epochs over which the weight of the latent KL rises to 1 (the
        original's ``anneal_epoch``); 0 uses weight 1 from the start.
    learning_rate : float, default=1e-3
        Initial Adam learning rate.
    min_learning_rate : float, default=1e-4
        Floor of the decayed learning rate (the original's ``final_rate``).
    weight_decay : float, default=1e-6
        Adam L2 penalty.
    batch_size : int, default=64
        {batch_size}
    max_epochs : int or None, default=None
        Training epochs.  None: about 3,000 optimiser steps (the
        original's ``max_iteration``), i.e. ``round(3000 / ceil(n_train /
        batch_size))`` epochs, at most 500 (the original's ``max_epoch``):
        21 for SNARE-seq's 10,309 cells, 167 for TEA-seq's 1,262, 333 for
        600 (``n_train``: the cells not held out).  The cost of a fit is
        then about that of 3,000 mini-batches whatever the number of cells.
    validation_fraction : float, default=0.1
        Fraction of the cells held out for the validation loss (the
        original's 10 % test split); 0 keeps the last state.
    patience : int or None, default=30
        Stop after this many epochs without a lower validation loss (the
        original's 30 epochs); None trains all ``max_epochs`` (the best
        state is kept either way).
    {device} {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initialisation, the mixture
        initialisation, the batches and the latent draws.
    {verbose}

    Attributes
    ----------
    likelihoods_ : tuple of str
        Likelihoods used for the two modalities.
    features_mod1_, features_mod2_ : ndarray of int
        Columns of each modality the model uses.
    library_priors_ : tuple
        ``(mean, variance)`` of each count modality's log library size
        (None for the others).
    module_ : ScMVAEModule
        The trained torch module (on the CPU).
    history_ : list of dict
        One record per epoch: phase, epoch, train_loss (loss per cell at
        the epoch's weights), rec_1, rec_2, kl_z, kl_weight,
        learning_rate, valid_loss when cells are held out, seconds.
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int or None
        Epoch whose state was kept (None without validation cells).
    n_features_in_ : int
        Columns of ``X`` (both blocks; first-modality columns when ``X``
        is a pair).
    n_features_mod2_ : int
        Columns of the second modality.

    See Also
    --------
    skdance.multimodal.embedding.JointPCA : The PCA baseline.

    References
    ----------
    Zuo & Chen (2021), "Deep-joint-learning analysis model of single cell
    transcriptome and open chromatin accessibility data", Briefings in
    Bioinformatics 22(4), bbaa287.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.embedding.scmvae import ScMVAE
    >>> rng = np.random.default_rng(0)
    >>> rna = rng.poisson(2.0, size=(60, 30)).astype(float)
    >>> atac = rng.binomial(1, 0.3, size=(60, 40)).astype(float)
    >>> model = ScMVAE(hidden_dims=(16, 8), latent_dim=4, n_clusters=3,
    ...                max_epochs=3, random_state=0)
    >>> Z = model.fit_transform((rna, atac))
    >>> model.likelihoods_, Z.shape
    (('zinb', 'bernoulli'), (60, 4))
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_features_mod1": [Interval(Integral, 1, None, closed="left"), None],
        "combination": [StrOptions(set(COMBINATIONS))],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "hidden_dims": [Widths()],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "mod1_likelihood": [StrOptions({"auto", *_SUPPORTED})],
        "mod2_likelihood": [StrOptions({"auto", *_SUPPORTED})],
        "n_top_genes": [Interval(Integral, 1, None, closed="left"), None],
        "mod1_weight": [Interval(Real, 0, None, closed="left")],
        "kl_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "min_learning_rate": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), None],
        **VALIDATION_CONSTRAINTS,
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_features_mod1=None,
        combination="poe",
        latent_dim=22,
        n_clusters=22,
        hidden_dims=(1024, 128, 128),
        dropout=0.1,
        mod1_likelihood="auto",
        mod2_likelihood="auto",
        n_top_genes=3000,
        mod1_weight=4.0,
        kl_warmup_epochs=200,
        learning_rate=1e-3,
        min_learning_rate=1e-4,
        weight_decay=1e-6,
        batch_size=64,
        max_epochs=None,
        validation_fraction=0.1,
        patience=30,
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.n_features_mod1 = n_features_mod1
        self.combination = combination
        self.latent_dim = latent_dim
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.dropout = dropout
        self.mod1_likelihood = mod1_likelihood
        self.mod2_likelihood = mod2_likelihood
        self.n_top_genes = n_top_genes
        self.mod1_weight = mod1_weight
        self.kl_warmup_epochs = kl_warmup_epochs
        self.learning_rate = learning_rate
        self.min_learning_rate = min_learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.mudata_mods = mudata_mods
        self.random_state = random_state
        self.verbose = verbose

    def _modalities(self, X1, X2):
        return [
            _modality_rows(X, lik, cols)
            for X, lik, cols in zip(
                (X1, X2), self.likelihoods_, (self.features_mod1_, self.features_mod2_)
            )
        ]

    def _fit(self, X1, X2, y):
        dims = tuple(self.hidden_dims)
        n = X1.shape[0]
        if n < 2:
            raise ValueError(
                f"ScMVAE needs at least 2 cells (batch normalisation); got {n} sample."
            )
        seed = check_random_state_int(self.random_state)
        self.likelihoods_ = (
            _resolve_likelihood(self.mod1_likelihood, X1, "mod1"),
            _resolve_likelihood(self.mod2_likelihood, X2, "mod2"),
        )
        self.features_mod1_ = _select_features(
            X1, self.likelihoods_[0], self.n_top_genes
        )
        self.features_mod2_ = _select_features(
            X2, self.likelihoods_[1], self.n_top_genes
        )
        data = self._modalities(X1, X2)
        priors = []
        for rows, lik in zip(data, self.likelihoods_):
            if get_likelihood(lik).counts:
                log_lib = np.log(np.maximum(rows.library.astype(np.float64), 1.0))
                priors.append(
                    (float(log_lib.mean()), float(max(log_lib.var(), _MIN_LIBRARY_VAR)))
                )
            else:
                priors.append(None)
        self.library_priors_ = tuple(priors)

        likelihoods = self.likelihoods_
        train, valid = validation_split(n, self.validation_fraction, seed)
        n_clusters = min(self.n_clusters, train.size)
        with training(self, seed=seed) as run:
            device = run.device
            module = ScMVAEModule(
                tuple(rows.shape[1] for rows in data),
                self.likelihoods_,
                dims,
                self.latent_dim,
                n_clusters,
                self.combination,
                self.dropout,
                self.library_priors_,
            )
            module = run.place(module)
            self._init_mixture(
                module, data, likelihoods, train, n_clusters, seed, device
            )
            optimizer = _adam(
                module.parameters(), self.learning_rate, self.weight_decay
            )
            state = {"kl_weight": 1.0}
            sums = {}

            def loss_of(idx):
                inputs, targets = _batches(data, likelihoods, idx, device)
                out = module.loss(inputs, targets, state["kl_weight"], self.mod1_weight)
                for key in ("rec_1", "rec_2", "kl_z"):
                    sums[key] = sums.get(key, 0.0) + out[key].detach().item() * len(idx)
                return out["total"]

            def epoch_fn(e):
                lr = max(
                    self.learning_rate * _LR_DECAY ** ((e + 1) // _LR_DECAY_EPOCHS),
                    self.min_learning_rate,
                )
                for group in optimizer.param_groups:
                    group["lr"] = lr
                warm = self.kl_warmup_epochs
                state["kl_weight"] = min(1.0, (e + 1) / warm) if warm else 1.0
                sums.clear()
                module.train()
                loss = run.trainer.minibatch_epoch(
                    optimizer,
                    loss_of,
                    train.size,
                    self.batch_size,
                    run.generator,
                    indices=train,
                    min_batch=2,
                )
                record = {"train_loss": loss}
                record.update({k: v / train.size for k, v in sums.items()})
                record["kl_weight"] = state["kl_weight"]
                record["learning_rate"] = lr
                return record

            def valid_fn():
                module.eval()
                total = 0.0
                with torch.no_grad():
                    for start in range(0, valid.size, CHUNK_ROWS):
                        idx = valid[start : start + CHUNK_ROWS]
                        inputs, targets = _batches(data, likelihoods, idx, device)
                        out = module.loss(
                            inputs, targets, state["kl_weight"], self.mod1_weight
                        )
                        total += float(out["total"]) * idx.size
                return {"valid_loss": total / valid.size}

            best = run.run(
                "train",
                self._n_epochs(train.size),
                epoch_fn,
                valid_fn=valid_fn if valid.size else None,
                patience=self.patience,
                module=module,
            )
        self.best_epoch_ = best
        return self

    def _n_epochs(self, n_train):
        """``max_epochs``, or the step-budget default (see the docstring)."""
        if self.max_epochs is not None:
            return self.max_epochs
        steps = -(-n_train // self.batch_size)
        return int(min(max(round(_STEP_BUDGET / steps), 1), 500))

    @staticmethod
    def _init_mixture(module, data, likelihoods, train, n_clusters, seed, device):
        """Fit a diagonal Gaussian mixture to posterior draws (the original's init).

        As in scMVAE's ``init_gmm_params``: the untrained network in
        training mode (batch statistics) encodes the training cells, and
        the mixture's means and variances become the prior's.
        """
        n_chunks = max(1, -(-train.size // CHUNK_ROWS))
        draws = []
        module.train()
        with torch.no_grad():
            for idx in np.array_split(train, n_chunks):
                inputs, _ = _batches(data, likelihoods, idx, device)
                draws.append(module.sample_latent(inputs).cpu().numpy())
        z = np.concatenate(draws).astype(np.float64)
        gmm = GaussianMixture(
            n_components=n_clusters, covariance_type="diag", random_state=seed
        ).fit(z)
        module.mu_c.data.copy_(torch.from_numpy(gmm.means_.T.astype(np.float32)))
        log_var = np.log(gmm.covariances_.T).astype(np.float32)
        module.log_var_c.data.copy_(torch.from_numpy(log_var))

    def _transform(self, X1, X2):
        for X, lik, name in zip((X1, X2), self.likelihoods_, ("mod1", "mod2")):
            if lik != "normal":
                values = _values(X)
                if values.size and values.min() < 0:
                    raise ValueError(
                        f"ScMVAE was fitted with {lik!r} on the {name} counts, but "
                        f"the {name} values passed are negative."
                    )
        data = self._modalities(X1, X2)
        module = self.module_.eval()
        out = []
        with torch.no_grad():
            for start in range(0, X1.shape[0], CHUNK_ROWS):
                idx = np.arange(start, min(start + CHUNK_ROWS, X1.shape[0]))
                inputs, _ = _batches(data, self.likelihoods_, idx, "cpu")
                out.append(module.latent(inputs).numpy())
        return np.concatenate(out).astype(np.float64)
