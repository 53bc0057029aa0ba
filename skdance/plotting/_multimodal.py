"""Predicted against measured values of a modality prediction."""

import numpy as np
import scipy.sparse as sp

__all__ = ["predicted_vs_measured"]


def _dense(a, name):
    a = a.toarray() if sp.issparse(a) else np.asarray(a, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a (n_cells, n_features) matrix.")
    return a


def predicted_vs_measured(
    measured, predictions, feature_names, *, features=None, panel_size=2.6
):
    """Scatter of predicted against measured levels, one panel per feature.

    One row per model, one column per feature (e.g. a few proteins of a
    GEX->ADT prediction); each panel shows the test cells, the diagonal
    and Pearson's r.

    Parameters
    ----------
    measured : array-like or sparse matrix of shape (n_cells, n_features)
        True values of the test cells.
    predictions : dict of str to array-like of shape (n_cells, n_features)
        Model name -> its prediction, drawn one row each in order.
    feature_names : array-like of shape (n_features,)
        Names of the columns.
    features : list of str, default=None
        Columns to draw (default: the four with the largest variance).
    panel_size : float, default=2.6
        Width and height of a panel in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``len(predictions) * len(features)`` axes, one scatter collection each.

    Examples
    --------
    >>> import numpy as np
    >>> from skdance.plotting import predicted_vs_measured
    >>> Y = np.random.default_rng(0).normal(size=(50, 3))
    >>> fig = predicted_vs_measured(Y, {"model": Y + 0.1}, ["a", "b", "c"],
    ...                             features=["a", "c"])
    >>> len(fig.axes)
    2
    """
    import matplotlib.pyplot as plt

    measured = _dense(measured, "measured")
    names = [str(n) for n in np.asarray(feature_names)]
    if len(names) != measured.shape[1]:
        raise ValueError(
            f"feature_names has {len(names)} names for {measured.shape[1]} columns."
        )
    if not predictions:
        raise ValueError("Nothing to draw: predictions is empty.")
    if features is None:
        order = np.argsort(-measured.var(axis=0), kind="stable")[:4]
        features = [names[i] for i in order]
    missing = [f for f in features if f not in names]
    if missing or not features:
        raise ValueError(f"Unknown features {missing}; choose from feature_names.")
    columns = [names.index(f) for f in features]
    rows = {}
    for model, pred in predictions.items():
        pred = _dense(pred, f"predictions[{model!r}]")
        if pred.shape != measured.shape:
            raise ValueError(
                f"predictions[{model!r}] has shape {pred.shape}, measured "
                f"{measured.shape}."
            )
        rows[model] = pred
    fig, axes = plt.subplots(
        len(rows),
        len(columns),
        figsize=(panel_size * len(columns), panel_size * len(rows)),
        squeeze=False,
    )
    for r, (model, pred) in enumerate(rows.items()):
        for c, (j, feature) in enumerate(zip(columns, features, strict=True)):
            ax = axes[r, c]
            x, y = measured[:, j], pred[:, j]
            ax.scatter(x, y, s=4, alpha=0.5, linewidths=0)
            low, high = min(x.min(), y.min()), max(x.max(), y.max())
            ax.plot([low, high], [low, high], color="grey", lw=0.8, ls="--")
            r_value = np.corrcoef(x, y)[0, 1] if x.std() and y.std() else np.nan
            ax.set_title(f"{feature}  r={r_value:.2f}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{model}\npredicted")
            if r == len(rows) - 1:
                ax.set_xlabel("measured")
    fig.tight_layout()
    return fig
