"""Paired multimodal loaders: the registry's sets, units, splits, competition files."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skdance.datasets import (
    MULTIMODAL_DATASETS,
    DatasetNotFoundError,
    load_multimodal,
    read_competition,
    split_multimodal,
)
from skdance.datasets._base import REGISTRY, fetch_file, sha256sum
from skdance.datasets._multimodal import binarize, clr, holdout_mask, log_normalize

# the released files of each registered set (their digests are in REGISTRY):
# cells, genes, second-modality features, cell types, batches, modality
EXPECTED = {
    "neurips2021_bmmc_cite_starter": (600, 1000, 134, 41, 2, "ADT"),
    "neurips2021_bmmc_multiome_starter": (500, 600, 600, 21, 2, "ATAC"),
    "teaseq_pbmc": (1262, 9855, 46, 11, 1, "ADT"),
    "cbmc_citeseq": (8617, 2000, 10, 15, 1, "ADT"),
    "snareseq_mouse_cortex": (10309, 1677, 25734, 23, 12, "ATAC"),
    "scicar_mouse_kidney": (554, 1482, 1499, 15, 2, "ATAC"),  # 14 + 'nan'
}


def test_every_multimodal_set_is_specified():
    assert set(EXPECTED) == set(MULTIMODAL_DATASETS)
    for name in MULTIMODAL_DATASETS:
        for part in ("rna", "mod2"):
            assert len(REGISTRY[f"{name}_{part}"].sha256) == 64


@pytest.mark.parametrize("name", MULTIMODAL_DATASETS)
def test_multimodal_set_matches_readme(name):
    for part in ("rna", "mod2"):
        path = fetch_file(f"{name}_{part}")
        assert sha256sum(path) == REGISTRY[f"{name}_{part}"].sha256
    rna, mod2 = load_multimodal(name)
    n, n_genes, n_mod2, n_types, n_batches, modality = EXPECTED[name]
    assert rna.shape == (n, n_genes) and mod2.shape == (n, n_mod2)
    assert sp.isspmatrix_csr(rna.X) and sp.isspmatrix_csr(mod2.X)
    assert rna.X.dtype == np.float32 and mod2.X.dtype == np.float32
    assert np.array_equal(rna.obs_names, mod2.obs_names)
    assert rna.obs["cell_type"].astype(str).nunique() == n_types
    assert rna.obs["batch"].nunique() == n_batches
    assert mod2.uns["modality"] == modality and rna.uns["modality"] == "GEX"
    assert np.isfinite(rna.X.data).all() and (rna.X.data >= 0).all()
    if modality == "ATAC":  # binarised peaks
        assert set(np.unique(mod2.X.data)) == {1.0}


def test_competition_units_from_counts():
    rna, adt = load_multimodal("teaseq_pbmc")
    counts_rna, counts_adt = load_multimodal("teaseq_pbmc", units="counts")
    C = counts_rna.X[:3].toarray().astype(np.float64)
    totals = np.asarray(counts_rna.X.sum(axis=1)).ravel()
    expected = np.log1p(C * (totals.mean() / totals[:3, None]))
    np.testing.assert_allclose(rna.X[:3].toarray(), expected, rtol=1e-4)
    A = counts_adt.X[:3].toarray().astype(np.float64)
    geo = np.exp(np.log1p(A).mean(axis=1, keepdims=True))
    np.testing.assert_allclose(adt.X[:3].toarray(), np.log1p(A / geo), rtol=1e-4)
    # the counts are integers and the normalised values are not
    assert np.array_equal(counts_adt.X.data, np.round(counts_adt.X.data))


def test_shipped_normalised_sets_keep_their_values_and_refuse_counts():
    rna, adt = load_multimodal("neurips2021_bmmc_cite_starter")
    raw = ad.read_h5ad(fetch_file("neurips2021_bmmc_cite_starter_mod2"))
    np.testing.assert_allclose(adt.X.toarray(), raw.X.toarray(), rtol=1e-6)
    with pytest.raises(ValueError, match="without raw counts"):
        load_multimodal("cbmc_citeseq", units="counts")
    with pytest.raises(ValueError, match="Unknown multimodal dataset"):
        load_multimodal("cite")
    with pytest.raises(ValueError, match="units must be"):
        load_multimodal("teaseq_pbmc", units="raw")


def test_normalisers_on_known_values():
    counts = sp.csr_matrix(
        np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    )
    X = log_normalize(counts).toarray()
    # library sizes 4, 0, 8 (mean 4): scale 1, -, 0.5; the empty cell stays 0
    np.testing.assert_allclose(X[0], np.log1p([1.0, 3.0, 0.0]), rtol=1e-6)
    np.testing.assert_allclose(X[2], np.log1p([1.0, 1.0, 2.0]), rtol=1e-6)
    assert not X[1].any()
    C = clr(counts).toarray()
    geo = np.exp(np.log1p([2.0, 2.0, 4.0]).mean())
    np.testing.assert_allclose(
        C[2], np.log1p(np.array([2.0, 2.0, 4.0]) / geo), rtol=1e-6
    )
    B = binarize(sp.csr_matrix(np.array([[0.0, 5.0], [2.0, 0.0]])))
    np.testing.assert_array_equal(B.toarray(), [[0, 1], [1, 0]])


def test_split_holds_out_whole_batches():
    rna, adt = load_multimodal("neurips2021_bmmc_cite_starter")
    rna_tr, adt_tr, rna_te, adt_te = split_multimodal(rna, adt)
    assert set(rna_te.obs["batch"]) == {"s1d2"} and set(rna_tr.obs["batch"]) == {"s1d1"}
    # the organisers' is_train column says the same
    assert not adt_te.obs["is_train"].any() and adt_tr.obs["is_train"].all()
    assert np.array_equal(rna_te.obs_names, adt_te.obs_names)
    assert rna_tr.n_obs + rna_te.n_obs == rna.n_obs


def test_holdout_mask_rules():
    batches = np.repeat(list("abcdefgh"), 5)
    test = holdout_mask(40, batches)  # the last quarter: g, h
    assert set(batches[test]) == {"g", "h"}
    test = holdout_mask(40, batches, test_batches=["a"])
    assert set(batches[test]) == {"a"}
    one = holdout_mask(50, np.zeros(50), test_size=0.2, random_state=0)
    assert one.sum() == 10
    np.testing.assert_array_equal(one, holdout_mask(50, None, random_state=0))
    with pytest.raises(ValueError, match="some but not all"):
        holdout_mask(40, batches, test_batches=list("abcdefgh"))
    with pytest.raises(ValueError, match="No batches"):
        holdout_mask(40, None, test_batches=["a"])


def test_split_rejects_unpaired_objects():
    rna, adt = load_multimodal("neurips2021_bmmc_cite_starter")
    with pytest.raises(ValueError, match="same cells"):
        split_multimodal(rna, adt[:10])


def _competition_file(path, n, n_features, seed):
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(rng.poisson(1.0, size=(n, n_features)).astype(np.float32))
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(n)])
    ad.AnnData(X, obs=obs).write_h5ad(path)


def test_read_competition_layout(tmp_path):
    prefix = tmp_path / "openproblems_bmmc_cite_phase2_rna.censor_dataset"
    for part, n, f in (
        ("train_mod1", 8, 5),
        ("train_mod2", 8, 3),
        ("test_mod1", 4, 5),
        ("test_mod2", 4, 3),
    ):
        _competition_file(f"{prefix}.output_{part}.h5ad", n, f, len(part))
    parts = read_competition(prefix)
    assert [p.shape for p in parts] == [(8, 5), (8, 3), (4, 5), (4, 3)]
    assert all(sp.isspmatrix_csr(p.X) for p in parts)
    # the folder holding one set works too
    assert [p.shape for p in read_competition(tmp_path)] == [p.shape for p in parts]
    _competition_file(f"{prefix}.output_test_mod2.h5ad", 5, 3, 0)
    with pytest.raises(ValueError, match="disagree on the number of cells"):
        read_competition(prefix)
    (tmp_path / f"{prefix.name}.output_test_mod1.h5ad").unlink()
    with pytest.raises(FileNotFoundError, match="test_mod1"):
        read_competition(prefix)


def _phase2_set(folder, stem, first, second, n_train=8, n_test=4):
    """The organisers' four files; ``first``/``second``: (features, kind)."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / f"{stem}.censor_dataset"
    rng = np.random.default_rng(0)
    for split, n, batch in (("train", n_train, "s1d1"), ("test", n_test, "s4d1")):
        obs = pd.DataFrame(
            {"batch": [batch] * n}, index=[f"{split}{i}" for i in range(n)]
        )
        for mod, (p, kind) in (("mod1", first), ("mod2", second)):
            counts = sp.csr_matrix(rng.poisson(2.0, size=(n, p)).astype(np.float32))
            var = pd.DataFrame(
                {"feature_types": [kind] * p}, index=[f"{kind}{j}" for j in range(p)]
            )
            adata = ad.AnnData(counts.log1p(), obs=obs, var=var)
            adata.layers["counts"] = counts
            adata.write_h5ad(f"{prefix}.output_{split}_{mod}.h5ad")
    return prefix


def test_load_multimodal_reads_competition_files_by_dance_name(tmp_path):
    _phase2_set(
        tmp_path / "openproblems_bmmc_cite_phase2_rna",
        "openproblems_bmmc_cite_phase2_rna",
        (5, "GEX"),
        (3, "ADT"),
    )
    for name in ("openproblems_bmmc_cite_phase2_rna", "openproblems_bmmc_cite_phase2"):
        rna, adt = load_multimodal(name, data_home=tmp_path)
        assert rna.shape == (12, 5) and adt.shape == (12, 3)
        assert (rna.uns["modality"], adt.uns["modality"]) == ("GEX", "ADT")
        assert rna.obs["is_train"].sum() == 8 and list(rna.obs_names[:2]) == [
            "train0",
            "train1",
        ]
        assert sp.isspmatrix_csr(rna.X) and sp.isspmatrix_csr(adt.layers["counts"])
    # the organisers' split, not a random or batch one
    rna_tr, adt_tr, rna_te, adt_te = split_multimodal(rna, adt)
    assert list(rna_te.obs_names) == [f"test{i}" for i in range(4)]
    assert list(adt_tr.obs_names) == list(rna_tr.obs_names)
    counts_rna, _ = load_multimodal(name, data_home=tmp_path, units="counts")
    np.testing.assert_array_equal(
        counts_rna.X.toarray(), rna.layers["counts"].toarray()
    )
    assert not np.allclose(counts_rna.X.toarray(), rna.X.toarray())


def test_load_multimodal_competition_mod2_direction_puts_gex_first(tmp_path):
    # DANCE's ``_mod2`` files have the second modality as mod1 (ADT2GEX)
    _phase2_set(
        tmp_path, "openproblems_bmmc_multiome_phase2_mod2", (7, "ATAC"), (4, "GEX")
    )
    rna, atac = load_multimodal(
        "openproblems_bmmc_multiome_phase2_mod2", data_home=tmp_path
    )
    assert rna.var_names[0] == "GEX0" and atac.var_names[0] == "ATAC0"
    assert (rna.n_vars, atac.n_vars, atac.uns["modality"]) == (4, 7, "ATAC")


def test_competition_files_checksums_and_missing_files(tmp_path):
    prefix = _phase2_set(
        tmp_path, "openproblems_bmmc_cite_phase2_rna", (5, "GEX"), (3, "ADT")
    )
    good = sha256sum(f"{prefix}.output_test_mod2.h5ad")
    rna, _ = load_multimodal(
        "openproblems_bmmc_cite_phase2_rna",
        data_home=tmp_path,
        sha256={"test_mod2": good.upper()},
    )
    assert rna.n_obs == 12
    with pytest.raises(OSError, match="Checksum mismatch.*train_mod1"):
        read_competition(prefix, sha256={"train_mod1": good})
    with pytest.raises(ValueError, match="sha256 keys"):
        read_competition(prefix, sha256={"train": good})
    with pytest.raises(FileNotFoundError, match="not under.*skdance ships no copy"):
        load_multimodal("openproblems_bmmc_multiome_phase2", data_home=tmp_path)
    with pytest.raises(ValueError, match="for the competition files"):
        load_multimodal("neurips2021_bmmc_cite_starter", sha256={"train_mod1": good})
    with pytest.raises(ValueError, match="Unknown multimodal dataset"):
        load_multimodal("openproblems_bmmc_cite_phase1")


def test_the_shipped_cite_starter_loads_without_a_data_folder(tmp_path):
    # an empty data home: the organisers' starter files come from the package
    rna, adt = load_multimodal("neurips2021_bmmc_cite_starter", data_home=tmp_path)
    assert rna.shape == (600, 1000) and adt.shape == (600, 134)
    mdata = load_multimodal(
        "neurips2021_bmmc_cite_starter", data_home=tmp_path, return_mudata=True
    )
    assert list(mdata.mod) == ["rna", "prot"]
    assert mdata["prot"].uns["modality"] == "ADT"
    with pytest.raises(DatasetNotFoundError, match="SKDANCE_DATA"):
        load_multimodal("teaseq_pbmc", data_home=tmp_path)


def test_the_mudata_is_built_without_warnings_and_with_the_obs_columns():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mdata = load_multimodal("neurips2021_bmmc_cite_starter", return_mudata=True)
    from_mudata = [w for w in caught if "mudata" in w.filename]
    assert not from_mudata, [str(w.message) for w in from_mudata]
    # the modalities' columns are pulled, as scanpy's color= needs them
    assert mdata.obs["rna:cell_type"].nunique() == 41
    assert "rna:gene_ids" in mdata.var
