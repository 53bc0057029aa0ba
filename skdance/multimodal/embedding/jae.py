"""JAE: a joint autoencoder whose embedding is split by cell type, batch and cycle."""

import copy
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.decomposition import TruncatedSVD
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn
from torch.nn import functional as F

from skdance.multimodal._paired import MUDATA_CONSTRAINTS, as_pair
from skdance.multimodal.embedding._base import BaseJointEmbedding
from skdance.multimodal.embedding._cell_cycle import (
    G2M_GENES,
    S_GENES,
    cell_cycle_scores,
)
from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    FCLayers,
    training,
    validation_split,
)
from skdance.preprocessing import LSI
from skdance.utils import (
    Widths,
    check_random_state_int,
    fill_doc,
    is_anndata,
    resolve_side_info,
)

__all__ = ["JAE"]

_PARTS = ("cell_type", "batch", "cell_cycle", "rest")
# JAE's code sizes its embedding as cell types + batches + phases + 5.
_JAE_FREE_DIMS = 5


def _check_svd_components(value):
    pair = tuple(value)
    ok = len(pair) == 2 and all(
        v is None or (isinstance(v, Integral) and not isinstance(v, bool) and v >= 1)
        for v in pair
    )
    if not ok:
        raise ValueError(
            "svd_components must be a pair (mod1, mod2) of positive ints or None "
            f"(None: the modality is used as given), got {value!r}."
        )
    return pair


def _missing(values):
    """Mask of unlabelled entries: None, NaN, or -1 in numeric labels."""
    if values.dtype.kind in "iu":
        return values == -1
    if values.dtype.kind == "f":
        return np.isnan(values) | (values == -1)
    if values.dtype.kind == "b":
        return np.zeros(values.shape, dtype=bool)
    import pandas as pd

    return np.asarray(pd.isna(values), dtype=bool)


def _encode_cell_types(y, n_cells):
    """Return ``(classes, codes)``: class index per cell, -1 for unlabelled."""
    y = np.asarray(y)
    if y.ndim == 2 and 1 in y.shape:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-dimensional (one cell type per cell); got shape {y.shape}."
        )
    if y.shape[0] != n_cells:
        raise ValueError(
            f"y has {y.shape[0]} labels for {n_cells} cells; JAE needs one cell "
            "type per cell (-1, None or NaN for an unlabelled cell)."
        )
    missing = _missing(y)
    if missing.all():
        raise ValueError(
            "JAE needs the cell types of at least some cells in y; every cell is "
            "unlabelled (-1, None or NaN)."
        )
    classes = np.unique(y[~missing])
    codes = np.full(n_cells, -1, dtype=np.int64)
    codes[~missing] = np.searchsorted(classes, y[~missing])
    return classes, codes


# -- JAE's network, batch loss and input reduction ------------------------------
class ModalityReducer:
    """One modality's reduction: truncated SVD, LSI, or the values as given.

    ``method="svd"``: :class:`~sklearn.decomposition.TruncatedSVD` of the
    values as given (JAE's code reduces log-normalised expression and
    peaks this way); ``"lsi"``: DANCE's LSI (tf-idf, log, truncated SVD
    without its first component; a modality with negative values, e.g.
    CLR proteins, gets the SVD alone).  A modality with no more features
    than ``n_components`` (or ``n_components=None``) is used as given.
    Sparse input stays sparse.

    Parameters
    ----------
    n_components : int or None
        Components kept (at most ``n_cells - 1`` and ``n_features - 1``).
    method : {"svd", "lsi"}
        Decomposition.
    random_state : int
        Seed of the randomised SVD.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.embedding.jae import ModalityReducer
    >>> X = np.random.default_rng(0).poisson(1.0, (20, 10)).astype(float)
    >>> ModalityReducer(3, "svd", 0).fit_transform(X).shape
    (20, 3)
    >>> ModalityReducer(30, "svd", 0).fit_transform(X).shape
    (20, 10)
    """

    def __init__(self, n_components, method, random_state):
        self.n_components = n_components
        self.method = method
        self.random_state = random_state

    def fit_transform(self, X):
        """Fit on the training cells ``X`` and return their reduced values."""
        n_cells, n_features = X.shape
        if self.n_components is None or self.n_components >= n_features:
            self.decomposition_ = None
            return self.transform(X)
        k = max(1, min(self.n_components, n_features - 1, n_cells - 1))
        if self.method == "lsi":
            k = max(1, min(k, n_features - 2, n_cells - 2))
            self.decomposition_ = LSI(k, random_state=self.random_state)
            return np.asarray(self.decomposition_.fit_transform(X), dtype=np.float64)
        self.decomposition_ = TruncatedSVD(k, random_state=self.random_state)
        return self.decomposition_.fit_transform(X).astype(np.float64, copy=False)

    def transform(self, X):
        """Reduced values of cells ``X``."""
        if self.decomposition_ is None:
            return X.toarray() if sp.issparse(X) else np.array(X, dtype=np.float64)
        return np.asarray(self.decomposition_.transform(X), dtype=np.float64)


def uniform_batch_loss(logits):
    """Cross-entropy of the batch logits against the uniform distribution.

    ``mean_i sum_k -(1/K) log softmax(logits_i)_k``: JAE's "random
    classification" loss, smallest (``log K``) when the batch part predicts
    every batch equally, i.e. says nothing about the batch.  Batch labels
    do not enter it; their number ``K`` sizes the part.

    Examples
    --------
    >>> import torch
    >>> from skdance.multimodal.embedding.jae import uniform_batch_loss
    >>> round(float(uniform_batch_loss(torch.zeros(4, 2))), 4)  # log 2
    0.6931
    """
    return -F.log_softmax(logits, dim=-1).mean(dim=-1).mean()


class JAEModule(nn.Module):
    """JAE's autoencoder with an embedding of four parts (DANCE's network).

    Encoder: per width of ``hidden_dims`` a block ``Linear -> GELU ->
    BatchNorm -> Dropout``, then a linear layer to ``n_components``
    dimensions: the embedding ``[cell type | batch | cell cycle | rest]``
    whose first ``part_sizes[0]`` dimensions are the cell-type logits, the
    next ``part_sizes[1]`` the batch logits, the next ``part_sizes[2]``
    the cell-cycle scores.  Decoder: ``Linear -> ReLU`` per width of
    ``decoder_dims``, then ``Linear -> ReLU`` to the input (DANCE's and
    JAE's final ReLU kept).

    Parameters
    ----------
    n_inputs : int
        Width of the reduced, concatenated modalities.
    part_sizes : tuple of int
        Sizes ``(c, b, s)`` of the cell-type, batch and cell-cycle parts.
    n_components : int
        Embedding width ``d = c + b + s + z``.
    hidden_dims : tuple of int
        Encoder widths.
    decoder_dims : tuple of int
        Decoder hidden widths.
    dropout : float
        Dropout rate of the encoder blocks.
    """

    def __init__(
        self, n_inputs, part_sizes, n_components, hidden_dims, decoder_dims, dropout
    ):
        super().__init__()
        blocks = []
        width = n_inputs
        for h in hidden_dims:
            blocks += [nn.Linear(width, h), nn.GELU(), nn.BatchNorm1d(h)]
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
            width = h
        blocks.append(nn.Linear(width, n_components))
        self.encoder = nn.Sequential(*blocks)
        self.decoder = FCLayers([n_components, *decoder_dims, n_inputs])
        bounds = np.cumsum([0, *part_sizes])
        self.parts = tuple(slice(int(a), int(b)) for a, b in zip(bounds, bounds[1:]))

    def forward(self, x):
        """Return ``(reconstruction, embedding)`` of the rows ``x``."""
        h = self.encoder(x)
        return self.decoder(h), h

    def losses(self, x, cell_type, batch_on, cycle):
        """Return the four losses of JAE (eq. 52) on the rows ``x``.

        Parameters
        ----------
        x : torch.Tensor
            Reduced inputs.
        cell_type : torch.Tensor of int
            Class index per row; -1 for an unlabelled row (no loss).
        batch_on : bool
            Whether the batch part exists.
        cycle : torch.Tensor or None
            Cell-cycle scores per row, when the part exists.

        Returns
        -------
        losses : dict of str to torch.Tensor
            ``reconstruction`` (MSE), ``cell_type`` (cross-entropy of the
            labelled rows; 0 when none), ``batch`` (uniform cross-entropy),
            ``cell_cycle`` (MSE).
        """
        recon, h = self(x)
        c_part, b_part, s_part = self.parts
        zero = x.new_zeros(())
        cycle_loss = zero if cycle is None else F.mse_loss(h[:, s_part], cycle)
        labelled = cell_type >= 0
        if bool(labelled.any()):
            ce = F.cross_entropy(h[labelled, c_part], cell_type[labelled])
        else:
            ce = zero
        return {
            "reconstruction": F.mse_loss(recon, x),
            "cell_type": ce,
            "batch": uniform_batch_loss(h[:, b_part]) if batch_on else zero,
            "cell_cycle": cycle_loss,
        }


# -- the estimator ---------------------------------------------------------------
@fill_doc
class JAE(BaseJointEmbedding):
    """JAE: joint autoencoder with cell-type, batch and cell-cycle parts.

    The joint embedding of Liu et al. (the "Amateur" team, first in the
    NeurIPS 2021 multimodal competition's joint-embedding tasks), a
    simplified scDEC, as DANCE rebuilt it (DANCE paper, appendix D.2, eqs.
    50-52):

    1. **Input.** Each modality is reduced on the training cells
       (``decomposition="svd"``: a truncated SVD of the values as given,
       JAE's preprocessing; ``"lsi"``: DANCE's LSI, tf-idf and log before
       the SVD, its first component dropped) to ``svd_components``
       dimensions, and the two are concatenated.  A modality with no more
       features than asked (a protein panel) is used as given.  Sparse
       input stays sparse (the SVD reads CSR).  The fitted reductions are
       reused by ``transform``.
    2. **Network.** An autoencoder (encoder ``Linear -> GELU -> BatchNorm
       -> Dropout`` per width of ``hidden_dims``, then linear to
       ``latent_dim``; decoder ``Linear -> ReLU`` per width of
       ``decoder_dims``, then ``Linear -> ReLU``).  The embedding ``H`` is
       split into four parts, ``H = [C | B | S | Z]``, ``c + b + s + z =
       latent_dim``: ``C`` has one dimension per cell type (its logits),
       ``B`` one per batch, ``S`` one per cell-cycle score (2: S and G2/M)
       and ``Z`` the rest, unconstrained.
    3. **Objective** (eq. 52, JAE's weights): ``reconstruction_weight *
       MSE(decoder(H), x) + cell_type_weight * CrossEntropy(C, y) +
       batch_weight * CrossEntropy(uniform, B) + cell_cycle_weight *
       MSE(S, cycle scores)``.  The batch term, as in JAE's and DANCE's
       code, pushes the batch logits to predict every batch equally ("as
       randomly as possible", to keep batch information out of ``B``); the
       batch labels only set the number ``b`` of its dimensions (the
       paper's eq. 52 writes a cross-entropy against the batch labels,
       which neither code computes).
    4. **Schedule.** Phase ``"supervised"``: Adam (``learning_rate``),
       mini-batches of ``batch_size``, up to ``max_epochs`` epochs, early
       stopping on the weighted loss of ``validation_fraction`` of the
       cells (``patience`` epochs), best state kept (JAE and DANCE).  Phase
       ``"finetune"`` (JAE's second stage, which DANCE omits): the
       reconstruction loss alone on every cell, labelled or not, with the
       smaller ``finetune_learning_rate`` for up to ``finetune_epochs``
       epochs, early stopping on the held-out reconstruction loss.
    5. ``transform`` needs no labels: it returns the whole embedding
       ``H`` (all four parts; their columns are in ``embedding_parts_``).

    Side information (all per cell):

    * ``y`` (cell types) is **required**; JAE is supervised.  Entries -1,
      None or NaN mark unlabelled cells: they get no cell-type loss but
      are reconstructed (and fine-tuned on), JAE's competition setting
      (labelled exploration cells plus unlabelled test cells).
    * ``batch`` is optional (``fit(X, y, batch=...)``, or
      ``adata.obs[batch_key]``): without it the embedding has no batch
      part (``b = 0``) and no batch loss.
    * ``cell_cycle`` (an ``(n_cells, k)`` array of scores, JAE's S and
      G2/M scores) is optional: without it, when the GEX genes have names
      (DataFrame or AnnData input), the S and G2/M scores are computed on
      the training cells with scanpy's ``score_genes_cell_cycle`` and the
      genes of ``cell_cycle_genes`` (Tirosh et al. 2016, matched
      case-insensitively, so mouse names work); otherwise (no names, fewer
      than two genes of a phase among them, fewer than 50 genes to draw
      control genes from, or ``cell_cycle_genes=None``) the embedding has
      no cycle part (``s = 0``).  ``cell_cycle_source_``
      says which happened.

    ``batch`` and ``cell_cycle`` are ``fit`` keywords, requested for
    scikit-learn's metadata routing by default (as in every joint
    embedding): inside a ``Pipeline`` they reach JAE when given, and
    ``set_fit_request(batch=False)`` opts out.

    Deliberate differences from DANCE's code: the batch loss uses the
    uniform target ``1/b`` of JAE's code (DANCE divides by the mini-batch
    size, which only rescales the term); the S and G2/M scores are
    computed on the log-normalised expression as given (JAE scales every
    gene first, which densifies the matrix); the validation split is
    stratified by cell type when possible; JAE's mini-batches of 32 and
    up to 500 epochs (DANCE: 128 and 60, see ``max_epochs``); the second
    (fine-tuning) phase of JAE is added.  Differences from JAE's
    TensorFlow code: DANCE's network (GELU, dropout 0.2, no residual
    blocks, no ReLU on the embedding, one hidden decoder layer) and
    DANCE's patience of 10 epochs (JAE: 5); the embedding's free part
    ``z`` fills ``latent_dim`` (JAE: ``z = 5``, ``latent_dim=None``).

    Parameters
    ----------
    n_features_mod1 : int or None, default=None
        Number of GEX columns when ``X`` is ``[mod1 | mod2]`` column blocks
        (not needed when ``X`` is a pair ``(mod1, mod2)``).
    latent_dim : int or None, default=100
        Embedding dimensions ``d`` (the competition's 100); at least the
        number of cell types + batches + cycle scores.  None sizes it as
        JAE's code: ``c + b + s + 5`` (five free dimensions).
    svd_components : pair of (int or None), default=(100, 100)
        Reduced dimensions of each modality (JAE: 100 each); None uses a
        modality as given.
    decomposition : {"svd", "lsi"}, default="svd"
        How a modality is reduced, see above.
    hidden_dims : tuple of int, default=(150, 120, 100)
        Encoder widths (DANCE and JAE).
    decoder_dims : tuple of int, default=(150,)
        Decoder hidden widths (DANCE).
    dropout : float, default=0.2
        Dropout of the encoder blocks (DANCE).
    reconstruction_weight, cell_type_weight, batch_weight, \
cell_cycle_weight : float, default=0.7, 0.2, 0.05, 0.05
        Weights of the four losses (JAE and DANCE).
    cell_cycle_genes : "tirosh2016", pair of lists of str, or None, \
default="tirosh2016"
        S-phase and G2/M-phase genes for the cell-cycle scores when
        ``cell_cycle`` is not given; None never computes them.
    batch_key : str or None, default=None
        ``obs`` column of the batch labels when ``X`` (or its first
        modality) is an AnnData and ``batch`` is not passed.
    learning_rate : float, default=1e-4
        Adam learning rate of the supervised phase (DANCE and JAE).
    finetune_learning_rate : float, default=1e-5
        Adam learning rate of the fine-tuning phase.
    batch_size : int, default=32
        Cells per mini-batch (JAE; DANCE: 128).
    max_epochs : int, default=500
        Maximum epochs of the supervised phase (JAE; DANCE: 60, which
        stops small data sets while the validation loss still falls);
        early stopping ends it first.
    finetune_epochs : int, default=10
        Maximum epochs of the fine-tuning phase; 0 skips it (DANCE).
    validation_fraction : float, default=0.1
        Fraction of the cells held out for early stopping (DANCE); 0 trains
        every epoch and keeps the last state.
    patience : int or None, default=10
        Epochs without a lower validation loss before a phase stops
        (DANCE); None trains all epochs.
    {device} {mudata_mods}
    random_state : int, RandomState instance or None, default=None
        Seeds the reductions, the validation split, the initialisation,
        the mini-batches, dropout and the control genes of the scores.
    {verbose}

    Attributes
    ----------
    classes_ : ndarray of shape (c,)
        The cell types (the columns of the cell-type part, in order).
    batch_classes_ : ndarray of shape (b,) or None
        The batches (the columns of the batch part), None without batches.
    cell_cycle_source_ : {"given", "scored"} or None
        Where the cell-cycle scores came from; None when there is no cycle
        part.
    embedding_parts_ : dict of str to slice
        Columns of the embedding of each part: ``"cell_type"``,
        ``"batch"``, ``"cell_cycle"``, ``"rest"`` (empty slices for absent
        parts).
    reducers_ : list of ModalityReducer
        The fitted reductions of the two modalities.
    module_ : JAEModule
        The trained torch module (on the CPU).
    history_ : list of dict
        One record per epoch: phase (``"supervised"``, ``"finetune"``),
        epoch, train_loss, the four losses of the supervised phase,
        valid_loss when cells are held out, seconds.
    n_iter_ : int
        Number of epochs run (both phases).
    best_epochs_ : tuple of (int or None)
        Epoch of each phase whose state was kept (None without validation
        or when the phase did not run).
    n_features_in_ : int
        Columns of ``X`` (both blocks; GEX columns when ``X`` is a pair).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Their names, when the input had them.
    n_features_mod2_ : int
        Columns of the second modality.

    See Also
    --------
    skdance.multimodal.embedding.JointPCA : The unsupervised baseline.

    References
    ----------
    Liu, Chen, Jiang & Wong (2021), "Simultaneous deep generative modelling
    and clustering of single-cell genomic data", Nature Machine
    Intelligence 3, 536-544 (scDEC); JAE's code:
    https://github.com/kimmo1019/JAE.
    Lance et al. (2022), "Multimodal single cell data integration
    challenge: results and lessons learned", NeurIPS 2021 Competitions and
    Demonstrations Track, PMLR 176.
    Tirosh et al. (2016), "Dissecting the multicellular ecosystem of
    metastatic melanoma by single-cell RNA-seq", Science 352, 189-196.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.multimodal.embedding import JAE
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 30)
    >>> gex = rng.normal(size=(90, 30)) + y[:, None]
    >>> adt = rng.normal(size=(90, 8)) - y[:, None]
    >>> batch = np.tile(["a", "b"], 45)
    >>> jae = JAE(latent_dim=10, svd_components=(10, None), max_epochs=5,
    ...           learning_rate=1e-3, random_state=0)
    >>> Z = jae.fit((gex, adt), y, batch=batch).transform((gex, adt))
    >>> Z.shape, jae.embedding_parts_["batch"]
    ((90, 10), slice(3, 5, None))
    """

    _parameter_constraints = {
        **MUDATA_CONSTRAINTS,
        "n_features_mod1": [Interval(Integral, 1, None, closed="left"), None],
        "latent_dim": [Interval(Integral, 1, None, closed="left"), None],
        "svd_components": [tuple, list],
        "decomposition": [StrOptions({"svd", "lsi"})],
        "hidden_dims": [Widths()],
        "decoder_dims": [Widths(allow_empty=True)],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "reconstruction_weight": [Interval(Real, 0, None, closed="left")],
        "cell_type_weight": [Interval(Real, 0, None, closed="left")],
        "batch_weight": [Interval(Real, 0, None, closed="left")],
        "cell_cycle_weight": [Interval(Real, 0, None, closed="left")],
        "cell_cycle_genes": [StrOptions({"tirosh2016"}), tuple, list, None],
        "batch_key": [str, None],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "finetune_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "finetune_epochs": [Interval(Integral, 0, None, closed="left")],
        **VALIDATION_CONSTRAINTS,
        **TORCH_CONSTRAINTS,
    }

    # side information is used when given (one default for the joint embeddings)
    __metadata_request__fit = {"batch": True, "cell_cycle": True}

    def __init__(
        self,
        n_features_mod1=None,
        *,
        latent_dim=100,
        svd_components=(100, 100),
        decomposition="svd",
        hidden_dims=(150, 120, 100),
        decoder_dims=(150,),
        dropout=0.2,
        reconstruction_weight=0.7,
        cell_type_weight=0.2,
        batch_weight=0.05,
        cell_cycle_weight=0.05,
        cell_cycle_genes="tirosh2016",
        batch_key=None,
        learning_rate=1e-4,
        finetune_learning_rate=1e-5,
        batch_size=32,
        max_epochs=500,
        finetune_epochs=10,
        validation_fraction=0.1,
        patience=10,
        device="cpu",
        mudata_mods=None,
        random_state=None,
        verbose=0,
    ):
        self.n_features_mod1 = n_features_mod1
        self.latent_dim = latent_dim
        self.svd_components = svd_components
        self.decomposition = decomposition
        self.hidden_dims = hidden_dims
        self.decoder_dims = decoder_dims
        self.dropout = dropout
        self.reconstruction_weight = reconstruction_weight
        self.cell_type_weight = cell_type_weight
        self.batch_weight = batch_weight
        self.cell_cycle_weight = cell_cycle_weight
        self.cell_cycle_genes = cell_cycle_genes
        self.batch_key = batch_key
        self.learning_rate = learning_rate
        self.finetune_learning_rate = finetune_learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.finetune_epochs = finetune_epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.mudata_mods = mudata_mods
        self.random_state = random_state
        self.verbose = verbose

    # -- fit -------------------------------------------------------------------
    def fit(self, X, y=None, *, batch=None, cell_cycle=None):
        """Train JAE on paired cells with their cell types.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_cells, n_features) or pair
            ``[mod1 | mod2]`` column blocks (the first ``n_features_mod1``
            columns are GEX), or a pair ``(mod1, mod2)`` of matrices,
            DataFrames or AnnData objects with the same cells.
        y : array-like of shape (n_cells,)
            Cell types (required); -1, None or NaN for unlabelled cells.
        batch : array-like of shape (n_cells,), default=None
            Batch of each cell; ``adata.obs[batch_key]`` when None and
            ``X`` (or its first modality) is an AnnData.  None: no batch
            part.
        cell_cycle : array-like of shape (n_cells, k), default=None
            Cell-cycle scores of each cell (JAE: S and G2/M scores); None
            computes them from the GEX gene names where possible.

        Returns
        -------
        self : JAE
            Fitted estimator.
        """
        self._validate_params()
        if y is None:
            raise ValueError(
                "JAE requires y to be passed, but the target y is None: pass the "
                "cell type of each cell (-1, None or NaN for an unlabelled cell), "
                "fit(X, y); part of JAE's embedding is trained to predict them."
            )
        X = as_pair(self, X)  # a MuData's two modalities, as AnnData
        X1, X2 = self._split(X, reset=True)
        n_cells = X1.shape[0]
        classes, codes = _encode_cell_types(y, n_cells)
        owner = X[0] if isinstance(X, tuple | list) else X
        # a batch_key that names no obs column is an error, not a silent "no batch"
        named = batch is None and self.batch_key is not None and is_anndata(owner)
        batch = resolve_side_info(
            owner,
            batch,
            name="batch",
            key=self.batch_key,
            slot="obs",
            n_samples=n_cells,
            required=named,
            whom="JAE",
            kind="vector",
        )
        cell_cycle = resolve_side_info(
            owner,
            cell_cycle,
            name="cell_cycle",
            n_samples=n_cells,
            required=False,
            whom="JAE",
            kind="matrix",
        )
        self.classes_ = classes
        self._fit_jae(X1, X2, codes, batch, cell_cycle)
        self._set_n_features_out(X1, X2)
        return self

    def _fit(self, X1, X2, y):
        classes, codes = _encode_cell_types(y, X1.shape[0])
        self.classes_ = classes
        self._fit_jae(X1, X2, codes, None, None)

    def _gex_names(self):
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return None
        return names if self._input_pair else names[: self.n_features_mod1]

    def _cycle_genes(self):
        genes = self.cell_cycle_genes
        if genes is None:
            return None
        if isinstance(genes, str):
            return S_GENES, G2M_GENES
        pair = tuple(genes)
        if len(pair) != 2 or any(isinstance(g, str) for g in pair):
            raise ValueError(
                "cell_cycle_genes must be 'tirosh2016', None or a pair (S-phase "
                f"genes, G2/M-phase genes) of lists of gene names; got {genes!r}."
            )
        return tuple(list(g) for g in pair)

    def _fit_jae(self, X1, X2, codes, batch, cell_cycle):
        hidden = tuple(int(h) for h in self.hidden_dims)
        decoder = tuple(int(h) for h in self.decoder_dims)
        svd = _check_svd_components(self.svd_components)
        genes = self._cycle_genes()
        n_cells = X1.shape[0]
        if n_cells < 2:
            raise ValueError(
                f"JAE needs at least 2 cells to train; got n_samples={n_cells}."
            )
        seed = check_random_state_int(self.random_state)

        self.batch_classes_ = None
        batch_codes = None
        if batch is not None:
            self.batch_classes_, batch_codes = np.unique(
                batch.astype(str), return_inverse=True
            )
        self.cell_cycle_source_ = None
        if cell_cycle is not None:
            self.cell_cycle_source_ = "given"
        elif genes is not None and self._gex_names() is not None:
            try:
                cell_cycle = cell_cycle_scores(
                    X1,
                    self._gex_names(),
                    s_genes=genes[0],
                    g2m_genes=genes[1],
                    random_state=seed,
                )
                self.cell_cycle_source_ = "scored"
            except ValueError:  # too few marker genes: no cell-cycle part
                cell_cycle = None
        sizes = (
            len(self.classes_),
            0 if batch_codes is None else len(self.batch_classes_),
            0 if cell_cycle is None else cell_cycle.shape[1],
        )
        latent_dim = self.latent_dim
        if latent_dim is None:
            latent_dim = sum(sizes) + _JAE_FREE_DIMS
        if sum(sizes) > latent_dim:
            raise ValueError(
                f"latent_dim={latent_dim} is smaller than the supervised "
                f"parts of JAE's embedding: {sizes[0]} cell types + {sizes[1]} "
                f"batches + {sizes[2]} cell-cycle scores = {sum(sizes)}; raise "
                "latent_dim (or pass None for JAE's own sizing)."
            )
        bounds = np.cumsum([0, *sizes, latent_dim - sum(sizes)])
        self.embedding_parts_ = {
            name: slice(int(a), int(b))
            for name, a, b in zip(_PARTS, bounds[:-1], bounds[1:])
        }

        self.reducers_ = [ModalityReducer(k, self.decomposition, seed) for k in svd]
        features = np.hstack(
            [r.fit_transform(M) for r, M in zip(self.reducers_, (X1, X2))]
        ).astype(np.float32)

        stratify = codes if (codes >= 0).all() else None
        train, valid = validation_split(
            n_cells, self.validation_fraction, seed, stratify=stratify
        )
        if train.size < 2:  # batch normalisation needs two training cells
            train, valid = np.arange(n_cells), np.array([], dtype=np.int64)
        weights = {
            "reconstruction": float(self.reconstruction_weight),
            "cell_type": float(self.cell_type_weight),
            "batch": float(self.batch_weight),
            "cell_cycle": float(self.cell_cycle_weight),
        }
        with training(self, seed=seed) as run:
            device = run.device
            x_all = run.to(torch.from_numpy(features))
            c_all = run.to(torch.from_numpy(codes))
            s_all = None
            if cell_cycle is not None:
                s_all = run.to(torch.from_numpy(cell_cycle.astype(np.float32)))
            batch_on = batch_codes is not None
            module = run.place(
                JAEModule(
                    features.shape[1],
                    sizes,
                    latent_dim,
                    hidden,
                    decoder,
                    float(self.dropout),
                )
            )
            parts = {}

            def supervised_loss(idx, record=True):
                idx = idx.to(device)
                cycle = None if s_all is None else s_all[idx]
                losses = module.losses(x_all[idx], c_all[idx], batch_on, cycle)
                if record:
                    for key, value in losses.items():
                        parts[key] = parts.get(key, 0.0) + float(value.detach()) * len(
                            idx
                        )
                return sum(weights[k] * v for k, v in losses.items())

            def reconstruction_loss(idx):
                idx = idx.to(device)
                x = x_all[idx]
                return F.mse_loss(module(x)[0], x)

            def part_means():
                means = {k: v / train.size for k, v in parts.items()}
                parts.clear()
                return means

            schedule = {"batch_size": self.batch_size, "min_batch": 2}
            optimizer = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
            best = run.fit_minibatches(
                optimizer,
                supervised_loss,
                train,
                max_epochs=self.max_epochs,
                valid=valid,
                valid_fn=lambda rows: supervised_loss(
                    torch.from_numpy(rows), record=False
                ),
                patience=self.patience,
                phase="supervised",
                record_fn=part_means,
                **schedule,
            )
            best_finetune = None
            if self.finetune_epochs > 0:
                optimizer = torch.optim.Adam(
                    module.parameters(), lr=self.finetune_learning_rate
                )
                best_finetune = run.fit_minibatches(
                    optimizer,
                    reconstruction_loss,
                    train,
                    max_epochs=self.finetune_epochs,
                    valid=valid,
                    patience=self.patience,
                    phase="finetune",
                    **schedule,
                )
        self.best_epochs_ = (best, best_finetune)

    # -- transform -------------------------------------------------------------
    def _transform(self, X1, X2):
        features = np.hstack([r.transform(M) for r, M in zip(self.reducers_, (X1, X2))])
        # a float64 copy of the trained float32 network: a cell's embedding does
        # not depend on the other rows passed with it
        module = copy.deepcopy(self.module_).double().eval()
        x = features.astype(np.float32).astype(np.float64)
        with torch.no_grad():
            return module.encoder(torch.from_numpy(x)).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
