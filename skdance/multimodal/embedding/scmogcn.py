"""scMoGNN: joint embedding on cell-feature graphs (DANCE's v1 and v2)."""

import copy
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.graph import cell_feature_weights
from skdance.multimodal._paired import MUDATA_CONSTRAINTS, as_pair
from skdance.multimodal._scmogcn import (
    EmbeddingLayout,
    FeaturePropagation,
    ScMoGNNEmbeddingModule,
    ScMoGNNGraphEmbeddingModule,
    train_scmognn,
)
from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    MeanAggregation,
    cell_feature_graph,
    dense_rows,
    training,
    validation_split,
)
from skdance.preprocessing import LSI
from skdance.utils import (
    Widths,
    check_per_modality,
    check_random_state_int,
    fill_doc,
    resolve_side_info,
)

__all__ = ["ScMoGNNEmbedding"]

# cells embedded at once
_CHUNK_ROWS = 4096

# DANCE's settings of each variant (joint_embedding/scmogcn.py and the
# scmogcnv2.py example script), used where a parameter is "auto"
_DEFAULTS = {
    "v1": {
        "dropout": 0.3,
        "max_epochs": None,  # see _V1_STEPS
        "learning_rate": 1e-4,
        "weight_decay": 0.01,
        "batch_size": 512,
        "patience": 10,
    },
    "v2": {
        "dropout": 0.4,
        "max_epochs": 1000,
        "learning_rate": 1e-2,
        "weight_decay": 1e-3,
        "batch_size": 5000,
        "patience": 20,
    },
}
# v1 loss weights (DANCE: 0.7, 0.2, 0.05, 0.05)
_V1_WEIGHTS = {
    "reconstruction": 0.7,
    "cell_type": 0.2,
    "regularization": 0.05,
    "cell_cycle": 0.05,
}
# v1 "auto" epochs: enough for this many optimiser steps, at least DANCE's 60
_V1_STEPS, _V1_MIN_EPOCHS = 5000, 60
# v2: the learning rate is multiplied by 0.99 after every epoch past the 150th
_V2_DECAY_START, _V2_DECAY = 150, 0.99


def _sparse_rows(W, rows, device):
    """Rows of a CSR matrix as a coalesced torch sparse COO tensor (float32)."""
    block = W[rows].tocoo()
    indices = np.vstack([block.row, block.col]).astype(np.int64)
    return (
        torch.sparse_coo_tensor(
            torch.from_numpy(indices),
            torch.from_numpy(block.data.astype(np.float32)),
            block.shape,
            check_invariants=False,
        )
        .coalesce()
        .to(device)
    )


@fill_doc
class ScMoGNNEmbedding(BaseJointEmbedding):
    """scMoGNN: joint embedding of two modalities through cell-feature graphs.

    The joint-embedding models of Wen et al. (2022) as DANCE ships them,
    one per ``variant``; both learn without labels, and take cell types
    (``y``), batches and cell-cycle scores only for their auxiliary losses.

    ``variant="v1"`` (DANCE's ``joint_embedding/scmogcn.py`` and example
    script; DANCE appendix eqs. 48-49):

    1. Features ("Seurat-style"): each modality is reduced by LSI
       (tf-idf, log, truncated SVD without its first component; DANCE's
       ``lsiTransformer``) to ``n_lsi_components`` columns, or used as given
       when it has no more columns than that (ADT in DANCE; inputs with
       negative values get a plain truncated SVD).  DANCE's LSI reads
       counts; the competition's log values are turned back into
       depth-normalised counts first (``log_input``).
    2. Graph: per modality, cells linked to the reduced features weighted
       by the values; a parameter-free propagation of one-hot feature
       identities over it (``n_layers`` layers; the cell states of layers
       2..``n_layers`` are kept; DANCE's ``cell_feature_propagation``).
       Both modalities' states are put side by side per layer.
    3. Network (:class:`~skdance.multimodal._scmogcn.ScMoGNNEmbeddingModule`):
       a learnt softmax-weighted sum of the layers, an MLP encoder
       (``hidden_dims``; GELU, batch norm, dropout) to the
       ``latent_dim``-dimensional embedding ``Z``, an MLP decoder back to
       the input.  Loss ``0.7 MSE(reconstruction) + 0.2 cross-entropy +
       0.05 regularisation + 0.05 MSE(cell cycle)``: the first dimensions
       of ``Z`` are the cell-type logits (with ``y``), then one dimension
       per batch whose L2 norm is penalised (with ``batch``), then two
       dimensions regressed on the S and G2/M scores (with
       ``cell_cycle``); the rest is free.  Without side information: the
       reconstruction alone.  AdamW (no weight decay on the layer
       weights); mini-batches of at most ``batch_size`` cells and, as in
       DANCE, no more than the number of held-out cells; early stopping
       on the held-out cells' total loss.

    ``variant="v2"`` (DANCE's ``scmogcnv2.py`` and its example script):

    1. Graph: one cell-feature graph over the input features of both
       modalities as given (no LSI; DANCE's ``construct_basic_feature_graph``
       on ``[mod1 | mod2]``), edges weighted by the values.
    2. Network (:class:`~skdance.multimodal._scmogcn.
       ScMoGNNGraphEmbeddingModule`): the trainable heterogeneous graph
       network of scMoGNN's prediction model (learnt feature embeddings,
       GraphSAGE mean aggregation feature -> cell and cell -> feature,
       group norm, GELU, dropout, residual concatenation with the previous
       states), ``n_layers`` layers of width ``latent_dim`` whose cell
       states are summed with learnt softmax weights: the embedding
       ``H``.
    3. Loss: ``0.5 MSE(mod1) + 0.5 MSE(mod2)`` of every input feature
       decoded from ``H`` and the cell's one-hot batch (with ``batch``;
       DANCE's batch-aware decoder), plus, with ``y`` / ``cell_cycle``,
       the cross-entropy / MSE of linear heads on the first ``head_dims``
       dimensions of ``H``.  Each step trains on a sub-graph of
       ``batch_size`` training cells and a ``feature_fraction`` of the
       features drawn in proportion to their number of cells (DANCE's
       ``node_subgraph``); AdamW; the learning rate decays by 0.99 per
       epoch after epoch 150; early stopping on the held-out cells'
       reconstruction RMSE, computed on the whole graph.

    Inductive here (DANCE embeds its fixed set of cells): ``transform``
    reduces and propagates new cells against the fitted feature states, so
    a cell's embedding depends only on its own values and the training
    cells, and the training cells get their training embedding back.

    Cell types: DANCE trains both variants with the true cell types of
    every cell it embeds (a leak when the embedding is then scored
    against them).  Here they enter only as ``y`` (optional); without
    ``y`` the cell-type loss is off.  No epoch is chosen by a clustering
    score.

    Deliberate differences from DANCE: embedding width ``latent_dim``
    (100, the competition's; DANCE v1 61; DANCE v2 returns a 29-dimension
    slice of its 56-dimension states, the slice its decoder reads, the
    other 27 dimensions reaching the losses only through later graph
    layers: here the states are ``latent_dim`` wide and all of ``H`` is
    embedding and decoder input); v1's L2 block is present only with
    ``batch`` (DANCE always has the competition's batches); DANCE's v2
    learns no embedding without cell types (its decoder input is built
    only in the labelled branch): here it reconstructs from ``H`` alone;
    v1's epoch cap (``max_epochs``) and the ``expm1`` before LSI
    (``log_input``), see the parameters.  v2's reconstruction error is
    computed without forming the cells x features reconstruction (an exact
    expansion of the squared error, so that 25,000 ATAC peaks cost little).

    Parameters
    ----------
    n_features_mod1 : int, default=None
        Number of mod1 (first block) columns when ``X`` is ``[mod1 | mod2]``.
    variant : {"v1", "v2"}, default="v1"
        DANCE's scMoGNN (v1) or scMoGNNv2 (v2), see above.
    latent_dim : int, default=100
        Width of the embedding.
    n_layers : int, default=3
        v1: propagation layers (the last ``n_layers - 1`` are used; DANCE:
        3); v2: graph layers (DANCE: 3).
    n_lsi_components : int or tuple of 2 int, default=(256, 512)
        v1: LSI components of mod1 and mod2 (the paper: 256 for GEX, 512
        for ATAC, ADT as given).  A modality with at most this many
        features plus one is used as given.
    log_input : bool, default=True
        v1: the modalities are log values (the competition's ``log1p`` GEX;
        binary ATAC is unaffected): LSI runs on their ``expm1``, i.e. on
        depth-normalised counts, whose term frequencies equal those of the
        counts DANCE's LSI reads.  A modality with negative values is
        reduced as given.
    hidden_dims : tuple of int, default=(150, 120, 100)
        v1: encoder hidden widths (DANCE).
    output_relu : bool, default=True
        v1: end the decoder with a ReLU (DANCE), although the propagated
        states it reconstructs are standardised (half of them negative);
        False lets the decoder reach them.
    dropout : float or "auto", default="auto"
        Dropout; "auto": 0.3 (v1), 0.4 (v2).
    feature_fraction : float, default=0.6
        v2: fraction of the features in each training sub-graph (DANCE).
    head_dims : int, default=20
        v2: leading embedding dimensions the cell-type and cell-cycle heads
        read (DANCE).
    max_epochs : int or "auto", default="auto"
        Largest number of epochs (early stopping may end training first).
        "auto": v2 1000 (DANCE); v1 as many epochs as make 5,000 optimiser
        steps, at least 60.  DANCE's v1 runs at most 60 epochs of its tens
        of thousands of cells in batches of 512, some thousands of steps;
        60 epochs of a set of a few thousand cells are a few hundred steps,
        after which the held-out loss still falls.
    learning_rate : float or "auto", default="auto"
        AdamW learning rate; "auto": 1e-4 (v1), 1e-2 (v2).
    weight_decay : float or "auto", default="auto"
        AdamW weight decay; "auto": 0.01 (v1, torch's default, which DANCE
        uses), 1e-3 (v2).
    batch_size : int or "auto", default="auto"
        Cells per step; "auto": 512 (v1), 5000 (v2).
    validation_fraction : float, default=0.1
        Fraction of the cells held out for early stopping (DANCE: 0.1); 0
        trains on all and keeps the last epoch.
    patience : int, None or "auto", default="auto"
        Stop after this many epochs without a lower validation loss; None
        runs ``max_epochs``; "auto": 10 (v1), 20 (v2).
    {device} {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the LSI, the split, the initialisation, dropout and batches.
    {verbose}

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (on the CPU, eval mode).
    reducers_ : list of LSI or None
        v1: each modality's fitted LSI (None: used as given).
    propagations_ : list of FeaturePropagation
        v1: each modality's fitted propagation.
    feature_states_ : list of ndarray
        v2: the feature inputs of every graph layer on the training graph.
    layout_ : EmbeddingLayout
        Embedding dimensions read by the auxiliary losses (v1: the
        cell-type, regularised and cell-cycle blocks; v2: the heads'
        classes and outputs, with ``n_regularized`` 0).
    classes_ : ndarray or None
        Cell types of ``y`` (None without ``y``).
    batches_ : ndarray or None
        Batches of ``batch`` (None without ``batch``).
    history_ : list of dict
        One record per epoch: phase ("train"), epoch, train_loss (the
        weighted total), loss_<name> per loss, valid_loss when cells are
        held out (v1: the weighted total; v2: the reconstruction RMSE),
        seconds.
    best_epoch_ : int or None
        Epoch whose weights were kept; None without validation.
    n_iter_ : int
        Epochs run.
    n_features_in_ : int
        Number of columns of ``X`` (of mod1 when ``X`` is a pair).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of those columns, when ``X`` had them.
    n_features_mod2_ : int
        Number of mod2 features.

    See Also
    --------
    skdance.multimodal.prediction.scmogcn.ScMoGNN : scMoGNN for prediction.
    skdance.multimodal.matching.scmogcn.ScMoGNNMatcher : scMoGNN for matching.
    skdance.multimodal.embedding.cell_cycle_scores : The ``cell_cycle`` side
        information.

    References
    ----------
    Wen, Ding, Jin, Wang, Xie & Tang (2022), "Graph Neural Networks for
    Multimodal Single-Cell Data Integration", KDD 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.embedding.scmogcn import ScMoGNNEmbedding
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.normal(size=(80, 3))
    >>> gex = np.log1p(np.exp(Z @ rng.normal(size=(3, 40))))
    >>> adt = Z @ rng.normal(size=(3, 8))
    >>> model = ScMoGNNEmbedding(latent_dim=6, n_lsi_components=10,
    ...                          hidden_dims=(16,), max_epochs=5, random_state=0)
    >>> model.fit_transform((gex, adt)).shape
    (80, 6)
    >>> v2 = ScMoGNNEmbedding(variant="v2", latent_dim=8, max_epochs=5,
    ...                       random_state=0).fit((gex, adt))
    >>> v2.transform((gex[:5], adt[:5])).shape
    (5, 8)
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_features_mod1": [Interval(Integral, 1, None, closed="left"), None],
        "variant": [StrOptions({"v1", "v2"})],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "n_layers": [Interval(Integral, 2, None, closed="left")],
        "n_lsi_components": [Interval(Integral, 1, None, closed="left"), tuple],
        "log_input": ["boolean"],
        "hidden_dims": [Widths(allow_empty=True)],
        "output_relu": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left"), StrOptions({"auto"})],
        "feature_fraction": [Interval(Real, 0, 1, closed="right")],
        "head_dims": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "learning_rate": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "weight_decay": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        **VALIDATION_CONSTRAINTS,
        "patience": [
            Interval(Integral, 1, None, closed="left"),
            None,
            StrOptions({"auto"}),
        ],
        **TORCH_CONSTRAINTS,
    }

    # side information is used when given (one default for the joint embeddings)
    __metadata_request__fit = {"batch": True, "cell_cycle": True}

    def __init__(
        self,
        *,
        n_features_mod1=None,
        variant="v1",
        latent_dim=100,
        n_layers=3,
        n_lsi_components=(256, 512),
        log_input=True,
        hidden_dims=(150, 120, 100),
        output_relu=True,
        dropout="auto",
        feature_fraction=0.6,
        head_dims=20,
        max_epochs="auto",
        learning_rate="auto",
        weight_decay="auto",
        batch_size="auto",
        validation_fraction=0.1,
        patience="auto",
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.n_features_mod1 = n_features_mod1
        self.variant = variant
        self.latent_dim = latent_dim
        self.n_layers = n_layers
        self.n_lsi_components = n_lsi_components
        self.log_input = log_input
        self.hidden_dims = hidden_dims
        self.output_relu = output_relu
        self.dropout = dropout
        self.feature_fraction = feature_fraction
        self.head_dims = head_dims
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

    # -- parameters ----------------------------------------------------------
    def _setting(self, name):
        value = getattr(self, name)
        return _DEFAULTS[self.variant][name] if isinstance(value, str) else value

    # -- fit -----------------------------------------------------------------
    def fit(self, X, y=None, *, batch=None, cell_cycle=None):
        """Learn the joint embedding of paired cells.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_cells, n_features) or pair
            ``[mod1 | mod2]`` column blocks (the first ``n_features_mod1``
            columns are mod1), or a pair ``(mod1, mod2)`` with the same
            cells, in the competition's units (log-normalised GEX, CLR ADT,
            binary ATAC).
        y : array-like of shape (n_cells,), default=None
            Cell types, for the cell-type loss (off when None).
        batch : array-like of shape (n_cells,), default=None
            Batch of each cell: v1 penalises one embedding dimension per
            batch, v2 feeds the one-hot batch to the decoder.
        cell_cycle : array-like of shape (n_cells, 2), default=None
            S and G2/M scores (:func:`cell_cycle_scores`), for the
            cell-cycle loss (off when None).

        Returns
        -------
        self : ScMoGNNEmbedding
            Fitted estimator.
        """
        self._validate_params()
        X = as_pair(self, X)  # a MuData's two modalities, as AnnData
        X1, X2 = self._split(X, reset=True)
        n = X1.shape[0]
        whom = type(self).__name__
        if n < 2:
            raise ValueError(
                f"{whom} needs at least 2 cells to learn an embedding; got "
                f"n_samples = {n}."
            )
        if y is not None:
            y = np.asarray(y)
            if y.ndim != 1 or y.shape[0] != n:
                raise ValueError(
                    f"y must hold one cell type per cell: shape ({n},), got {y.shape}."
                )
        batch = resolve_side_info(
            X,
            batch,
            name="batch",
            n_samples=n,
            required=False,
            whom=whom,
            kind="vector",
        )
        cell_cycle = resolve_side_info(
            X, cell_cycle, name="cell_cycle", n_samples=n, required=False, whom=whom
        )
        self._fit(X1, X2, y, batch, cell_cycle)
        self._set_n_features_out(X1, X2)
        return self

    def _fit(self, X1, X2, y, batch=None, cell_cycle=None):
        codes = batch_codes = self.classes_ = self.batches_ = None
        if y is not None:
            self.classes_, codes = np.unique(y, return_inverse=True)
        if batch is not None:
            self.batches_, batch_codes = np.unique(
                np.asarray(batch).astype(str), return_inverse=True
            )
        if cell_cycle is not None:
            cell_cycle = np.asarray(cell_cycle, dtype=np.float64)
            if cell_cycle.ndim == 1:
                cell_cycle = cell_cycle.reshape(-1, 1)
        fit = self._fit_v1 if self.variant == "v1" else self._fit_v2
        fit(X1, X2, codes, batch_codes, cell_cycle)

    def _layout(self, codes, batch_codes, cell_cycle, *, regularized):
        layout = EmbeddingLayout(
            0 if codes is None else int(codes.max()) + 1,
            0 if batch_codes is None or not regularized else int(batch_codes.max()) + 1,
            0 if cell_cycle is None else cell_cycle.shape[1],
        )
        if regularized and sum(layout) > self.latent_dim:
            raise ValueError(
                f"{type(self).__name__}: the auxiliary blocks need {sum(layout)} "
                f"embedding dimensions ({layout.n_cell_types} cell types, "
                f"{layout.n_regularized} batches, {layout.n_cell_cycle} cell-cycle "
                f"scores), more than latent_dim={self.latent_dim}."
            )
        return layout

    @staticmethod
    def _tensor(values, dtype, device):
        if values is None:
            return None
        return torch.as_tensor(np.ascontiguousarray(values), dtype=dtype).to(device)

    def _max_epochs(self, steps):
        """Epochs to run: ``max_epochs``, or v1's "auto" from the steps per epoch."""
        max_epochs = self._setting("max_epochs")
        if max_epochs is None:  # v1 "auto"
            max_epochs = max(_V1_MIN_EPOCHS, -(-_V1_STEPS // max(steps, 1)))
        return max_epochs

    # -- v1 --------------------------------------------------------------------
    def _reduce_fit(self, M, n_components, seed):
        n, p = M.shape
        if p > n_components + 1 and n > 3:
            reducer = LSI(min(n_components, n - 3, p - 2), random_state=seed)
            return reducer, reducer.fit_transform(self._lsi_input(M))
        return None, np.asarray(dense_rows(M), dtype=np.float64)

    def _lsi_input(self, M, reducer=None):
        """``expm1`` of non-negative log values (``log_input``), else ``M``.

        With a fitted ``reducer``, as decided in ``fit`` (its tf-idf is on
        exactly when the training values were non-negative).
        """
        if not self.log_input:
            return M
        if reducer is not None:
            if not reducer.tfidf_:
                return M
        else:
            values = M.data if sp.issparse(M) else M
            if values.size and values.min() < 0:
                return M
        with np.errstate(over="ignore"):
            if sp.issparse(M):
                out = M.copy()
                out.data = np.expm1(out.data)
            else:
                out = np.expm1(M)
        values = out.data if sp.issparse(out) else out
        if np.isinf(values).any():
            raise ValueError(
                f"{type(self).__name__}: log_input=True reads the modalities as "
                "log values, but expm1 of some value overflows (values above "
                "709); pass log_input=False for values that are not log1p of "
                "normalised counts."
            )
        return out

    def _propagated(self, X1, X2):
        """Propagated layers (n_layers - 1, n_cells, p1 + p2) of new cells."""
        layers = []
        for M, reducer, propagation in zip(
            (X1, X2), self.reducers_, self.propagations_
        ):
            R = (
                np.asarray(dense_rows(M), dtype=np.float64)
                if reducer is None
                else reducer.transform(self._lsi_input(M, reducer))
            )
            layers.append(propagation.transform(R))
        return np.stack([np.hstack(pair) for pair in zip(*layers)])

    def _fit_v1(self, X1, X2, codes, batch_codes, cell_cycle):
        comps = check_per_modality(self.n_lsi_components, "n_lsi_components")
        layout = self._layout(codes, batch_codes, cell_cycle, regularized=True)
        seed = check_random_state_int(self.random_state)
        with training(self, seed=seed) as run:
            self._train_v1(run, X1, X2, comps, layout, codes, cell_cycle)

    def _train_v1(self, run, X1, X2, comps, layout, codes, cell_cycle):
        device = run.device
        self.reducers_, self.propagations_, layers = [], [], []
        for M, k in zip((X1, X2), comps):
            reducer, R = self._reduce_fit(M, k, run.seed)
            propagation = FeaturePropagation(self.n_layers)
            layers.append(propagation.fit_transform(R))
            self.reducers_.append(reducer)
            self.propagations_.append(propagation)
        stack = np.stack([np.hstack(pair) for pair in zip(*layers)])
        inputs = torch.from_numpy(stack.astype(np.float32)).to(device)
        cell_types = self._tensor(codes, torch.long, device)
        cycle = self._tensor(cell_cycle, torch.float32, device)
        self.layout_ = layout
        n = stack.shape[1]
        train, valid = validation_split(n, self.validation_fraction, run.seed)
        batch_size = self._setting("batch_size")
        if valid.size:  # DANCE: "small enough to cover all splits"
            batch_size = min(batch_size, valid.size)
        batch_size = max(min(batch_size, train.size), 2)
        module = run.place(
            ScMoGNNEmbeddingModule(
                stack.shape[2],
                stack.shape[0],
                tuple(int(h) for h in self.hidden_dims),
                self.latent_dim,
                self._setting("dropout"),
                layout,
                output_relu=self.output_relu,
            )
        )
        others = [p for name, p in module.named_parameters() if name != "layer_weights"]
        optimizer = torch.optim.AdamW(
            [
                {"params": others},
                {"params": [module.layer_weights], "weight_decay": 0.0},
            ],
            lr=self._setting("learning_rate"),
            weight_decay=self._setting("weight_decay"),
        )

        def loss_of(idx):
            idx = idx.to(device)
            return module.losses(
                inputs[:, idx],
                None if cell_types is None else cell_types[idx],
                None if cycle is None else cycle[idx],
            )

        def validate(rows):
            parts = loss_of(torch.from_numpy(rows))
            return sum(_V1_WEIGHTS[k] * float(v) for k, v in parts.items())

        # optimiser steps per epoch (a lone last cell is skipped)
        steps = train.size // batch_size + (train.size % batch_size >= 2)
        self.best_epoch_ = train_scmognn(
            run,
            module,
            optimizer,
            loss_of,
            train,
            max_epochs=self._max_epochs(steps),
            batch_size=batch_size,
            weights=_V1_WEIGHTS,
            valid=valid,
            valid_fn=validate,
            patience=self._setting("patience"),
            min_batch=2,
        )

    def _transform_v1(self, X1, X2):
        stack = self._propagated(X1, X2)
        module = copy.deepcopy(self.module_).double()
        parts = []
        with torch.no_grad():
            for start in range(0, stack.shape[1], _CHUNK_ROWS):
                rows = torch.from_numpy(stack[:, start : start + _CHUNK_ROWS])
                parts.append(module.encode(rows).numpy())
        return np.vstack(parts)

    # -- v2 --------------------------------------------------------------------
    def _fit_v2(self, X1, X2, codes, batch_codes, cell_cycle):
        layout = self._layout(codes, batch_codes, cell_cycle, regularized=False)
        self.layout_ = layout
        seed = check_random_state_int(self.random_state)
        with training(self, seed=seed) as run:
            self._train_v2(run, X1, X2, layout, codes, batch_codes, cell_cycle)

    def _train_v2(self, run, X1, X2, layout, codes, batch_codes, cell_cycle):
        device, gen = run.device, run.generator
        blocks = [cell_feature_weights(M) for M in (X1, X2)]
        W = sp.hstack(blocks, format="csr")
        n, p = W.shape
        full = cell_feature_graph(W, None, device)
        degree = np.bincount(W.indices, minlength=p).astype(np.float64)
        n_sampled = min(max(int(self.feature_fraction * p), 1), int((degree > 0).sum()))
        degree_t = torch.from_numpy(degree)
        n_batches = 0 if batch_codes is None else int(batch_codes.max()) + 1
        onehot = None
        if n_batches:
            onehot = np.eye(n_batches, dtype=np.float32)[batch_codes]
            onehot = torch.from_numpy(onehot).to(device)
        cell_types = self._tensor(codes, torch.long, device)
        cycle = self._tensor(cell_cycle, torch.float32, device)
        train, valid = validation_split(n, self.validation_fraction, run.seed)
        batch_size = min(self._setting("batch_size"), train.size)
        y_valid = [_sparse_rows(B, valid, device) for B in blocks]

        def take(values, idx):
            return None if values is None else values[idx]

        module = run.place(
            ScMoGNNGraphEmbeddingModule(
                p,
                self.latent_dim,
                self.n_layers,
                n_batches,
                self._setting("dropout"),
                0.0,
                "previous",
                n_cell_types=layout.n_cell_types,
                n_cell_cycle=layout.n_cell_cycle,
                head_dims=self.head_dims,
            )
        )
        optimizer = torch.optim.AdamW(
            module.parameters(),
            lr=self._setting("learning_rate"),
            weight_decay=self._setting("weight_decay"),
        )

        def loss_of(idx):
            idx = np.sort(idx.numpy())
            W_b = W[idx]
            if n_sampled:  # DANCE's node sub-graph of the sampled features
                features = torch.multinomial(
                    degree_t, n_sampled, replacement=False, generator=gen
                ).numpy()
                mask = np.zeros(p)
                mask[features] = 1.0
                W_b = W_b @ sp.diags(mask)
            h, _ = module(cell_feature_graph(W_b, None, device))
            idx_t = torch.from_numpy(idx).to(device)
            return module.losses(
                h,
                [_sparse_rows(B, idx, device) for B in blocks],
                take(onehot, idx_t),
                take(cell_types, idx_t),
                take(cycle, idx_t),
            )

        def validate(rows):
            rows = torch.from_numpy(rows).to(device)
            h, _ = module(full)
            parts = module.losses(h[rows], y_valid, take(onehot, rows))
            return {"valid_loss": float(parts["reconstruction"]) ** 0.5}

        def decay(index):  # the learning rate decays after epoch 150
            if index > _V2_DECAY_START:
                for group in optimizer.param_groups:
                    group["lr"] *= _V2_DECAY

        self.best_epoch_ = train_scmognn(
            run,
            module,
            optimizer,
            loss_of,
            train,
            max_epochs=self._max_epochs(1),
            batch_size=batch_size,
            valid=valid,
            valid_fn=validate,
            patience=self._setting("patience"),
            epoch_end=decay,
        )
        module.eval()
        with torch.no_grad():
            _, features_in = module(full)
        self.feature_states_ = [f.cpu().numpy() for f in features_in]

    def _transform_v2(self, X1, X2):
        W = sp.hstack([cell_feature_weights(M) for M in (X1, X2)], format="csr")
        # in float64: float32 products of different row counts round
        # differently, and a cell's embedding should not depend on the cells
        # embedded with it
        module = copy.deepcopy(self.module_).double()
        features_in = [torch.from_numpy(f).double() for f in self.feature_states_]
        parts = []
        with torch.no_grad():
            for start in range(0, W.shape[0], _CHUNK_ROWS):
                chunk = W[start : start + _CHUNK_ROWS]
                # group norm refuses a lone value: embed a lone cell twice
                # (cells are embedded independently of one another)
                lone = chunk.shape[0] == 1
                to_cell = MeanAggregation(
                    sp.vstack([chunk, chunk]) if lone else chunk, dtype=torch.float64
                )
                Z = module.embed_cells(to_cell, features_in).numpy()
                parts.append(Z[:1] if lone else Z)
        return np.vstack(parts)

    # -- transform -------------------------------------------------------------
    def _transform(self, X1, X2):
        if self.variant == "v1":
            return self._transform_v1(X1, X2).astype(np.float64)
        return self._transform_v2(X1, X2).astype(np.float64)
