"""load_imputation_dataset on small files written in DANCE's formats."""

import gzip

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skdance.datasets import load_imputation_dataset


def _write_10x_h5(path, counts, genes, barcodes, extra_antibody=True):
    """Cell Ranger v3 layout: features x barcodes CSC under /matrix."""
    import h5py

    names = list(genes) + (["CD3_TotalSeqB"] if extra_antibody else [])
    types = ["Gene Expression"] * len(genes) + (
        ["Antibody Capture"] if extra_antibody else []
    )
    full = counts.T  # features x barcodes
    if extra_antibody:
        full = np.vstack([full, np.arange(counts.shape[0])[None, :] + 100])
    csc = sp.csc_matrix(full.astype(np.int32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        m = fh.create_group("matrix")
        m["barcodes"] = np.array([b.encode() for b in barcodes])
        m["data"] = csc.data
        m["indices"] = csc.indices.astype(np.int64)
        m["indptr"] = csc.indptr.astype(np.int64)
        m["shape"] = np.array(full.shape, dtype=np.int32)
        f = m.create_group("features")
        f["name"] = np.array([n.encode() for n in names])
        f["id"] = np.array([f"ENSG{i:05d}".encode() for i in range(len(names))])
        f["feature_type"] = np.array([t.encode() for t in types])
        f["genome"] = np.array([b"GRCh38"] * len(names))


def test_10x_h5_sets(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.poisson(1.0, size=(6, 4))
    genes = ["CD3E", "MS4A1", "CD3E", "LYZ"]  # a duplicated symbol
    path = (
        tmp_path
        / "train"
        / "pbmc_data"
        / ("5k_pbmc_protein_v3_filtered_feature_bc_matrix.h5")
    )
    _write_10x_h5(path, counts, genes, [f"AAAC-{i}" for i in range(6)])
    X, names = load_imputation_dataset("pbmc", data_home=tmp_path)
    assert sp.issparse(X) and X.shape == (6, 4)  # antibody row dropped
    np.testing.assert_array_equal(X.toarray(), counts)
    assert list(names) == ["CD3E", "MS4A1", "CD3E-1", "LYZ"]
    # same matrix and names as scanpy's reader
    import scanpy as sc

    adata = sc.read_10x_h5(path)
    adata.var_names_make_unique()
    np.testing.assert_array_equal(adata.X.toarray(), X.toarray())
    assert list(adata.var_names) == list(names)


def test_mouse_embryo_csvs_are_stacked_by_day(tmp_path):
    folder = tmp_path / "train" / "mouse_embryo_data" / "GSE65525"
    folder.mkdir(parents=True)
    genes = ["Sox2", "Nanog", "Krt8"]
    sizes = {
        "GSM1599494_ES_d0_main.csv": 2,
        "GSM1599497_ES_d2_LIFminus.csv": 3,
        "GSM1599498_ES_d4_LIFminus.csv": 1,
        "GSM1599499_ES_d7_LIFminus.csv": 2,
    }
    blocks = []
    for k, (fname, n) in enumerate(sizes.items()):
        block = np.arange(3 * n).reshape(3, n) + 10 * k  # genes x cells
        blocks.append(block)
        # Klein's files: no header, gene name in the first column
        pd.DataFrame(block, index=genes).to_csv(folder / fname, header=False)
    X, names = load_imputation_dataset("mouse_embryo", data_home=tmp_path)
    assert X.shape == (8, 3) and list(names) == genes
    np.testing.assert_array_equal(X.toarray(), np.hstack(blocks).T)
    adata = load_imputation_dataset(
        "mouse_embryo", data_home=tmp_path, return_anndata=True
    )
    assert list(adata.obs["cell_type"]) == ["d0"] * 2 + ["d2"] * 3 + ["d4"] + ["d7"] * 2


def test_human_stemcell_csv(tmp_path):
    folder = tmp_path / "train" / "human_stemcell_data" / "GSE75748"
    folder.mkdir(parents=True)
    frame = pd.DataFrame(
        [[0.0, 2.5, 1.0], [3.0, 0.0, 7.25]],
        index=["POU5F1", "T"],
        columns=["H9.00hb4s_001", "H9.00hb4s_002", "H9.12h_001"],
    )
    with gzip.open(folder / "GSE75748_sc_time_course_ec.csv.gz", "wt") as fh:
        frame.to_csv(fh)
    X, names = load_imputation_dataset("human_stemcell", data_home=tmp_path)
    np.testing.assert_allclose(X.toarray(), frame.to_numpy().T)
    assert list(names) == ["POU5F1", "T"]


def test_missing_files_and_unknown_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="train/<name>_data"):
        load_imputation_dataset("mouse_brain", data_home=tmp_path)
    with pytest.raises(ValueError, match="name must be one of"):
        load_imputation_dataset("zebrafish", data_home=tmp_path)
