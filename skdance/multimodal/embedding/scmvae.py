"""scMVAE: joint embedding by a multimodal VAE with a Gaussian-mixture prior."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.mixture import GaussianMixture
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal._scmvae import (
    COMBINATIONS,
    COUNT_LIKELIHOODS,
    LIKELIHOODS,
    ScMVAEModule,
)
from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    Trainer,
    dense_rows,
    seeded,
    validation_split,
)
from skdance.nn._counts import CHUNK_ROWS
from skdance.utils._validation import check_random_state_int, check_widths

__all__ = ["ScMVAE"]

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
    """Return the likelihood of a modality (``"auto"`` decides from the values)."""
    values = _values(X)
    lowest = float(values.min()) if values.size else 0.0
    integer = bool(np.all(values == np.round(values)))
    if likelihood == "auto":
        if lowest >= 0 and np.all((values == 0) | (values == 1)):
            return "bernoulli"
        if lowest >= 0 and integer:
            return "zinb"
        return "normal"
    if likelihood in COUNT_LIKELIHOODS and (lowest < 0 or not integer):
        raise ValueError(
            f"{name}_likelihood={likelihood!r} models raw counts, but the "
            f"{name} values are not non-negative integers (min {lowest:.4g}); "
            f"pass raw counts, or {name}_likelihood='normal' (a Gaussian on "
            "the values as given) for normalised data such as log-normalised "
            "expression or CLR proteins."
        )
    if likelihood == "bernoulli" and lowest < 0:
        raise ValueError(
            f"{name}_likelihood='bernoulli' models binarised (x > 0) data, but "
            f"the {name} values are negative (min {lowest:.4g})."
        )
    return likelihood


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


class _Modality:
    """One modality's kept columns as CSR / dense float32, dense rows on demand.

    ``batch`` returns ``(input, target)``: ``log1p`` counts and counts for
    the count likelihoods, the 0/1 values twice for Bernoulli, the values
    twice for the Gaussian.
    """

    def __init__(self, X, likelihood, columns):
        self.likelihood = likelihood
        X = X[:, columns]
        if likelihood == "bernoulli":
            X = _binarize(X)
        if sp.issparse(X):
            X = sp.csr_matrix(X, dtype=np.float32)
        else:
            X = np.ascontiguousarray(X, dtype=np.float32)
        self.X = X

    def log_library(self):
        totals = np.asarray(self.X.sum(axis=1), dtype=np.float64).ravel()
        return np.log(np.maximum(totals, 1.0))

    def batch(self, idx, device):
        idx = idx.numpy() if isinstance(idx, torch.Tensor) else idx
        target = torch.from_numpy(np.asarray(dense_rows(self.X, idx), np.float32))
        target = target.to(device)
        if self.likelihood in COUNT_LIKELIHOODS:
            return torch.log1p(target), target
        return target, target


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


def _batches(modalities, idx, device):
    pairs = [m.batch(idx, device) for m in modalities]
    return [p[0] for p in pairs], [p[1] for p in pairs]


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
        Cells per mini-batch.
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
    device : str or torch.device, default="cpu"
        Where to train: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``;
        the fitted module is kept on the CPU.
    mudata_mods : pair of str or None, default=None
        The two modalities to read when the data come as a
        :class:`mudata.MuData`: ``(mod1, mod2)``, e.g. ``("rna", "prot")``;
        None takes its first two.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initialisation, the mixture
        initialisation, the batches and the latent draws.
    verbose : int, default=0
        Show a tqdm progress bar with the losses.

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
        "hidden_dims": [tuple, list],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "mod1_likelihood": [StrOptions({"auto", *LIKELIHOODS})],
        "mod2_likelihood": [StrOptions({"auto", *LIKELIHOODS})],
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
            _Modality(X, lik, cols)
            for X, lik, cols in zip(
                (X1, X2), self.likelihoods_, (self.features_mod1_, self.features_mod2_)
            )
        ]

    def _fit(self, X1, X2, y):
        dims = check_widths(self.hidden_dims, "hidden_dims", what="encoder widths")
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
        for mod, lik in zip(data, self.likelihoods_):
            if lik in COUNT_LIKELIHOODS:
                log_lib = mod.log_library()
                priors.append(
                    (float(log_lib.mean()), float(max(log_lib.var(), _MIN_LIBRARY_VAR)))
                )
            else:
                priors.append(None)
        self.library_priors_ = tuple(priors)

        trainer = Trainer(self.device, self.verbose)
        device = trainer.device
        train, valid = validation_split(n, self.validation_fraction, seed)
        n_clusters = min(self.n_clusters, train.size)
        with seeded(seed) as gen:
            module = ScMVAEModule(
                tuple(m.X.shape[1] for m in data),
                self.likelihoods_,
                dims,
                self.latent_dim,
                n_clusters,
                self.combination,
                self.dropout,
                self.library_priors_,
            )
            module = trainer.to(module)
            self._init_mixture(module, data, train, n_clusters, seed, device)
            optimizer = _adam(
                module.parameters(), self.learning_rate, self.weight_decay
            )
            state = {"kl_weight": 1.0}
            sums = {}

            def loss_of(idx):
                inputs, targets = _batches(data, idx, device)
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
                loss = trainer.minibatch_epoch(
                    optimizer,
                    loss_of,
                    train.size,
                    self.batch_size,
                    gen,
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
                        inputs, targets = _batches(data, idx, device)
                        out = module.loss(
                            inputs, targets, state["kl_weight"], self.mod1_weight
                        )
                        total += float(out["total"]) * idx.size
                return {"valid_loss": total / valid.size}

            best = trainer.run(
                "train",
                self._n_epochs(train.size),
                epoch_fn,
                valid_fn=valid_fn if valid.size else None,
                patience=self.patience,
                module=module,
            )
        module.eval()
        self.module_ = module.cpu()
        self.history_ = trainer.history
        self.n_iter_ = len(trainer.history)
        self.best_epoch_ = best
        return self

    def _n_epochs(self, n_train):
        """``max_epochs``, or the step-budget default (see the docstring)."""
        if self.max_epochs is not None:
            return self.max_epochs
        steps = -(-n_train // self.batch_size)
        return int(min(max(round(_STEP_BUDGET / steps), 1), 500))

    @staticmethod
    def _init_mixture(module, data, train, n_clusters, seed, device):
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
                inputs, _ = _batches(data, idx, device)
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
                inputs, _ = _batches(data, idx, "cpu")
                out.append(module.latent(inputs).numpy())
        return np.concatenate(out).astype(np.float64)
