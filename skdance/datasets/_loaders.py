"""Loaders for the benchmark datasets.

Every loader returns ``(X, y)``: ``X`` a cells x genes ``scipy.sparse`` CSR
matrix (raw counts unless the docstring says otherwise) and ``y`` a 1-D array
of labels (None where the data have none), or an :class:`anndata.AnnData`
with ``obs["cell_type"]`` when ``return_anndata=True``.
"""

import warnings
from importlib import resources

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skdance.datasets._base import (
    fetch_file,
    make_anndata,
    read_h5_counts,
)

__all__ = [
    "load_mouse_bladder_cell",
    "load_mouse_es_cell",
    "load_pbmc3k",
    "load_pbmc68k_reduced",
    "load_pbmc_10x_4k",
    "load_pbmc_4k_subset",
    "load_worm_neuron_cell",
]

_SHIPPED_SHA256 = "0973a8684b5e29be4305bafd71fdd39e2ab92da3e60b436c12bb4c84d414a60d"


def _finish(X, y, genes, return_anndata):
    if return_anndata:
        return make_anndata(X, y, genes)
    return X, y


def _read_h5ad(path):
    import anndata

    with warnings.catch_warnings():
        # old files store neighbour graphs in .uns; anndata moves them and warns
        warnings.simplefilter("ignore", FutureWarning)
        return anndata.read_h5ad(path)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}.")


def _load_h5(
    full_key, top_key, n_genes, data_home, return_anndata, download, unverified=False
):
    _check_choice("n_genes", n_genes, ("all", 2000))
    key = full_key if n_genes == "all" else top_key
    X, y = read_h5_counts(fetch_file(key, data_home, download, unverified))
    return _finish(X, y, None, return_anndata)


def load_worm_neuron_cell(
    data_home=None, *, n_genes="all", return_anndata=False, download_if_missing=True
):
    """Worm neuron cells (Cao et al. 2017, sci-RNA-seq), 4,186 cells, 10 types.

    ``n_genes="all"`` is exactly DANCE's clustering file (13,488 genes);
    ``n_genes=2000`` is the scDCC paper's top-2000-gene version.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the data (default ``$SKDANCE_DATA``).
    n_genes : {"all", 2000}, default="all"
        Which version to load.
    return_anndata : bool, default=False
        Return an AnnData instead of ``(X, y)``.
    download_if_missing : bool, default=True
        Download from DANCE's source when the file is absent (only possible
        for ``n_genes="all"``).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (4186, n_genes)
        Raw UMI counts (float32).
    y : ndarray of shape (4186,)
        Integer cell-type labels 1..10.

    Examples
    --------
    >>> from skdance.datasets import load_worm_neuron_cell
    >>> X, y = load_worm_neuron_cell(n_genes=2000)  # doctest: +SKIP
    """
    return _load_h5(
        "worm_neuron_cell",
        "worm_neuron_cell_top2000",
        n_genes,
        data_home,
        return_anndata,
        download_if_missing,
    )


def load_mouse_bladder_cell(
    data_home=None,
    *,
    n_genes=2000,
    return_anndata=False,
    download_if_missing=True,
    allow_unverified=False,
):
    """Mouse bladder cells (Han et al. 2018, Microwell-seq), 2,746 cells, 16 types.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the data (default ``$SKDANCE_DATA``).
    n_genes : {2000, "all"}, default=2000
        2000: the scDCC paper's input (2,003 genes, all DANCE cells); "all":
        DANCE's full-gene file, downloaded from DANCE's source if absent.
    return_anndata : bool, default=False
        Return an AnnData instead of ``(X, y)``.
    download_if_missing : bool, default=True
        Download the full-gene file when absent.
    allow_unverified : bool, default=False
        Allow that download although skdance records no sha256 for the file
        (DANCE's source could not be reached to record one).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (2746, n_genes)
        Raw counts (float32).
    y : ndarray of shape (2746,)
        Integer cell-type labels 1..16.
    """
    return _load_h5(
        "mouse_bladder_cell",
        "mouse_bladder_cell_top2000",
        n_genes,
        data_home,
        return_anndata,
        download_if_missing,
        allow_unverified,
    )


def load_pbmc_10x_4k(
    data_home=None,
    *,
    n_genes=2000,
    return_anndata=False,
    download_if_missing=True,
    allow_unverified=False,
):
    """10x Genomics PBMC 4k, 4,271 cells, 8 types.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the data (default ``$SKDANCE_DATA``).
    n_genes : {2000, "all"}, default=2000
        2000: the scDCC paper's input; "all": DANCE's full-gene file.
    return_anndata : bool, default=False
        Return an AnnData instead of ``(X, y)``.
    download_if_missing : bool, default=True
        Download the full-gene file when absent.
    allow_unverified : bool, default=False
        Allow that download although skdance records no sha256 for the file
        (DANCE's source could not be reached to record one).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (4271, n_genes)
        Raw UMI counts (float32).
    y : ndarray of shape (4271,)
        Integer cell-type labels 1..8.
    """
    return _load_h5(
        "10X_PBMC",
        "10X_PBMC_top2000",
        n_genes,
        data_home,
        return_anndata,
        download_if_missing,
        allow_unverified,
    )


def load_mouse_es_cell(
    data_home=None,
    *,
    subset=True,
    return_anndata=False,
    download_if_missing=True,
    allow_unverified=False,
):
    """Mouse embryonic stem cells (Klein et al. 2015), 4 time points.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the data (default ``$SKDANCE_DATA``).
    subset : bool, default=True
        True: the 1,000-cell, 900-gene subset in the shared data (not the
        DANCE file, so scores are not comparable to DANCE's).  False: DANCE's
        full ``mouse_ES_cell.h5`` (downloaded from DANCE's source if absent).
    return_anndata : bool, default=False
        Return an AnnData instead of ``(X, y)``.
    download_if_missing : bool, default=True
        Download the full file when absent.
    allow_unverified : bool, default=False
        Allow that download although skdance records no sha256 for the file
        (DANCE's source could not be reached to record one).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_cells, n_genes)
        Counts (float32).
    y : ndarray of shape (n_cells,)
        Day labels (0, 2, 4, 7) for the subset; integer labels for DANCE's file.
    """
    if not subset:
        X, y = read_h5_counts(
            fetch_file(
                "mouse_ES_cell", data_home, download_if_missing, allow_unverified
            )
        )
        return _finish(X, y, None, return_anndata)
    profile = pd.read_csv(fetch_file("klein_profile", data_home, False), index_col=0)
    labels = np.loadtxt(fetch_file("klein_labels", data_home, False), dtype=np.int64)
    X = sp.csr_matrix(profile.to_numpy(dtype=np.float32).T)
    if X.shape[0] != labels.shape[0]:
        raise OSError("klein_profile.csv and klein_labels.txt disagree on cells.")
    return _finish(X, labels, list(profile.index.astype(str)), return_anndata)


def load_pbmc68k_reduced(data_home=None, *, return_anndata=False):
    """Scanpy's 700-cell PBMC 68k subsample with 10 bulk cell-type labels.

    Not counts: ``X`` is the log-normalised ``.raw`` matrix (765 genes) of
    the file, so pipelines must skip normalisation and log steps.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the data (default ``$SKDANCE_DATA``).
    return_anndata : bool, default=False
        Return the file's AnnData (``.X`` replaced by the log-normalised
        matrix, ``obs["cell_type"]`` added).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (700, 765)
        Log-normalised expression.
    y : ndarray of str of shape (700,)
        ``bulk_labels``.
    """
    adata = _read_h5ad(fetch_file("pbmc68k_reduced", data_home, False))
    X = sp.csr_matrix(adata.raw.X, dtype=np.float32)
    y = adata.obs["bulk_labels"].astype(str).to_numpy()
    genes = list(adata.raw.var_names)
    return _finish(X, y, genes, return_anndata)


def load_pbmc3k(data_home=None, *, return_anndata=False):
    """10x PBMC 3k raw counts, 2,700 cells x 32,738 genes, unlabelled.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the data (default ``$SKDANCE_DATA``).
    return_anndata : bool, default=False
        Return an AnnData instead of ``(X, None)``.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (2700, 32738)
        Raw UMI counts (float32).
    y : None
        The data have no labels.
    """
    adata = _read_h5ad(fetch_file("pbmc3k", data_home, False))
    X = sp.csr_matrix(adata.X, dtype=np.float32)
    return _finish(X, None, list(adata.var_names), return_anndata)


def load_pbmc_4k_subset(*, return_anndata=False):
    """Shipped: 1,200 cells of 10x PBMC 4k (top 2000 genes), stratified by type.

    Ships inside the package, so it needs no data folder and no network.
    Made by ``benchmarks/make_shipped_subset.py``: a stratified random
    subsample (``random_state=0``) of ``pbmc_10x_4k/10X_PBMC_top2000.h5``
    (sha256 ec78ead4..., scDCC repository, Apache-2.0), counts unchanged.

    Parameters
    ----------
    return_anndata : bool, default=False
        Return an AnnData instead of ``(X, y)``.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (1200, 2000)
        Raw UMI counts (float32).
    y : ndarray of shape (1200,)
        Integer cell-type labels 1..8.

    Examples
    --------
    >>> from skdance.datasets import load_pbmc_4k_subset
    >>> X, y = load_pbmc_4k_subset()
    >>> X.shape
    (1200, 2000)
    """
    from skdance.datasets._base import sha256sum

    ref = resources.files("skdance.datasets") / "data" / "pbmc_4k_subset.npz"
    with resources.as_file(ref) as path:
        if sha256sum(path) != _SHIPPED_SHA256:
            raise OSError(f"The shipped dataset {path} is corrupt (sha256 mismatch).")
        with np.load(path) as npz:
            X = sp.csr_matrix(
                (
                    npz["data"].astype(np.float32),
                    npz["indices"].astype(np.int32),
                    npz["indptr"],
                ),
                shape=tuple(npz["shape"]),
            )
            y = npz["labels"].astype(np.int64)
    return _finish(X, y, None, return_anndata)
