"""CCAMatcher: the matching baseline (canonical space of the two modalities' PCs)."""

import numpy as np
import pytest
import scipy.sparse as sp

from skdance.datasets import load_multimodal, split_multimodal
from skdance.multimodal.matching import CCAMatcher


@pytest.fixture(scope="module")
def cite():
    rna, adt = load_multimodal("neurips2021_bmmc_cite_starter")
    return split_multimodal(rna, adt)  # train s1d1, test s1d2


def test_real_cite_matching_far_above_random(cite):
    rna_tr, adt_tr, rna_te, adt_te = cite
    model = CCAMatcher(random_state=0).fit(rna_tr.X, adt_tr.X)
    S = model.match(rna_te.X, adt_te.X)
    assert sp.issparse(S) and S.shape == (rna_te.n_obs,) * 2
    np.testing.assert_allclose(np.asarray(S.sum(axis=1)).ravel(), 1.0)
    assert (S.getnnz(axis=1) == 50).all()  # n_partners candidates per cell
    # measured 8.9x random on the held-out batch (s1d1 -> s1d2)
    assert model.score(rna_te.X, adt_te.X) * rna_te.n_obs > 6
    # shuffling the partners' order moves the probabilities with them
    perm = np.random.default_rng(0).permutation(adt_te.n_obs)
    S_perm = model.match(rna_te.X, adt_te.X[perm])
    np.testing.assert_allclose(S_perm.toarray(), S.toarray()[:, perm], atol=1e-12)


def test_dense_and_sparse_input_agree_and_are_deterministic(cite):
    rna_tr, adt_tr, rna_te, adt_te = cite
    params = {
        "n_svd_components": 20,
        "n_components": 10,
        "n_partners": None,
        "random_state": 0,
    }
    a = CCAMatcher(**params).fit(rna_tr.X, adt_tr.X)
    b = CCAMatcher(**params).fit(rna_tr.X.toarray(), adt_tr.X.toarray())
    Sa = a.match(rna_te.X[:40], adt_te.X[:40])
    Sb = b.match(rna_te.X[:40].toarray(), adt_te.X[:40].toarray())
    assert isinstance(Sa, np.ndarray)  # n_partners=None: all partners
    np.testing.assert_allclose(Sa, Sb, atol=1e-4)  # float32 vs float64 SVD
    again = CCAMatcher(**params).fit(rna_tr.X, adt_tr.X)
    np.testing.assert_array_equal(again.match(rna_te.X[:40], adt_te.X[:40]), Sa)


def test_one_feature_modality_and_few_cells():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(30, 1))
    X = np.hstack([z, rng.normal(size=(30, 4))])
    model = CCAMatcher(n_partners=5).fit(X, z)  # nothing to reduce in z
    assert model.svd_mod2_ is None and model.cca_.n_components == 1
    assert model.match(X, z).shape == (30, 30)


def test_bad_input():
    rng = np.random.default_rng(0)
    X, Y = rng.random((20, 6)), rng.random((20, 4))
    with pytest.raises(ValueError, match="same cells"):
        CCAMatcher().fit(X, Y[:15])
    Y_nan = Y.copy()
    Y_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CCAMatcher().fit(X, Y_nan)
    model = CCAMatcher(n_svd_components=3, n_components=2).fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        model.match(X, Y[:, :3])
    with pytest.raises(ValueError, match="needs paired cells"):
        model.score(X, Y[:10])
    assert np.all(np.isfinite(Y)) and not np.isnan(Y_nan[1:]).any()  # untouched
