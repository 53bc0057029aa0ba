"""Spatial loaders: the registry's slices, Space Ranger folders, layer tables."""

import json
import os

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skdance.datasets import (
    SPATIAL_DATASETS,
    load_spatial_dataset,
    read_layer_labels,
    read_visium,
)
from skdance.datasets._base import REGISTRY, fetch_file, sha256sum

needs_data = pytest.mark.skipif(
    "SKDANCE_DATA" not in os.environ,
    reason="SKDANCE_DATA is not set (the folder holding the real spatial slices)",
)

# the released slices (their digests are in REGISTRY): spots x genes,
# unannotated spots, spots per manual label
EXPECTED = {
    "dlpfc_151673": (
        (3639, 5000),
        28,
        {
            "Layer3": 989,
            "Layer6": 692,
            "Layer5": 673,
            "WM": 513,
            "Layer1": 273,
            "Layer2": 253,
            "Layer4": 218,
        },
    ),
    # shipped inside the package: the band array_col < 40 of 151673
    "dlpfc_151673_subset": (
        (1062, 3000),
        0,
        {
            "WM": 364,
            "Layer1": 165,
            "Layer5": 155,
            "Layer3": 154,
            "Layer6": 136,
            "Layer4": 49,
            "Layer2": 39,
        },
    ),
    "dlpfc_151676": ((3460, 5000), 29, None),
    "dlpfc_151510": ((4634, 500), 39, None),
    "starmap_bz5": ((1049, 166), 0, {"L5": 449, "L6": 347, "L2/3": 167, "L1": 86}),
    "starmap_bz9": ((1053, 166), 0, None),
    "starmap_bz14": ((1088, 166), 0, None),
    "mouse_olfactory_bulb": ((262, 15928), 2, None),
    "merfish_hypothalamus": ((11162, 161), 0, None),
}
N_LABELS = {"starmap": 4, "dlpfc": 7, "mouse": 5, "merfish": 16}


def test_the_shipped_slice_loads_without_a_data_folder(tmp_path):
    # an empty data home: the shipped band of 151673 comes from the package
    X, y, coords = load_spatial_dataset("dlpfc_151673_subset", data_home=tmp_path)
    assert X.shape == (1062, 3000) and coords.shape == (1062, 2)
    assert pd.Series(y).nunique() == 7


def test_the_shipped_slice_is_a_band_of_the_full_slice():
    # counts, labels and positions unchanged (needs the full slice)
    band = load_spatial_dataset("dlpfc_151673_subset", return_anndata=True)
    full = load_spatial_dataset("dlpfc_151673", return_anndata=True)
    assert (full.obs["array_col"] < 40).sum() == band.n_obs
    same = full[band.obs_names, band.var_names]
    assert (sp.csr_matrix(same.X) != sp.csr_matrix(band.X)).nnz == 0
    np.testing.assert_array_equal(same.obsm["spatial"], band.obsm["spatial"])
    assert list(same.obs["layer"]) == list(band.obs["layer"])


def test_every_spatial_dataset_is_specified():
    assert set(EXPECTED) == set(SPATIAL_DATASETS)
    for name in SPATIAL_DATASETS:
        assert len(REGISTRY[name].sha256) == 64


@needs_data
@pytest.mark.parametrize("name", SPATIAL_DATASETS)
def test_spatial_dataset_matches_readme(name):
    path = fetch_file(name)
    assert sha256sum(path) == REGISTRY[name].sha256
    X, y, coords = load_spatial_dataset(name)
    shape, n_missing, counts = EXPECTED[name]
    assert sp.issparse(X) and X.shape == shape and X.dtype == np.float32
    assert coords.shape == (shape[0], 2) and np.isfinite(coords).all()
    assert pd.isna(y).sum() == n_missing
    annotated = pd.Series(y[pd.notna(y)])
    assert annotated.nunique() == N_LABELS[name.split("_")[0]]
    if counts is not None:
        assert annotated.value_counts().to_dict() == counts
    if name != "merfish_hypothalamus":  # the others hold integer counts
        assert (X.data >= 0).all() and np.array_equal(X.data, np.round(X.data))
    adata = load_spatial_dataset(name, return_anndata=True)
    np.testing.assert_array_equal(adata.obsm["spatial"], coords)


def test_unknown_spatial_dataset():
    with pytest.raises(ValueError, match="Unknown spatial dataset 'dlpfc'"):
        load_spatial_dataset("dlpfc")


def test_checksum_mismatch_is_an_error(tmp_path):
    (tmp_path / "mouse_olfactory_bulb_st").mkdir()
    (tmp_path / "mouse_olfactory_bulb_st" / "mob_st.h5ad").write_bytes(b"not it")
    with pytest.raises(OSError, match="Checksum mismatch"):
        load_spatial_dataset("mouse_olfactory_bulb", data_home=tmp_path)


def _write_space_ranger(folder, *, new_positions=True, extra_barcode=False):
    """A tiny Space Ranger ``outs`` folder: 4 barcodes (3 in tissue), 3 features."""
    rng = np.random.default_rng(0)
    dense = rng.poisson(2.0, size=(4, 3)).astype(np.int32)  # barcodes x features
    csc = sp.csc_matrix(dense.T)  # stored features x barcodes
    barcodes = ["AAAC-1", "AAAG-1", "AAAT-1", "AACA-1"]
    folder.mkdir()
    with h5py.File(folder / "filtered_feature_bc_matrix.h5", "w") as fh:
        m = fh.create_group("matrix")
        m["data"], m["indices"], m["indptr"] = csc.data, csc.indices, csc.indptr
        m["shape"] = np.array([3, 4])
        m["barcodes"] = np.array(barcodes, dtype="S")
        f = m.create_group("features")
        f["id"] = np.array(["ENSG1", "ENSG2", "AB1"], dtype="S")
        f["name"] = np.array(["GENE", "GENE", "CD3"], dtype="S")
        f["feature_type"] = np.array(
            ["Gene Expression", "Gene Expression", "Antibody Capture"], dtype="S"
        )
    (folder / "spatial").mkdir()
    rows = [
        [b, int(i != 1), i, 2 * i, 100 + i, 200 + i] for i, b in enumerate(barcodes)
    ]
    if not extra_barcode:
        rows.append(["TTTT-1", 0, 9, 9, 0, 0])  # a spot off the tissue, no counts
    else:
        rows = rows[1:]  # the first barcode has no position
    table = pd.DataFrame(
        rows,
        columns=[
            "barcode",
            "in_tissue",
            "array_row",
            "array_col",
            "pxl_row_in_fullres",
            "pxl_col_in_fullres",
        ],
    )
    if new_positions:
        table.to_csv(folder / "spatial" / "tissue_positions.csv", index=False)
    else:
        table.to_csv(
            folder / "spatial" / "tissue_positions_list.csv", index=False, header=False
        )
    (folder / "spatial" / "scalefactors_json.json").write_text(
        json.dumps({"tissue_hires_scalef": 0.15, "spot_diameter_fullres": 89.4})
    )
    return dense, barcodes


@pytest.mark.parametrize("new_positions", [True, False])
def test_read_visium(tmp_path, new_positions):
    outs = tmp_path / "outs"
    dense, barcodes = _write_space_ranger(outs, new_positions=new_positions)
    adata = read_visium(tmp_path / "outs")
    keep = [0, 2, 3]  # barcode 1 is off the tissue
    assert list(adata.obs_names) == [barcodes[i] for i in keep]
    # the antibody feature is dropped, duplicate symbols made unique
    assert list(adata.var_names) == ["GENE", "GENE-1"]
    np.testing.assert_array_equal(adata.X.toarray(), dense[keep][:, :2])
    np.testing.assert_array_equal(
        adata.obsm["spatial"], [[200 + i, 100 + i] for i in keep]
    )
    np.testing.assert_array_equal(adata.obs["array_col"], [2 * i for i in keep])
    assert adata.uns["spatial"]["scalefactors"]["tissue_hires_scalef"] == 0.15
    ids = read_visium(tmp_path / "outs", gene_names="ids")
    assert list(ids.var_names) == ["ENSG1", "ENSG2"]


def test_read_visium_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="filtered_feature_bc_matrix.h5"):
        read_visium(tmp_path)
    _write_space_ranger(tmp_path / "outs", extra_barcode=True)
    with pytest.raises(ValueError, match="1 barcodes .* have no row"):
        read_visium(tmp_path / "outs")
    with pytest.raises(ValueError, match="gene_names"):
        read_visium(tmp_path / "outs", gene_names="names")


def test_read_layer_labels(tmp_path):
    tsv = tmp_path / "barcode_level_layer_map.tsv"
    tsv.write_text("A-1\t151673\tL3\nB-1\t151673\tWM\nA-1\t151676\tL1\n")
    labels = read_layer_labels(tsv, ["B-1", "C-1", "A-1"], sample="151673")
    assert labels.index.tolist() == ["B-1", "C-1", "A-1"]
    assert labels.iloc[0] == "WM" and pd.isna(labels.iloc[1]) and labels.iloc[2] == "L3"
    with pytest.raises(ValueError, match="pass sample="):
        read_layer_labels(tsv)
    with pytest.raises(ValueError, match="no rows of sample '1'"):
        read_layer_labels(tsv, sample="1")
    csv = tmp_path / "labels.csv"
    csv.write_text("barcode,layer\nA-1,L2\n")
    assert read_layer_labels(csv).to_dict() == {"A-1": "L2"}
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c,d\n")
    with pytest.raises(ValueError, match="4 unnamed columns"):
        read_layer_labels(bad)
