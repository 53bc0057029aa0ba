"""ACTINN: a three-hidden-layer network annotating cells from scaled counts."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval
from torch import nn
from torch.nn import functional as F

from skdance.annotation._base import BaseAnnotator
from skdance.nn import TORCH_CONSTRAINTS, FCLayers, training
from skdance.utils import Widths, check_counts, dense_float, fill_doc

__all__ = ["ACTINN"]


def actinn_scale(X):
    """ACTINN's input transform: counts scaled to 10,000 per cell, then ``log2(1 + x)``.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_cells, n_genes)
        Non-negative counts.

    Returns
    -------
    Z : ndarray of shape (n_cells, n_genes), float32
        Transformed expression (rows with no counts stay 0).
    """
    dense = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    total = dense.sum(axis=1, keepdims=True)
    scale = np.divide(1e4, total, out=np.zeros_like(total), where=total > 0)
    return np.log2(1.0 + dense * scale).astype(np.float32)


def _percentile_mask(values, low, high):
    # inclusive percentiles (nearest observed values outward), so that a
    # handful of genes is not filtered away by interpolation
    lo = np.percentile(values, low, method="lower")
    hi = np.percentile(values, high, method="higher")
    return (values >= lo) & (values <= hi)


def _base_seed(generator):
    """Draw a DataLoader's per-epoch base seed from ``generator``."""
    torch.empty((), dtype=torch.int64).random_(generator=generator)


class ACTINNModule(nn.Module):
    """ACTINN's network: ``genes -> 100 -> 50 -> 25 -> classes``, ReLU, logits out.

    Weights are Xavier-initialised and biases zero, as in ACTINN's
    TensorFlow code.
    """

    def __init__(self, n_genes, hidden_dims, n_classes):
        super().__init__()
        self.net = FCLayers([n_genes, *hidden_dims, n_classes], last_activation=False)
        for layer in self.linears():
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def linears(self):
        """Return the ``Linear`` layers (their weights are L2-penalised)."""
        return self.net.linear_layers()

    def forward(self, x):
        """Class logits."""
        return self.net(x)


@fill_doc
class ACTINN(BaseAnnotator):
    """ACTINN: automated cell-type identification with a neural network.

    The method of Ma & Pellegrini (2020), as its code runs it:

    1. Expression: counts scaled to 10,000 per cell and ``log2(1 + x)``
       (``normalize=True``; set False for input that is already
       log-normalised).  Gene filtering on the training data
       (``filter_genes=True``): genes detected in no cell are dropped, then
       genes whose total expression or coefficient of variation falls outside
       the 1st-99th percentiles; the same genes are used at ``predict``.
    2. A fully connected network ``genes -> 100 -> 50 -> 25 -> n_classes``
       (ReLU, softmax output), Xavier initialisation.
    3. Loss: softmax cross-entropy plus ``weight_decay * sum(W ** 2) / 2``
       over the weight matrices.  Adam with mini-batches of ``batch_size`` cells; the
       learning rate decays by ``learning_rate_decay`` every ``decay_steps`` steps
       (staircase), ``max_epochs`` epochs.

    Parameters
    ----------
    hidden_dims : tuple of int, default=(100, 50, 25)
        Hidden layer widths.
    learning_rate : float, default=1e-4
        Initial Adam learning rate (ACTINN's default).
    max_epochs : int, default=50
        Training epochs.
    batch_size : int, default=128
        {batch_size}
    weight_decay : float, default=0.005
        Weight of the L2 penalty ``sum(W ** 2) / 2`` on the weight matrices
        (not the biases).
    learning_rate_decay : float, default=0.95
        Learning-rate factor applied every ``decay_steps`` optimiser steps.
    decay_steps : int, default=1000
        Steps between learning-rate decays.
    normalize : bool, default=True
        Apply ACTINN's scaling (``log2`` of counts per 10,000); the input must
        then be non-negative counts.
    filter_genes : bool, default=True
        Apply ACTINN's percentile gene filters (fitted on the training cells).
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the batch order.
    verbose : int, default=0
        When truthy, show a progress bar over the epochs with each epoch's
        training loss (mean cross-entropy + L2 penalty).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Cell types.
    genes_ : ndarray of int
        Indices of the genes kept by the filters.
    module_ : ACTINNModule
        The trained network (on CPU).
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss (mean
        cross-entropy + L2 penalty), seconds.
    n_iter_ : int
        Number of epochs run.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    References
    ----------
    Ma & Pellegrini (2020), "ACTINN: automated identification of cell types in
    single cell RNA sequencing", Bioinformatics 36(2), 533-538.

    Examples
    --------
    >>> from skdance.annotation import ACTINN
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> model = ACTINN(max_epochs=30, random_state=0).fit(X[::2], y[::2])
    >>> model.score(X[1::2], y[1::2]) > 0.8
    True
    """

    _parameter_constraints = {
        "hidden_dims": [Widths(allow_empty=True)],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "learning_rate_decay": [Interval(Real, 0, 1, closed="right")],
        "decay_steps": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "filter_genes": ["boolean"],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        hidden_dims=(100, 50, 25),
        learning_rate=1e-4,
        max_epochs=50,
        batch_size=128,
        weight_decay=0.005,
        learning_rate_decay=0.95,
        decay_steps=1000,
        normalize=True,
        filter_genes=True,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.hidden_dims = hidden_dims
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.learning_rate_decay = learning_rate_decay
        self.decay_steps = decay_steps
        self.normalize = normalize
        self.filter_genes = filter_genes
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _expression(self, X):
        if self.normalize:
            check_counts(X, whom="ACTINN with normalize=True")
            return actinn_scale(X)
        return dense_float(X)

    def _select_genes(self, E):
        genes = np.arange(E.shape[1])
        if not self.filter_genes:
            return genes
        genes = genes[(E > 0).any(axis=0)]
        if genes.size == 0:
            return genes
        total = E[:, genes].sum(axis=0)
        genes = genes[_percentile_mask(total, 1, 99)]
        mean = E[:, genes].mean(axis=0)
        cv = np.divide(
            E[:, genes].std(axis=0), mean, out=np.zeros_like(mean), where=mean > 0
        )
        return genes[_percentile_mask(cv, 1, 99)]

    def _fit(self, X, y):
        E = self._expression(X)
        self.genes_ = self._select_genes(E)
        if self.genes_.size == 0:
            raise ValueError(
                "ACTINN's gene filters removed every gene; pass "
                "filter_genes=False or more genes."
            )
        x = torch.from_numpy(np.ascontiguousarray(E[:, self.genes_]))
        target = torch.from_numpy(np.asarray(y, dtype=np.int64))
        with training(self) as run:
            module = run.place(
                ACTINNModule(x.shape[1], tuple(self.hidden_dims), len(self.classes_))
            )
            opt = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
            # staircase decay, stepped after every optimiser step
            decay = torch.optim.lr_scheduler.StepLR(
                opt, step_size=self.decay_steps, gamma=self.learning_rate_decay
            )

            def loss_fn(idx):
                logits = module(run.to(x[idx]))
                loss = F.cross_entropy(logits, run.to(target[idx]))
                penalty = sum((lin.weight**2).sum() for lin in module.linears())
                return loss + self.weight_decay * penalty / 2

            def loader_draws():
                # The draws a torch DataLoader makes on the shuffle generator
                # around each epoch's permutation (its base seed before, the
                # sampler's trailing permutation after), as when ACTINN trained
                # through skorch: kept so that fits stay bit-identical to
                # those of earlier versions.
                torch.randperm(x.shape[0], generator=run.generator)
                _base_seed(run.generator)
                return {}

            _base_seed(run.generator)
            run.fit_minibatches(
                opt,
                loss_fn,
                np.arange(x.shape[0]),
                batch_size=self.batch_size,
                max_epochs=self.max_epochs,
                scheduler=decay,
                record_fn=loader_draws,
            )

    def _predict_proba(self, X):
        E = self._expression(X)[:, self.genes_]
        with torch.no_grad():
            logits = self.module_(torch.from_numpy(np.ascontiguousarray(E)))
            return torch.softmax(logits.double(), dim=1).numpy()

    def __skdance_tags__(self):
        tags = super().__skdance_tags__()
        tags.counts = self.normalize
        return tags
