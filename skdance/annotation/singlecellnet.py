"""SingleCellNet: random forest on top-scoring gene pairs."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval

from skdance.annotation._base import BaseAnnotator
from skdance.utils import check_random_state_int

__all__ = ["SingleCellNet"]


def _template_correlation(values, indicators):
    """Pearson correlation of every column of ``values`` with every indicator.

    ``values`` is (n_cells, n_features), ``indicators`` (n_cells, n_classes);
    returns (n_features, n_classes).  Constant columns get correlation 0.
    """
    v = values - values.mean(axis=0)
    t = indicators - indicators.mean(axis=0)
    v_norm = np.linalg.norm(v, axis=0)
    t_norm = np.linalg.norm(t, axis=0)
    denom = np.outer(v_norm, t_norm)
    corr = v.T @ t
    return np.divide(corr, denom, out=np.zeros_like(corr), where=denom > 0)


class SingleCellNet(BaseAnnotator):
    """SingleCellNet's top-pair random forest (Tan & Cahan 2019).

    Training, as in ``scn_train`` of pySingleCellNet:

    1. *Classifying genes*: for every cell type, the ``n_top_genes`` genes
       whose expression best matches the type's template (absolute Pearson
       correlation with the 0/1 membership vector: up- or down-regulated).
    2. *Top-scoring pairs*: every pair ``(a, b)`` of one type's genes gives
       a binary feature ``x_a > x_b``, which is invariant to per-cell
       normalisation; for every type the ``n_top_gene_pairs`` pairs whose
       feature best matches its template (absolute correlation) are kept
       (pySCN's per-type pair search).
    3. *Random class*: ``n_rand`` profiles made by shuffling the genes of
       randomly drawn training cells are added under an extra "rand" label,
       so that cells unlike any type get low scores.
    4. A random forest of ``n_trees`` trees on the pair features.

    ``predict_proba`` drops the "rand" column and renormalises, so rows sum to
    1 over the real cell types (pySingleCellNet reports the rand score too).
    Simplification: gene selection uses template matching on the given
    expression rather than pySCN's limma-style statistics table.

    pySCN's defaults are used (100 genes, 100 pairs, 100 random profiles,
    1000 trees); it log-normalises and scales (max 10) the counts first,
    which is ``NormalizeTotal(1e4), Log1p(), ScaleGenes(max_value=10)`` in
    front of this estimator.

    Parameters
    ----------
    n_top_genes : int, default=100
        Classifying genes per cell type.
    n_top_gene_pairs : int, default=100
        Gene pairs per cell type.
    n_rand : int, default=100
        Shuffled profiles in the "rand" class (0 disables it).
    n_trees : int, default=1000
        Trees in the forest.
    stratify : bool, default=False
        Balance classes in each tree's bootstrap sample.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffling and the forest.
    n_jobs : int or None, default=None
        Parallel tree building.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Cell types.
    gene_pairs_ : ndarray of shape (n_pairs, 2)
        Gene index pairs ``(a, b)`` of the features ``x_a > x_b``.
    forest_ : sklearn.ensemble.RandomForestClassifier
        The fitted forest (last class is "rand" when ``n_rand > 0``).
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    References
    ----------
    Tan & Cahan (2019), "SingleCellNet: a computational tool to classify
    single cell RNA-seq data across platforms and across species", Cell
    Systems 9, 207-213.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skdance.annotation import SingleCellNet
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> from skdance.preprocessing import Log1p, NormalizeTotal
    >>> X, y = load_pbmc_4k_subset()
    >>> model = make_pipeline(NormalizeTotal(target_sum=1e4), Log1p(),
    ...                       SingleCellNet(n_trees=200, random_state=0))
    >>> model.fit(X[::2], y[::2]).score(X[1::2], y[1::2]) > 0.8
    True
    """

    _parameter_constraints = {
        "n_top_genes": [Interval(Integral, 1, None, closed="left")],
        "n_top_gene_pairs": [Interval(Integral, 1, None, closed="left")],
        "n_rand": [Interval(Integral, 0, None, closed="left")],
        "n_trees": [Interval(Integral, 1, None, closed="left")],
        "stratify": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        *,
        n_top_genes=100,
        n_top_gene_pairs=100,
        n_rand=100,
        n_trees=1000,
        stratify=False,
        random_state=None,
        n_jobs=None,
    ):
        self.n_top_genes = n_top_genes
        self.n_top_gene_pairs = n_top_gene_pairs
        self.n_rand = n_rand
        self.n_trees = n_trees
        self.stratify = stratify
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _pair_features(self, X):
        genes, inverse = np.unique(self.gene_pairs_, return_inverse=True)
        sub = X[:, genes]
        sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
        inverse = inverse.reshape(-1, 2)
        return (sub[:, inverse[:, 0]] > sub[:, inverse[:, 1]]).astype(np.float32)

    def _fit(self, X, y):
        rng = check_random_state(self.random_state)
        if X.shape[1] < 2:
            raise ValueError(
                f"SingleCellNet needs at least 2 genes to form gene pairs; got "
                f"n_features={X.shape[1]}."
            )
        n_classes = self.classes_.size
        indicators = np.eye(n_classes)[y]
        dense = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)

        # 1. classifying genes per type by template matching (up or down)
        gene_corr = np.abs(_template_correlation(dense, indicators))
        k = min(self.n_top_genes, dense.shape[1])
        ia, ib = np.triu_indices(k, k=1)
        n_pairs = min(self.n_top_gene_pairs, ia.size)
        chosen = []
        for c in range(n_classes):
            genes = np.argsort(-gene_corr[:, c], kind="stable")[:k]
            # 2. top-scoring pairs among this type's own genes
            sub = dense[:, genes]
            pairs = (sub[:, ia] > sub[:, ib]).astype(np.float32)
            score = np.abs(_template_correlation(pairs, indicators[:, [c]])).ravel()
            top = np.argsort(-score, kind="stable")[:n_pairs]
            chosen.append(np.column_stack([genes[ia[top]], genes[ib[top]]]))
        self.gene_pairs_ = np.unique(np.vstack(chosen), axis=0)
        features = self._pair_features(dense)
        labels = y

        # 3. the "rand" class: training cells with their genes shuffled
        if self.n_rand > 0:
            picks = rng.randint(dense.shape[0], size=self.n_rand)
            shuffled = np.array([rng.permutation(dense[i]) for i in picks])
            features = np.vstack([features, self._pair_features(shuffled)])
            labels = np.concatenate([y, np.full(self.n_rand, n_classes)])

        # 4. the forest
        self.forest_ = RandomForestClassifier(
            n_estimators=self.n_trees,
            class_weight="balanced_subsample" if self.stratify else None,
            random_state=check_random_state_int(rng),
            n_jobs=self.n_jobs,
        ).fit(features, labels)

    def _predict_proba(self, X):
        proba = self.forest_.predict_proba(self._pair_features(X))
        proba = proba[:, : self.classes_.size]
        totals = proba.sum(axis=1, keepdims=True)
        uniform = np.full_like(proba, 1.0 / self.classes_.size)
        return np.divide(proba, totals, out=uniform, where=totals > 0)
