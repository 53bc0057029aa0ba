"""DeepImpute: sub-networks predicting gene subsets from correlated genes."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from skdance.imputation._base import BaseImputer, replace_columns
from skdance.nn import (
    TORCH_CONSTRAINTS,
    VALIDATION_CONSTRAINTS,
    FCLayers,
    RowSource,
    training,
    validation_split,
)
from skdance.preprocessing import mean_var
from skdance.utils import check_random_state_int, fill_doc

__all__ = ["DeepImpute"]


def _abs_correlation(X, rows, cols, mean, std):
    """``|pearson(X[:, a], X[:, b])|`` for ``a`` in ``rows``, ``b`` in ``cols``.

    Computed from the sparse cross-product, so only a
    ``len(rows) x len(cols)`` block is ever dense.
    """
    n = X.shape[0]
    cross = X[:, rows].T @ X[:, cols]
    cross = cross.toarray() if sp.issparse(cross) else np.asarray(cross)
    cov = cross / n - np.outer(mean[rows], mean[cols])
    return np.abs(cov / np.outer(std[rows], std[cols]))


def weighted_mse(y_true, y_pred):
    """DeepImpute's loss: ``mean(y * (y - y_hat) ** 2)`` (weights = targets)."""
    return torch.mean(y_true * (y_true - y_pred) ** 2)


class DeepImputeModule(nn.Module):
    """DeepImpute's sub-networks, one per target subset.

    Each is ``Dense(hidden) + ReLU``, dropout, ``Dense(n_targets) +
    softplus`` (Keras initialisation: Glorot uniform weights, zero biases).
    """

    def __init__(self, input_sizes, output_sizes, hidden_dim, dropout):
        super().__init__()
        self.nets = nn.ModuleList(
            FCLayers(
                [n_in, hidden_dim, n_out],
                dropout=dropout,
                last_activation=nn.Softplus,
            )
            for n_in, n_out in zip(input_sizes, output_sizes)
        )
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, inputs):
        """Predicted ``log1p`` counts of each subset's targets."""
        return [net(x) for net, x in zip(self.nets, inputs)]


@fill_doc
class DeepImpute(BaseImputer):
    """DeepImpute: divide-and-conquer imputation with small networks.

    The method of Arisdakessian et al. (2019), as its ``MultiNet`` code runs:

    1. Target genes: genes ranked by ``var / (1 + mean)`` of the raw counts;
       those above ``min_vmr`` are imputed, split at random into subsets of
       ``n_targets_per_network`` genes, one subset per sub-network (the last
       subset is filled up with the next genes of the ranking).
    2. Inputs (predictors): for every target, the ``n_predictors_per_target``
       genes with the highest absolute Pearson correlation to it (raw counts)
       among the genes outside its subset; a subset's network reads the
       union of its targets' predictors.  ``n_candidate_predictors``
       restricts the candidates to the genes with the highest coefficient of
       variation.
    3. Networks: ``log1p`` counts in, ``Dense(hidden_dim)`` + ReLU, dropout,
       ``Dense(n_targets)`` + softplus out; loss ``mean(y * (y - y_hat)**2)``
       summed over the sub-networks; Adam, mini-batches of ``batch_size``
       cells, early stopping after ``patience`` epochs without improvement of
       the loss on ``validation_fraction`` of the cells.
    4. ``transform``: predictions above twice the largest ``log1p`` value (or
       NaN) are set to 0, turned back to counts (``expm1``), and combined with
       the input by ``policy``: ``"restore"`` keeps every non-zero count and
       fills only zeros (DeepImpute's default), ``"max"`` keeps the larger of
       input and prediction, ``"predict"`` replaces target genes entirely.
       Genes that are not targets are returned unchanged.

    Deliberate differences: the weights of the best validation epoch are kept
    (Keras' ``EarlyStopping`` keeps the last epoch's); the last subset is
    filled with the next-ranked genes rather than random ones; subsets never
    exceed the number of genes with non-zero variance (small inputs).

    Memory: sparse input stays sparse (each sub-network's ``log1p`` inputs
    and targets are CSR column blocks); training densifies one mini-batch of
    cells at a time (the validation cells in one block) and ``transform``
    4,096 cells at a time.

    Parameters
    ----------
    n_targets_per_network : int, default=512
        Target genes per sub-network (DeepImpute's ``sub_outputdim``).
    hidden_dim : int, default=256
        Width of each sub-network's hidden layer.
    dropout : float, default=0.2
        Dropout rate.
    n_predictors_per_target : int, default=5
        Input genes (predictors) per target gene: its most correlated genes
        (DeepImpute's ``ntop``).
    min_vmr : float, default=0.5
        Minimum ``var / (1 + mean)`` of an imputed gene.
    n_candidate_predictors : int or None, default=None
        Number of genes the predictors are chosen from (those with the
        highest coefficient of variation; DeepImpute's ``n_pred``); None:
        every gene with non-zero variance.
    learning_rate : float, default=1e-4
        {learning_rate}
    batch_size : int, default=64
        {batch_size}
    max_epochs : int, default=500
        Maximum training epochs.
    patience : int or None, default=5
        Epochs without validation improvement before stopping; None trains
        all ``max_epochs`` (the best validation epoch is kept either way).
    validation_fraction : float, default=0.05
        Fraction of the cells held out for early stopping (none if it rounds
        down to 0 cells: then every epoch is run and the last one kept).
    policy : {"restore", "max", "predict"}, default="restore"
        How predictions and observed counts are combined in ``transform``.
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds the subsets, the validation split, the initialisation and the
        batch order.
    {verbose}

    Attributes
    ----------
    targets_ : list of ndarray of int
        Target gene indices of each sub-network.
    predictors_ : list of ndarray of int
        Input gene indices of each sub-network.
    module_ : DeepImputeModule
        The trained sub-networks (on CPU).
    history_ : list of dict
        One record per training epoch: phase, epoch, train_loss (and
        valid_loss where a validation set is held out), seconds (one phase,
        ``"train"``).
    best_epoch_ : int or None
        Epoch whose weights were kept (lowest validation loss); None when no
        cell is held out.
    n_iter_ : int
        Number of epochs run.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    References
    ----------
    Arisdakessian, Poirion, Yunits, Zhu & Garmire (2019), "DeepImpute: an
    accurate, fast, and scalable deep neural network method to impute
    single-cell RNA-seq data", Genome Biology 20, 211.

    Examples
    --------
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> from skdance.imputation import DeepImpute
    >>> X, _ = load_pbmc_4k_subset()
    >>> imputer = DeepImpute(n_targets_per_network=256, max_epochs=5, random_state=0)
    >>> X_imputed = imputer.fit_transform(X)
    >>> observed = X.nonzero()
    >>> bool((X_imputed[observed] == X[observed]).all())  # "restore" policy
    True
    """

    _parameter_constraints = {
        "n_targets_per_network": [Interval(Integral, 1, None, closed="left")],
        "hidden_dim": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "n_predictors_per_target": [Interval(Integral, 1, None, closed="left")],
        "min_vmr": [Interval(Real, 0, None, closed="left")],
        "n_candidate_predictors": [Interval(Integral, 1, None, closed="left"), None],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        **VALIDATION_CONSTRAINTS,
        "policy": [StrOptions({"restore", "max", "predict"})],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_targets_per_network=512,
        hidden_dim=256,
        dropout=0.2,
        n_predictors_per_target=5,
        min_vmr=0.5,
        n_candidate_predictors=None,
        learning_rate=1e-4,
        batch_size=64,
        max_epochs=500,
        patience=5,
        validation_fraction=0.05,
        policy="restore",
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_targets_per_network = n_targets_per_network
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.n_predictors_per_target = n_predictors_per_target
        self.min_vmr = min_vmr
        self.n_candidate_predictors = n_candidate_predictors
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.policy = policy
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _choose_genes(self, X, rng):
        mean, var = mean_var(X)
        metric = var / (1.0 + mean)
        ranked = np.argsort(-metric, kind="stable")
        ranked = ranked[metric[ranked] > 0]
        if ranked.size < 2:
            raise ValueError(
                "DeepImpute needs at least 2 genes with non-zero variance; got "
                f"{ranked.size} feature(s) with non-zero variance."
            )
        size = min(self.n_targets_per_network, ranked.size - 1)
        n_targets = max(int((metric > self.min_vmr).sum()), 1)
        n_subsets = int(np.ceil(n_targets / size))
        chosen = ranked[: n_subsets * size]
        if chosen.size < n_subsets * size:  # refill from the chosen genes
            extra = rng.choice(chosen, n_subsets * size - chosen.size, replace=False)
            chosen = np.concatenate([chosen, extra])
        targets = rng.permutation(chosen).reshape(n_subsets, size)
        # predictor candidates: non-zero coefficient of variation
        std = np.sqrt(var * (X.shape[0] - 1) / X.shape[0])  # population std
        cv = np.divide(std, mean, out=np.zeros_like(std), where=mean > 0)
        candidates = np.flatnonzero(cv > 0)
        if self.n_candidate_predictors is not None:
            candidates = candidates[np.argsort(-cv[candidates], kind="stable")]
            candidates = np.sort(candidates[: self.n_candidate_predictors])
        Xc = sp.csc_matrix(X) if sp.issparse(X) else X
        predictors = []
        for subset in targets:
            corr = _abs_correlation(Xc, subset, candidates, mean, std)
            corr[:, np.isin(candidates, subset)] = -1.0
            k = min(self.n_predictors_per_target, candidates.size)
            top = np.argsort(-corr, axis=1, kind="stable")[:, :k]
            top = top[np.take_along_axis(corr, top, axis=1) >= 0]
            predictors.append(np.unique(candidates[top]))
        if any(p.size == 0 for p in predictors):
            raise ValueError(
                "DeepImpute found no input gene for a target subset; pass more genes."
            )
        return list(targets), predictors

    @staticmethod
    def _log_columns(X, gene_sets):
        """Row sources of ``log1p(X[:, genes])`` for each gene set.

        Each block is kept sparse (CSR, zeros stay zero) and densified one
        mini-batch of rows at a time.
        """
        sources = []
        for columns in gene_sets:
            block = sp.csr_matrix(X[:, columns])
            block.data = np.log1p(block.data)
            sources.append(RowSource(block))
        return sources

    def _fit(self, X):
        seed = check_random_state_int(self.random_state)
        rng = np.random.default_rng(seed)
        self.targets_, self.predictors_ = self._choose_genes(X, rng)
        inputs = self._log_columns(X, self.predictors_)
        outputs = self._log_columns(X, self.targets_)
        train, valid = validation_split(X.shape[0], self.validation_fraction, seed)
        with training(self, seed=seed) as run:
            module = run.place(
                DeepImputeModule(
                    [p.size for p in self.predictors_],
                    [t.size for t in self.targets_],
                    self.hidden_dim,
                    self.dropout,
                )
            )
            opt = torch.optim.Adam(module.parameters(), lr=self.learning_rate)

            def loss_fn(idx):
                preds = module([b.batch(idx, run.device) for b in inputs])
                targets = [b.batch(idx, run.device) for b in outputs]
                return sum(weighted_mse(y, p) for y, p in zip(targets, preds))

            self.best_epoch_ = run.fit_minibatches(
                opt,
                loss_fn,
                train,
                valid=valid,
                patience=self.patience,
                batch_size=self.batch_size,
                max_epochs=self.max_epochs,
            )

    def _transform(self, X):
        data = X.data if sp.issparse(X) else X
        limit = 2.0 * np.log1p(data.max()) if data.size else 0.0
        inputs = self._log_columns(X, self.predictors_)
        # batched inference: CHUNK_ROWS dense rows at a time
        parts = [
            self._impute_rows(X[rows], [b.batch(rows) for b in inputs], limit)
            for rows in inputs[0].chunks()
        ]
        if len(parts) == 1:
            return parts[0]
        return sp.vstack(parts, format="csr") if sp.issparse(X) else np.vstack(parts)

    def _impute_rows(self, X, inputs, limit):
        """Impute the rows ``X`` (their ``log1p`` inputs given as tensors)."""
        with torch.no_grad():
            preds = self.module_(inputs)
        targets = np.concatenate(self.targets_)
        pred = torch.cat(preds, dim=1).numpy().astype(np.float64)
        # duplicated targets (small inputs) are averaged
        genes, inverse = np.unique(targets, return_inverse=True)
        summed = np.zeros((pred.shape[0], genes.size))
        np.add.at(summed.T, inverse, pred.T)
        pred = summed / np.bincount(inverse)[None, :]
        observed = X[:, genes]
        observed = observed.toarray() if sp.issparse(observed) else np.asarray(observed)
        pred[(pred > limit) | ~np.isfinite(pred)] = 0.0
        counts = np.expm1(pred)
        if self.policy == "restore":
            counts = np.where(observed > 0, observed, counts)
        elif self.policy == "max":
            counts = np.maximum(observed, counts)
        return replace_columns(X, genes, counts)
