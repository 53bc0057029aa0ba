"""Library-size normalisation and log transform (scanpy's normalize_total/log1p)."""

from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from skdance.preprocessing._utils import normalize_rows, row_sums
from skdance.utils import SkdanceTags, validate_input

__all__ = ["Log1p", "NormalizeTotal"]


class NormalizeTotal(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Scale every cell to the same total count.

    The same computation as :func:`scanpy.pp.normalize_total`: each cell's
    counts are divided by its total and multiplied by ``target_sum``.  When
    ``target_sum`` is None the median total of the (non-empty) training cells
    is learnt in ``fit`` and reused for new data, so that train and test cells
    end up on one scale.

    Parameters
    ----------
    target_sum : float or None, default=None
        Total count of every cell after normalisation (1e4 is the usual
        choice, 1e6 gives CPM).  None: median total count of the cells seen in
        ``fit``.
    exclude_highly_expressed : bool, default=False
        Leave out genes that make up more than ``max_fraction`` of some cell's
        total when computing the totals (genes chosen on the ``fit`` data).
    max_fraction : float, default=0.05
        See ``exclude_highly_expressed``.

    Attributes
    ----------
    target_sum_ : float
        The total each cell is scaled to.
    gene_subset_ : ndarray of bool of shape (`n_features_in_`,)
        Genes counted in the totals.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    Log1p : Usually applied next.
    scanpy.pp.normalize_total : The scanpy function this transformer matches.

    Notes
    -----
    Cells with zero total counts are left at zero, as scanpy does (a cell
    can have no counts in a selected gene subset); remove empty cells with
    :func:`skdance.preprocessing.filter_cells` if they are not wanted.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.preprocessing import NormalizeTotal
    >>> X = np.array([[1, 3], [2, 2], [0, 8]])
    >>> NormalizeTotal(target_sum=10).fit_transform(X)
    array([[ 2.5,  7.5],
           [ 5. ,  5. ],
           [ 0. , 10. ]])
    """

    _parameter_constraints = {
        "target_sum": [Interval(Real, 0, None, closed="neither"), None],
        "exclude_highly_expressed": ["boolean"],
        "max_fraction": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self, *, target_sum=None, exclude_highly_expressed=False, max_fraction=0.05
    ):
        self.target_sum = target_sum
        self.exclude_highly_expressed = exclude_highly_expressed
        self.max_fraction = max_fraction

    def _totals(self, X):
        if self.exclude_highly_expressed:
            return row_sums(X[:, self.gene_subset_])
        return row_sums(X)

    def fit(self, X, y=None):
        """Learn ``target_sum_`` (and the genes counted in totals).

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts.
        y : None
            Ignored.

        Returns
        -------
        self : NormalizeTotal
            Fitted transformer.
        """
        self._validate_params()
        X = validate_input(self, X, reset=True, counts=True)
        totals = row_sums(X)
        if self.exclude_highly_expressed:
            limit = totals * self.max_fraction
            if sp.issparse(X):
                csr = sp.csr_matrix(X)
                high = csr.data > np.repeat(limit, np.diff(csr.indptr))
                self.gene_subset_ = np.ones(X.shape[1], dtype=bool)
                self.gene_subset_[csr.indices[high]] = False
            else:
                self.gene_subset_ = ~(X > limit[:, None]).any(axis=0)
            totals = self._totals(X)
        else:
            self.gene_subset_ = np.ones(X.shape[1], dtype=bool)
        if self.target_sum is None:
            nonzero = totals[totals > 0]
            self.target_sum_ = float(np.median(nonzero)) if nonzero.size else 1.0
        else:
            self.target_sum_ = float(self.target_sum)
        return self

    def transform(self, X):
        """Scale each cell to ``target_sum_`` total counts.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts.

        Returns
        -------
        X_norm : ndarray or sparse matrix of shape (n_cells, n_genes)
            Same container type as the input, float dtype; the input is not
            modified.
        """
        check_is_fitted(self)
        X = validate_input(self, X, reset=False, counts=True)
        return normalize_rows(X, self.target_sum_, self._totals(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="preprocessing", counts=True)


class Log1p(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Natural (or base-``base``) logarithm of one plus the input.

    Matches :func:`scanpy.pp.log1p`.  Stateless: ``fit`` only records the
    number and names of features.

    Parameters
    ----------
    base : float or None, default=None
        Logarithm base; None means natural logarithm.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen in ``fit``, when the input had them.

    See Also
    --------
    NormalizeTotal : Usually applied before.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.preprocessing import Log1p
    >>> Log1p().fit_transform(np.array([[0.0, np.e - 1]]))
    array([[0., 1.]])
    """

    _parameter_constraints = {
        "base": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, *, base=None):
        self.base = base

    def fit(self, X, y=None):
        """Record the input's features.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Non-negative expression.
        y : None
            Ignored.

        Returns
        -------
        self : Log1p
            Fitted transformer.
        """
        self._validate_params()
        if self.base == 1:
            raise ValueError("base=1 is not a valid logarithm base.")
        validate_input(self, X, reset=True, counts=True)
        return self

    def transform(self, X):
        """Return ``log(1 + X) / log(base)``.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Non-negative expression.

        Returns
        -------
        X_log : ndarray or sparse matrix of shape (n_cells, n_genes)
            Same container type as the input; the input is not modified.
        """
        check_is_fitted(self)
        X = validate_input(self, X, reset=False, counts=True)
        if sp.issparse(X):
            out = X.copy()
            out.data = np.log1p(out.data)
            data = out.data
        else:
            out = np.log1p(X)
            data = out
        if self.base is not None:
            data /= np.log(self.base)
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    def __skdance_tags__(self):
        return SkdanceTags(task="preprocessing", counts=True)
