"""Loader for DANCE's imputation sets (10x HDF5 and GEO CSV files)."""

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skdance.datasets._base import DatasetNotFoundError, get_data_home, make_anndata

__all__ = ["IMPUTATION_DATASETS", "load_imputation_dataset"]

# DANCE's imputation datasets: name -> (folder under <data_home>/train, files)
IMPUTATION_DATASETS = {
    "pbmc": ("pbmc_data", ("5k_pbmc_protein_v3_filtered_feature_bc_matrix.h5",)),
    "mouse_brain": (
        "mouse_brain_data",
        ("neuron_10k_v3_filtered_feature_bc_matrix.h5",),
    ),
    "mouse_embryo": (
        "mouse_embryo_data",
        (
            "GSE65525/GSM1599494_ES_d0_main.csv",
            "GSE65525/GSM1599497_ES_d2_LIFminus.csv",
            "GSE65525/GSM1599498_ES_d4_LIFminus.csv",
            "GSE65525/GSM1599499_ES_d7_LIFminus.csv",
        ),
    ),
    "human_stemcell": (
        "human_stemcell_data",
        ("GSE75748/GSE75748_sc_time_course_ec.csv.gz",),
    ),
}


def read_10x_h5(path):
    """Gene-expression counts of a Cell Ranger (v3) ``filtered_feature_bc_matrix.h5``.

    Returns ``(X, genes, barcodes)``: cells x genes CSR counts (float32), gene
    symbols made unique as scanpy does (``-1``, ``-2`` suffixes) and cell
    barcodes.  Other feature types (antibody capture) are dropped.
    """
    import h5py

    with h5py.File(path, "r") as fh:
        if "matrix" not in fh:
            raise ValueError(f"{path} is not a Cell Ranger v3 HDF5 file (no 'matrix').")
        m = fh["matrix"]
        shape = tuple(int(v) for v in m["shape"][()])  # (features, barcodes)
        csc = sp.csc_matrix(
            (m["data"][()], m["indices"][()], m["indptr"][()]), shape=shape
        )
        names = np.array([v.decode() for v in m["features/name"][()]])
        types = np.array([v.decode() for v in m["features/feature_type"][()]])
        barcodes = np.array([v.decode() for v in m["barcodes"][()]])
    keep = types == "Gene Expression"
    X = sp.csr_matrix(csc[keep].T, dtype=np.float32)
    genes = pd.Index(names[keep])
    if genes.has_duplicates:  # scanpy's var_names_make_unique
        counts = {}
        unique = []
        for g in genes:
            if g in counts:
                counts[g] += 1
                unique.append(f"{g}-{counts[g]}")
            else:
                counts[g] = 0
                unique.append(g)
        genes = pd.Index(unique)
    return X, np.asarray(genes), barcodes


def _read_genes_by_cells_csv(path, header):
    frame = pd.read_csv(path, header=0 if header else None, index_col=0)
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        raise ValueError(f"{path} lists some genes more than once.")
    return frame


def load_imputation_dataset(name, data_home=None, *, return_anndata=False):
    """Load one of DANCE's imputation datasets from its original files.

    DANCE's files sit under ``<data_home>/train/<name>_data/``:

    ==================  ===============================================
    name                file(s)
    ==================  ===============================================
    ``pbmc``            10x ``5k_pbmc_protein_v3_filtered_feature_bc_matrix.h5``
    ``mouse_brain``     10x ``neuron_10k_v3_filtered_feature_bc_matrix.h5``
    ``mouse_embryo``    GEO GSE65525 (Klein 2015): four genes x cells CSVs
                        without header (days 0, 2, 4, 7), stacked
    ``human_stemcell``  GEO GSE75748 ``sc_time_course_ec.csv.gz`` (genes x
                        cells, header row of cell names; expected counts)
    ==================  ===============================================

    They are not shipped and cannot be downloaded here; DANCE fetches them
    from its own Dropbox archives.

    Parameters
    ----------
    name : {"pbmc", "mouse_brain", "mouse_embryo", "human_stemcell"}
        Dataset.
    data_home : str or path-like, default=None
        Folder holding ``train/`` (default ``$SKDANCE_DATA``).
    return_anndata : bool, default=False
        Return an AnnData (``obs["cell_type"]`` holds the day for
        ``mouse_embryo``).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_cells, n_genes)
        Counts (float32).
    genes : ndarray of str
        Gene names.

    Examples
    --------
    >>> from skdance.datasets import IMPUTATION_DATASETS
    >>> sorted(IMPUTATION_DATASETS)
    ['human_stemcell', 'mouse_brain', 'mouse_embryo', 'pbmc']
    """
    if name not in IMPUTATION_DATASETS:
        raise ValueError(
            f"name must be one of {sorted(IMPUTATION_DATASETS)}, got {name!r}."
        )
    folder, files = IMPUTATION_DATASETS[name]
    root = Path(get_data_home(data_home)) / "train" / folder
    paths = [root / f for f in files]
    for path in paths:
        if not path.exists():
            raise DatasetNotFoundError(
                f"{path} not found. DANCE's imputation files are laid out as "
                "<data_home>/train/<name>_data/<file>; set SKDANCE_DATA or pass "
                "data_home= to the folder holding them."
            )
    days = None
    if paths[0].suffix == ".h5":
        X, genes, _ = read_10x_h5(paths[0])
    elif name == "mouse_embryo":
        frames = [_read_genes_by_cells_csv(p, header=False) for p in paths]
        genes = frames[0].index
        for p, f in zip(paths[1:], frames[1:]):
            if not f.index.equals(genes):
                raise ValueError(f"{p} does not list the genes of {paths[0]}.")
        X = sp.csr_matrix(np.hstack([f.to_numpy(np.float32) for f in frames]).T)
        days = np.concatenate(
            [[d] * f.shape[1] for d, f in zip(("d0", "d2", "d4", "d7"), frames)]
        )
        genes = np.asarray(genes)
    else:
        frame = _read_genes_by_cells_csv(paths[0], header=True)
        X = sp.csr_matrix(frame.to_numpy(np.float32).T)
        genes = np.asarray(frame.index)
    if return_anndata:
        return make_anndata(X, days, list(genes))
    return X, genes
