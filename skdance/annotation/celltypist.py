"""CellTypist: logistic regression cell-type classifier."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import Interval

from skdance.annotation._base import BaseAnnotator
from skdance.utils import check_random_state_int

__all__ = ["Celltypist", "majority_vote"]


def default_over_clustering_resolution(n_cells):
    """CellTypist's Leiden resolution for the over-clustering of ``n_cells`` cells.

    5, 10, 15, 20, 25 and 30 below 5k, 20k, 40k, 100k, 200k cells and above.
    """
    for limit, resolution in (
        (5_000, 5.0),
        (20_000, 10.0),
        (40_000, 15.0),
        (100_000, 20.0),
        (200_000, 25.0),
    ):
        if n_cells < limit:
            return resolution
    return 30.0


def majority_vote(predicted, clusters, min_prop=0.0):
    """Relabel every cluster with its most frequent predicted label.

    CellTypist's ``majority_vote``: within each cluster of ``clusters`` the
    dominant label of ``predicted`` is given to all cells (ties: the smallest
    label).  A cluster whose dominant label covers fewer than ``min_prop`` of
    its cells keeps its per-cell labels (CellTypist names it
    "Heterogeneous"; a classifier here only returns labels it knows).

    Parameters
    ----------
    predicted : array-like of shape (n_cells,)
        Per-cell labels.
    clusters : array-like of shape (n_cells,)
        Over-clustering of the same cells.
    min_prop : float, default=0.0
        Minimum share of the dominant label.

    Returns
    -------
    voted : ndarray of shape (n_cells,)
        Labels after voting.

    Examples
    --------
    >>> from skdance.annotation import majority_vote
    >>> majority_vote(["B", "B", "T", "T", "T"], [0, 0, 0, 1, 1]).tolist()
    ['B', 'B', 'B', 'T', 'T']
    """
    predicted = np.asarray(predicted)
    clusters = np.asarray(clusters)
    if predicted.shape != clusters.shape or predicted.ndim != 1:
        raise ValueError(
            f"predicted and clusters must be 1-D and of equal length, got shapes "
            f"{predicted.shape} and {clusters.shape}."
        )
    labels, codes = np.unique(predicted, return_inverse=True)
    groups, members = np.unique(clusters, return_inverse=True)
    counts = np.zeros((groups.size, labels.size), dtype=np.int64)
    np.add.at(counts, (members, codes), 1)
    dominant = counts.argmax(axis=1)
    share = counts.max(axis=1) / counts.sum(axis=1)
    voted = labels[dominant[members]]
    keep = share[members] < min_prop
    voted[keep] = predicted[keep]
    return voted


class Celltypist(BaseAnnotator):
    """CellTypist's regularised one-vs-rest logistic regression annotator.

    Follows ``celltypist.train`` and ``celltypist.annotate`` (Domínguez Conde
    et al. 2022):

    1. Input: log1p of counts normalised to 10,000 per cell (put
       ``NormalizeTotal(1e4)`` and ``Log1p`` before it in a Pipeline).  Genes
       are standardised with the training means and standard deviations and
       clipped at ``max_value`` from above (training and prediction).
    2. Model: one L2-regularised logistic regression per cell type
       (one-vs-rest), trained with L-BFGS (``C``), or with stochastic gradient
       descent (``use_sgd=True``: ``SGDClassifier(loss="log_loss")``, L2
       strength ``weight_decay``), the choice for large references.
    3. Mini-batch SGD (``use_sgd=True, mini_batch=True``): ``max_epochs`` epochs;
       each draws ``batch_number * batch_size`` cells (at most all of them)
       without replacement — with probability inversely proportional to the
       cell type's frequency when ``balance_cell_type=True`` — and makes one
       ``partial_fit`` step per batch of ``batch_size`` cells.
    4. Feature selection (``feature_selection=True``): a first SGD model is
       trained (as CellTypist does, whatever ``use_sgd``), the ``n_top_genes``
       genes with the largest absolute coefficients of every class are kept,
       and the final model is trained on their union.
    5. Majority voting (``majority_voting=True``): ``predict`` over-clusters
       the query cells with CellTypist's recipe (genes detected in at least
       5 cells, up to 2,500 highly variable genes, scaling clipped at 10,
       50 principal components, 10-neighbour graph, Leiden at
       ``over_clustering_resolution``, by default 5-30 growing with the
       number of cells) and gives every cluster its dominant predicted type
       (:func:`majority_vote`).  A precomputed clustering can be passed as
       ``predict(X, over_clustering=labels)``.  ``predict_proba`` stays per
       cell.

    Differences from CellTypist: probabilities are the one-vs-rest
    probabilities normalised to sum to 1 (CellTypist reports each class's
    sigmoid, un-normalised); clusters below ``min_prop`` keep their per-cell
    labels instead of being named "Heterogeneous"; with fewer genes than
    ``n_top_genes`` feature selection keeps all genes instead of raising.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength (L-BFGS).
    max_iter : int, default=1000
        Solver iterations (epochs of full-batch SGD).
    use_sgd : bool, default=False
        Train with SGD instead of L-BFGS.
    weight_decay : float, default=1e-4
        L2 strength for SGD.
    mini_batch : bool, default=False
        Mini-batch SGD (with ``use_sgd=True``, and for the first pass of
        feature selection).
    batch_number : int, default=100
        Batches per epoch in mini-batch mode.
    batch_size : int, default=1000
        Cells per batch in mini-batch mode; must be smaller than the number
        of training cells.
    max_epochs : int, default=10
        Epochs in mini-batch mode.
    balance_cell_type : bool, default=False
        Sample rare cell types more often in mini-batch mode.
    feature_selection : bool, default=False
        Two-pass training on the top genes of every class.
    n_top_genes : int, default=300
        Genes kept per class with ``feature_selection=True``.
    max_value : float, default=10.0
        Upper clip of the standardised expression.
    majority_voting : bool, default=False
        Refine ``predict`` by majority voting over an over-clustering of the
        query cells (makes ``predict`` depend on the cells predicted
        together).
    over_clustering_resolution : float or None, default=None
        Leiden resolution of the over-clustering; None: CellTypist's default
        for the number of query cells.
    min_prop : float, default=0.0
        Minimum share of a cluster's dominant type for the vote to apply.
    random_state : int, RandomState instance or None, default=None
        Seed of SGD, mini-batch sampling and the over-clustering.
    n_jobs : int or None, default=None
        Parallel one-vs-rest fits.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Cell types.
    genes_ : ndarray of int
        Indices of the genes used by the final model (all genes without
        feature selection).
    mean_, std_ : ndarray of shape (n_genes_used,)
        Standardisation statistics of the used genes.
    classifier_ : OneVsRestClassifier
        The fitted one-vs-rest classifier.
    n_iter_ : int
        Largest number of solver iterations among the per-class fits
        (optimiser steps in mini-batch mode).
    over_clustering_ : ndarray of shape (n_query_cells,)
        Over-clustering of the last ``predict`` with majority voting.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    References
    ----------
    Domínguez Conde et al. (2022), "Cross-tissue immune cell analysis reveals
    tissue-specific features in humans", Science 376, eabl5197.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skdance.annotation import Celltypist
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> from skdance.preprocessing import Log1p, NormalizeTotal
    >>> X, y = load_pbmc_4k_subset()
    >>> model = make_pipeline(NormalizeTotal(target_sum=1e4), Log1p(),
    ...                       Celltypist()).fit(X[::2], y[::2])
    >>> model.score(X[1::2], y[1::2]) > 0.8
    True
    """

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "use_sgd": ["boolean"],
        "weight_decay": [Interval(Real, 0, None, closed="neither")],
        "mini_batch": ["boolean"],
        "batch_number": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "balance_cell_type": ["boolean"],
        "feature_selection": ["boolean"],
        "n_top_genes": [Interval(Integral, 1, None, closed="left")],
        "max_value": [Interval(Real, 0, None, closed="neither")],
        "majority_voting": ["boolean"],
        "over_clustering_resolution": [Interval(Real, 0, None, closed="neither"), None],
        "min_prop": [Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        *,
        C=1.0,
        max_iter=1000,
        use_sgd=False,
        weight_decay=1e-4,
        mini_batch=False,
        batch_number=100,
        batch_size=1000,
        max_epochs=10,
        balance_cell_type=False,
        feature_selection=False,
        n_top_genes=300,
        max_value=10.0,
        majority_voting=False,
        over_clustering_resolution=None,
        min_prop=0.0,
        random_state=None,
        n_jobs=None,
    ):
        self.C = C
        self.max_iter = max_iter
        self.use_sgd = use_sgd
        self.weight_decay = weight_decay
        self.mini_batch = mini_batch
        self.batch_number = batch_number
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.balance_cell_type = balance_cell_type
        self.feature_selection = feature_selection
        self.n_top_genes = n_top_genes
        self.max_value = max_value
        self.majority_voting = majority_voting
        self.over_clustering_resolution = over_clustering_resolution
        self.min_prop = min_prop
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _standardise(self, X):
        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        out = (dense[:, self.genes_] - self.mean_) / self.std_
        return np.minimum(out, self.max_value)

    def _minibatch_sgd(self, Z, y, seed):
        n = Z.shape[0]
        if n <= self.batch_size:
            raise ValueError(
                f"Celltypist mini-batch training needs more cells ({n}) than "
                f"batch_size ({self.batch_size}); lower batch_size or set "
                "mini_batch=False."
            )
        rng = np.random.default_rng(seed)
        n_sample = min(self.batch_number * self.batch_size, n)
        p = None
        if self.balance_cell_type:
            freq = np.bincount(y)
            p = 1.0 / (freq[y] * np.count_nonzero(freq))
            p /= p.sum()
        classes = np.arange(len(self.classes_))
        clf = OneVsRestClassifier(
            SGDClassifier(loss="log_loss", alpha=self.weight_decay, random_state=seed),
            n_jobs=self.n_jobs,
        )
        steps = 0
        for _ in range(self.max_epochs):
            cells = rng.choice(n, n_sample, replace=False, p=p)
            for start in range(0, n_sample, self.batch_size):
                batch = cells[start : start + self.batch_size]
                clf.partial_fit(Z[batch], y[batch], classes=classes)
                steps += 1
        return clf, steps

    def _train(self, X, y, genes, seed, *, sgd):
        self.genes_ = genes
        sub = X[:, genes]
        sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
        self.mean_ = sub.mean(axis=0)
        std = sub.std(axis=0)
        std[std == 0] = 1.0
        self.std_ = std
        Z = self._standardise(X)
        if sgd and self.mini_batch:
            self.classifier_, self.n_iter_ = self._minibatch_sgd(Z, y, seed)
            return
        if sgd:
            base = SGDClassifier(
                loss="log_loss",
                alpha=self.weight_decay,
                max_iter=self.max_iter,
                random_state=seed,
            )
        else:
            base = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.classifier_ = OneVsRestClassifier(base, n_jobs=self.n_jobs).fit(Z, y)
        self.n_iter_ = int(
            max(np.max(est.n_iter_) for est in self.classifier_.estimators_)
        )

    def _fit(self, X, y):
        seed = check_random_state_int(self.random_state)
        all_genes = np.arange(X.shape[1])
        if self.feature_selection:
            # CellTypist's first pass is always SGD
            self._train(X, y, all_genes, seed, sgd=True)
            coef = np.vstack([est.coef_ for est in self.classifier_.estimators_])
            k = min(self.n_top_genes, X.shape[1])
            top = np.argpartition(-np.abs(coef), k - 1, axis=1)[:, :k]
            self._train(X, y, np.unique(top), seed, sgd=self.use_sgd)
        else:
            self._train(X, y, all_genes, seed, sgd=self.use_sgd)

    def _predict_proba(self, X):
        # one-vs-rest probabilities sigmoid(d_k), normalised over classes; in
        # log space, so that cells far from every class (all sigmoids
        # underflowing, common after a few large SGD steps) still get a
        # distribution instead of a row of zeros
        dec = self.classifier_.decision_function(self._standardise(X))
        if dec.ndim == 1:
            p = expit(dec)
            return np.column_stack([1.0 - p, p])
        return softmax(-np.logaddexp(0.0, -dec), axis=1)

    def predict(self, X, over_clustering=None):
        """Most probable cell type of each cell, majority-voted if asked.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Log-normalised expression on the genes seen in ``fit``.
        over_clustering : array-like of shape (n_cells,) or None, default=None
            Cluster labels for majority voting; None computes CellTypist's
            over-clustering (only with ``majority_voting=True``).

        Returns
        -------
        y_pred : ndarray of shape (n_cells,)
            Predicted labels.
        """
        Xv = self._check_predict_input(X)
        pred = self.classes_[np.argmax(self._predict_proba(Xv), axis=1)]
        if over_clustering is None and not self.majority_voting:
            return pred
        if over_clustering is None:
            over_clustering = self._over_cluster(Xv)
        over_clustering = np.asarray(over_clustering)
        if over_clustering.shape != (Xv.shape[0],):
            raise ValueError(
                f"over_clustering must hold one label per cell ({Xv.shape[0]}), "
                f"got shape {over_clustering.shape}."
            )
        self.over_clustering_ = over_clustering
        return majority_vote(pred, over_clustering, self.min_prop)

    def _over_cluster(self, X):
        from skdance.clustering import Leiden
        from skdance.graph import KNNGraph
        from skdance.preprocessing import (
            HighlyVariableGenes,
            ScaleGenes,
            filter_genes,
        )

        n = X.shape[0]
        if n < 3:
            return np.arange(n)
        seed = check_random_state_int(self.random_state)
        keep = filter_genes(X, min_cells=min(5, n))
        E = X[:, keep] if keep.any() else X
        n_comps = min(50, n - 1, E.shape[1] - 1)
        steps = [ScaleGenes(max_value=10)]
        if E.shape[1] > 2500:
            steps.insert(
                0,
                HighlyVariableGenes(
                    n_top_genes=2500, flavor="seurat", log_normalize=False
                ),
            )
        if n_comps >= 1:
            steps.append(PCA(n_comps, random_state=seed))
        Z = make_pipeline(*steps).fit_transform(E)
        resolution = (
            self.over_clustering_resolution or default_over_clustering_resolution(n)
        )
        leiden = Leiden(
            graph=KNNGraph(n_neighbors=min(10, n - 1), mode="umap"),
            resolution=resolution,
            random_state=seed,
        )
        return leiden.fit_predict(Z)
