"""CellTypist: logistic regression cell-type classifier."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils._param_validation import Interval

from skdance.annotation._base import AnnotatorMixin
from skdance.utils._validation import check_random_state_int

__all__ = ["Celltypist"]


class Celltypist(AnnotatorMixin):
    """CellTypist's regularised one-vs-rest logistic regression annotator.

    Follows ``celltypist.train`` (Domínguez Conde et al. 2022): the input is
    log1p of counts normalised to 10,000 per cell; genes are standardised
    with the training means and standard deviations and clipped at
    ``max_value`` from above; one L2-regularised logistic regression per cell
    type (one-vs-rest) is trained with L-BFGS, or with stochastic gradient
    descent (``use_sgd=True``, the choice for large references).  With
    ``feature_selection=True`` the model is trained twice: the
    ``top_genes`` genes with the largest absolute coefficients of each class
    are kept and a second model is trained on their union, as CellTypist does.

    Simplification: CellTypist's optional majority voting over an
    over-clustering of the query is not part of ``predict``; compose it with a
    clusterer if wanted.  Probabilities are the one-vs-rest probabilities
    normalised to sum to 1 (CellTypist reports them un-normalised).

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength (L-BFGS).
    max_iter : int, default=1000
        Solver iterations (epochs for SGD).
    use_sgd : bool, default=False
        Train with ``SGDClassifier(loss="log_loss")`` instead of L-BFGS.
    alpha : float, default=1e-4
        L2 strength for SGD.
    feature_selection : bool, default=False
        Two-pass training on the top genes of every class.
    top_genes : int, default=300
        Genes kept per class with ``feature_selection=True``.
    max_value : float, default=10.0
        Upper clip of the standardised expression.
    random_state : int, RandomState instance or None, default=None
        Seed of SGD.
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
    classifier_ : estimator
        The fitted one-vs-rest classifier.
    n_iter_ : int
        Largest number of solver iterations among the per-class fits.
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
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "feature_selection": ["boolean"],
        "top_genes": [Interval(Integral, 1, None, closed="left")],
        "max_value": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(self, *, C=1.0, max_iter=1000, use_sgd=False, alpha=1e-4,
                 feature_selection=False, top_genes=300, max_value=10.0,
                 random_state=None, n_jobs=None):
        self.C = C
        self.max_iter = max_iter
        self.use_sgd = use_sgd
        self.alpha = alpha
        self.feature_selection = feature_selection
        self.top_genes = top_genes
        self.max_value = max_value
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _standardise(self, X):
        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        out = (dense[:, self.genes_] - self.mean_) / self.std_
        return np.minimum(out, self.max_value)

    def _train(self, X, y, genes, seed):
        self.genes_ = genes
        sub = X[:, genes]
        sub = sub.toarray() if sp.issparse(sub) else np.asarray(sub)
        self.mean_ = sub.mean(axis=0)
        std = sub.std(axis=0)
        std[std == 0] = 1.0
        self.std_ = std
        if self.use_sgd:
            base = SGDClassifier(loss="log_loss", alpha=self.alpha,
                                 max_iter=self.max_iter, random_state=seed)
        else:
            base = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.classifier_ = OneVsRestClassifier(base, n_jobs=self.n_jobs).fit(
            self._standardise(X), y
        )
        self.n_iter_ = int(max(np.max(est.n_iter_)
                               for est in self.classifier_.estimators_))

    def _fit(self, X, y):
        seed = check_random_state_int(self.random_state)
        self._train(X, y, np.arange(X.shape[1]), seed)
        if self.feature_selection:
            coef = np.vstack([est.coef_ for est in self.classifier_.estimators_])
            k = min(self.top_genes, X.shape[1])
            top = np.argpartition(-np.abs(coef), k - 1, axis=1)[:, :k]
            self._train(X, y, np.unique(top), seed)

    def _predict_proba(self, X):
        return self.classifier_.predict_proba(self._standardise(X))
