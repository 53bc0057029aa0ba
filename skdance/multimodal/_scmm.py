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
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from skdance.nn import (
    CHUNK_ROWS,
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    FCLayers,
    LikelihoodHeads,
    RowSource,
    get_likelihood,
    resolve_likelihood,
    stack_rows,
    training,
    validation_split,
)
from skdance.utils import Widths, check_random_state_int

__all__ = [
    "SCMM_CONSTRAINTS",
    "ScMMModule",
    "fit_scmm",
    "laplace_kl",
]

# The per-modality likelihoods scMM supports (from skdance.nn.LIKELIHOODS);
# "auto" picks one from the values of the data.
_SUPPORTED = ("nb", "zinb", "normal", "bernoulli")

#: Parameters both scMM estimators share.
SCMM_CONSTRAINTS = {
    "hidden_dims": [Widths()],
    "mod2_hidden_dims": [Widths()],
    "latent_dim": [Interval(Integral, 1, None, closed="left")],
    "mod1_likelihood": [StrOptions({"auto", *_SUPPORTED})],
    "mod2_likelihood": [StrOptions({"auto", *_SUPPORTED})],
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


def resolve(likelihood, X, param):
    """Return the name of one modality's likelihood: as given, or chosen by ``"auto"``.

    ``"auto"`` looks at the stored values: only 0 and 1 (binarised ATAC, the
    NeurIPS 2021 units) gives ``"bernoulli"``, non-negative integers (raw
    counts) ``"nb"`` and anything else (log-normalised GEX, CLR ADT, scaled
    values) ``"normal"``.  An explicit name is checked against the data
    (:func:`skdance.nn.resolve_likelihood`): the count likelihoods need
    non-negative integers, ``"bernoulli"`` values in {0, 1}.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal._scmm import resolve
    >>> resolve("auto", np.array([[0.0, 3.0], [1.0, 0.0]]), "mod1_likelihood")
    'nb'
    >>> resolve("auto", np.array([[-0.5, 1.2]]), "mod1_likelihood")
    'normal'
    """
    return resolve_likelihood(likelihood, X, allowed=_SUPPORTED, param=param).name


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
        if likelihood not in _SUPPORTED:
            raise ValueError(f"likelihood must be one of {_SUPPORTED}.")
        self.likelihood = get_likelihood(likelihood)
        width = hidden_dims[-1]
        self.encoder = FCLayers([n_features, *hidden_dims], batch_norm=True)
        self.loc = nn.Linear(width, latent_dim)
        self.raw_scale = nn.Linear(width, latent_dim)
        self.decoder = FCLayers([latent_dim, *hidden_dims], batch_norm=True)
        self.heads = LikelihoodHeads(width, n_features, self.likelihood)

    @property
    def counts(self):
        """Whether the modality is modelled as counts (with a library size)."""
        return self.likelihood.counts

    def encode(self, x, library):
        """Laplace posterior ``(loc, scale)`` of the rows ``x``."""
        if self.counts:
            x = x / library.unsqueeze(-1) * _SCALE_FACTOR
        h = self.encoder(x)
        raw = self.raw_scale(h).clamp(-12.0, 12.0)
        return self.loc(h), _softmax_scale(raw) + _ETA

    def decode(self, z):
        """Raw head outputs (before the library size) of the codes ``z``."""
        return self.heads(self.decoder(z))

    def distribution(self, params, library):
        """Return the likelihood's parameters for rows of ``library`` total.

        ``"nb"``: mean ``theta * exp(logits)`` and total count ``theta =
        exp(.) / 1e4 * library``; ``"zinb"`` adds the gate ``sigmoid(.)``;
        ``"normal"``: the mean and the learned variance; ``"bernoulli"``: the
        logits.
        """
        name = self.likelihood.name
        if name == "normal":
            return [params[0], self.heads.variance()]
        if name == "bernoulli":
            return [params[0]]
        theta = torch.exp(params[0].clamp(-12.0, 12.0))
        theta = theta / _SCALE_FACTOR * library.unsqueeze(-1)
        logits = params[1].clamp(-_LOGIT_BOUND, _LOGIT_BOUND)
        mean = theta * torch.exp(logits)
        if name == "nb":
            return [mean, theta]
        return [mean, theta, torch.sigmoid(params[2])]

    def log_likelihood(self, x, params, library):
        """Return the log-likelihood of the rows ``x``, summed (a scalar)."""
        dist = self.distribution(params, library)
        return -self.likelihood.nll(x, *dist).sum()

    def mean(self, params, library):
        """Mean of the likelihood: the reconstruction in the data's units."""
        return self.likelihood.mean(*self.distribution(params, library))


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
        if first.likelihood.name == "normal":
            lib2 = torch.full_like(library, self.mod2_library)
        else:
            lib2 = library * self.library_ratio
        return second.mean(second.decode(z), lib2)


def _batch(rows, idx, device, with_library):
    """Rows ``idx`` and their library sizes (ones when ``with_library`` is False)."""
    idx = idx.numpy() if isinstance(idx, torch.Tensor) else idx
    x = rows.batch(idx, device)
    if with_library:
        return x, rows.library_of(idx, device)
    return x, torch.ones(len(idx), device=device)


def _apply_rows(fn, X, with_library):
    """``fn(x, library)`` over all rows of ``X`` (CHUNK_ROWS at a time), float64."""
    rows = RowSource(X, empty_library=_ETA)

    def block(start, stop):
        return fn(*_batch(rows, np.arange(start, stop), "cpu", with_library))

    with torch.no_grad():
        return stack_rows(block, X.shape[0])


def encode_rows(module, X, modality, likelihood):
    """Posterior locations of all rows of ``X`` (CHUNK_ROWS at a time), float64."""
    module.eval()
    return _apply_rows(
        lambda x, lib: module.latent(x, lib, modality),
        X,
        get_likelihood(likelihood).counts,
    )


def predict_rows(module, X, likelihood):
    """Cross-modal predictions of all rows of ``X`` (CHUNK_ROWS at a time)."""
    module.eval()
    return _apply_rows(module.predict_mod2, X, likelihood != "normal")


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
    dims = (tuple(estimator.hidden_dims), tuple(estimator.mod2_hidden_dims))
    likelihoods = (
        resolve(estimator.mod1_likelihood, X, "mod1_likelihood"),
        resolve(estimator.mod2_likelihood, Y, "mod2_likelihood"),
    )
    seed = check_random_state_int(estimator.random_state)
    data = [RowSource(M, empty_library=_ETA) for M in (X, Y)]
    counts = [get_likelihood(lik).counts for lik in likelihoods]
    n = X.shape[0]
    train, valid = validation_split(n, estimator.validation_fraction, seed)
    warmup = min(estimator.kl_warmup_epochs, estimator.max_epochs)
    n_samples = estimator.n_latent_samples

    with training(estimator, seed=seed) as run:
        device = run.device
        module = ScMMModule(
            (X.shape[1], Y.shape[1]),
            dims,
            estimator.latent_dim,
            likelihoods,
            learn_prior=estimator.learn_prior,
        )
        totals = [rows.library.astype(np.float64) for rows in data]
        total_x = float(totals[0].sum())
        module.library_ratio = float(totals[1].sum()) / total_x if total_x > 0 else 1.0
        module.mod2_library = float(max(totals[1].mean(), _ETA))
        module = run.place(module)
        optimizer = torch.optim.Adam(
            [p for p in module.parameters() if p.requires_grad],
            lr=estimator.learning_rate,
            amsgrad=True,
        )

        def loss_of(idx, beta):
            pairs = [_batch(d, idx, device, c) for d, c in zip(data, counts)]
            xs, libs = [p[0] for p in pairs], [p[1] for p in pairs]
            return -module.objective(xs, libs, beta, n_samples)

        def validate(rows):
            total = 0.0
            for start in range(0, rows.size, CHUNK_ROWS):
                idx = rows[start : start + CHUNK_ROWS]
                total += float(loss_of(idx, 1.0)) * idx.size
            return {"valid_loss": total / rows.size}

        def warmup_epoch(e):
            beta = e / warmup
            module.train()
            loss = run.trainer.minibatch_epoch(
                optimizer,
                lambda idx: loss_of(idx, beta),
                train.size,
                estimator.batch_size,
                run.generator,
                indices=train,
                min_batch=2,
            )
            return {"train_loss": loss, "kl_weight": beta}

        def validate_warmup():
            module.eval()
            with torch.no_grad():
                return validate(valid)

        best = None
        if warmup:
            run.run(
                "warmup",
                warmup,
                warmup_epoch,
                valid_fn=validate_warmup if valid.size else None,
            )
        if estimator.max_epochs > warmup:
            best = run.fit_minibatches(
                optimizer,
                lambda idx: loss_of(idx, 1.0),
                train,
                batch_size=estimator.batch_size,
                max_epochs=estimator.max_epochs - warmup,
                valid=valid,
                valid_fn=validate,
                patience=estimator.patience,
                min_batch=2,
                record_fn=lambda: {"kl_weight": 1.0},
            )
    estimator.likelihoods_ = likelihoods
    estimator.best_epoch_ = None if best is None else warmup + best
