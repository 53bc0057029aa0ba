"""Per-gene standardisation with clipping (scanpy's pp.scale)."""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from skdance.preprocessing._utils import mean_var
from skdance.utils import validate_input

__all__ = ["ScaleGenes"]


class ScaleGenes(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Scale every gene to unit variance (and zero mean), then clip.

    ``fit_transform`` equals :func:`scanpy.pp.scale` on the same data
    (unbiased variance, genes with zero variance left unscaled, values
    clipped to ``[-max_value, max_value]``).  Unlike scanpy, the means and
    standard deviations are learnt in ``fit`` and reused by ``transform``, so
    test cells are scaled with the training statistics.

    Parameters
    ----------
    zero_center : bool, default=True
        Subtract the gene mean.  Zero-centring a sparse matrix makes it dense,
        so sparse input gives a dense ndarray in that case.  With
        ``zero_center=False`` sparse input stays sparse.
    max_value : float or None, default=None
        Clip scaled values to this maximum (and, when zero-centred, to
        ``-max_value`` from below).  Scanpy's recipes use 10.

    Attributes
    ----------
    mean_ : ndarray of shape (`n_features_in_`,)
        Gene means of the training data.
    std_ : ndarray of shape (`n_features_in_`,)
        Gene standard deviations (ddof=1) with zeros replaced by 1.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : Same idea, biased variance, no clip.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.preprocessing import ScaleGenes
    >>> ScaleGenes(max_value=0.5).fit_transform(np.array([[0.0, 1.0], [2.0, 1.0]]))
    array([[-0.5,  0. ],
           [ 0.5,  0. ]])
    """

    _parameter_constraints = {
        "zero_center": ["boolean"],
        "max_value": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, *, zero_center=True, max_value=None):
        self.zero_center = zero_center
        self.max_value = max_value

    def fit(self, X, y=None):
        """Learn gene means and standard deviations.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Expression, usually log-normalised.
        y : None
            Ignored.

        Returns
        -------
        self : ScaleGenes
            Fitted transformer.
        """
        self._validate_params()
        X = validate_input(self, X, reset=True)
        mean, var = mean_var(X)
        std = np.sqrt(var)
        std[std == 0] = 1.0
        self.mean_, self.std_ = mean, std
        return self

    def transform(self, X):
        """Scale (and clip) ``X`` with the training statistics.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Expression.

        Returns
        -------
        X_scaled : ndarray or sparse matrix of shape (n_cells, n_genes)
            Dense when ``zero_center=True``; otherwise the input's type.
        """
        check_is_fitted(self)
        X = validate_input(self, X, reset=False)
        dtype = X.dtype
        if sp.issparse(X) and not self.zero_center:
            out = sp.csr_matrix(X, dtype=np.float64, copy=True)
            out.data /= self.std_[out.indices]
            if self.max_value is not None:
                np.minimum(out.data, self.max_value, out=out.data)
            return out.astype(dtype).asformat(X.format)
        dense = X.toarray() if sp.issparse(X) else X
        out = np.asarray(dense, dtype=np.float64)
        if self.zero_center:
            out = out - self.mean_
        out = out / self.std_
        if self.max_value is not None:
            lower = -self.max_value if self.zero_center else None
            out = np.clip(out, lower, self.max_value)
        return out.astype(dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
