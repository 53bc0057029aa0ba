"""scMM's mixture-of-experts multimodal VAE, shared by prediction and matching.

scMM (Minoura et al. 2021) is an MMVAE (Shi et al. 2019) for paired
single-cell modalities: one encoder per modality gives a Laplace posterior
``q(z | x_m)``, a Laplace prior ``p(z)`` with a learnable scale, the joint
posterior is the mixture of experts ``(q(z | x_1) + q(z | x_2)) / 2`` and
every modality's decoder reconstructs its own data from the latent code of
either expert (DANCE paper, appendix D.2, eqs. 41-44).  This module holds
the torch module (:class:`ScMMModule`), the objective and the training
routine (:func:`fit_scmm`) that :class:`~skdance.multimodal.prediction.ScMM`
(cross-modal generation) and
:class:`~skdance.multimodal.matching.ScMMMatcher` (latent similarity) share.
"""

import math
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    FCLayers,
    Trainer,
    bernoulli_nll,
    dense_rows,
    gaussian_nll,
    nb_nll,
    seeded,
    validation_split,
    zinb_nll,
)
from skdance.nn._counts import CHUNK_ROWS, stack_rows
from skdance.utils._validation import check_random_state_int, check_widths

__all__ = [
    "LIKELIHOODS",
    "SCMM_CONSTRAINTS",
    "ScMMModule",
    "fit_scmm",
    "laplace_kl",
    "resolve_likelihood",
]

#: The per-modality likelihoods; "auto" picks one from the values of the data.
LIKELIHOODS = ("nb", "zinb", "normal", "bernoulli")

#: Parameters both scMM estimators share.
SCMM_CONSTRAINTS = {
    "hidden_dims": [tuple, list],
    "mod2_hidden_dims": [tuple, list],
    "latent_dim": [Interval(Integral, 1, None, closed="left")],
    "mod1_likelihood": [StrOptions({"auto", *LIKELIHOODS})],
    "mod2_likelihood": [StrOptions({"auto", *LIKELIHOODS})],
    "learn_prior": ["boolean"],
    "kl_warmup_epochs": [Interval(Integral, 0, None, closed="left")],
    "n_latent_samples": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 2, None, closed="left")],
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    **VALIDATION_CONSTRAINTS,
    **TORCH_CONSTRAINTS,
}

# scMM's constants: the total a count modality is scaled to before encoding,
# the floor of the Laplace scales and the clamp of the NB probabilities.
_SCALE_FACTOR = 1e4
_ETA = 1e-6
_P_EPS = 1e-7
_LOGIT_BOUND = math.log((1 - _P_EPS) / _P_EPS)
_COUNT_LIKELIHOODS = ("nb", "zinb")


def resolve_likelihood(likelihood, X):
    """Return the likelihood of one modality: as given, or chosen by ``"auto"``.

    ``"auto"`` looks at the stored values: only 0 and 1 (binarised ATAC, the
    NeurIPS 2021 units) gives ``"bernoulli"``, non-negative integers (raw
    counts) ``"nb"`` and anything else (log-normalised GEX, CLR ADT, scaled
    values) ``"normal"``.  An explicit name is checked against the data: the
    count likelihoods need non-negative values, ``"bernoulli"`` values in
    ``[0, 1]``.

    Parameters
    ----------
    likelihood : {"auto", "nb", "zinb", "normal", "bernoulli"}
        The parameter's value.
    X : {ndarray, sparse matrix}
        The modality's training values.

    Returns
    -------
    likelihood : str
        One of :data:`LIKELIHOODS`.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal._scmm import resolve_likelihood
    >>> resolve_likelihood("auto", np.array([[0.0, 3.0], [1.0, 0.0]]))
    'nb'
    >>> resolve_likelihood("auto", np.array([[0.0, 1.0], [1.0, 0.0]]))
    'bernoulli'
    >>> resolve_likelihood("auto", np.array([[-0.5, 1.2]]))
    'normal'
    """
    values = X.data if sp.issparse(X) else np.asarray(X)
    lowest = float(values.min()) if values.size else 0.0
    highest = float(values.max()) if values.size else 0.0
    if likelihood == "auto":
        if lowest >= 0 and highest <= 1 and np.all((values == 0) | (values == 1)):
            return "bernoulli"
        if lowest >= 0 and np.all(values == np.round(values)):
            return "nb"
        return "normal"
    if likelihood in _COUNT_LIKELIHOODS and lowest < 0:
        raise ValueError(
            f"likelihood {likelihood!r} models non-negative counts but the data "
            f"have negative values (min {lowest:.4g}); use 'normal' (or 'auto') "
            "for normalised values such as CLR or scaled data."
        )
    if likelihood == "bernoulli" and (lowest < 0 or highest > 1):
        raise ValueError(
            "likelihood 'bernoulli' models binarised values in [0, 1] but the "
            f"data range from {lowest:.4g} to {highest:.4g}."
        )
    return likelihood


def laplace_kl(loc1, scale1, loc2, scale2):
    """``KL(Laplace(loc1, scale1) || Laplace(loc2, scale2))`` per entry.

    ``log(b2 / b1) + |m1 - m2| / b2 + (b1 / b2) exp(-|m1 - m2| / b1) - 1``.

    Examples
    --------
    >>> import torch
    >>> from skdance.multimodal._scmm import laplace_kl
    >>> one = torch.ones(1)
    >>> float(laplace_kl(0 * one, one, 0 * one, one))
    0.0
    """
    ratio = scale1 / scale2
    diff = (loc1 - loc2).abs()
    return -torch.log(ratio) + diff / scale2 + ratio * torch.exp(-diff / scale1) - 1.0


def laplace_rsample(loc, scale, n_samples):
    """``n_samples`` reparameterised draws of ``Laplace(loc, scale)``, stacked first."""
    shape = (n_samples, *loc.shape)
    u = torch.rand(shape, dtype=loc.dtype, device=loc.device) * 2.0 - 1.0
    u = u.clamp(-1.0 + 1e-7, 1.0 - 1e-7)
    return loc - scale * torch.sign(u) * torch.log1p(-u.abs())


def _softmax_scale(raw):
    """Return ``softmax(raw) * latent_dim``, scMM's scales (mean 1)."""
    return F.softmax(raw, dim=-1) * raw.size(-1)


class ModalityVAE(nn.Module):
    """Encoder and decoder of one modality of scMM.

    Encoder: ``Linear -> BatchNorm -> ReLU`` per width of ``hidden_dims``,
    then a location layer and a scale layer of a Laplace posterior (scale
    ``softmax(clamp(., -12, 12)) * latent_dim + 1e-6``, scMM's
    parameterisation).  Count modalities (``"nb"``, ``"zinb"``) are scaled
    to a total of 10,000 before encoding, as in scMM; the others are
    encoded as given.  Decoder: the same widths from the latent code, then
    the heads of the likelihood.

    Parameters
    ----------
    n_features : int
        Features of the modality.
    hidden_dims : tuple of int
        Hidden widths of the encoder (the decoder uses the same).
    latent_dim : int
        Latent dimensions.
    likelihood : {"nb", "zinb", "normal", "bernoulli"}
        ``"nb"``: negative binomial, ``total_count = exp(.) / 1e4 * library``
        and success probability ``sigmoid(.)`` (scMM's RNA / protein model);
        ``"zinb"``: the same with a zero-inflation gate (scMM's ATAC model);
        ``"normal"``: Gaussian with a per-feature learned scale;
        ``"bernoulli"``: Bernoulli with logits (binarised data).
    """

    def __init__(self, n_features, hidden_dims, latent_dim, likelihood):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}.")
        self.likelihood = likelihood
        width = hidden_dims[-1]
        self.encoder = FCLayers([n_features, *hidden_dims], batch_norm=True)
        self.loc = nn.Linear(width, latent_dim)
        self.raw_scale = nn.Linear(width, latent_dim)
        self.decoder = FCLayers([latent_dim, *hidden_dims], batch_norm=True)
        heads = {"normal": 1, "bernoulli": 1, "nb": 2, "zinb": 3}[likelihood]
        self.heads = nn.ModuleList(nn.Linear(width, n_features) for _ in range(heads))
        if likelihood == "normal":
            self.log_std = nn.Parameter(torch.zeros(n_features))

    @property
    def counts(self):
        """Whether the modality is modelled as counts (with a library size)."""
        return self.likelihood in _COUNT_LIKELIHOODS

    def encode(self, x, library):
        """Laplace posterior ``(loc, scale)`` of the rows ``x``."""
        if self.counts:
            x = x / library.unsqueeze(-1) * _SCALE_FACTOR
        h = self.encoder(x)
        raw = self.raw_scale(h).clamp(-12.0, 12.0)
        return self.loc(h), _softmax_scale(raw) + _ETA

    def decode(self, z):
        """Likelihood parameters (before the library size) of the codes ``z``."""
        h = self.decoder(z)
        return [head(h) for head in self.heads]

    def _nb(self, params, library):
        """NB ``(mean, total_count)`` of ``params`` for rows of ``library`` total."""
        theta = torch.exp(params[0].clamp(-12.0, 12.0))
        theta = theta / _SCALE_FACTOR * library.unsqueeze(-1)
        logits = params[1].clamp(-_LOGIT_BOUND, _LOGIT_BOUND)
        return theta * torch.exp(logits), theta

    def log_likelihood(self, x, params, library):
        """Return the log-likelihood of the rows ``x``, summed (a scalar)."""
        if self.likelihood == "normal":
            var = torch.exp(2.0 * self.log_std)
            return -gaussian_nll(x, params[0], var).sum()
        if self.likelihood == "bernoulli":
            return -bernoulli_nll(x, params[0]).sum()
        mean, theta = self._nb(params, library)
        if self.likelihood == "nb":
            return -nb_nll(x, mean, theta).sum()
        gate = torch.sigmoid(params[2])
        return -zinb_nll(x, mean, theta, gate) * x.numel()

    def mean(self, params, library):
        """Mean of the likelihood: the reconstruction in the data's units."""
        if self.likelihood == "normal":
            return params[0]
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params[0])
        mean, _ = self._nb(params, library)
        if self.likelihood == "zinb":
            mean = mean * (1.0 - torch.sigmoid(params[2]))
        return mean


class ScMMModule(nn.Module):
    """scMM's two-modality mixture-of-experts VAE (the torch module).

    Parameters
    ----------
    n_features : tuple of int
        Features of the first and the second modality.
    hidden_dims : tuple of tuple of int
        Hidden widths of each modality's encoder and decoder.
    latent_dim : int
        Latent dimensions.
    likelihoods : tuple of str
        Likelihood of each modality (see :class:`ModalityVAE`).
    learn_prior : bool, default=True
        Learn the scale of the Laplace prior (its location stays 0).

    Attributes
    ----------
    vaes : torch.nn.ModuleList
        The two :class:`ModalityVAE`.
    library_ratio : float
        Total of the second modality over total of the first on the training
        cells (DANCE's ``ratio``): the library size of a predicted count
        modality is ``library_ratio`` times the total of the first.
    mod2_library : float
        Mean training total of the second modality, the predicted library
        size when the first modality is not counts.
    """

    def __init__(
        self, n_features, hidden_dims, latent_dim, likelihoods, learn_prior=True
    ):
        super().__init__()
        self.vaes = nn.ModuleList(
            ModalityVAE(n, dims, latent_dim, lik)
            for n, dims, lik in zip(n_features, hidden_dims, likelihoods)
        )
        self.prior_raw_scale = nn.Parameter(
            torch.zeros(1, latent_dim), requires_grad=bool(learn_prior)
        )
        self.library_ratio = 1.0
        self.mod2_library = 1.0

    def prior_scale(self):
        """Scale of the Laplace prior (mean 1 over the latent dimensions)."""
        return _softmax_scale(self.prior_raw_scale)

    def objective(self, xs, libraries, beta=1.0, n_samples=1):
        """Mean over the cells of scMM's stratified MoE ELBO (eq. 44).

        ``1/M sum_m { E_{z ~ q(z|x_m)} [sum_d log p(x_d | z)] - beta KL(q(z|x_m)
        || p(z)) }``: each expert's codes reconstruct both modalities (the
        cross-modal terms included); the expectation is a mean over
        ``n_samples`` reparameterised draws per cell and expert.

        Parameters
        ----------
        xs : list of torch.Tensor
            The rows of both modalities (same cells).
        libraries : list of torch.Tensor
            Row totals of both modalities.
        beta : float, default=1.0
            Weight of the KL terms (KL warm-up).
        n_samples : int, default=1
            Latent draws per cell and expert.

        Returns
        -------
        elbo : torch.Tensor
            Scalar, per cell.
        """
        n_cells = xs[0].shape[0]
        prior_scale = self.prior_scale()
        total = 0.0
        for e, vae in enumerate(self.vaes):
            loc, scale = vae.encode(xs[e], libraries[e])
            kl = laplace_kl(loc, scale, torch.zeros_like(loc), prior_scale).sum()
            z = laplace_rsample(loc, scale, n_samples).reshape(-1, loc.shape[-1])
            rec = 0.0
            for d, dec in enumerate(self.vaes):
                x = xs[d].repeat(n_samples, 1)
                library = libraries[d].repeat(n_samples)
                rec = rec + dec.log_likelihood(x, dec.decode(z), library)
            total = total + rec / n_samples - beta * kl
        return total / (len(self.vaes) * n_cells)

    def latent(self, x, library, modality=0):
        """Posterior location (mean and median) of one modality's rows."""
        return self.vaes[modality].encode(x, library)[0]

    def predict_mod2(self, x, library):
        """Cross-modal generation: the likelihood mean of the second modality.

        ``z`` is the posterior location of ``q(z | x_mod1)`` (deterministic);
        the library size of a count modality is ``library_ratio`` times the
        first modality's total (``mod2_library`` when that is not counts).
        """
        first, second = self.vaes
        z = first.encode(x, library)[0]
        if first.likelihood == "normal":
            lib2 = torch.full_like(library, self.mod2_library)
        else:
            lib2 = library * self.library_ratio
        return second.mean(second.decode(z), lib2)


def _as_float32(X):
    """CSR (sparse input) or C-contiguous dense float32, for row batches."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        return X if X.dtype == np.float32 else X.astype(np.float32)
    return np.ascontiguousarray(X, dtype=np.float32)


def _row_totals(X):
    totals = X.sum(axis=1, dtype=np.float64) if sp.issparse(X) else X.sum(axis=1)
    return np.asarray(totals, dtype=np.float64).ravel()


class _Rows:
    """A modality kept as given (CSR or dense) that hands out dense row batches."""

    def __init__(self, X, counts):
        self.X = _as_float32(X)
        totals = _row_totals(self.X)
        self.library = np.where(totals > 0, totals, _ETA).astype(np.float32)
        if not counts:
            self.library = np.ones_like(self.library)

    def batch(self, idx, device):
        idx = idx.numpy() if isinstance(idx, torch.Tensor) else idx
        x = torch.from_numpy(dense_rows(self.X, idx)).to(device)
        lib = torch.from_numpy(self.library[idx]).to(device)
        return x, lib


def encode_rows(module, X, modality, likelihood):
    """Posterior locations of all rows of ``X`` (CHUNK_ROWS at a time), float64."""
    rows = _Rows(X, likelihood in _COUNT_LIKELIHOODS)
    module.eval()

    def block(start, stop):
        return module.latent(*rows.batch(np.arange(start, stop), "cpu"), modality)

    with torch.no_grad():
        return stack_rows(block, X.shape[0])


def predict_rows(module, X, likelihood):
    """Cross-modal predictions of all rows of ``X`` (CHUNK_ROWS at a time)."""
    rows = _Rows(X, likelihood != "normal")
    module.eval()

    def block(start, stop):
        return module.predict_mod2(*rows.batch(np.arange(start, stop), "cpu"))

    with torch.no_grad():
        return stack_rows(block, X.shape[0])


def fit_scmm(estimator, X, Y):
    """Train scMM on paired cells for ``estimator``; set its fitted attributes.

    The DANCE / scMM training: Adam with AMSGrad, mini-batches of
    ``batch_size`` cells (drawn from CSR rows), the KL weight raised
    linearly from 0 over ``kl_warmup_epochs`` epochs (the ``"warmup"``
    phase), then the full ELBO with early stopping on the validation loss
    (``"train"`` phase, ``patience`` epochs, best state restored).

    Sets ``likelihoods_``, ``module_`` (on the CPU), ``history_``,
    ``n_iter_`` and ``best_epoch_``.

    Parameters
    ----------
    estimator : ScMM or ScMMMatcher
        The estimator (its parameters are read).
    X, Y : {ndarray, sparse matrix}
        Validated paired modalities.
    """
    dims = (
        check_widths(estimator.hidden_dims, "hidden_dims"),
        check_widths(estimator.mod2_hidden_dims, "mod2_hidden_dims"),
    )
    likelihoods = (
        resolve_likelihood(estimator.mod1_likelihood, X),
        resolve_likelihood(estimator.mod2_likelihood, Y),
    )
    trainer = Trainer(estimator.device, estimator.verbose)
    device = trainer.device
    seed = check_random_state_int(estimator.random_state)
    data = [_Rows(M, lik in _COUNT_LIKELIHOODS) for M, lik in zip((X, Y), likelihoods)]
    n = X.shape[0]
    train, valid = validation_split(n, estimator.validation_fraction, seed)
    warmup = min(estimator.kl_warmup_epochs, estimator.max_epochs)
    n_samples = estimator.n_latent_samples

    with seeded(seed) as gen:
        module = ScMMModule(
            (X.shape[1], Y.shape[1]),
            dims,
            estimator.latent_dim,
            likelihoods,
            learn_prior=estimator.learn_prior,
        )
        totals = [_row_totals(d.X) for d in data]
        total_x = float(totals[0].sum())
        module.library_ratio = float(totals[1].sum()) / total_x if total_x > 0 else 1.0
        module.mod2_library = float(max(totals[1].mean(), _ETA))
        module = trainer.to(module)
        optimizer = torch.optim.Adam(
            [p for p in module.parameters() if p.requires_grad],
            lr=estimator.learning_rate,
            amsgrad=True,
        )

        def batches(idx):
            pairs = [d.batch(idx, device) for d in data]
            return [p[0] for p in pairs], [p[1] for p in pairs]

        def loss_of(idx, beta):
            xs, libs = batches(idx)
            return -module.objective(xs, libs, beta, n_samples)

        def validate():
            module.eval()
            total = 0.0
            with torch.no_grad():
                for start in range(0, valid.size, CHUNK_ROWS):
                    idx = valid[start : start + CHUNK_ROWS]
                    total += float(loss_of(idx, 1.0)) * idx.size
            return {"valid_loss": total / valid.size}

        def make_epoch(offset):
            def epoch(e):
                beta = min((e + offset) / warmup, 1.0) if warmup else 1.0
                module.train()
                loss = trainer.minibatch_epoch(
                    optimizer,
                    lambda idx: loss_of(idx, beta),
                    train.size,
                    estimator.batch_size,
                    gen,
                    indices=train,
                    min_batch=2,
                )
                return {"train_loss": loss, "kl_weight": beta}

            return epoch

        valid_fn = validate if valid.size else None
        best = None
        if warmup:
            trainer.run("warmup", warmup, make_epoch(0), valid_fn=valid_fn)
        if estimator.max_epochs > warmup:
            best = trainer.run(
                "train",
                estimator.max_epochs - warmup,
                make_epoch(warmup),
                valid_fn=valid_fn,
                patience=estimator.patience,
                module=module,
            )
    module.eval()
    estimator.likelihoods_ = likelihoods
    estimator.module_ = module.cpu()
    estimator.history_ = trainer.history
    estimator.n_iter_ = len(trainer.history)
    estimator.best_epoch_ = None if best is None else warmup + best
