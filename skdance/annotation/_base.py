"""Shared plumbing of the cell-type classifiers."""

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from skdance.utils import SkdanceTags, validate_input

__all__ = ["BaseAnnotator"]


class BaseAnnotator(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Validation, label encoding and predict-from-proba for annotators.

    Subclasses implement ``_fit(X, y_encoded)`` and ``_predict_proba(X)``
    (columns in the order of ``classes_``).
    """

    @abstractmethod
    def _fit(self, X, y):
        """Train on validated ``X`` and integer-encoded ``y``."""

    @abstractmethod
    def _predict_proba(self, X):
        """Class probabilities of validated ``X``, columns as ``classes_``."""

    def fit(self, X, y):
        """Train on labelled cells.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Expression (see the class docstring for the expected scale).
        y : array-like of shape (n_cells,)
            Cell-type labels.

        Returns
        -------
        self : object
            Fitted classifier.
        """
        self._validate_params()
        X, y = validate_input(self, X, y, reset=True, ensure_min_samples=2)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if self.classes_.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 cell types in y; got 1 class."
            )
        self._fit(X, encoder.transform(y))
        return self

    def _check_predict_input(self, X):
        check_is_fitted(self)
        return validate_input(self, X, reset=False)

    def predict_proba(self, X):
        """Probability of each cell type.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Expression on the same genes as in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_cells, n_classes)
            Rows sum to 1; columns follow ``classes_``.
        """
        return self._predict_proba(self._check_predict_input(X))

    def predict(self, X):
        """Most probable cell type of each cell.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Expression on the same genes as in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_cells,)
            Predicted labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="annotation")
