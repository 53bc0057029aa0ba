"""Loader for DANCE's cell-type deconvolution sets (CSV / h5ad folders)."""

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils import Bunch

from skdance.datasets._base import DatasetNotFoundError, get_data_home

__all__ = ["DECONVOLUTION_DATASETS", "load_deconvolution_dataset"]

# DANCE's deconvolution sets (``CellTypeDeconvoDatasetLite``): one folder per
# set under <data_home>/spatial, each holding the files below
DECONVOLUTION_DATASETS = {
    "GSE174746": "human PDAC: scRNA-seq reference and spots (Visium)",
    "CARD_synthetic": "pseudo-spots from a mouse pancreas reference (CARD)",
    "SPOTLight_synthetic": "pseudo-spots from a mouse brain reference (SPOTlight)",
    "mouse_posterior_brain": "10x Visium mouse posterior brain with a reference",
}

_CELL_TYPE_COLUMNS = ("cellType", "celltype", "cell_type", "cellType_nm")


def _read_table(folder, stem):
    """Read ``<stem>.csv`` (header row, index column) or ``<stem>.h5ad``."""
    csv, h5ad = folder / f"{stem}.csv", folder / f"{stem}.h5ad"
    if csv.exists():
        frame = pd.read_csv(csv, header=0, index_col=0)
    elif h5ad.exists():
        import anndata

        adata = anndata.read_h5ad(h5ad)
        frame = adata.to_df()
    else:
        return None
    frame.index = frame.index.astype(str)
    frame.columns = frame.columns.astype(str)
    return frame


def _cell_types(annot, cells, path):
    for column in _CELL_TYPE_COLUMNS:
        if column in annot.columns:
            break
    else:
        if annot.shape[1] != 1:
            raise ValueError(
                f"{path}: no cell-type column (looked for {_CELL_TYPE_COLUMNS}; "
                f"found {list(annot.columns)})."
            )
        column = annot.columns[0]
    if not set(cells) <= set(annot.index):
        missing = sorted(set(cells) - set(annot.index))[:3]
        raise ValueError(f"{path} has no annotation for cells such as {missing}.")
    return annot.loc[list(cells), column].astype(str).to_numpy()


def load_deconvolution_dataset(name, data_home=None):
    """Load one of DANCE's cell-type deconvolution sets from its files.

    DANCE keeps every set as a folder ``<data_home>/spatial/<name>/`` with
    comma-separated tables (header row, first column = row names), or
    ``.h5ad`` files with the same stems:

    ======================  ==================================================
    file                    content
    ======================  ==================================================
    ``ref_sc_count``        reference counts, cells x genes
    ``ref_sc_annot``        reference annotation, cells x columns, one of
                            them the cell type (``cellType``)
    ``mix_count``           spot counts, spots x genes
    ``true_p``              true proportions, spots x cell types (optional)
    ``spatial_location``    spot coordinates, spots x (x, y) (optional)
    ======================  ==================================================

    The sets (``DECONVOLUTION_DATASETS``) are not shipped and cannot be
    downloaded here (DANCE fetches them from its own archives).

    Parameters
    ----------
    name : str
        Folder name under ``<data_home>/spatial`` (e.g. ``"GSE174746"``,
        ``"CARD_synthetic"``, ``"SPOTLight_synthetic"``).
    data_home : str or path-like, default=None
        Folder holding ``spatial/`` (default ``$SKDANCE_DATA``).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_ref`` (CSR counts) and ``y_ref`` (cell types) of the reference,
        ``ref_genes``; ``X_spots`` (CSR counts) and ``spot_genes``;
        ``proportions`` (spots x types, columns in ``classes`` order, None
        without ``true_p``); ``classes`` (sorted cell types); ``coords``
        (None without ``spatial_location``).  Gene sets may differ: pass
        ``pandas.DataFrame(X_spots.toarray(), columns=spot_genes)`` to a
        fitted estimator to align them by name.

    Examples
    --------
    >>> from skdance.datasets import DECONVOLUTION_DATASETS
    >>> sorted(DECONVOLUTION_DATASETS)[:2]
    ['CARD_synthetic', 'GSE174746']
    """
    folder = Path(get_data_home(data_home)) / "spatial" / name
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{folder} not found. DANCE's deconvolution sets are folders "
            "<data_home>/spatial/<name>/ holding ref_sc_count, ref_sc_annot, "
            "mix_count (and true_p, spatial_location) as .csv or .h5ad; set "
            "SKDANCE_DATA or pass data_home=."
        )
    tables = {
        stem: _read_table(folder, stem)
        for stem in (
            "ref_sc_count",
            "ref_sc_annot",
            "mix_count",
            "true_p",
            "spatial_location",
        )
    }
    for stem in ("ref_sc_count", "ref_sc_annot", "mix_count"):
        if tables[stem] is None:
            raise FileNotFoundError(f"{folder} has no {stem}.csv or {stem}.h5ad.")
    ref, spots = tables["ref_sc_count"], tables["mix_count"]
    y_ref = _cell_types(tables["ref_sc_annot"], ref.index, folder / "ref_sc_annot")
    classes = np.unique(y_ref)
    proportions = coords = None
    if tables["true_p"] is not None:
        true_p = tables["true_p"]
        unknown = sorted(set(true_p.columns) - set(classes))
        if unknown:
            raise ValueError(
                f"true_p has cell types absent from the reference: {unknown[:5]}."
            )
        if len(true_p) != len(spots):
            raise ValueError(f"true_p has {len(true_p)} rows for {len(spots)} spots.")
        proportions = true_p.reindex(columns=classes, fill_value=0.0).to_numpy(float)
    if tables["spatial_location"] is not None:
        location = tables["spatial_location"]
        if len(location) != len(spots):
            raise ValueError(
                f"spatial_location has {len(location)} rows for {len(spots)} spots."
            )
        coords = location.iloc[:, :2].to_numpy(float)
    return Bunch(
        X_ref=sp.csr_matrix(ref.to_numpy(np.float32)),
        y_ref=y_ref,
        ref_genes=ref.columns.to_numpy(dtype=object),
        X_spots=sp.csr_matrix(spots.to_numpy(np.float32)),
        spot_genes=spots.columns.to_numpy(dtype=object),
        proportions=proportions,
        classes=classes,
        coords=coords,
    )
