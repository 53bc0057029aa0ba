"""Fit skdance estimators on AnnData / MuData and write the results back.

scanpy, squidpy and scvi-tools keep every result in the data object, under
keys the rest of the ecosystem reads.  :func:`fit` and :func:`predict` do the
same for any skdance estimator, so that ``sc.read_h5ad`` -> skdance ->
``sc.pl.spatial`` / ``sc.pl.umap`` needs no glue:

============================  =========================================
result                        where it goes
============================  =========================================
cluster labels, domains,      ``obs[key]`` (categorical)
predicted cell types
embeddings (joint, spatial,   ``obsm["X_<key>"]``
deep clusterers)
cell-type proportions         ``obsm[key]``, a DataFrame whose columns are
                              the cell types
imputed expression            ``layers[key]``
a predicted modality          a new modality ``mdata.mod[key]`` of a
                              MuData, or a returned AnnData
cell graphs                   ``obsp["<key>_connectivities"]`` and
                              ``uns["<key>_neighbors"]`` (scanpy and
                              squidpy's layout; ``key="spatial"`` for the
                              spatial graphs, as squidpy names them)
the estimator                 ``uns[key]``: its class and parameters
============================  =========================================

``key`` is ``key_added`` or, by default, the estimator's class name in lower
case.  Both functions follow scanpy's convention: they write into ``data``
and return None, or, with ``copy=True``, write into a copy and return it.
"""

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skdance.utils import get_skdance_tags, is_anndata, is_mudata

__all__ = ["fit", "predict"]

# spatial graph builders: squidpy's key
_SPATIAL_GRAPHS = ("RadiusGraph", "SpatialGaussianGraph")


def _check_data(data, whom):
    if not (is_anndata(data) or is_mudata(data)):
        raise TypeError(
            f"{whom} writes into an AnnData or a MuData; got "
            f"{type(data).__name__}. For arrays, call the estimator's own "
            "methods."
        )


def _key(estimator, key_added):
    if key_added is None:
        if type(estimator).__name__ in _SPATIAL_GRAPHS:
            return "spatial"
        return type(estimator).__name__.lower()
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"key_added must be a non-empty str, got {key_added!r}.")
    return key_added


def _labels(data, y):
    """``y`` as an array: an ``obs`` column name or the labels themselves."""
    if isinstance(y, str):
        if y not in data.obs:
            raise ValueError(
                f"y={y!r} is not a column of obs; columns: {list(data.obs.columns)}."
            )
        return data.obs[y].to_numpy()
    return y


def _is_paired(estimator):
    return get_skdance_tags(estimator).task in (
        "joint_embedding",
        "modality_prediction",
        "modality_matching",
    )


def _params(estimator):
    """Return the estimator's parameters in a form h5ad files can store."""
    out = {}
    for name, value in estimator.get_params(deep=False).items():
        if value is None or isinstance(value, bool | int | float | str):
            out[name] = "None" if value is None else value
        elif isinstance(value, np.generic):
            out[name] = value.item()
        else:
            out[name] = repr(value)
    return out


def _record(data, estimator, key, method):
    data.uns[key] = {
        "estimator": type(estimator).__name__,
        "module": type(estimator).__module__,
        "method": method,
        "params": _params(estimator),
    }


def _categorical(values):
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        values = values.astype(str)
    return pd.Categorical(values)


def _dense(a):
    return a.toarray() if sp.issparse(a) else np.asarray(a)


def _write_rows(data, estimator, key, out, input_names=None):
    """Write a per-cell output: layer when it keeps the genes, else obsm."""
    out = _dense(out) if not sp.issparse(out) else out
    tags = get_skdance_tags(estimator)
    if tags.task == "imputation" or (
        input_names is not None
        and out.shape[1] == len(input_names)
        and tags.output == "samples"
        and _same_features(estimator, input_names)
    ):
        data.layers[key] = out
    else:
        data.obsm[f"X_{key}"] = _dense(out)


def _same_features(estimator, input_names):
    try:
        names = np.asarray(estimator.get_feature_names_out(), dtype=object)
    except (AttributeError, ValueError, TypeError):
        return False
    return len(names) == len(input_names) and bool(
        np.all(names == np.asarray(input_names, dtype=object))
    )


def _write_graph(data, key, adjacency, estimator):
    tags = get_skdance_tags(estimator)
    if tags.output != "cell_adjacency":
        raise ValueError(
            f"{type(estimator).__name__} returns a {tags.output.replace('_', ' ')} "
            "matrix, not a cell x cell graph; it has no place in obsp. Call "
            "its transform directly."
        )
    data.obsp[f"{key}_connectivities"] = sp.csr_matrix(adjacency)
    data.uns[f"{key}_neighbors"] = {
        "connectivities_key": f"{key}_connectivities",
        "params": {"method": type(estimator).__name__, **_params(estimator)},
    }


def _side(estimator, data, method, params):
    """Pass ``coords`` from ``obsm`` where the method needs them."""
    tags = get_skdance_tags(estimator)
    if tags.requires_coords == method and "coords" not in params:
        key = getattr(estimator, "spatial_key", "spatial") or "spatial"
        if key in getattr(data, "obsm", {}):
            params = dict(params, coords=np.asarray(data.obsm[key], dtype=float))
    return params


def fit(estimator, data, y=None, *, key_added=None, copy=False, **fit_params):
    """Fit ``estimator`` on the cells of ``data`` and write what it learned.

    Parameters
    ----------
    estimator : skdance estimator
        Unfitted; it is fitted in place.
    data : anndata.AnnData or mudata.MuData
        The cells.  Single-modality estimators take an AnnData (of a MuData,
        pass ``mdata[name]``); the paired ones (joint embeddings, modality
        predictors and matchers) take a MuData, whose two modalities their
        ``mudata_mods`` parameter names.  Spatial models read the
        coordinates from ``obsm["spatial"]`` (their ``spatial_key``).
    y : str or array-like of shape (n_cells,), default=None
        Labels for the estimators that learn from them (annotation,
        deconvolution references, JAE): an ``obs`` column name or the
        values.
    key_added : str, default=None
        Key of the results (see the module docstring); default: the
        estimator's class name in lower case (``"spatial"`` for the spatial
        graph builders).
    copy : bool, default=False
        Write into a copy of ``data`` and return it.
    **fit_params
        Passed to the estimator's ``fit`` (``coords=``, ``batch=``...).

    Returns
    -------
    data : AnnData, MuData or None
        The copy with the results when ``copy=True``, else None.

    Notes
    -----
    What is written after fitting:

    * clusterers and spatial-domain models: their labels in ``obs[key]``,
      and their embedding in ``obsm["X_<key>"]`` when they have one;
    * joint embeddings: ``obsm["X_<key>"]`` of the MuData;
    * imputers: the imputed matrix in ``layers[key]``;
    * graph builders: ``obsp["<key>_connectivities"]``;
    * other transformers: ``obsm["X_<key>"]``, or ``layers[key]`` when the
      output keeps the input's genes;
    * classifiers, deconvolution models and modality predictors learn only:
      apply them to cells with :func:`predict`.

    In every case ``uns[key]`` records the estimator and its parameters.

    Examples
    --------
    >>> from skdance import tl
    >>> from skdance.datasets import load_spatial_dataset
    >>> from skdance.spatial.domain import SpatialLouvain
    >>> adata = load_spatial_dataset("dlpfc_151673_subset", return_anndata=True)
    >>> adata = adata[:400].copy()  # 400 of the 1,062 spots keep it quick
    >>> tl.fit(SpatialLouvain(n_clusters=7, random_state=0), adata)
    >>> adata.obs["spatiallouvain"].cat.categories.size
    7
    >>> adata.uns["spatiallouvain"]["estimator"]
    'SpatialLouvain'
    """
    _check_data(data, "skdance.tl.fit")
    data = data.copy() if copy else data
    key = _key(estimator, key_added)
    tags = get_skdance_tags(estimator)
    target = _labels(data, y)
    X = data if (_is_paired(estimator) or is_anndata(data)) else None
    if X is None:
        raise ValueError(
            f"{type(estimator).__name__} reads one modality: pass an AnnData "
            "(for a MuData, mdata[name])."
        )
    fit_params = _side(estimator, data, "fit", fit_params)
    args = (X,) if target is None else (X, target)
    if tags.task == "joint_embedding":
        data.obsm[f"X_{key}"] = _dense(estimator.fit(*args, **fit_params).transform(X))
    elif tags.task in ("clustering", "spatial_domain"):
        data.obs[key] = _categorical(estimator.fit_predict(*args, **fit_params))
        if hasattr(estimator, "transform"):
            emb = estimator.transform(X, **_side(estimator, data, "transform", {}))
            data.obsm[f"X_{key}"] = _dense(emb)
    elif tags.task == "graph":
        _write_graph(data, key, estimator.fit_transform(*args, **fit_params), estimator)
    elif tags.task in (
        "annotation",
        "deconvolution",
        "modality_prediction",
        "modality_matching",
    ):
        estimator.fit(*args, **fit_params)
    elif hasattr(estimator, "transform"):
        out = estimator.fit_transform(*args, **fit_params)
        _write_rows(data, estimator, key, out, np.asarray(data.var_names))
    else:
        estimator.fit(*args, **fit_params)
    _record(data, estimator, key, "fit")
    return data if copy else None


def predict(estimator, data, *, key_added=None, copy=False, **params):
    """Apply a fitted ``estimator`` to the cells of ``data``; write its output.

    Parameters
    ----------
    estimator : fitted skdance estimator
        A classifier, deconvolution model, modality predictor, imputer,
        embedding or graph builder.
    data : anndata.AnnData or mudata.MuData
        The new cells (spots), on the features seen in ``fit``.
    key_added : str, default=None
        Key of the results; default: the estimator's class name in lower
        case.
    copy : bool, default=False
        Write into a copy of ``data`` and return it.
    **params
        Passed to ``predict`` / ``transform`` (e.g. ``coords=``).

    Returns
    -------
    data : AnnData, MuData or None
        The copy when ``copy=True``; otherwise None, except for a modality
        predictor given an AnnData, which returns the predicted modality as
        a new AnnData (there is no place for it in the input).

    Notes
    -----
    * classifiers: predicted labels in ``obs[key]``;
    * deconvolution: proportions in ``obsm[key]``, a DataFrame with one
      column per cell type (``classes_``);
    * modality predictors: a MuData gets a new modality ``mod[key]`` with
      the predicted values (its ``var_names`` those seen in ``fit``); an
      AnnData gives a new AnnData with the input's ``obs``;
    * imputers: ``layers[key]``; other transformers ``obsm["X_<key>"]``;
      graph builders ``obsp["<key>_connectivities"]``.

    Examples
    --------
    >>> from skdance import tl
    >>> from skdance.annotation import SVM
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> adata = load_pbmc_4k_subset(return_anndata=True)
    >>> ref, query = adata[:900].copy(), adata[900:].copy()
    >>> svm = SVM(random_state=0)
    >>> tl.fit(svm, ref, y="cell_type")
    >>> tl.predict(svm, query, key_added="predicted")
    >>> truth = query.obs["cell_type"].astype(str)
    >>> bool((query.obs["predicted"].astype(str) == truth).mean() > 0.8)
    True
    """
    _check_data(data, "skdance.tl.predict")
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    tags = get_skdance_tags(estimator)
    key = _key(estimator, key_added)
    if tags.task == "modality_prediction" and is_anndata(data):
        return _predicted_modality(estimator, data, data, params)
    data = data.copy() if copy else data
    if tags.task == "modality_prediction":
        data.mod[key] = _predicted_modality(estimator, data, data, params)
        data.update()
    elif tags.task == "modality_matching":
        raise TypeError(
            f"{type(estimator).__name__} scores pairs of cells across two sets; "
            "call its match() method."
        )
    elif hasattr(estimator, "predict") and tags.output == "proportions":
        P = estimator.predict(data, **_side(estimator, data, "predict", params))
        data.obsm[key] = pd.DataFrame(
            np.asarray(P),
            index=data.obs_names,
            columns=[str(c) for c in estimator.classes_],
        )
    elif hasattr(estimator, "predict"):
        labels = estimator.predict(data, **_side(estimator, data, "predict", params))
        data.obs[key] = _categorical(labels)
    elif tags.task == "graph":
        _write_graph(data, key, estimator.transform(data, **params), estimator)
    elif tags.task == "joint_embedding":
        data.obsm[f"X_{key}"] = _dense(estimator.transform(data, **params))
    elif hasattr(estimator, "transform"):
        out = estimator.transform(data, **_side(estimator, data, "transform", params))
        _write_rows(data, estimator, key, out, np.asarray(data.var_names))
    else:
        raise TypeError(
            f"{type(estimator).__name__} has no predict or transform to apply."
        )
    _record(data, estimator, key, "predict")
    return data if copy else None


def _predicted_modality(estimator, X, obs_source, params):
    import anndata

    Y = estimator.predict(X, **params)
    Y = np.asarray(Y).reshape(obs_source.n_obs, -1)
    names = getattr(estimator, "feature_names_mod2_", None)
    var = pd.DataFrame(
        index=[str(n) for n in names]
        if names is not None
        else [f"{type(estimator).__name__.lower()}{i}" for i in range(Y.shape[1])]
    )
    out = anndata.AnnData(Y, obs=obs_source.obs[[]].copy(), var=var)
    out.uns["skdance"] = {
        "estimator": type(estimator).__name__,
        "params": _params(estimator),
    }
    return out
