"""skdance's own estimator tags: what an estimator needs and what it returns.

scikit-learn's tags (``__sklearn_tags__``) describe generic input and target
properties.  The single-cell tasks need a few more facts, declared once per
class and read by the test harness: the reasoned expected failures of
scikit-learn's checks are *derived* from them
(:func:`skdance.testing.expected_failed_checks`), and
skdance's own common checks use them to build fitting data (labels, spots,
coordinates).  A class declares them with a ``__skdance_tags__`` method
that updates its parent's tags.

The design: ``doc/architecture.rst``, section ``architecture-tags``.
"""

from dataclasses import dataclass

__all__ = ["SkdanceTags", "get_skdance_tags"]


@dataclass
class SkdanceTags:
    """Facts about an estimator that scikit-learn's tags do not carry.

    Parameters
    ----------
    task : str, default="other"
        "annotation", "clustering", "imputation", "deconvolution",
        "spatial_domain", "modality_prediction", "modality_matching",
        "joint_embedding", "graph", "preprocessing" (or "other").
    counts : bool, default=False
        ``fit`` requires non-negative counts (negative values raise).
    rejects_empty_cells : {None, "fit", "transform"}, default=None
        The method in which cells with zero total counts raise (size
        factors, cell-gene edges).
    transductive : bool, default=False
        The output for a cell depends on the other cells passed together
        (a graph built over them, or scaling across them): transforming a
        subset of cells is not a subset of the full result.
    requires_coords : {None, "fit", "predict", "transform"}, default=None
        The method that needs spatial coordinates as side information.
    output : str, default="samples"
        "samples" (one row per cell), "proportions" (n_spots x n_types
        from ``predict``), "cell_adjacency" (n_cells x n_cells),
        "gene_adjacency" (n_genes x n_genes) or "bipartite"
        ((n_cells + n_genes) square).
    """

    task: str = "other"
    counts: bool = False
    rejects_empty_cells: str | None = None
    transductive: bool = False
    requires_coords: str | None = None
    output: str = "samples"


def get_skdance_tags(estimator):
    """Return the :class:`SkdanceTags` of an estimator (or class).

    Parameters
    ----------
    estimator : estimator instance or class

    Returns
    -------
    tags : SkdanceTags
        Defaults where the estimator declares nothing.
    """
    method = getattr(estimator, "__skdance_tags__", None)
    if method is None:
        return SkdanceTags()
    if isinstance(estimator, type):  # a class: its default instance's tags
        return estimator().__skdance_tags__()
    return method()
