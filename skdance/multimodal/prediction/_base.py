"""Contract of the modality-prediction estimators.

A modality predictor is a multi-output regressor: ``fit(X_mod1, Y_mod2)``
on paired cells, ``predict(X_mod1)`` returns the second modality (n_cells x
n_features_mod2), ``score`` is the negative RMSE, the competition's metric.
The directions GEX->ADT, ADT->GEX, GEX->ATAC, ATAC->GEX are only which
matrix is ``X``.
"""

from abc import ABCMeta, abstractmethod

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from skdance.metrics import rmse
from skdance.multimodal._paired import (
    first_modality,
    paired_inputs,
    validate_paired,
    validate_second_modality,
)
from skdance.utils import SkdanceTags, check_finite_output, validate_input

__all__ = ["BaseModalityPredictor"]


class BaseModalityPredictor(RegressorMixin, BaseEstimator, metaclass=ABCMeta):
    """Base of the modality predictors: paired fit, multi-output predict.

    Subclasses implement ``_fit(X, Y)`` and ``_predict(X)`` on validated
    matrices (``Y`` always 2-D).  A 1-D ``Y`` in ``fit`` (one second-modality
    feature) gives a 1-D prediction, as for scikit-learn regressors.
    """

    @abstractmethod
    def _fit(self, X, Y):
        """Learn to predict ``Y`` (n_cells x n_features_mod2) from ``X``."""

    @abstractmethod
    def _predict(self, X):
        """Return the predicted second modality of validated ``X``."""

    def fit(self, X, Y=None):
        """Learn the mapping from the first modality to the second.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData, MuData} of shape \
(n_cells, n_features_mod1)
            First modality, or a MuData holding both (``mudata_mods``
            chooses which two; ``Y`` is then left out).
        Y : {array-like, sparse matrix, AnnData} of shape \
(n_cells, n_features_mod2), default=None
            Second modality of the same cells, in the same row order.

        Returns
        -------
        self : object
            Fitted predictor.
        """
        self._validate_params()
        X, Y = paired_inputs(self, X, Y)
        values = getattr(Y, "X", Y)
        ndim = getattr(values, "ndim", None)  # not np.ndim: array-likes
        self._y_1d = (np.asarray(values).ndim if ndim is None else ndim) == 1
        X, Y = validate_paired(self, X, Y, reset=True, ensure_min_samples=2)
        self._fit(X, Y)
        return self

    def predict(self, X):
        """Predict the second modality of new cells.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData, MuData} of shape \
(n_cells, n_features_mod1)
            First modality, on the features seen in ``fit`` (of a MuData:
            the first of ``mudata_mods``).

        Returns
        -------
        Y_pred : ndarray of shape (n_cells, n_features_mod2)
            Predicted second modality (1-D when ``fit`` saw a 1-D ``Y``).
        """
        check_is_fitted(self)
        X = validate_input(self, first_modality(self, X), reset=False)
        Y = np.asarray(self._predict(X), dtype=np.float64)
        check_finite_output(Y, whom=type(self).__name__, what="prediction")
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if Y.shape != (X.shape[0], self.n_features_mod2_):
            raise RuntimeError(  # pragma: no cover - a subclass bug
                f"{type(self).__name__}._predict returned shape {Y.shape}."
            )
        return Y.ravel() if self._y_1d else Y

    def score(self, X, y=None, sample_weight=None):
        """Negative RMSE of the prediction (greater is better).

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData, MuData} of shape \
(n_cells, n_features_mod1)
            First modality, or a MuData holding both.
        y : {array-like, sparse matrix, AnnData} of shape \
(n_cells, n_features_mod2), default=None
            True second modality, on the features (and, where named, in the
            feature order) seen in ``fit``.
        sample_weight : None
            Not supported; must be None.

        Returns
        -------
        score : float
            ``-rmse(y, predict(X))`` over all cells and features.
        """
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by the RMSE score.")
        check_is_fitted(self)
        X, y = paired_inputs(self, X, y)
        pred = self.predict(X)
        Y = validate_second_modality(self, y, pred.shape[0], reset=False, name="y")
        return -rmse(Y, pred.reshape(Y.shape))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        # score is -RMSE (the competition's metric), not R^2: scikit-learn's
        # "score > 0.5" check of regressors does not apply
        tags.regressor_tags.poor_score = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="modality_prediction")
