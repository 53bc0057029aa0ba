"""Spatial domain maps."""

import numpy as np
import pandas as pd

__all__ = ["match_domains", "spatial_domains", "spatial_domains_panel"]


def _check_coords_labels(coords, labels):
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise ValueError(
            f"coords must be (n_spots, 2) positions, got shape {coords.shape}."
        )
    if not np.isfinite(coords[:, :2]).all():
        raise ValueError("coords contain NaN or infinite values.")
    labels = np.asarray(labels, dtype=object)
    if labels.shape != (coords.shape[0],):
        raise ValueError(
            f"labels must hold one domain per spot ({coords.shape[0]}), got shape "
            f"{labels.shape}."
        )
    return coords[:, :2], labels


def _palette(n):
    """Return ``n`` distinct colours for categories.

    tab10 up to 10 categories, tab20 up to 20, then scanpy's default
    palettes of 28 and 102 colours; above 102, hues spread evenly around the
    colour wheel at three brightness levels.  No two categories share a
    colour.
    """
    import matplotlib

    if n <= 20:
        cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
        return [cmap(i) for i in range(n)]
    if n <= 102:
        from scanpy.plotting import palettes

        colours = palettes.default_28 if n <= 28 else palettes.default_102
        return [matplotlib.colors.to_rgba(c) for c in colours[:n]]
    import colorsys

    values = (0.9, 0.7, 0.5)
    return [(*colorsys.hsv_to_rgb(i / n, 0.75, values[i % 3]), 1.0) for i in range(n)]


def spatial_domains(
    coords,
    labels,
    ax=None,
    *,
    title=None,
    spot_size=None,
    invert_y=True,
    legend=True,
    missing_color="lightgrey",
    palette=None,
):
    """Draw the domain map of one slice: spots coloured by domain.

    Parameters
    ----------
    coords : array-like of shape (n_spots, 2)
        Spot positions ``(x, y)`` (e.g. ``adata.obsm["spatial"]``).
    labels : array-like of shape (n_spots,)
        Domain of each spot (any hashable values); NaN/None spots (not
        annotated) are drawn in ``missing_color`` and left out of the legend.
    ax : matplotlib.axes.Axes, default=None
        Where to draw; None makes a new figure.
    title : str, default=None
        Axes title.
    spot_size : float, default=None
        Marker area in points^2; None scales it with the number of spots.
    invert_y : bool, default=True
        Image convention: y grows downwards (Visium pixel coordinates).
    legend : bool, default=True
        Draw a legend of the domains beside the map.
    missing_color : color, default="lightgrey"
        Colour of unlabelled spots.
    palette : dict, default=None
        Domain -> colour; domains it lacks get the next default colours.
        None colours the sorted domains with tab10 (tab20 above 10,
        scanpy's 28- and 102-colour palettes above 20), one colour each.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on: one scatter collection, equal aspect, no ticks.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.plotting import spatial_domains
    >>> coords = np.c_[np.arange(6) % 3, np.arange(6) // 3]
    >>> ax = spatial_domains(coords, ["a", "a", "b", "b", "c", None])
    >>> len(ax.collections)
    1
    """
    import matplotlib.pyplot as plt

    coords, labels = _check_coords_labels(coords, labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    missing = pd.isna(labels)
    domains = sorted(pd.unique(labels[~missing]), key=str)
    colors = dict(palette or {})
    if palette is not None:  # the palette's order first, then the rest
        domains = [d for d in colors if d in set(domains)] + [
            d for d in domains if d not in colors
        ]
    spare = iter(_palette(len(colors) + len(domains))[len(colors) :])
    for d in domains:
        if d not in colors:
            colors[d] = next(spare)
    spot_colors = [
        missing_color if m else colors[v] for v, m in zip(labels, missing, strict=True)
    ]
    size = spot_size if spot_size is not None else max(2.0, 12000 / max(len(labels), 1))
    ax.scatter(coords[:, 0], coords[:, 1], c=spot_colors, s=size, linewidths=0)
    ax.set_aspect("equal")
    if invert_y and not ax.yaxis_inverted():
        ax.invert_yaxis()
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    if legend and domains:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], ls="", marker="o", color=colors[d], label=str(d))
            for d in domains
        ]
        ax.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.0, 0.5),
            frameon=False,
            fontsize="small",
        )
    return ax


def match_domains(labels, truth):
    """Rename clusters after the annotated domains they overlap most.

    The clusters and the annotated domains are paired one-to-one by the
    Hungarian algorithm on their contingency table (annotated spots only);
    a paired cluster takes its domain's name, the others keep theirs (as
    strings).  Only names change: the partition, hence ARI, is the same.

    Parameters
    ----------
    labels : array-like of shape (n_spots,)
        Cluster of each spot.
    truth : array-like of shape (n_spots,)
        Annotated domain of each spot (NaN/None: unannotated).

    Returns
    -------
    renamed : ndarray of object of shape (n_spots,)
        ``labels`` under the new names.
    """
    from scipy.optimize import linear_sum_assignment

    labels = np.asarray(labels, dtype=object)
    truth = np.asarray(truth, dtype=object)
    known = ~pd.isna(truth)
    table = pd.crosstab(labels[known], truth[known])
    rows, cols = linear_sum_assignment(-table.to_numpy())
    names = {c: str(c) for c in pd.unique(labels)}
    taken = {str(t) for t in pd.unique(truth[known])}
    for c in names:  # an unpaired cluster must not take an annotated name
        if names[c] in taken:
            names[c] = f"cluster {c}"
    for r, c in zip(rows, cols):
        names[table.index[r]] = table.columns[c]
    return np.array([names[v] for v in labels], dtype=object)


def spatial_domains_panel(
    coords, labelings, *, truth=None, match=True, ncols=4, panel_size=3.5
):
    """Manual annotation beside each model's domains, one map per panel.

    Parameters
    ----------
    coords : array-like of shape (n_spots, 2)
        Spot positions.
    labelings : dict of str to array-like of shape (n_spots,)
        Domains per model (panel title -> labels), drawn in order.
    truth : array-like of shape (n_spots,), default=None
        Manual annotation, drawn first with the title "manual annotation".
    match : bool, default=True
        With ``truth``: name each model's clusters after the annotated
        domains they overlap most (:func:`match_domains`), so the same
        colour means the same layer in every panel.  Only the colours
        change, never the partition.
    ncols : int, default=4
        Panels per row.
    panel_size : float, default=3.5
        Width and height of a panel in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One axes with one scatter collection per panel (unused grid cells
        are removed).

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.plotting import spatial_domains_panel
    >>> coords = np.c_[np.arange(6) % 3, np.arange(6) // 3]
    >>> fig = spatial_domains_panel(coords, {"model": [0, 0, 1, 1, 2, 2]},
    ...                             truth=list("aabbcc"))
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt

    panels = {} if truth is None else {"manual annotation": truth}
    for name, labels in labelings.items():
        if name in panels:
            raise ValueError(f"Panel {name!r} appears twice.")
        if truth is not None and match:
            labels = match_domains(labels, truth)
        panels[name] = labels
    if not panels:
        raise ValueError("Nothing to draw: pass labelings or truth.")
    ncols = max(1, min(ncols, len(panels)))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size * ncols * 1.3, panel_size * nrows),
        squeeze=False,
    )
    palette = None
    if truth is not None:
        known = np.asarray(truth, dtype=object)[~pd.isna(np.asarray(truth, object))]
        domains = sorted(pd.unique(known), key=str)
        palette = dict(zip(domains, _palette(len(domains))))
    for ax, (name, labels) in zip(axes.flat, panels.items()):
        spatial_domains(coords, labels, ax=ax, title=name, palette=palette)
    for ax in axes.flat[len(panels) :]:
        fig.delaxes(ax)
    fig.tight_layout()
    return fig
