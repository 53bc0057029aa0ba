"""Latent semantic indexing: tf-idf, log and a truncated SVD (DANCE's LSI)."""

from numbers import Integral

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.decomposition import TruncatedSVD
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from skdance.preprocessing._utils import normalize_rows
from skdance.utils import validate_input

__all__ = ["LSI"]


class LSI(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Latent semantic indexing of counts or peaks (DANCE's ``lsiTransformer``).

    tf-idf (term frequency: each cell scaled to sum 1; inverse document
    frequency ``n_cells / column sum`` of the training cells), each cell
    scaled to sum 1 again, ``log1p(1e4 x)``, then a truncated SVD with one
    more component than asked, whose first (depth-like) component is
    dropped.  Inputs with negative values (e.g. centred or CLR data) skip
    the tf-idf and the log and get the truncated SVD alone, every component
    kept.  Sparse input stays sparse until the SVD.

    The idf and the SVD are learnt in ``fit`` and reused by ``transform``,
    so new cells are projected on the training components.  Used by
    scMoGNN's matching and joint embedding, JAE (``decomposition="lsi"``)
    and JointPCA's ATAC block.

    Parameters
    ----------
    n_components : int, default=50
        Components returned; fewer when the data have too few features
        (at most ``n_features - 1`` with the tf-idf, ``n_features``
        without).
    random_state : int, RandomState instance or None, default=None
        Seed of the randomised SVD.

    Attributes
    ----------
    tfidf_ : bool
        Whether the tf-idf and log were applied (the training values were
        non-negative).
    idf_ : ndarray of shape (`n_features_in_`,)
        Inverse document frequency of every feature (only with the tf-idf).
    svd_ : sklearn.decomposition.TruncatedSVD
        The fitted SVD (its first component is the dropped one with the
        tf-idf).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when the input had them.

    See Also
    --------
    sklearn.decomposition.TruncatedSVD : The decomposition alone.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.preprocessing import LSI
    >>> X = np.random.default_rng(0).poisson(1.0, (20, 10)).astype(float)
    >>> LSI(n_components=3, random_state=0).fit_transform(X).shape
    (20, 3)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=50, *, random_state=None):
        self.n_components = n_components
        self.random_state = random_state

    def _tfidf(self, X):
        T = normalize_rows(X, 1.0) @ sp.diags(self.idf_)
        T = sp.csr_matrix(normalize_rows(sp.csr_matrix(T), 1.0))
        T.data = np.log1p(T.data * 1e4)
        return T

    def _fit(self, X):
        self._validate_params()
        X = validate_input(self, X, reset=True)
        X = sp.csr_matrix(X, dtype=np.float64)
        self.tfidf_ = not (X.nnz and X.data.min() < 0)
        extra = int(self.tfidf_)
        k = min(self.n_components, X.shape[1] - extra)
        if k < 1:
            raise ValueError(
                f"LSI needs at least {1 + extra} features to return a component "
                f"(the first, depth-like one is dropped); got n_features = "
                f"{X.shape[1]}."
            )
        self.svd_ = TruncatedSVD(k + extra, random_state=self.random_state)
        self._n_features_out = k
        if not self.tfidf_:
            return self.svd_.fit_transform(X)
        total = np.asarray(X.sum(axis=0)).ravel()
        self.idf_ = np.divide(
            X.shape[0], total, out=np.zeros_like(total), where=total > 0
        )
        return self.svd_.fit_transform(self._tfidf(X))[:, 1:]

    def fit(self, X, y=None):
        """Learn the idf and the SVD of the training cells.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_features)
            Counts, peaks or any values (negative ones switch the tf-idf off).
        y : None
            Ignored.

        Returns
        -------
        self : LSI
            Fitted transformer.
        """
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return its components.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_features)
            Training cells.
        y : None
            Ignored.

        Returns
        -------
        X_new : ndarray of shape (n_cells, n_components)
            The components of the training cells.
        """
        return self._fit(X)

    def transform(self, X):
        """Project cells on the fitted components.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_features)
            Cells.

        Returns
        -------
        X_new : ndarray of shape (n_cells, n_components)
            Their components.
        """
        check_is_fitted(self)
        X = validate_input(self, X, reset=False)
        X = sp.csr_matrix(X, dtype=np.float64)
        if not self.tfidf_:
            return self.svd_.transform(X)
        return self.svd_.transform(self._tfidf(X))[:, 1:]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
