"""Spatial transcriptomics: the benchmark slices, Space Ranger folders, labels.

The benchmark files are h5ad (``X`` = counts, ``obsm["spatial"]`` = spot
coordinates, the manual domain in ``obs``), verified by sha256 like every
registry file.  :func:`read_visium` reads the folder 10x Genomics' Space
Ranger writes (what users have), :func:`read_layer_labels` a barcode ->
layer table such as spatialLIBD's ``barcode_level_layer_map.tsv``.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from skdance.datasets._base import REGISTRY, RemoteFile, fetch_file

__all__ = [
    "SPATIAL_DATASETS",
    "load_spatial_dataset",
    "read_layer_labels",
    "read_visium",
]

_LIBD = (
    "LIBD human DLPFC 10x Visium (Maynard et al. 2021, spatialLIBD); counts "
    "from prabhakarlab/Banksy, layer labels from LieberInstitute/HumanPilot "
    "(Artistic-2.0), coordinates from spatialLIBD via JiangBioLab/DeepST (MIT)"
)
_STARMAP = "STARmap mouse mPFC (Wang et al. 2018), zhengli09/BASS-Analysis (GPL-3)"


class _Spatial:
    """What one spatial dataset is: its file, label column and annotation."""

    def __init__(self, key, path, sha256, source, label, counts=True, n_domains=None):
        self.key, self.label, self.counts = key, label, counts
        self.n_domains = n_domains
        REGISTRY[key] = RemoteFile(path, sha256, None, source)


_SPECS = {
    "dlpfc_151673": _Spatial(
        "dlpfc_151673",
        "dlpfc_visium/151673.h5ad",
        "670bd94ccec6aa9f8ffefe660dee4a5191ef7212c00f799836665b5c4b22caa6",
        _LIBD + "; a DANCE slice",
        "layer",
        n_domains=7,
    ),
    "dlpfc_151673_subset": _Spatial(
        "dlpfc_151673_subset",
        "dlpfc_visium/151673_subset.h5ad",
        "b260aabb82ce6880a04ca420ea26094cf2b7ae39619150091c382527ab44c6af",
        _LIBD + "; shipped with skdance: the 1,062 spots with array_col < 40 "
        "(a band across all 7 layers) and their 3,000 seurat_v3 genes",
        "layer",
        n_domains=7,
    ),
    "dlpfc_151676": _Spatial(
        "dlpfc_151676",
        "dlpfc_visium/151676.h5ad",
        "9ccb6fad65d9e0bad91e95af1e2d6555a0fc1f143ebda280fad90802440aceaf",
        _LIBD + "; a DANCE slice",
        "layer",
        n_domains=7,
    ),
    "dlpfc_151510": _Spatial(
        "dlpfc_151510",
        "dlpfc_visium/151510.h5ad",
        "195fbee6ccc414112d1a716ac6a32e3243ff9e162f03f5a1489712416f96872a",
        _LIBD + "; counts of 500 genes from feiyoung/DR.SC (GPL-3); same donor "
        "as DANCE's 151507",
        "layer",
        n_domains=7,
    ),
    "starmap_bz5": _Spatial(
        "starmap_bz5",
        "starmap_mpfc/20180417_BZ5_control.h5ad",
        "ed6c1a38f9a3f27b980bfe8297e93b948bf54a087651f594b96dcf11dbe5df89",
        _STARMAP,
        "layer",
        n_domains=4,
    ),
    "starmap_bz9": _Spatial(
        "starmap_bz9",
        "starmap_mpfc/20180419_BZ9_control.h5ad",
        "08f95515d90e523401dc150d030326e96a3ba16f849289783c5640746fbd1a32",
        _STARMAP,
        "layer",
        n_domains=4,
    ),
    "starmap_bz14": _Spatial(
        "starmap_bz14",
        "starmap_mpfc/20180424_BZ14_control.h5ad",
        "de739e86b5b1f93ddba8436274fdc086ab01a4007f2cd0506111888014d5b992",
        _STARMAP,
        "layer",
        n_domains=4,
    ),
    "mouse_olfactory_bulb": _Spatial(
        "mouse_olfactory_bulb",
        "mouse_olfactory_bulb_st/mob_st.h5ad",
        "87c2fdb7a104e213f8631f3d70e0bdf4570ec1ea9272bbfcb6b176a2f0d8ac26",
        "Mouse olfactory bulb Spatial Transcriptomics (Stahl et al. 2016), "
        "JEFworks-Lab/STdeconvolve (GPL-3)",
        "layer",
        n_domains=5,
    ),
    "merfish_hypothalamus": _Spatial(
        "merfish_hypothalamus",
        "merfish_hypothalamus/merfish_hypothalamus.h5ad",
        "82146260e8503d02fa0027c7cf5a2597284eed1a8107b13ad831fd685759de8f",
        "MERFISH mouse hypothalamic preoptic region (Moffitt et al. 2018), "
        "animal 1, two z planes; prabhakarlab/Banksy",
        "cell_class",
        counts=False,
    ),
}

#: Names accepted by :func:`load_spatial_dataset`.
SPATIAL_DATASETS = tuple(_SPECS)


def load_spatial_dataset(name, data_home=None, *, return_anndata=False):
    """Load a real spatial transcriptomics slice with its manual annotation.

    Parameters
    ----------
    name : str
        One of :data:`SPATIAL_DATASETS`: ``"dlpfc_151673"``,
        ``"dlpfc_151676"`` (DANCE's slices, 5,000 genes),
        ``"dlpfc_151673_subset"`` (1,062 spots of 151673 across all seven
        layers, 3,000 genes; shipped inside the package, so it needs no data
        folder), ``"dlpfc_151510"``
        (500 genes; DANCE's 151507 is not reachable), ``"starmap_bz5"``,
        ``"starmap_bz9"``, ``"starmap_bz14"`` (STARmap mPFC, 166 genes, 4
        layers), ``"mouse_olfactory_bulb"`` (262 spots, 5 layers) or
        ``"merfish_hypothalamus"`` (single cells, two z planes, cell classes;
        volume-normalised values, not counts).
    data_home : str or path-like, default=None
        Folder holding the files (default ``$SKDANCE_DATA``; the shipped
        subset is read from the package when the folder lacks it).
    return_anndata : bool, default=False
        Return the file's AnnData instead of arrays.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_spots, n_genes)
        Raw counts (float32), volume-normalised values for MERFISH.
    y : ndarray of object of shape (n_spots,)
        Manual domain (layer) of each spot, or MERFISH's cell class; NaN
        for the few unannotated spots (score only the annotated ones:
        ``mask = pandas.notna(y)``).
    coords : ndarray of shape (n_spots, 2)
        Spot positions: image pixels for Visium (``(imagecol,
        imagerow)``), micrometres for MERFISH, the file's units otherwise.

    adata : anndata.AnnData
        With ``return_anndata=True``: the file itself (``obsm["spatial"]``,
        the label in ``obs``).

    Examples
    --------
    >>> from skdance.datasets import load_spatial_dataset
    >>> X, y, coords = load_spatial_dataset("dlpfc_151673_subset")  # shipped
    >>> X.shape, coords.shape
    ((1062, 3000), (1062, 2))
    """
    if name not in _SPECS:
        raise ValueError(
            f"Unknown spatial dataset {name!r}; choose one of {SPATIAL_DATASETS}."
        )
    from skdance.datasets._loaders import _read_h5ad

    spec = _SPECS[name]
    adata = _read_h5ad(fetch_file(spec.key, data_home, False))
    if return_anndata:
        return adata
    X = sp.csr_matrix(adata.X, dtype=np.float32)
    y = adata.obs[spec.label].astype(object).to_numpy()
    y[pd.isna(y)] = np.nan
    coords = np.asarray(adata.obsm["spatial"], dtype=np.float64)
    return X, y, coords


def _read_10x_h5(path):
    """Read counts (barcodes x features CSR), barcodes and features of a 10x h5."""
    import h5py

    with h5py.File(path, "r") as fh:
        if "matrix" not in fh:
            raise ValueError(
                f"{path} is not a Cell Ranger >= 3 / Space Ranger feature-barcode "
                "h5 file (it has no 'matrix' group)."
            )
        m = fh["matrix"]
        n_features, n_barcodes = (int(v) for v in m["shape"][:])
        # stored features x barcodes in CSC, i.e. barcodes x features in CSR
        X = sp.csr_matrix(
            (m["data"][:].astype(np.float32), m["indices"][:], m["indptr"][:]),
            shape=(n_barcodes, n_features),
        )
        barcodes = m["barcodes"][:].astype(str)
        feat = m["features"]
        features = pd.DataFrame(
            {
                "gene_ids": feat["id"][:].astype(str),
                "feature_types": feat["feature_type"][:].astype(str),
            },
            index=pd.Index(feat["name"][:].astype(str), name=None),
        )
    return X, barcodes, features


_POSITION_COLUMNS = [
    "barcode",
    "in_tissue",
    "array_row",
    "array_col",
    "pxl_row_in_fullres",
    "pxl_col_in_fullres",
]


def _read_positions(spatial_dir):
    new = spatial_dir / "tissue_positions.csv"  # Space Ranger >= 2.0, header
    old = spatial_dir / "tissue_positions_list.csv"  # Space Ranger 1.x, none
    if new.exists():
        pos = pd.read_csv(new)
    elif old.exists():
        pos = pd.read_csv(old, header=None, names=_POSITION_COLUMNS)
    else:
        raise FileNotFoundError(
            f"No tissue_positions.csv or tissue_positions_list.csv in {spatial_dir}."
        )
    missing = set(_POSITION_COLUMNS) - set(pos.columns)
    if missing:
        raise ValueError(f"{spatial_dir}: tissue positions lack {sorted(missing)}.")
    return pos.set_index("barcode")


def read_visium(
    path, *, count_file="filtered_feature_bc_matrix.h5", gene_names="symbols"
):
    """Read a Space Ranger output folder into an AnnData.

    Reads ``count_file`` (10x feature-barcode h5), ``spatial/tissue_positions.csv``
    (or the older ``tissue_positions_list.csv``) and
    ``spatial/scalefactors_json.json``, the layout Space Ranger writes.  Only
    spots in the tissue are kept (the filtered matrix holds only those), with
    the positions aligned to the matrix's barcodes.  Images are not read.

    Parameters
    ----------
    path : str or path-like
        The Space Ranger ``outs`` folder.
    count_file : str, default="filtered_feature_bc_matrix.h5"
        Name of the counts file in ``path``.
    gene_names : {"symbols", "ids"}, default="symbols"
        Use gene symbols (made unique with ``-1``, ``-2`` suffixes) or
        Ensembl ids as ``var_names``.

    Returns
    -------
    adata : anndata.AnnData
        ``X`` raw counts (float32 CSR), ``obs`` with ``in_tissue``,
        ``array_row``, ``array_col``; ``obsm["spatial"]`` the full-resolution
        pixel coordinates ``(pxl_col, pxl_row)`` (x, y, as scanpy);
        ``uns["spatial"]["scalefactors"]`` the JSON's scale factors; ``var``
        with ``gene_ids`` and ``feature_types`` (only "Gene Expression"
        features are kept).

    Examples
    --------
    >>> from skdance.datasets import read_visium
    >>> adata = read_visium("outs/")  # doctest: +SKIP
    >>> adata.obsm["spatial"].shape  # doctest: +SKIP
    (3639, 2)
    """
    import anndata

    if gene_names not in ("symbols", "ids"):
        raise ValueError(f"gene_names must be 'symbols' or 'ids', got {gene_names!r}.")
    path = Path(path)
    counts = path / count_file
    if not counts.exists():
        raise FileNotFoundError(f"No {count_file} in {path}.")
    X, barcodes, var = _read_10x_h5(counts)
    positions = _read_positions(path / "spatial")
    unknown = pd.Index(barcodes).difference(positions.index)
    if len(unknown):
        raise ValueError(
            f"{len(unknown)} barcodes of {count_file} (e.g. {unknown[0]!r}) have no "
            "row in the tissue positions: the files come from different runs."
        )
    positions = positions.loc[barcodes]
    keep = positions["in_tissue"].to_numpy() == 1
    gex = (var["feature_types"] == "Gene Expression").to_numpy()
    var = var[gex].copy()
    if gene_names == "ids":
        var = var.set_index("gene_ids", drop=False)
        var.index.name = None
    else:
        var.index = anndata.utils.make_index_unique(var.index)
    adata = anndata.AnnData(
        X[keep][:, gex],
        obs=positions.loc[keep, ["in_tissue", "array_row", "array_col"]],
        var=var,
    )
    adata.obs.index.name = None
    adata.obsm["spatial"] = positions.loc[
        keep, ["pxl_col_in_fullres", "pxl_row_in_fullres"]
    ].to_numpy(dtype=np.float64)
    scale = path / "spatial" / "scalefactors_json.json"
    adata.uns["spatial"] = {
        "scalefactors": json.loads(scale.read_text()) if scale.exists() else {}
    }
    return adata


def read_layer_labels(path, barcodes=None, *, sample=None):
    """Read a barcode -> layer table (e.g. spatialLIBD's layer map).

    Parameters
    ----------
    path : str or path-like
        CSV or TSV (by extension) with either a header holding ``barcode``
        and ``layer`` columns (and optionally ``sample``), or no header and
        the columns ``barcode, layer`` or ``barcode, sample, layer``
        (HumanPilot's ``barcode_level_layer_map.tsv``).
    barcodes : array-like of str, default=None
        Return the labels in this order (NaN for barcodes the table lacks:
        unannotated spots).  None returns the table's own order.
    sample : str, default=None
        Keep only this sample's rows (the table holds several slices; needed
        when the same barcode occurs in more than one).

    Returns
    -------
    labels : pandas.Series
        Layer per barcode (index: barcodes).

    Examples
    --------
    >>> from skdance.datasets import read_layer_labels
    >>> labels = read_layer_labels(  # doctest: +SKIP
    ...     "barcode_level_layer_map.tsv", adata.obs_names, sample="151673"
    ... )
    """
    path = Path(path)
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    table = pd.read_csv(path, sep=sep, dtype=str)
    if "barcode" not in table.columns or "layer" not in table.columns:
        table = pd.read_csv(path, sep=sep, dtype=str, header=None)
        if table.shape[1] == 2:
            table.columns = ["barcode", "layer"]
        elif table.shape[1] == 3:
            table.columns = ["barcode", "sample", "layer"]
        else:
            raise ValueError(
                f"{path}: expected columns barcode, [sample,] layer; got "
                f"{table.shape[1]} unnamed columns."
            )
    if sample is not None:
        if "sample" not in table.columns:
            raise ValueError(f"{path} has no sample column to select {sample!r}.")
        table = table[table["sample"] == str(sample)]
        if table.empty:
            raise ValueError(f"{path} has no rows of sample {sample!r}.")
    if table["barcode"].duplicated().any():
        raise ValueError(
            f"{path}: barcodes repeat (several samples?); pass sample= to pick one."
        )
    labels = table.set_index("barcode")["layer"]
    labels.index.name = None
    if barcodes is not None:
        labels = labels.reindex(pd.Index(np.asarray(barcodes, dtype=str)))
    return labels.rename("layer")
