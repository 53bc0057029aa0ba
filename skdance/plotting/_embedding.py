"""UMAPs of (joint) embeddings coloured by cell type and by batch."""

import numpy as np

__all__ = ["embedding_umaps", "umap_coordinates"]


def umap_coordinates(embedding, *, n_neighbors=15, min_dist=0.1, random_state=0):
    """Two-dimensional UMAP (umap-learn) of an embedding, for drawing.

    Parameters
    ----------
    embedding : array-like of shape (n_cells, n_dims)
        Cells in any embedding.
    n_neighbors : int, default=15
        UMAP's neighbourhood size (at most ``n_cells - 1``).
    min_dist : float, default=0.1
        How tightly UMAP packs the cells (umap-learn's default; scanpy's
        ``sc.tl.umap`` uses 0.5, which spreads each cluster out).
    random_state : int, default=0
        Seeds UMAP's layout.

    Returns
    -------
    coords : ndarray of shape (n_cells, 2)
        The layout.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.plotting import umap_coordinates
    >>> Z = np.random.default_rng(0).normal(size=(40, 5))
    >>> umap_coordinates(Z, n_neighbors=5).shape
    (40, 2)
    """
    from umap import UMAP

    Z = np.asarray(embedding, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] < 3:
        raise ValueError(
            f"embedding must be a (n_cells, n_dims) matrix of 3 or more cells; "
            f"got shape {Z.shape}."
        )
    if not np.all(np.isfinite(Z)):
        raise ValueError("embedding holds NaN or infinite values.")
    k = min(n_neighbors, Z.shape[0] - 1)
    umap = UMAP(n_neighbors=k, min_dist=min_dist, random_state=random_state, n_jobs=1)
    return umap.fit_transform(Z)


_LEGEND_FONTSIZE = 8


def _legend_colours(values):
    from skdance.plotting._spatial import _palette

    levels = sorted(set(values), key=str)
    return levels, dict(zip(levels, _palette(len(levels)), strict=True))


def _legend_columns(levels, panel_size):
    """Columns of a legend of ``levels`` beside a panel, and its width in inches.

    A column holds as many entries as fit the height of one panel; the width
    is estimated from the longest label.
    """
    per_column = max(1, int(panel_size * 72 / (_LEGEND_FONTSIZE * 1.75)))
    ncol = -(-len(levels) // per_column)
    longest = max((len(str(v)) for v in levels), default=0)
    column_width = (0.6 * _LEGEND_FONTSIZE * longest + 3 * _LEGEND_FONTSIZE) / 72
    return ncol, ncol * column_width + 0.1


def embedding_umaps(
    embeddings,
    cell_types,
    batches=None,
    *,
    layouts=None,
    panel_size=3.0,
    min_dist=0.1,
    random_state=0,
    legend=True,
):
    """UMAP of each embedding, coloured by cell type (and by batch below).

    One column per embedding; the first row colours the cells by type, the
    second (when ``batches`` are given) by batch, so a reader sees at once
    whether types separate and batches mix.

    Parameters
    ----------
    embeddings : dict of str to array-like of shape (n_cells, n_dims)
        Model name -> embedding of the same cells, drawn in order.
    cell_types : array-like of shape (n_cells,)
        Cell type of every cell.
    batches : array-like of shape (n_cells,), default=None
        Batch of every cell (second row).
    layouts : dict of str to ndarray of shape (n_cells, 2), default=None
        Precomputed 2-D layouts by name (e.g. saved from an earlier run);
        the others are computed with :func:`umap_coordinates`.
    panel_size : float, default=3.0
        Width and height of a panel in inches.
    min_dist : float, default=0.1
        Passed to :func:`umap_coordinates` for the layouts it computes.
    random_state : int, default=0
        Seeds the UMAP layouts.
    legend : bool, default=True
        Draw a legend of every level beside the last column of each row,
        outside the panels; a long legend (dozens of cell types) is split
        into columns as tall as a panel, and the figure widened for it.
        Every level has its own colour (see the palette of
        :func:`spatial_domains`).

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(embeddings)`` (times 2 with batches) axes.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.plotting import embedding_umaps
    >>> rng = np.random.default_rng(0)
    >>> Z = np.r_[rng.normal(size=(20, 4)), rng.normal(size=(20, 4)) + 5]
    >>> types = ["T"] * 20 + ["B"] * 20
    >>> fig = embedding_umaps({"a": Z}, types, batches=["1", "2"] * 20,
    ...                       layouts={"a": Z[:, :2]})
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt

    if not embeddings:
        raise ValueError("embeddings is empty: pass at least one name -> matrix.")
    cell_types = np.asarray(cell_types).astype(str)
    n = cell_types.shape[0]
    rows = [("cell type", cell_types)]
    if batches is not None:
        batches = np.asarray(batches).astype(str)
        if batches.shape != (n,):
            raise ValueError(f"batches has {batches.shape[0]} values for {n} cells.")
        rows.append(("batch", batches))
    layouts = dict(layouts or {})
    for name, Z in embeddings.items():
        if np.asarray(Z).shape[0] != n:
            raise ValueError(
                f"embedding {name!r} has {np.asarray(Z).shape[0]} rows for {n} cells."
            )
        if name not in layouts:
            layouts[name] = umap_coordinates(
                Z, min_dist=min_dist, random_state=random_state
            )
    palettes = [_legend_colours(values) for _, values in rows]
    columns = [_legend_columns(levels, panel_size) for levels, _ in palettes]
    legend_width = max(width for _, width in columns) if legend else 0.0
    fig, axes = plt.subplots(
        len(rows),
        len(embeddings),
        figsize=(panel_size * len(embeddings) + legend_width, panel_size * len(rows)),
        squeeze=False,
    )
    for r, (what, values) in enumerate(rows):
        levels, colours = palettes[r]
        for c, name in enumerate(embeddings):
            ax = axes[r, c]
            xy = np.asarray(layouts[name])
            ax.scatter(
                xy[:, 0], xy[:, 1], s=4, c=[colours[v] for v in values], linewidths=0
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=10)
            if c == 0:
                ax.set_ylabel(what)
        if legend:
            handles = [
                plt.Line2D([], [], marker="o", ls="", color=colours[v], label=v)
                for v in levels
            ]
            axes[r, -1].legend(
                handles=handles,
                loc="upper left",
                bbox_to_anchor=(1.02, 1.0),
                ncol=columns[r][0],
                fontsize=_LEGEND_FONTSIZE,
                markerscale=0.8,
                handletextpad=0.2,
                columnspacing=0.8,
                labelspacing=0.3,
                borderaxespad=0.0,
                frameon=False,
            )
    fig.tight_layout()
    return fig
