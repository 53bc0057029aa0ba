"""Pseudo-spots: spatial-transcriptomics-like mixtures of reference cells."""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import gaussian_filter
from sklearn.utils import check_random_state, check_X_y
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from skdance.utils import check_counts

__all__ = ["make_pseudo_spots"]


def _grid(n_spots):
    side = int(np.ceil(np.sqrt(n_spots)))
    rows, cols = np.divmod(np.arange(n_spots), side)
    return np.column_stack([cols, rows]).astype(np.float64), side


def _smooth_probabilities(abundance, side, length_scale, concentration, rng):
    """Spatially smooth type probabilities on a ``side x side`` grid."""
    n_types = abundance.size
    noise = rng.standard_normal((n_types, side, side))
    fields = np.stack([gaussian_filter(f, length_scale, mode="reflect") for f in noise])
    fields /= fields.reshape(n_types, -1).std(axis=1)[:, None, None] + 1e-12
    logits = concentration * fields.reshape(n_types, -1).T + np.log(abundance)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def _downsample(row, total, rng):
    """Binomial-free exact down-sampling of one count vector to ``total``."""
    counts = np.round(row).astype(np.int64)
    if counts.sum() <= total:
        return counts.astype(np.float64)
    molecules = np.repeat(np.arange(counts.size), counts)
    kept = rng.choice(molecules.size, total, replace=False)
    return np.bincount(molecules[kept], minlength=counts.size).astype(np.float64)


@validate_params(
    {
        "X_ref": ["array-like", "sparse matrix"],
        "y_ref": ["array-like"],
        "n_spots": [Interval(Integral, 1, None, closed="left")],
        "cells_per_spot": [tuple, list],
        "layout": [StrOptions({"random", "smooth"})],
        "length_scale": [Interval(Real, 0, None, closed="neither")],
        "concentration": [Interval(Real, 0, None, closed="neither")],
        "umi_per_spot": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_pseudo_spots(
    X_ref,
    y_ref,
    *,
    n_spots=500,
    cells_per_spot=(2, 8),
    layout="random",
    length_scale=3.0,
    concentration=1.0,
    umi_per_spot=None,
    random_state=None,
):
    """Mix labelled reference cells into pseudo-spots with known proportions.

    Every spot sums the counts of ``n`` reference cells, ``n`` drawn
    uniformly from ``cells_per_spot`` (inclusive), as DSTG and DANCE's
    synthetic deconvolution sets do; its true proportions are the fractions
    of its cells of each type.  ``layout`` decides how the cell types are
    drawn:

    - ``"random"``: cells drawn uniformly from the reference (DSTG's
      pseudo-spots); neighbouring spots are unrelated.
    - ``"smooth"``: each cell type has a smooth random abundance field on
      the grid (white noise under a Gaussian filter of ``length_scale``
      spots, scaled to unit variance); a spot's types are drawn from the
      softmax of ``concentration`` x the fields plus the log frequencies of
      the types in ``y_ref``, so neighbouring spots have similar
      compositions (the situation CARD's spatial prior is built for) while
      the types keep roughly their frequencies in ``y_ref`` over the grid.

    Spots lie on a square grid (``coords``, one unit apart), row by row.

    Parameters
    ----------
    X_ref : {array-like, sparse matrix} of shape (n_cells, n_genes)
        Reference counts.
    y_ref : array-like of shape (n_cells,)
        Cell-type labels of the reference cells.
    n_spots : int, default=500
        Number of spots.
    cells_per_spot : tuple of (int, int), default=(2, 8)
        Smallest and largest number of cells in a spot.
    layout : {"random", "smooth"}, default="random"
        How cell types are distributed over the grid.
    length_scale : float, default=3.0
        Smoothing length in spots (``layout="smooth"``).
    concentration : float, default=1.0
        Sharpness of the smooth composition fields (larger: more
        single-type regions).
    umi_per_spot : int or None, default=None
        Down-sample every spot to at most this many counts (DSTG's
        down-sampling); None keeps the summed counts.
    random_state : int, RandomState instance or None, default=None
        Seeds the fields, the cell draws and the down-sampling.

    Returns
    -------
    X_spots : ndarray or scipy.sparse.csr_matrix of shape (n_spots, n_genes)
        Spot counts (CSR for sparse input).
    proportions : ndarray of shape (n_spots, n_types)
        True proportions, columns in the order of ``np.unique(y_ref)``.
    coords : ndarray of shape (n_spots, 2)
        Grid coordinates (x, y).

    Examples
    --------
    >>> from skdance.datasets import load_pbmc_4k_subset, make_pseudo_spots
    >>> X, y = load_pbmc_4k_subset()
    >>> spots, props, coords = make_pseudo_spots(X, y, n_spots=50, random_state=0)
    >>> spots.shape, props.shape, coords.shape
    ((50, 2000), (50, 8), (50, 2))
    >>> bool(abs(props.sum(axis=1) - 1).max() < 1e-12)
    True
    """
    low, high = (int(v) for v in cells_per_spot)
    if len(cells_per_spot) != 2 or not 1 <= low <= high:
        raise ValueError(
            f"cells_per_spot must be (low, high) with 1 <= low <= high, got "
            f"{cells_per_spot!r}."
        )
    X_ref, y_ref = check_X_y(X_ref, y_ref, accept_sparse="csr", dtype=np.float64)
    check_counts(X_ref, whom="make_pseudo_spots")
    if layout == "random" and high > X_ref.shape[0]:
        raise ValueError(
            f"cells_per_spot={tuple(cells_per_spot)} asks for up to {high} "
            f"distinct reference cells per spot, but the reference has "
            f"{X_ref.shape[0]}; lower cells_per_spot or pass more cells."
        )
    rng = check_random_state(random_state)
    classes, y_idx = np.unique(y_ref, return_inverse=True)
    n_types = classes.size
    members = [np.flatnonzero(y_idx == k) for k in range(n_types)]
    coords, side = _grid(n_spots)
    n_cells = rng.randint(low, high + 1, size=n_spots)
    if layout == "smooth":
        abundance = np.array([m.size for m in members]) / y_idx.size
        probs = _smooth_probabilities(
            abundance, side, length_scale, concentration, rng
        )[:n_spots]
        type_counts = np.array([rng.multinomial(n, p) for n, p in zip(n_cells, probs)])
        picks = [
            np.concatenate([rng.choice(members[k], c) for k, c in enumerate(row) if c])
            for row in type_counts
        ]
    else:
        picks = [rng.choice(y_idx.size, n, replace=False) for n in n_cells]
        type_counts = np.array(
            [np.bincount(y_idx[p], minlength=n_types) for p in picks]
        )
    rows = np.repeat(np.arange(n_spots), n_cells)
    mixer = sp.csr_matrix(
        (np.ones(rows.size), (rows, np.concatenate(picks))), shape=(n_spots, y_idx.size)
    )
    X_spots = mixer @ X_ref
    if umi_per_spot is not None:
        dense = X_spots.toarray() if sp.issparse(X_spots) else np.asarray(X_spots)
        dense = np.vstack([_downsample(r, umi_per_spot, rng) for r in dense])
        X_spots = sp.csr_matrix(dense) if sp.issparse(X_ref) else dense
    if sp.issparse(X_spots):
        X_spots = sp.csr_matrix(X_spots)
    proportions = type_counts / type_counts.sum(axis=1, keepdims=True)
    return X_spots, proportions, coords
