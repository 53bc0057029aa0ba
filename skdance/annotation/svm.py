"""Support vector machine cell-type classifier (DANCE's SVM baseline)."""

from numbers import Integral, Real

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC
from sklearn.utils._param_validation import Interval, StrOptions

from skdance.annotation._base import BaseAnnotator
from skdance.utils import check_random_state_int

__all__ = ["SVM"]


class SVM(BaseAnnotator):
    """Support vector machine for cell-type annotation.

    The SVM baseline of DANCE and of the Abdelaal et al. (2019) annotation
    benchmark, where a linear-kernel SVM on log-normalised expression was
    among the most accurate methods.  Class probabilities come from Platt
    scaling of an :class:`sklearn.svm.SVC` (sigmoid calibration on
    cross-validated decision values, the SVC itself refitted on all cells).
    As in :class:`sklearn.svm.SVC`, ``predict`` uses the SVM's decision
    function, so it can rarely disagree with the argmax of ``predict_proba``.
    Put normalisation, log and gene
    selection before it in a Pipeline.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength.
    kernel : {"linear", "rbf", "poly", "sigmoid"}, default="linear"
        Kernel.
    gamma : {"scale", "auto"} or float, default="scale"
        Kernel coefficient for non-linear kernels.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes (``{label: weight}``), or "balanced" to
        reweight them inversely to their frequency.
    max_iter : int, default=-1
        Solver iteration limit; -1 for none.
    random_state : int, RandomState instance or None, default=None
        Seed of the probability calibration.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Cell types.
    classifier_ : sklearn.calibration.CalibratedClassifierCV
        The calibrated support vector classifier (trained on encoded labels).
    n_iter_ : ndarray of int
        Solver iterations of each one-vs-one sub-problem.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    Celltypist : Logistic regression annotator.

    References
    ----------
    Abdelaal et al. (2019), "A comparison of automatic cell identification
    methods for single-cell RNA sequencing data", Genome Biology 20, 194.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from skdance.annotation import SVM
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> from skdance.preprocessing import Log1p, NormalizeTotal
    >>> X, y = load_pbmc_4k_subset()
    >>> model = make_pipeline(NormalizeTotal(target_sum=1e4), Log1p(),
    ...                       SVM(random_state=0)).fit(X[::2], y[::2])
    >>> round(model.score(X[1::2], y[1::2]), 1) >= 0.8
    True
    """

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "kernel": [StrOptions({"linear", "rbf", "poly", "sigmoid"})],
        "gamma": [
            StrOptions({"scale", "auto"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "max_iter": [Interval(Integral, -1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        C=1.0,
        kernel="linear",
        gamma="scale",
        class_weight=None,
        max_iter=-1,
        random_state=None,
    ):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit(self, X, y):
        class_weight = self.class_weight
        if isinstance(class_weight, dict):  # the SVC sees encoded labels
            index = {c: i for i, c in enumerate(self.classes_)}
            class_weight = {index[c]: w for c, w in class_weight.items()}
        svc = SVC(
            C=self.C,
            kernel=self.kernel,
            gamma=self.gamma,
            class_weight=class_weight,
            max_iter=self.max_iter,
            random_state=check_random_state_int(self.random_state),
        )
        # Platt scaling needs held-out decision values: up to 5 stratified folds
        n_folds = int(min(5, np.bincount(y).min()))
        if n_folds < 2:
            raise ValueError(
                "SVM needs at least 2 cells of every cell type to calibrate its "
                "probabilities."
            )
        self.classifier_ = CalibratedClassifierCV(
            svc, method="sigmoid", cv=n_folds, ensemble=False
        ).fit(X, y)
        self.n_iter_ = self.classifier_.calibrated_classifiers_[0].estimator.n_iter_

    def _predict_proba(self, X):
        return self.classifier_.predict_proba(X)

    def predict(self, X):
        """Cell type of each cell from the SVM decision function.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Expression on the same genes as in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_cells,)
            Predicted labels.
        """
        X = self._check_predict_input(X)
        svc = self.classifier_.calibrated_classifiers_[0].estimator
        return self.classes_[svc.predict(X)]
