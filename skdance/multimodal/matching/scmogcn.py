"""scMoGNN: modality matching on propagated cell-feature graphs."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from skdance.multimodal._paired import MUDATA_CONSTRAINTS
from skdance.multimodal._scmogcn import (
    FeaturePropagation,
    ScMoGNNMatchingModule,
    bipartite_matching,
    train_scmognn,
)
from skdance.multimodal.matching._base import BaseModalityMatcher
from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    dense_rows,
    training,
    validation_split,
)
from skdance.preprocessing import LSI
from skdance.utils import Widths, check_per_modality, check_random_state_int, fill_doc

__all__ = ["ScMoGNNMatcher"]

# cells embedded at once; cells scored at once for early stopping (DANCE
# validates on at most 4,096 cells)
_CHUNK_ROWS = 4096
_MAX_VALID = 4096


@fill_doc
class ScMoGNNMatcher(BaseModalityMatcher):
    """scMoGNN: match the cells of two modalities through graph-propagated states.

    The modality-matching model of Wen et al. (2022) as in DANCE
    (``match_modality/scmogcn.py`` and its example script; DANCE eq. 45):

    1. Features: each modality is reduced by LSI (tf-idf, log, truncated
       SVD without its first component; DANCE's ``lsiTransformer``) to
       ``n_components`` columns, or used as it is when it has no more
       columns than that (DANCE's GEX -> ADT setting: GEX LSI 256, ADT as
       given).  Inputs with negative values get a plain truncated SVD.
    2. Graph: one graph per modality, cells linked to the reduced features
       with the reduced values as weights (DANCE's
       ``CellFeatureBipartiteGraph``); a parameter-free propagation of
       one-hot feature identities over it (``n_layers`` layers of weighted
       sums, scalar standardisation and half-and-half mixing with the
       previous states; :class:`~skdance.multimodal._scmogcn.
       FeaturePropagation`) gives ``n_layers - 1`` cell-state matrices per
       modality.
    3. Network (:class:`~skdance.multimodal._scmogcn.
       ScMoGNNMatchingModule`): per modality a learnt softmax-weighted sum
       of the propagated layers, an MLP encoder (GELU, dropout) to a
       unit-norm embedding ``H``; ``S = logit_scale * H1 H2^T`` and a
       cross-entropy of ``S`` against the true pairs in both directions,
       over the cells of a mini-batch; plus ``translation_weight`` times
       the MSE of each modality's input decoded from the other's embedding
       and ``reconstruction_weight`` times the MSE of each decoded from its
       own (DANCE's auxiliary losses).  AdamW; early stopping on the
       matching accuracy of held-out training pairs.
    4. ``match``: with ``bipartite_matching=True`` (DANCE's ``enhance``),
       ``softmax_rows(H1 H2^T) + softmax_columns(H1 H2^T)`` is thresholded
       at its ``threshold_quantile`` row and column quantiles and a
       maximum-weight one-to-one assignment is taken
       (``scipy.optimize.linear_sum_assignment``): a sparse 0/1 matrix, one
       partner per cell (the thresholded scores when no full assignment
       exists on them).  Otherwise the row softmax of ``S``.

    Transductive in DANCE (the propagation runs over training and test
    cells together), inductive here: the feature states of every layer and
    the standardisation constants come from the training cells, and the
    cells passed to ``match`` are propagated against them, each on its own.

    Deliberate differences from DANCE: DANCE separates the assignment by
    batch (``batch_separated_bipartite_matching``, which needs the test
    cells' batch labels); here all cells are assigned together (``match``
    takes no side information).  DANCE holds out a validation set as large
    as one batch (``min(4096, n / 2)`` cells); here ``validation_fraction``
    (early stopping scores at most 4,096 of them).  One ``dropout`` for
    every layer (DANCE: 0.25 / 0.2 per network on GEX -> ADT) and one
    decoder width, the last encoder width (DANCE: 512).

    Parameters
    ----------
    n_components : int or tuple of 2 int, default=256
        LSI components of each modality (one value for both, or one per
        modality); a modality with at most this many features (plus one) is
        used as given.  DANCE: 256 for GEX, 512 for ATAC, ADT as given.
    n_layers : int, default=4
        Propagation layers (DANCE's ``layers``); the last ``n_layers - 1``
        cell states feed the network.
    hidden_dims : tuple of int, default=(512, 512)
        Encoder hidden widths (DANCE, GEX -> ADT).
    latent_dim : int, default=64
        Embedding width (DANCE, GEX -> ADT; 256 for GEX -> ATAC).
    dropout : float, default=0.2
        Dropout after every hidden layer.
    logit_scale : float, default=15.49
        Scale of the cosine similarities in ``S`` (DANCE's ``exp(temp)``
        with its GEX -> ADT ``temp = 2.739896``).
    translation_weight : float, default=1.0
        Weight of the translation loss (DANCE: 1 with ``auxiliary_loss``).
    reconstruction_weight : float, default=1.0
        Weight of the reconstruction loss (DANCE: 1).
    bipartite_matching : bool, default=True
        Post-process ``match`` into a one-to-one assignment (see above).
    threshold_quantile : float or None, default=0.95
        Quantile of the post-processing threshold (DANCE: 0.95); None keeps
        every pair.
    max_epochs : int, default=2000
        Training epochs (DANCE).
    learning_rate : float, default=6e-4
        AdamW learning rate (DANCE).
    weight_decay : float, default=0.01
        AdamW weight decay (torch's default, which DANCE uses).
    batch_size : int, default=4096
        Cell pairs per step (DANCE); every step uses full batches only
        (the last, smaller one is dropped), at most all training cells.
    validation_fraction : float, default=0.15
        Fraction of the pairs held out for early stopping; 0 trains on all
        and keeps the last epoch.
    patience : int or None, default=20
        Stop after this many epochs without a better validation accuracy
        (DANCE: 20); None runs ``max_epochs``.
    {device} {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the LSI, the split, the initialisation, dropout and batches.
    {verbose}

    Attributes
    ----------
    reducers_ : list of LSI or None
        Each modality's fitted LSI (None: used as given).
    propagations_ : list of FeaturePropagation
        Each modality's fitted propagation.
    module_ : ScMoGNNMatchingModule
        The trained network (on the CPU, eval mode).
    history_ : list of dict
        One record per epoch: phase ("train"), epoch, train_loss (the total),
        loss_matching, loss_translation, loss_reconstruction,
        train_accuracy, and with held-out pairs valid_loss and
        valid_accuracy, seconds.
    best_epoch_ : int or None
        Epoch whose weights were kept; None without validation.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
        Number of first-modality features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        First-modality feature names, when ``X`` had them.
    n_features_mod2_ : int
        Number of second-modality features.
    feature_names_mod2_ : ndarray of shape (`n_features_mod2_`,)
        Second-modality feature names, when ``Y`` had them.

    See Also
    --------
    skdance.multimodal.prediction.scmogcn.ScMoGNN : scMoGNN for prediction.

    References
    ----------
    Wen, Ding, Jin, Wang, Xie & Tang (2022), "Graph Neural Networks for
    Multimodal Single-Cell Data Integration", KDD 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.matching.scmogcn import ScMoGNNMatcher
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(80, 3))
    >>> X = np.exp(Z @ rng.normal(size=(3, 30)))
    >>> Y = Z @ rng.normal(size=(3, 8))
    >>> model = ScMoGNNMatcher(n_components=8, hidden_dims=(32,), latent_dim=8,
    ...                        max_epochs=30, random_state=0).fit(X[:60], Y[:60])
    >>> S = model.match(X[60:], Y[60:])
    >>> S.shape, bool(np.allclose(S.sum(axis=1), 1.0))
    ((20, 20), True)
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_components": [Interval(Integral, 1, None, closed="left"), tuple],
        "n_layers": [Interval(Integral, 2, None, closed="left")],
        "hidden_dims": [Widths(allow_empty=True)],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "logit_scale": [Interval(Real, 0, None, closed="neither")],
        "translation_weight": [Interval(Real, 0, None, closed="left")],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "bipartite_matching": ["boolean"],
        "threshold_quantile": [Interval(Real, 0, 1, closed="both"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        **VALIDATION_CONSTRAINTS,
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_components=256,
        n_layers=4,
        hidden_dims=(512, 512),
        latent_dim=64,
        dropout=0.2,
        logit_scale=15.49,
        translation_weight=1.0,
        reconstruction_weight=1.0,
        bipartite_matching=True,
        threshold_quantile=0.95,
        max_epochs=2000,
        learning_rate=6e-4,
        weight_decay=0.01,
        batch_size=4096,
        validation_fraction=0.15,
        patience=20,
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.n_layers = n_layers
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.logit_scale = logit_scale
        self.translation_weight = translation_weight
        self.reconstruction_weight = reconstruction_weight
        self.bipartite_matching = bipartite_matching
        self.threshold_quantile = threshold_quantile
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.mudata_mods = mudata_mods
        self.random_state = random_state
        self.verbose = verbose

    # -- features --------------------------------------------------------------
    @staticmethod
    def _reduce_fit(M, n_components, seed):
        if M.shape[1] > n_components + 1:
            reducer = LSI(n_components, random_state=seed)
            return reducer, reducer.fit_transform(M)
        return None, np.asarray(dense_rows(M), dtype=np.float64)

    def _propagated(self, M, modality):
        """Propagated layers of new cells of one modality (list of float32)."""
        reducer = self.reducers_[modality]
        R = (
            np.asarray(dense_rows(M), dtype=np.float64)
            if reducer is None
            else reducer.transform(M)
        )
        return self.propagations_[modality].transform(R)

    # -- fit -----------------------------------------------------------------
    def _fit(self, X, Y):
        comps = check_per_modality(self.n_components, "n_components")
        seed = check_random_state_int(self.random_state)
        with training(self, seed=seed) as run:
            self._train(run, X, Y, comps)

    def _train(self, run, X, Y, comps):
        device = run.device
        self.reducers_, self.propagations_, layers = [], [], []
        for M, n_comp in zip((X, Y), comps):
            reducer, R = self._reduce_fit(M, n_comp, run.seed)
            propagation = FeaturePropagation(self.n_layers)
            stack = np.stack(propagation.fit_transform(R)).astype(np.float32)
            self.reducers_.append(reducer)
            self.propagations_.append(propagation)
            layers.append(torch.from_numpy(stack).to(device))
        n = X.shape[0]
        train, valid = validation_split(n, self.validation_fraction, run.seed)
        batch = min(self.batch_size, train.size)
        weights = {
            "matching": 1.0,
            "translation": float(self.translation_weight),
            "reconstruction": float(self.reconstruction_weight),
        }
        module = run.place(
            ScMoGNNMatchingModule(
                (layers[0].shape[2], layers[1].shape[2]),
                self.n_layers - 1,
                tuple(int(h) for h in self.hidden_dims),
                self.latent_dim,
                self.dropout,
                float(self.logit_scale),
            )
        )
        optimizer = torch.optim.AdamW(
            module.parameters(),
            lr=self.learning_rate,
            weight_decay=self.weight_decay,
        )

        def loss_of(idx):
            idx = idx.to(device)
            return module.losses(layers[0][:, idx], layers[1][:, idx])

        def validate(rows):
            rows = torch.from_numpy(rows[:_MAX_VALID]).to(device)
            parts, accuracy = module.losses(layers[0][:, rows], layers[1][:, rows])
            total = sum(weights[k] * float(v) for k, v in parts.items())
            return {"valid_loss": total, "valid_accuracy": accuracy}

        self.best_epoch_ = train_scmognn(
            run,
            module,
            optimizer,
            loss_of,
            train,
            max_epochs=self.max_epochs,
            batch_size=batch,
            weights=weights,
            valid=valid,
            valid_fn=validate,
            monitor="-valid_accuracy",
            patience=self.patience,
            min_batch=batch,
        )

    # -- match -----------------------------------------------------------------
    def _embed(self, M, modality):
        layers = self._propagated(M, modality)
        parts = []
        with torch.no_grad():
            for start in range(0, M.shape[0], _CHUNK_ROWS):
                rows = [
                    torch.from_numpy(h[start : start + _CHUNK_ROWS].astype(np.float32))
                    for h in layers
                ]
                x = self.module_.combine(rows, modality)
                parts.append(self.module_.encode(x, modality).numpy())
        return np.vstack(parts).astype(np.float64)

    def _match(self, X, Y):
        e1, e2 = self._embed(X, 0), self._embed(Y, 1)
        if self.bipartite_matching:
            return bipartite_matching(e1, e2, self.threshold_quantile)
        logits = self.logit_scale * (e1 @ e2.T)
        S = np.exp(logits - logits.max(axis=1, keepdims=True))
        return S / S.sum(axis=1, keepdims=True)
