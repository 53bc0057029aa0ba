"""BABEL: cross-modality translation through a shared latent space."""

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal.prediction._base import BaseModalityPredictor
from skdance.nn import (
    CHUNK_ROWS,
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    DispAct,
    FCLayers,
    LikelihoodHeads,
    MeanAct,
    RowSource,
    clip_gradients_in_step,
    dense_rows,
    get_likelihood,
    training,
    validation_split,
)
from skdance.utils import Widths, check_random_state_int, fill_doc

__all__ = ["BABEL", "BABELDecoder", "BABELModule"]

# The likelihoods BABEL supports (from skdance.nn.LIKELIHOODS).
_SUPPORTED = ("normal", "nb", "bernoulli")
# Entries (rows x features) densified at once by predict: 32 Mi float64 = 256 MiB.
_CHUNK_ENTRIES = 2**25


def _xavier(module):
    """Glorot-uniform weights of every linear layer (BABEL's initialisation)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)


class BABELDecoder(nn.Module):
    """Latent -> one modality: hidden layers and a likelihood head.

    The hidden layers are ``Linear -> BatchNorm1d -> PReLU``; the heads
    (:class:`~skdance.nn.LikelihoodHeads`) give the mean (``"normal"``,
    followed by a ReLU when ``nonnegative``), the negative binomial mean and
    dispersion (``"nb"``: DCA's clipped ``exp`` and softplus activations) or
    the Bernoulli logits (``"bernoulli"``); the negative log-likelihoods and
    means are those of :data:`skdance.nn.LIKELIHOODS`.

    Parameters
    ----------
    latent_dim : int
        Width of the shared latent space.
    hidden_dims : tuple of int
        Widths of the hidden layers, latent side first.
    n_features : int
        Features of the modality.
    likelihood : {"normal", "nb", "bernoulli"}
        Distribution of the modality.
    nonnegative : bool, default=False
        End a ``"normal"`` decoder in a ReLU.
    """

    def __init__(self, latent_dim, hidden_dims, n_features, likelihood, *, nonnegative):
        super().__init__()
        self.likelihood = get_likelihood(likelihood)
        self.body = FCLayers(
            [latent_dim, *hidden_dims], activation=nn.PReLU, batch_norm=True
        )
        width = hidden_dims[-1] if hidden_dims else latent_dim
        # a "normal" decoder is fitted by RMSE: no learned variance
        self.head = LikelihoodHeads(
            width, n_features, self.likelihood, learn_variance=False
        )
        if likelihood == "nb":
            self.activations = nn.ModuleList([MeanAct(), DispAct()])
        elif likelihood == "normal" and nonnegative:
            self.activations = nn.ModuleList([nn.ReLU()])
        else:
            self.activations = nn.ModuleList([nn.Identity()])

    def forward(self, z):
        """Distribution parameters: ``[mean]``, ``[mean, disp]`` or ``[logits]``."""
        raw = self.head(self.body(z))
        return [act(out) for act, out in zip(self.activations, raw)]

    def mean(self, params):
        """Return the expected value of the modality under ``params``."""
        return self.likelihood.mean(*params)

    def loss(self, params, target):
        """Mean loss of ``target`` (a scalar).

        ``"normal"``: the root mean squared error of the batch (DANCE's
        ``RMSELoss``: a normal likelihood of fixed variance, the loss on the
        scale of the values); ``"nb"``: the mean negative binomial negative
        log-likelihood of an entry; ``"bernoulli"``: the mean binary
        cross-entropy.
        """
        if self.likelihood.name == "normal":
            return torch.sqrt(torch.mean((params[0] - target) ** 2))
        return self.likelihood.nll(target, *params).mean()


class BABELModule(nn.Module):
    """Two encoders into one latent space and two decoders (BABEL's network).

    ``encoder1``: ``n_features_mod1 -> hidden_dims -> latent_dim``,
    ``encoder2``: ``n_features_mod2 -> mod2_hidden_dims -> latent_dim``
    (every layer ``Linear -> BatchNorm1d -> PReLU``, the latent layer
    included); the decoders mirror the hidden widths.  Calling the module
    on a pair of batches returns the four paths' losses.

    Parameters
    ----------
    n_features_mod1, n_features_mod2 : int
        Features of the two modalities.
    hidden_dims, mod2_hidden_dims : tuple of int
        Hidden widths of each modality's encoder (input side first).
    latent_dim : int
        Width of the shared latent space.
    likelihoods : tuple of str
        Likelihood of each modality (``"normal"``, ``"nb"``,
        ``"bernoulli"``).
    nonnegative : tuple of bool
        Whether each modality's ``"normal"`` decoder ends in a ReLU.
    """

    def __init__(
        self,
        n_features_mod1,
        n_features_mod2,
        hidden_dims,
        mod2_hidden_dims,
        latent_dim,
        likelihoods,
        nonnegative,
    ):
        super().__init__()
        self.likelihoods = tuple(likelihoods)
        self.encoder1 = FCLayers(
            [n_features_mod1, *hidden_dims, latent_dim],
            activation=nn.PReLU,
            batch_norm=True,
        )
        self.encoder2 = FCLayers(
            [n_features_mod2, *mod2_hidden_dims, latent_dim],
            activation=nn.PReLU,
            batch_norm=True,
        )
        self.decoder1 = BABELDecoder(
            latent_dim,
            tuple(reversed(hidden_dims)),
            n_features_mod1,
            likelihoods[0],
            nonnegative=nonnegative[0],
        )
        self.decoder2 = BABELDecoder(
            latent_dim,
            tuple(reversed(mod2_hidden_dims)),
            n_features_mod2,
            likelihoods[1],
            nonnegative=nonnegative[1],
        )
        _xavier(self)

    def encoder_input(self, x, modality):
        """Return what the encoder of ``modality`` (1 or 2) reads (NB: ``log1p``)."""
        return torch.log1p(x) if self.likelihoods[modality - 1] == "nb" else x

    def forward(self, x1, x2):
        """Losses of the paths 1->1, 1->2, 2->1, 2->2 on paired batches."""
        z1 = self.encoder1(self.encoder_input(x1, 1))
        z2 = self.encoder2(self.encoder_input(x2, 2))
        return {
            "11": self.decoder1.loss(self.decoder1(z1), x1),
            "12": self.decoder2.loss(self.decoder2(z1), x2),
            "21": self.decoder1.loss(self.decoder1(z2), x1),
            "22": self.decoder2.loss(self.decoder2(z2), x2),
        }

    def translate(self, x1):
        """Return the expected second modality of first-modality batch ``x1``."""
        z1 = self.encoder1(self.encoder_input(x1, 1))
        return self.decoder2.mean(self.decoder2(z1))


@fill_doc
class BABEL(BaseModalityPredictor):
    """BABEL: translation between two modalities through a shared latent space.

    The method of Wu et al. (2021), in the form DANCE runs it on the NeurIPS
    2021 competition data (``dance.modules.multi_modality.predict_modality
    .babel.BabelWrapper``, DANCE appendix D.2):

    1. Two encoders, one per modality, map a cell's first modality ``x`` and
       second modality ``y`` into one latent space (``Linear -> BatchNorm1d
       -> PReLU`` layers, the latent layer included; Glorot-uniform
       weights); two decoders map a latent vector back to either modality.
    2. One ``fit(X, Y)`` trains all four paths on paired cells: the
       reconstructions 1->1 and 2->2 and the translations 1->2 and 2->1.
       The loss of a mini-batch is ``L11 + w * L22 + t * (L21 + w * L12)``
       with ``w = mod2_loss_weight`` and ``t = translation_weight``
       (BABEL's ``QuadLoss``), ``Lab`` the loss of modality ``b`` decoded
       from modality ``a``'s latent vector under that modality's
       likelihood.
    3. Adam, mini-batches of ``batch_size`` cells, gradient norm clipped to
       ``max_grad_norm``; after every epoch the 1->2 translation loss of
       ``validation_fraction`` held-out training cells is computed, training
       stops after ``patience`` epochs without improvement, and the weights
       of the best epoch are kept (DANCE's rule).
    4. ``predict(X) = decoder2(encoder1(X))``: the expected second modality.

    Likelihoods (``mod1_likelihood``, ``mod2_likelihood``): the original
    BABEL decodes RNA with a negative binomial (``"nb"``: the encoder reads
    ``log1p`` of the values, the decoder outputs a mean and a dispersion;
    pass size-normalised counts) and ATAC with a Bernoulli (``"bernoulli"``:
    binarised peaks in [0, 1], the prediction is the probability of
    accessibility).  DANCE trains both decoders with the root mean squared
    error on the competition's normalised values (log-normalised GEX, CLR
    ADT, binarised ATAC) and a ReLU output, and reports that version; it is
    the default here (``"normal"``: the decoder predicts the values, its
    loss is the batch's RMSE, a normal likelihood of fixed variance).  A
    ``"normal"`` decoder ends in a ReLU, as DANCE's, when every training value of its
    modality is non-negative (the competition's units all are), and is
    linear otherwise.  Predictions are in the units of ``Y``.

    The defaults are those of DANCE's example script (latent and hidden
    width 64, batch 64, learning rate 0.01, 15% validation cells, patience
    20, loss weight 1); the original's script uses latent width 16, batches
    of 512, patience 25 and ``mod2_loss_weight=1.33``.

    Deliberate differences: the features are not split by chromosome (the
    original's per-chromosome ATAC encoder needs peak coordinates; DANCE
    passes the peaks as one block, which is what ``mod2_hidden_dims=(32,
    16)`` reproduces); no learning-rate schedule (DANCE has none; the
    original divides the rate by 10 after 10 epochs without improvement); the
    original's input clipping of the 0.5% extreme values is not done; the NB
    dispersion is clipped to [1e-4, 1e4] (the original: 1e3); the
    validation loss is the RMSE over all held-out entries (DANCE: the
    square root of the mean of the batches' MSEs), and training may stop
    before epoch 21 (DANCE's rule never does); the "naive" variant (four
    separate encoder-decoder networks) is not provided.

    Memory: sparse ``X`` and ``Y`` stay sparse (CSR); one mini-batch of rows
    is densified at a time, and ``predict`` densifies at most 4,096 rows
    (and at most 2**25 entries) at a time.  ``predict`` runs a float64 copy
    of the trained (float32) network on the CPU, so that a cell's
    prediction does not depend on the other cells passed with it.

    Parameters
    ----------
    hidden_dims : tuple of int, default=(64,)
        Hidden widths of the first modality's encoder (input side first);
        its decoder uses them in reverse.
    mod2_hidden_dims : tuple of int, default=(32, 16)
        Hidden widths of the second modality's encoder and (reversed)
        decoder; DANCE's one-block "chromosome" encoder.
    latent_dim : int, default=64
        Width of the shared latent space.
    mod1_likelihood : {"normal", "nb", "bernoulli"}, default="normal"
        Distribution of the first modality, see above.
    mod2_likelihood : {"normal", "nb", "bernoulli"}, default="normal"
        Distribution of the second modality, see above.
    mod2_loss_weight : float, default=1.0
        Weight of the losses on the second modality (DANCE: 1; the original
        BABEL: 1.33, to balance NB and binary cross-entropy magnitudes).
    translation_weight : float, default=1.0
        Weight of the two translation losses relative to the reconstructions.
    learning_rate : float, default=0.01
        {learning_rate}
    batch_size : int, default=64
        Cells per mini-batch, at least 2 (batch normalisation needs two; a
        last batch of one cell is skipped).
    max_epochs : int, default=500
        Maximum training epochs.
    max_grad_norm : float or None, default=5.0
        Clip the gradient's total norm to this value; None: no clipping.
    validation_fraction : float, default=0.15
        Fraction of the training cells held out for early stopping (none
        when it rounds down to 0 cells: every epoch then runs and the last
        is kept).
    patience : int or None, default=20
        Epochs without improvement of the validation loss before stopping;
        None trains all ``max_epochs`` (the best epoch is kept either way).
    {device} {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the initialisation and the batch order.
    {verbose}

    Attributes
    ----------
    module_ : BABELModule
        The trained encoders and decoders (on CPU, evaluation mode).
    history_ : list of dict
        One record per epoch: phase (``"train"``), epoch, train_loss (the
        weighted total per cell), the four paths' training losses
        (``loss_11``, ``loss_12``, ``loss_21``, ``loss_22``), valid_loss
        (the 1->2 translation loss of the held-out cells) where cells are
        held out, seconds.
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int or None
        Epoch whose weights were kept; None when no cell is held out.
    n_features_in_ : int
        Number of first-modality features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        First-modality feature names seen in ``fit``, when the input had them.
    {n_features_mod2_}
    feature_names_mod2_ : ndarray of shape (`n_features_mod2_`,)
        Second-modality feature names, when ``Y`` had them.

    See Also
    --------
    skdance.multimodal.prediction.BaseModalityPredictor : The task's contract.

    References
    ----------
    Wu, Yost, Chang & Zou (2021), "BABEL enables cross-modality translation
    between multiomic profiles at single-cell resolution", PNAS 118(15),
    e2023070118.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.prediction.babel import BABEL
    >>> rng = np.random.default_rng(0)
    >>> state = rng.normal(size=(200, 3))
    >>> X = np.log1p(np.exp(state @ rng.normal(size=(3, 40))))  # "genes"
    >>> Y = np.log1p(np.exp(state @ rng.normal(size=(3, 10))))  # "proteins"
    >>> model = BABEL(max_epochs=30, random_state=0).fit(X[:150], Y[:150])
    >>> model.predict(X[150:]).shape
    (50, 10)
    >>> baseline = np.sqrt(np.mean((Y[150:] - Y[:150].mean(axis=0)) ** 2))
    >>> bool(-model.score(X[150:], Y[150:]) < baseline)
    True
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "hidden_dims": [Widths(allow_empty=True)],
        "mod2_hidden_dims": [Widths(allow_empty=True)],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "mod1_likelihood": [StrOptions(set(_SUPPORTED))],
        "mod2_likelihood": [StrOptions(set(_SUPPORTED))],
        "mod2_loss_weight": [Interval(Real, 0, None, closed="left")],
        "translation_weight": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        **VALIDATION_CONSTRAINTS,
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        hidden_dims=(64,),
        mod2_hidden_dims=(32, 16),
        latent_dim=64,
        mod1_likelihood="normal",
        mod2_likelihood="normal",
        mod2_loss_weight=1.0,
        translation_weight=1.0,
        learning_rate=0.01,
        batch_size=64,
        max_epochs=500,
        max_grad_norm=5.0,
        validation_fraction=0.15,
        patience=20,
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.hidden_dims = hidden_dims
        self.mod2_hidden_dims = mod2_hidden_dims
        self.latent_dim = latent_dim
        self.mod1_likelihood = mod1_likelihood
        self.mod2_likelihood = mod2_likelihood
        self.mod2_loss_weight = mod2_loss_weight
        self.translation_weight = translation_weight
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.max_grad_norm = max_grad_norm
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.mudata_mods = mudata_mods
        self.random_state = random_state
        self.verbose = verbose

    # -- checks --------------------------------------------------------------
    @staticmethod
    def _check_values(M, likelihood, name):
        """Check that ``M`` suits ``likelihood``; return its minimum."""
        low, high = float(M.min()), float(M.max())  # sparse: zeros included
        if likelihood == "nb" and low < 0:
            raise ValueError(
                f"BABEL: {name} has negative values ({low:.4g}), but a negative "
                "binomial likelihood needs non-negative (size-normalised) counts."
            )
        if likelihood == "bernoulli" and (low < 0 or high > 1):
            raise ValueError(
                f"BABEL: a Bernoulli likelihood needs {name} in [0, 1] (binarised "
                f"peaks); got values in [{low:.4g}, {high:.4g}]."
            )
        return low

    # -- fit -------------------------------------------------------------------
    def _fit(self, X, Y):
        likelihoods = (self.mod1_likelihood, self.mod2_likelihood)
        low1 = self._check_values(X, likelihoods[0], "X")
        low2 = self._check_values(Y, likelihoods[1], "Y")
        X, Y = RowSource(X), RowSource(Y)
        seed = check_random_state_int(self.random_state)
        n = X.shape[0]
        train, valid = validation_split(n, self.validation_fraction, seed)
        if train.size < 2:  # batch normalisation needs two training cells
            train, valid = np.arange(n), np.array([], dtype=np.int64)
        weight, cross = float(self.mod2_loss_weight), float(self.translation_weight)

        with training(self, seed=seed) as run:
            module = BABELModule(
                X.shape[1],
                Y.shape[1],
                tuple(self.hidden_dims),
                tuple(self.mod2_hidden_dims),
                self.latent_dim,
                likelihoods,
                (low1 >= 0, low2 >= 0),
            )
            module = run.place(module)
            optimizer = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
            if self.max_grad_norm is not None:
                clip_gradients_in_step(optimizer, module, self.max_grad_norm)
            parts = {}

            def loss_of(idx):
                losses = module(X.batch(idx, run.device), Y.batch(idx, run.device))
                for key, value in losses.items():
                    parts[key] = parts.get(key, 0.0) + float(value.detach()) * len(idx)
                return (
                    losses["11"]
                    + weight * losses["22"]
                    + cross * (losses["21"] + weight * losses["12"])
                )

            def path_losses():
                record = {f"loss_{k}": v / train.size for k, v in parts.items()}
                parts.clear()
                return record

            self.best_epoch_ = run.fit_minibatches(
                optimizer,
                loss_of,
                train,
                batch_size=self.batch_size,
                max_epochs=self.max_epochs,
                valid=valid,
                valid_fn=lambda rows: self._translation_loss(module, X, Y, rows),
                patience=self.patience,
                min_batch=2,
                record_fn=path_losses,
            )
        return self

    def _translation_loss(self, module, X, Y, rows):
        """1->2 loss of ``rows`` (whole set; RMSE over all its entries)."""
        device = next(module.parameters()).device
        rmse = module.decoder2.likelihood.name == "normal"
        total, count = 0.0, 0
        for start in range(0, rows.size, CHUNK_ROWS):
            idx = rows[start : start + CHUNK_ROWS]
            x, y = X.batch(idx, device), Y.batch(idx, device)
            z = module.encoder1(module.encoder_input(x, 1))
            params = module.decoder2(z)
            if rmse:
                total += float(torch.sum((params[0] - y) ** 2))
            else:
                total += float(module.decoder2.likelihood.nll(y, *params).sum())
            count += y.numel()
        mean = total / count
        return float(np.sqrt(mean)) if rmse else mean

    # -- predict ---------------------------------------------------------------
    def _predict(self, X):
        # a float64 copy of the trained float32 network: a cell's prediction
        # does not depend on the other rows of its chunk (float32 matmul
        # rounding varies with the number of rows)
        module = copy.deepcopy(self.module_).double().eval()
        step = max(1, min(CHUNK_ROWS, _CHUNK_ENTRIES // max(X.shape[1], 1)))
        parts = []
        with torch.no_grad():
            for start in range(0, X.shape[0], step):
                rows = dense_rows(X, slice(start, start + step))
                x = rows.astype(np.float32).astype(np.float64)  # the fit's values
                parts.append(module.translate(torch.from_numpy(x)).numpy())
        return np.concatenate(parts)
