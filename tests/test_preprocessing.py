"""Preprocessing matches scanpy on real data; property tests on random counts."""

import warnings

import anndata
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skdance.datasets import load_pbmc3k, load_pbmc_10x_4k, load_worm_neuron_cell
from skdance.preprocessing import (
    LSI,
    GeneAligner,
    HighlyVariableGenes,
    Log1p,
    NormalizeTotal,
    ScaleGenes,
    filter_cells,
    filter_genes,
)

RTOL = 1e-5


@pytest.fixture(scope="module")
def pbmc(data_home):
    X, _ = load_pbmc_10x_4k(data_home)
    return X


@pytest.fixture(scope="module")
def pbmc3k_filtered(data_home):
    X, _ = load_pbmc3k(data_home)
    X = X[filter_cells(X, min_genes=200)]
    return X[:, filter_genes(X, min_cells=3)]


def _dense(a):
    return a.toarray() if sp.issparse(a) else np.asarray(a)


def _ad(X):
    return anndata.AnnData(X=X.copy())


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("target_sum", [None, 1e4])
def test_normalize_total_matches_scanpy(pbmc, sparse, target_sum):
    X = pbmc if sparse else pbmc.toarray()
    ours = NormalizeTotal(target_sum=target_sum).fit_transform(X)
    ad = _ad(X)
    sc.pp.normalize_total(ad, target_sum=target_sum)
    assert sp.issparse(ours) == sparse
    np.testing.assert_allclose(_dense(ours), _dense(ad.X), rtol=RTOL, atol=1e-6)


def test_normalize_total_exclude_highly_expressed_matches_scanpy(pbmc):
    ours = NormalizeTotal(exclude_highly_expressed=True, max_fraction=0.05)
    out = ours.fit_transform(pbmc)
    ad = _ad(pbmc)
    sc.pp.normalize_total(ad, exclude_highly_expressed=True, max_fraction=0.05)
    np.testing.assert_allclose(_dense(out), _dense(ad.X), rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("base", [None, 2])
def test_log1p_matches_scanpy(pbmc, base):
    Xn = NormalizeTotal(target_sum=1e4).fit_transform(pbmc)
    ours = Log1p(base=base).fit_transform(Xn)
    ad = _ad(Xn)
    sc.pp.log1p(ad, base=base)
    np.testing.assert_allclose(_dense(ours), _dense(ad.X), rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("zero_center", [True, False])
def test_scale_matches_scanpy(pbmc, zero_center):
    # float64 input: scanpy computes float32 input's statistics in float32
    Xl = Log1p().fit_transform(
        NormalizeTotal(target_sum=1e4).fit_transform(pbmc.astype(np.float64))
    )
    ours = ScaleGenes(zero_center=zero_center, max_value=10).fit_transform(Xl)
    ad = _ad(Xl)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.scale(ad, zero_center=zero_center, max_value=10)
    np.testing.assert_allclose(_dense(ours), _dense(ad.X), rtol=RTOL, atol=1e-6)
    assert _dense(ours).max() <= 10


@pytest.mark.parametrize("flavor", ["seurat", "cell_ranger"])
def test_hvg_dispersion_flavors_match_scanpy(pbmc3k_filtered, flavor):
    X = pbmc3k_filtered
    hvg = HighlyVariableGenes(n_top_genes=1000, flavor=flavor).fit(X)
    ad = _ad(X)
    sc.pp.normalize_total(ad, target_sum=1e4)
    sc.pp.log1p(ad)
    sc.pp.highly_variable_genes(ad, n_top_genes=1000, flavor=flavor)
    np.testing.assert_array_equal(hvg.highly_variable_, ad.var["highly_variable"])
    np.testing.assert_allclose(
        np.nan_to_num(hvg.dispersions_norm_),
        np.nan_to_num(ad.var["dispersions_norm"].to_numpy()),
        rtol=RTOL,
        atol=1e-5,
    )
    # the output keeps the counts of the selected genes
    out = hvg.transform(X)
    selected = ad.var["highly_variable"].to_numpy()
    np.testing.assert_array_equal(_dense(out), _dense(X[:, selected]))


def test_hvg_seurat_cutoffs_match_scanpy(pbmc3k_filtered):
    X = pbmc3k_filtered
    hvg = HighlyVariableGenes(n_top_genes=None, flavor="seurat").fit(X)
    ad = _ad(X)
    sc.pp.normalize_total(ad, target_sum=1e4)
    sc.pp.log1p(ad)
    sc.pp.highly_variable_genes(ad)
    np.testing.assert_array_equal(hvg.highly_variable_, ad.var["highly_variable"])


def test_hvg_seurat_on_lognormalized_input_matches_scanpy(pbmc3k_filtered):
    Xl = Log1p().fit_transform(
        NormalizeTotal(target_sum=1e4).fit_transform(pbmc3k_filtered)
    )
    hvg = HighlyVariableGenes(n_top_genes=500, flavor="seurat", log_normalize=False)
    hvg.fit(Xl)
    ad = _ad(Xl)
    sc.pp.highly_variable_genes(ad, n_top_genes=500, flavor="seurat")
    np.testing.assert_array_equal(hvg.highly_variable_, ad.var["highly_variable"])


@pytest.mark.parametrize("sparse", [True, False])
def test_hvg_seurat_v3_matches_scanpy(data_home, sparse):
    X, _ = load_worm_neuron_cell(data_home)
    X = X[:, filter_genes(X, min_cells=3)]
    X = X if sparse else X.toarray()
    hvg = HighlyVariableGenes(n_top_genes=2000, flavor="seurat_v3").fit(X)
    ad = _ad(X)
    sc.pp.highly_variable_genes(ad, n_top_genes=2000, flavor="seurat_v3")
    np.testing.assert_allclose(
        hvg.dispersions_norm_, ad.var["variances_norm"].to_numpy(), rtol=RTOL
    )
    assert (hvg.highly_variable_ == ad.var["highly_variable"].to_numpy()).all()
    assert hvg.transform(X).shape == (X.shape[0], 2000)


def test_inputs_are_not_modified(pbmc):
    X = pbmc.copy()
    dense = pbmc[:200].toarray()
    for est in [
        NormalizeTotal(),
        Log1p(),
        ScaleGenes(max_value=5),
        HighlyVariableGenes(n_top_genes=100),
    ]:
        est.fit_transform(X)
        est.fit_transform(dense.copy())
        assert (X != pbmc).nnz == 0
        np.testing.assert_array_equal(dense, pbmc[:200].toarray())


def test_pipeline_on_anndata_keeps_gene_names(pbmc):
    from sklearn.pipeline import make_pipeline

    genes = [f"g{i}" for i in range(pbmc.shape[1])]
    ad = anndata.AnnData(X=pbmc, var=pd.DataFrame(index=genes))
    pipe = make_pipeline(HighlyVariableGenes(n_top_genes=300), NormalizeTotal())
    out = pipe.fit_transform(ad)
    assert out.shape == (pbmc.shape[0], 300)
    names = pipe.get_feature_names_out()
    assert set(names) <= set(genes) and len(names) == 300
    other = anndata.AnnData(X=pbmc, var=pd.DataFrame(index=genes[::-1]))
    with pytest.raises(ValueError, match="feature names should match"):
        pipe.transform(other)


def test_gene_aligner_reindexes_sparse_and_dense():
    ref = pd.DataFrame(np.arange(6).reshape(2, 3), columns=["a", "b", "c"])
    new = pd.DataFrame([[7.0, 8.0, 9.0]], columns=["c", "z", "a"])
    aligner = GeneAligner().fit(ref)
    np.testing.assert_array_equal(aligner.transform(new), [[9.0, 0.0, 7.0]])
    ad = anndata.AnnData(
        X=sp.csr_matrix(new.to_numpy()), var=pd.DataFrame(index=list(new.columns))
    )
    out = aligner.transform(ad)
    assert sp.issparse(out)
    np.testing.assert_array_equal(out.toarray(), [[9.0, 0.0, 7.0]])
    assert aligner.overlap(new) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="min_overlap"):
        GeneAligner(min_overlap=0.9).fit(ref).transform(new)


counts = arrays(
    np.float64,
    st.tuples(st.integers(3, 25), st.integers(3, 12)),
    elements=st.integers(0, 50).map(float),
)


@settings(max_examples=40, deadline=None)
@given(X=counts)
def test_properties_normalize_log1p(X):
    for est in [NormalizeTotal(target_sum=100.0), Log1p()]:
        dense = est.fit_transform(X)
        sparse = est.fit_transform(sp.csr_matrix(X))
        assert dense.shape == X.shape and sp.issparse(sparse)
        assert (dense >= 0).all()
        np.testing.assert_allclose(dense, sparse.toarray(), rtol=1e-12)
    normed = NormalizeTotal(target_sum=100.0).fit_transform(X)
    totals = normed.sum(axis=1)
    np.testing.assert_allclose(totals[X.sum(axis=1) > 0], 100.0)
    # normalising twice changes nothing (idempotence)
    np.testing.assert_allclose(
        NormalizeTotal(target_sum=100.0).fit_transform(normed), normed, atol=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(X=counts)
def test_properties_scale(X):
    est = ScaleGenes(zero_center=False, max_value=3.0)
    dense, sparse = est.fit_transform(X), est.fit_transform(sp.csr_matrix(X))
    assert (dense >= 0).all() and dense.max() <= 3.0
    np.testing.assert_allclose(dense, sparse.toarray(), rtol=1e-12)
    centred = ScaleGenes().fit_transform(X)
    np.testing.assert_allclose(centred.mean(axis=0), 0.0, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(X=counts, k=st.integers(1, 3))
def test_properties_hvg(X, k):
    est = HighlyVariableGenes(n_top_genes=k, flavor="seurat", n_bins=2)
    # dispersions need non-empty cells and at least one gene that varies
    assume(not (X.sum(axis=1) == 0).any() and (X.var(axis=0) > 0).any())
    assume(np.unique(X.mean(axis=0)).size >= 2)
    dense = est.fit_transform(X)
    sparse = est.fit_transform(sp.csr_matrix(X))
    assert dense.shape[0] == X.shape[0] and dense.shape[1] >= min(k, 1)
    np.testing.assert_array_equal(dense, sparse.toarray())
    # selection keeps values: every output column is an input column
    for j in range(dense.shape[1]):
        assert any(np.array_equal(dense[:, j], X[:, i]) for i in range(X.shape[1]))


def test_cell_ranger_with_many_unexpressed_genes():
    # a quarter of the genes are never expressed: their percentiles repeat
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(60, 40)).astype(float)
    X[:, :10] = 0
    hvg = HighlyVariableGenes(n_top_genes=5, flavor="cell_ranger").fit(X)
    assert hvg.get_support().sum() == 5
    assert not hvg.get_support()[:10].any()


def test_cell_ranger_selects_genes_when_top_scores_are_infinite():
    # the lowest mean bin holds more never-expressed genes (dispersion 0) than
    # genes detected in a single cell: its dispersions have a MAD of 0, so the
    # single-cell genes get +inf and the 5th highest score is +inf
    rng = np.random.default_rng(0)
    n_cells = 40
    expressed = rng.poisson(3.0, size=(n_cells, 180)).astype(float)
    unexpressed = np.zeros((n_cells, 11))
    single = np.zeros((n_cells, 9))
    single[np.arange(9), np.arange(9)] = 1.0
    X = np.hstack([expressed, unexpressed, single])
    hvg = HighlyVariableGenes(n_top_genes=5, flavor="cell_ranger").fit(X)
    score = hvg.dispersions_norm_
    assert np.isposinf(score[-9:]).all()
    support = hvg.get_support()
    assert support.sum() == 5
    assert np.isposinf(score[support]).all()
    assert hvg.transform(X).shape == (n_cells, 5)
    # a larger budget keeps every +inf gene and then the best finite ones
    hvg = HighlyVariableGenes(n_top_genes=15, flavor="cell_ranger").fit(X)
    support = hvg.get_support()
    assert support.sum() == 15 and support[-9:].all()


# -- LSI ----------------------------------------------------------------------
def test_lsi_drops_the_depth_component_and_projects_new_cells():
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, (40, 12)).astype(float)
    lsi = LSI(n_components=4, random_state=0)
    R = lsi.fit_transform(X)
    assert lsi.tfidf_ and R.shape == (40, 4) and lsi.svd_.n_components == 5
    # fit_transform and transform agree; a cell's components ignore the others
    np.testing.assert_allclose(lsi.transform(X), R, atol=1e-10)
    np.testing.assert_allclose(lsi.transform(X[:3]), R[:3], atol=1e-10)
    # sparse input gives the same components
    sparse = LSI(n_components=4, random_state=0).fit_transform(sp.csr_matrix(X))
    np.testing.assert_allclose(np.abs(sparse), np.abs(R), atol=1e-10)
    assert list(lsi.get_feature_names_out()) == [f"lsi{i}" for i in range(4)]


def test_lsi_without_tfidf_on_negative_values_and_few_features():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 6))
    lsi = LSI(n_components=3, random_state=0).fit(X)
    assert not lsi.tfidf_ and lsi.transform(X).shape == (30, 3)
    # more components than features: as many as the features allow
    assert LSI(n_components=50).fit_transform(np.abs(X)).shape == (30, 5)
    with pytest.raises(ValueError, match="n_features = 1"):
        LSI().fit(np.ones((5, 1)))
