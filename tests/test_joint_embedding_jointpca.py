"""JointPCA: the joint-embedding baseline (PCA of per-modality-normalised blocks)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from skdance.datasets import load_multimodal
from skdance.multimodal.embedding import JointPCA


def _ari(Z, types, seeds=(0, 1, 2)):
    k = np.unique(types).size
    return np.mean(
        [
            adjusted_rand_score(
                types, KMeans(k, n_init=10, random_state=s).fit_predict(Z)
            )
            for s in seeds
        ]
    )


@pytest.fixture(scope="module")
def teaseq():
    rna, adt = load_multimodal("teaseq_pbmc")
    return rna.X, adt.X, rna.obs["cell_type"].astype(str).to_numpy()


def test_real_teaseq_both_modalities_beat_each_alone(teaseq):
    gex, adt, types = teaseq
    ari = {
        m: _ari(JointPCA(modalities=m, random_state=0).fit_transform((gex, adt)), types)
        for m in ("mod1", "mod2", "both")
    }
    # measured (mean of 3 k-means seeds): GEX 0.488, ADT 0.551, both 0.590
    assert ari["both"] > max(ari["mod1"], ari["mod2"])
    assert ari["both"] > 0.55 and ari["mod1"] > 0.42


def test_blocks_pair_and_column_input_agree(teaseq):
    gex, adt, _ = teaseq
    gex, adt = gex[:300], adt[:300]
    model = JointPCA(
        n_components=20, n_block_components=10, n_top_genes=500, random_state=0
    )
    Z = model.fit_transform((gex, adt))
    assert Z.shape == (300, 20) and Z.dtype == np.float64
    assert model.mod2_kind_ == "adt" and model.block_scales_.shape == (2,)
    # column blocks [GEX | ADT] give the same embedding
    X = sp.hstack([gex, adt]).tocsr()
    blocks = JointPCA(
        gex.shape[1],
        n_components=20,
        n_block_components=10,
        n_top_genes=500,
        random_state=0,
    )
    np.testing.assert_allclose(blocks.fit_transform(X), Z, atol=1e-6)
    # transform of the training cells is fit_transform's result; new cells embed
    np.testing.assert_allclose(model.transform((gex, adt)), Z, atol=1e-6)
    # a single block: the mod1 PCA (n_block_components) or the scaled proteins
    one = JointPCA(
        modalities="mod1", n_block_components=10, n_top_genes=500, random_state=0
    )
    assert one.fit_transform((gex, adt)).shape == (300, 10) and one.pca_ is None
    adt_only = JointPCA(modalities="mod2").fit_transform((gex, adt))
    assert adt_only.shape == (300, adt.shape[1])
    np.testing.assert_allclose(adt_only.mean(axis=0), 0.0, atol=1e-8)


def test_atac_block_is_lsi_without_depth_component():
    rna, atac = load_multimodal("neurips2021_bmmc_multiome_starter")
    model = JointPCA(n_block_components=20, random_state=0).fit((rna.X, atac.X))
    assert model.mod2_kind_ == "atac"
    lsi = model.blocks_["mod2"].lsi_
    assert lsi.svd_.n_components == 21  # one more, the first dropped
    Z = model.transform((rna.X, atac.X))
    assert Z.shape == (rna.n_obs, 40) and np.isfinite(Z).all()


def test_bad_input_is_a_clear_error(teaseq):
    gex, adt, _ = teaseq
    X = sp.hstack([gex[:50], adt[:50]]).tocsr()
    with pytest.raises(ValueError, match="n_features_mod1"):
        JointPCA().fit(X)
    with pytest.raises(ValueError, match="n_features_mod1"):
        JointPCA(X.shape[1]).fit(X)
    with pytest.raises(ValueError, match="same cells|cells"):
        JointPCA().fit((gex[:50], adt[:40]))
    with pytest.raises(ValueError, match="n_samples=2"):
        JointPCA().fit((gex[:2], adt[:2]))
    bad = adt[:50].toarray()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        JointPCA().fit((gex[:50], bad))
    model = JointPCA(n_block_components=5, n_top_genes=100).fit((gex[:50], adt[:50]))
    with pytest.raises(ValueError, match="features"):
        model.transform((gex[:50], adt[:50, :5]))
