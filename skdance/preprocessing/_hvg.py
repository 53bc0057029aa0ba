"""Highly variable gene selection (scanpy's pp.highly_variable_genes)."""

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from skdance.preprocessing._utils import mean_var, normalize_rows
from skdance.utils import SkdanceTags, is_anndata, reject_mudata, validate_input

__all__ = ["HighlyVariableGenes"]


def _mad(values):
    """Median absolute deviation scaled for normal consistency (statsmodels)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.nan
    return np.median(np.abs(values - np.median(values))) / 0.6744897501960817


def _dispersion_stats(mean, var, flavor, n_bins):
    """Normalised dispersion per gene for the seurat / cell_ranger flavours.

    Returns the (possibly log) means, the dispersions, the normalised
    dispersions and each gene's excess dispersion over its bin's average.
    """
    mean = mean.copy()
    mean[mean == 0] = 1e-12
    dispersion = var / mean
    if flavor == "seurat":
        dispersion[dispersion == 0] = np.nan
        dispersion = np.log(dispersion)
        mean = np.log1p(mean)
        bins = n_bins
    else:
        bins = np.r_[-np.inf, np.percentile(mean, np.arange(10, 105, 5)), np.inf]
    df = pd.DataFrame({"means": mean, "dispersions": dispersion})
    # many all-zero genes give repeated percentiles: merge those bin edges
    # (scanpy's cell_ranger code raises "Bin edges must be unique" there)
    df["mean_bin"] = pd.cut(df["means"], bins=bins, duplicates="drop")
    grouped = df.groupby("mean_bin", observed=True)["dispersions"]
    if flavor == "seurat":
        stats = grouped.agg(avg="mean", dev="std")
        # a bin holding one gene has no std: that gene gets dispersion_norm 1
        single = stats["dev"].isnull()
        stats.loc[single, "dev"] = stats.loc[single, "avg"]
        stats.loc[single, "avg"] = 0.0
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stats = grouped.agg(avg="median", dev=_mad)
    per_gene = stats.loc[df["mean_bin"]].to_numpy(dtype=np.float64)
    excess = dispersion - per_gene[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        dispersion_norm = excess / per_gene[:, 1]
    return mean, dispersion, dispersion_norm, excess


def _top_dispersion_mask(score, excess, n_top_genes):
    """Select the ``n_top_genes`` genes of highest normalised dispersion.

    Genes whose normalised dispersion is NaN are never selected.  As in scanpy,
    every gene tied with the ``n_top_genes``-th highest score is kept.  A bin
    whose dispersions have no spread (more than half of its genes never
    expressed, so of dispersion 0) gives its genes above the median a score of
    +inf; when that is the cut-off, scanpy keeps no gene at all.  Here the
    ``n_top_genes`` +inf genes of largest excess over their bin's median
    dispersion are kept instead (ties broken by gene order).
    """
    valid = np.sort(score[~np.isnan(score)])[::-1]
    n = min(n_top_genes, valid.size)
    if n == 0:
        return np.zeros(score.shape, dtype=bool)
    cutoff = valid[n - 1]
    if np.isposinf(cutoff):
        infinite = np.flatnonzero(np.isposinf(score))
        order = infinite[np.argsort(-excess[infinite], kind="stable")]
        mask = np.zeros(score.shape, dtype=bool)
        mask[order[:n]] = True
        return mask
    return ~np.isnan(score) & (score >= cutoff)


def _seurat_v3_variances(X, span):
    """Seurat v3 variance of standardised, clipped counts (loess on mean/var)."""
    from skmisc.loess import loess

    n_obs = X.shape[0]
    mean, var = mean_var(X)
    not_const = var > 0
    estimated = np.zeros(X.shape[1], dtype=np.float64)
    model = loess(
        np.log10(mean[not_const]), np.log10(var[not_const]), span=span, degree=2
    )
    try:
        model.fit()
    except ValueError as exc:
        raise ValueError(
            f"flavor='seurat_v3' could not fit its loess curve of variance on mean "
            f"({exc}). It needs many (hundreds of) non-constant genes and fails "
            "when many genes are detected in only a few cells: filter genes first "
            "(skdance.preprocessing.filter_genes(X, min_cells=3), as scanpy's "
            "recipe does), use a larger span, or flavor='seurat'."
        ) from exc
    estimated[not_const] = model.outputs.fitted_values
    reg_std = np.sqrt(10**estimated)
    clip_val = reg_std * np.sqrt(n_obs) + mean
    if sp.issparse(X):
        Xc = sp.csr_matrix(X, dtype=np.float64, copy=True)
        np.minimum(Xc.data, clip_val[Xc.indices], out=Xc.data)
        sums = np.asarray(Xc.sum(axis=0)).ravel()
        Xc.data **= 2
        sq_sums = np.asarray(Xc.sum(axis=0)).ravel()
    else:
        Xc = np.minimum(np.asarray(X, dtype=np.float64), clip_val)
        sums = Xc.sum(axis=0)
        sq_sums = np.square(Xc).sum(axis=0)
    norm_var = (n_obs * mean**2 + sq_sums - 2 * sums * mean) / (
        (n_obs - 1) * reg_std**2
    )
    return mean, var, norm_var


class HighlyVariableGenes(SelectorMixin, BaseEstimator):
    """Keep the most variable genes; the values passed through are unchanged.

    Gene selection follows :func:`scanpy.pp.highly_variable_genes` for its
    three single-batch flavours and picks the same genes on the same input.
    The transformer takes raw counts and returns raw counts of the selected
    genes, so it can stand first in a Pipeline in front of count models
    (ZINB autoencoders) as well as in front of normalisation steps.

    * ``"seurat_v3"`` (default) works on counts directly: variance of
      counts standardised by a loess fit of variance on mean, clipped at
      ``sqrt(n_cells)``.
    * ``"seurat"`` and ``"cell_ranger"`` bin genes by mean and rank their
      normalised dispersion.  They are defined on log-normalised data, so with
      ``log_normalize=True`` (default) each cell is scaled to ``target_sum``
      counts and log1p-transformed internally (scanpy's standard recipe)
      before dispersions are computed.  Pass ``log_normalize=False`` when
      ``X`` is already log-normalised.  A mean bin whose dispersions do not
      spread (mostly never-expressed genes) gives its other genes an infinite
      normalised dispersion; these rank first, and when more of them than
      ``n_top_genes`` exist the ones furthest above their bin's median are
      kept (scanpy then keeps no gene).

    Parameters
    ----------
    n_top_genes : int or None, default=2000
        Number of genes to keep (all genes if larger than their number).  None
        (seurat / cell_ranger only) selects by the mean/dispersion cut-offs.
    flavor : {"seurat_v3", "seurat", "cell_ranger"}, default="seurat_v3"
        Selection method.
    log_normalize : bool, default=True
        For seurat / cell_ranger: treat ``X`` as counts and log-normalise it
        internally before computing dispersions.
    target_sum : float, default=1e4
        Per-cell total used by the internal normalisation.
    min_mean, max_mean, min_disp, max_disp : float
        Cut-offs used when ``n_top_genes`` is None (scanpy's defaults).
    n_bins : int, default=20
        Number of mean bins (seurat flavour).
    span : float, default=0.3
        Fraction of genes used by each local loess fit (seurat_v3).

    Attributes
    ----------
    highly_variable_ : ndarray of bool of shape (`n_features_in_`,)
        Selected genes.
    means_ : ndarray of shape (`n_features_in_`,)
        Gene means (log1p of the mean for seurat, as in scanpy).
    variances_ : ndarray of shape (`n_features_in_`,)
        Gene variances (seurat_v3 only, else None).
    dispersions_norm_ : ndarray of shape (`n_features_in_`,)
        Normalised dispersion (seurat, cell_ranger) or normalised variance
        (seurat_v3); the score genes are ranked by.
    n_features_in_ : int
        Number of genes seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Gene names seen in ``fit``, when the input had them.

    See Also
    --------
    scanpy.pp.highly_variable_genes : The function this transformer matches.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.preprocessing import HighlyVariableGenes
    >>> rng = np.random.default_rng(0)
    >>> X = rng.poisson(rng.gamma(0.5, 2.0, size=50), size=(300, 50))
    >>> hvg = HighlyVariableGenes(n_top_genes=10).fit(X)
    >>> hvg.transform(X).shape
    (300, 10)
    """

    _parameter_constraints = {
        "n_top_genes": [Interval(Integral, 1, None, closed="left"), None],
        "flavor": [StrOptions({"seurat_v3", "seurat", "cell_ranger"})],
        "log_normalize": ["boolean"],
        "target_sum": [Interval(Real, 0, None, closed="neither")],
        "min_mean": [Real],
        "max_mean": [Real],
        "min_disp": [Real],
        "max_disp": [Real],
        "n_bins": [Interval(Integral, 1, None, closed="left")],
        "span": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        *,
        n_top_genes=2000,
        flavor="seurat_v3",
        log_normalize=True,
        target_sum=1e4,
        min_mean=0.0125,
        max_mean=3.0,
        min_disp=0.5,
        max_disp=np.inf,
        n_bins=20,
        span=0.3,
    ):
        self.n_top_genes = n_top_genes
        self.flavor = flavor
        self.log_normalize = log_normalize
        self.target_sum = target_sum
        self.min_mean = min_mean
        self.max_mean = max_mean
        self.min_disp = min_disp
        self.max_disp = max_disp
        self.n_bins = n_bins
        self.span = span

    def fit(self, X, y=None):
        """Rank genes by variability and select the top ones.

        Parameters
        ----------
        X : {array-like, sparse matrix, AnnData} of shape (n_cells, n_genes)
            Raw counts (or log-normalised data with ``log_normalize=False``
            for the seurat / cell_ranger flavours).
        y : None
            Ignored.

        Returns
        -------
        self : HighlyVariableGenes
            Fitted selector.
        """
        self._validate_params()
        needs_counts = self.flavor == "seurat_v3" or self.log_normalize
        X = validate_input(
            self,
            X,
            reset=True,
            counts=needs_counts,
            ensure_min_samples=2,
            ensure_min_features=2,
        )
        n_genes = X.shape[1]
        if self.flavor == "seurat_v3":
            if self.n_top_genes is None:
                raise ValueError("flavor='seurat_v3' requires n_top_genes.")
            mean, var, score = _seurat_v3_variances(X, self.span)
            # rank by normalised variance; ties broken by gene order (stable)
            order = np.argsort(-score, kind="stable")
            mask = np.zeros(n_genes, dtype=bool)
            mask[order[: min(self.n_top_genes, n_genes)]] = True
            self.means_, self.variances_ = mean, var
        else:
            Xl = self._dispersion_input(X)
            mean, var = mean_var(Xl)
            mean, _, score, excess = _dispersion_stats(
                mean, var, self.flavor, self.n_bins
            )
            if self.n_top_genes is None:
                filled = np.nan_to_num(score)
                mask = (
                    (mean > self.min_mean)
                    & (mean < self.max_mean)
                    & (filled > self.min_disp)
                    & (filled < self.max_disp)
                )
            else:
                mask = _top_dispersion_mask(score, excess, self.n_top_genes)
            self.means_, self.variances_ = mean, None
        self.dispersions_norm_ = score
        self.highly_variable_ = mask
        return self

    def _dispersion_input(self, X):
        """Return the data whose gene mean/variance define dispersions (scanpy).

        scanpy's seurat flavour undoes the log (expm1) of log-normalised data,
        cell_ranger uses the log data itself.
        """
        X = X.astype(np.float64)
        if self.log_normalize:
            X = normalize_rows(X, self.target_sum)
            if self.flavor == "seurat":
                return X  # expm1(log1p(x)) is x
            func = np.log1p
        elif self.flavor == "seurat":
            func = np.expm1
        else:
            return X
        if sp.issparse(X):
            X.data = func(X.data)
            return X
        return func(X)

    def transform(self, X):
        """Keep the selected genes of ``X`` (values unchanged).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame, AnnData} of shape \
                (n_cells, n_genes)
            Data on the genes seen in ``fit``.

        Returns
        -------
        X_selected : ndarray or sparse matrix of shape (n_cells, n_selected)
            The columns of the selected genes.
        """
        reject_mudata(X, type(self).__name__)
        if is_anndata(X):
            check_is_fitted(self)
            X = validate_input(self, X, reset=False, dtype=None, accept_sparse="csr")
            return self._transform(X)
        return super().transform(X)

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.highly_variable_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        return tags

    def __skdance_tags__(self):
        counts = self.flavor == "seurat_v3" or self.log_normalize
        return SkdanceTags(task="preprocessing", counts=counts)
