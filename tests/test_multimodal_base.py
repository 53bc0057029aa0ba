"""The paired-modality contracts, exercised by the smallest real models.

Each base class is given the simplest honest method (ridge on PCA, cosine
similarity in a CCA space, PCA of the scaled blocks) and run on the real
NeurIPS 2021 CITE-seq starter cells; the models of the multimodal issues
inherit exactly this behaviour.
"""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cross_decomposition import CCA
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from skdance.datasets._base import fetch_file
from skdance.metrics import matching_score
from skdance.multimodal import (
    BaseJointEmbedding,
    BaseModalityMatcher,
    BaseModalityPredictor,
)
from skdance.utils._tags import get_skdance_tags
from skdance.utils.discovery import all_estimators


def _dense(X):
    return X.toarray() if sp.issparse(X) else np.asarray(X)


class RidgeOnPCA(BaseModalityPredictor):
    _parameter_constraints = {"alpha": [float]}

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def _fit(self, X, Y):
        self.pca_ = PCA(20, random_state=0).fit(_dense(X))
        self.ridge_ = Ridge(self.alpha).fit(self.pca_.transform(_dense(X)), _dense(Y))

    def _predict(self, X):
        return self.ridge_.predict(self.pca_.transform(_dense(X)))


class CCAMatcher(BaseModalityMatcher):
    _parameter_constraints = {"temperature": [float]}

    def __init__(self, temperature=0.1):
        self.temperature = temperature

    def _fit(self, X, Y):
        self.px_ = PCA(20, random_state=0).fit(_dense(X))
        self.py_ = PCA(20, random_state=0).fit(_dense(Y))
        self.cca_ = CCA(10, max_iter=1000).fit(
            self.px_.transform(_dense(X)), self.py_.transform(_dense(Y))
        )

    def _match(self, X, Y):
        u, v = self.cca_.transform(
            self.px_.transform(_dense(X)), self.py_.transform(_dense(Y))
        )
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        logits = u @ v.T / self.temperature
        return np.exp(logits - logits.max(axis=1, keepdims=True))


class ConcatPCA(BaseJointEmbedding):
    _parameter_constraints = {"n_features_mod1": [int, None]}

    def __init__(self, n_features_mod1=None):
        self.n_features_mod1 = n_features_mod1

    def _fit(self, X1, X2, y):
        self.s1_ = StandardScaler().fit(_dense(X1))
        self.s2_ = StandardScaler().fit(_dense(X2))
        self.pca_ = PCA(10, random_state=0).fit(self._blocks(X1, X2))

    def _blocks(self, X1, X2):
        a, b = self.s1_.transform(_dense(X1)), self.s2_.transform(_dense(X2))
        return np.hstack([a / np.sqrt(a.shape[1]), b / np.sqrt(b.shape[1])])

    def _transform(self, X1, X2):
        return self.pca_.transform(self._blocks(X1, X2))


@pytest.fixture(scope="module")
def cite():
    # the organisers' files, shipped inside the package
    rna = ad.read_h5ad(fetch_file("neurips2021_bmmc_cite_starter_rna"))
    adt = ad.read_h5ad(fetch_file("neurips2021_bmmc_cite_starter_mod2"))
    train = np.asarray(rna.obs["is_train"]).astype(bool)
    return rna, adt, train


def test_bases_are_abstract_and_not_discovered():
    for base in (BaseModalityPredictor, BaseModalityMatcher, BaseJointEmbedding):
        with pytest.raises(TypeError, match="abstract"):
            base()
    names = {name for name, _ in all_estimators()}
    assert not names & {"BaseModalityPredictor", "BaseModalityMatcher"}


def test_predictor_contract(cite):
    rna, adt, train = cite
    model = RidgeOnPCA().fit(rna[train], adt[train])
    assert model.n_features_in_ == 1000 and model.n_features_mod2_ == 134
    assert list(model.feature_names_mod2_) == list(adt.var_names)
    pred = model.predict(rna[~train])
    assert pred.shape == (int((~train).sum()), 134)
    # predicting beats the training mean of every protein (RMSE, ADT units)
    mean_rmse = np.sqrt(
        np.mean((_dense(adt[~train].X) - _dense(adt[train].X).mean(0)) ** 2)
    )
    assert -model.score(rna[~train], adt[~train]) < 0.9 * mean_rmse
    assert get_skdance_tags(model).task == "modality_prediction"
    # a 1-D target (one protein) gives a 1-D prediction
    one = RidgeOnPCA().fit(rna.X, _dense(adt.X)[:, 0])
    assert one.predict(rna.X[:5]).shape == (5,)
    with pytest.raises(ValueError, match="same cells"):
        RidgeOnPCA().fit(rna.X, adt.X[:-1])
    with pytest.raises(ValueError, match="features"):
        model.predict(rna.X[:, :-1])


def test_matcher_contract(cite):
    rna, adt, train = cite
    model = CCAMatcher().fit(rna[train], adt[train])
    test_rna, test_adt = rna[~train], adt[~train]
    n = test_rna.n_obs
    S = model.match(test_rna, test_adt)
    assert S.shape == (n, n) and (S >= 0).all()
    np.testing.assert_allclose(S.sum(axis=1), 1.0)
    score = model.score(test_rna, test_adt)
    assert score == pytest.approx(matching_score(S))
    assert score * n > 5  # far better than random (fold over 1/n)
    # the second modality may come in any order: the scores follow the rows
    perm = np.random.default_rng(0).permutation(n)
    np.testing.assert_allclose(model.match(test_rna, test_adt[perm]), S[:, perm])
    with pytest.raises(ValueError, match="same cells"):
        CCAMatcher().fit(rna.X, adt.X[:-1])
    with pytest.raises(ValueError, match="second-modality features"):
        model.match(test_rna, _dense(test_adt.X)[:, :-1])
    # match scores any two sets of cells; score needs pairs
    assert model.match(test_rna[:10], test_adt[:12]).shape == (10, 12)
    with pytest.raises(ValueError, match="same number of cells; got 10 and 12"):
        model.score(test_rna[:10], test_adt[:12])


def test_joint_embedding_contract(cite):
    rna, adt, _ = cite
    blocks = sp.hstack([sp.csr_matrix(rna.X), sp.csr_matrix(adt.X)]).tocsr()
    Z = ConcatPCA(n_features_mod1=1000).fit_transform(blocks)
    Z_pair = ConcatPCA().fit_transform((rna, adt))
    assert Z.shape == (600, 10)
    np.testing.assert_allclose(np.abs(Z), np.abs(Z_pair), atol=1e-6)
    with pytest.raises(ValueError, match="n_features_mod1"):
        ConcatPCA().fit(blocks)
    with pytest.raises(ValueError, match="n_features_mod1=2000"):
        ConcatPCA(n_features_mod1=2000).fit(blocks)
    with pytest.raises(ValueError, match="same cells"):
        ConcatPCA().fit((rna.X, adt.X[:-1]))
    with pytest.raises(ValueError, match="labels"):
        ConcatPCA().fit((rna.X, adt.X), y=np.zeros(3))
