"""Cross-modal autoencoders: the predictor ``CMAE`` and the matcher ``CMAEMatcher``.

Both estimators train one module (:mod:`skdance.multimodal._cmae`).  Small
synthetic pairs check shapes, determinism, sparse == dense and the errors;
the NeurIPS 2021 CITE-seq starter (train s1d1, test s1d2) gives real-data
floors: GEX->ADT RMSE below the training-mean baseline, matching score far
above random.
"""

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import skdance.multimodal._cmae as cmae_core
from skdance.multimodal._cmae import CMAEModule, resolve_hidden_dims
from skdance.multimodal.matching.cmae import CMAEMatcher
from skdance.multimodal.prediction.cmae import CMAE

FAST = {
    "hidden_dims": (16, 8),
    "latent_dim": 4,
    "discriminator_dim": 8,
    "max_epochs": 3,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "random_state": 0,
}
HISTORY_KEYS = {
    "phase",
    "epoch",
    "train_loss",
    "discriminator_loss",
    "reconstruction_loss",
    "adversarial_loss",
    "pairing_loss",
    "seconds",
}


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(50, 3))
    X = np.log1p(rng.poisson(np.exp(Z @ rng.normal(size=(3, 30)) * 0.5)))
    X[:, :3] = 0.0  # sparse-looking columns
    Y = Z @ rng.normal(size=(3, 6))
    return X.astype(np.float64), Y


def test_predictor_shapes_and_history(pair):
    X, Y = pair
    model = CMAE(**FAST).fit(X, Y)
    assert model.predict(X[:7]).shape == (7, 6)
    assert model.n_iter_ == 3 and len(model.history_) == 3
    assert all(set(row) == HISTORY_KEYS for row in model.history_)
    assert all(np.isfinite(row["train_loss"]) for row in model.history_)
    assert isinstance(model.module_, CMAEModule)
    assert next(model.module_.parameters()).device.type == "cpu"
    # a 1-D target gives a 1-D prediction
    assert CMAE(**FAST).fit(X, Y[:, 0]).predict(X[:4]).shape == (4,)
    # no epoch: the initialised module still predicts
    untrained = CMAE(**{**FAST, "max_epochs": 0}).fit(X, Y)
    assert untrained.n_iter_ == 0 and untrained.predict(X).shape == (50, 6)


def test_matcher_shapes(pair):
    X, Y = pair
    model = CMAEMatcher(n_partners=3, **FAST).fit(X, Y)
    S = model.match(X[:10], Y[:12])
    assert sp.issparse(S) and S.shape == (10, 12)
    np.testing.assert_allclose(np.asarray(S.sum(axis=1)).ravel(), 1.0)
    assert (S.getnnz(axis=1) == 3).all()
    # more neighbours than cells of Y: every cell shares the row
    dense = model.set_params(n_partners=100).match(X[:4], Y[:5]).toarray()
    np.testing.assert_allclose(dense, 0.2)
    assert 0.0 <= model.score(X, Y) <= 1.0
    assert model.n_iter_ == 3 and set(model.history_[0]) == HISTORY_KEYS


def test_dance_default_widths():
    assert resolve_hidden_dims(None, (2000, 134)) == (
        (1000, 1000, 1000, 100),
        (134, 134, 134, 100),
    )
    assert resolve_hidden_dims([8, 4], (5, 6)) == ((8, 4), (8, 4))
    module = CMAEModule((20, 5), resolve_hidden_dims(None, (20, 5)), 3)
    widths = [layer.out_features for layer in module.encoders[1].linear_layers()]
    assert widths == [5, 5, 5, 100]
    # the latent layer is shared: one module for both modalities
    h = module.encode(torch.ones(2, 20), 0)
    assert h.shape == (2, 3) and module.decode(h, 1).shape == (2, 5)


@pytest.mark.parametrize("Estimator", [CMAE, CMAEMatcher])
def test_sparse_equals_dense(Estimator, pair):
    X, Y = pair

    def output(model, A, B):
        if isinstance(model, CMAE):
            return model.predict(A)
        return model.match(A, B).toarray()

    a = Estimator(**FAST).fit(X, Y)
    c = Estimator(**FAST).fit(sp.csr_matrix(X), sp.csr_matrix(Y))
    d = Estimator(**FAST).fit(sp.csc_matrix(X), Y)
    reference = output(a, X, Y)
    np.testing.assert_array_equal(reference, output(c, X, Y))
    np.testing.assert_array_equal(reference, output(d, X, Y))
    np.testing.assert_array_equal(
        reference, output(c, sp.csr_matrix(X), sp.csr_matrix(Y))
    )
    assert [r["train_loss"] for r in a.history_] == [
        r["train_loss"] for r in c.history_
    ]
    # another seed trains another model
    other = Estimator(**{**FAST, "random_state": 1}).fit(X, Y)
    assert not np.array_equal(
        a.module_.encoders[0][0][0].weight.detach().numpy(),
        other.module_.encoders[0][0][0].weight.detach().numpy(),
    )
    # the fitted estimator pickles and predicts the same on CPU
    np.testing.assert_array_equal(
        reference, output(pickle.loads(pickle.dumps(a)), X, Y)
    )


@pytest.mark.parametrize("Estimator", [CMAE, CMAEMatcher])
def test_errors(Estimator, pair):
    X, Y = pair
    with pytest.raises(ValueError, match="same cells"):
        Estimator(**FAST).fit(X, Y[:-1])
    Y_nan = Y.copy()
    Y_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Estimator(**FAST).fit(X, Y_nan)
    with pytest.raises(ValueError, match="hidden_dims"):
        Estimator(**{**FAST, "hidden_dims": (8, 0)}).fit(X, Y)
    with pytest.raises(ValueError, match="latent_dim"):
        Estimator(**{**FAST, "latent_dim": 0}).fit(X, Y)
    with pytest.raises(ValueError, match="not available|not a torch device"):
        Estimator(**{**FAST, "device": "cuda:99"}).fit(X, Y)
    model = Estimator(**FAST).fit(X, Y)
    if isinstance(model, CMAEMatcher):
        with pytest.raises(ValueError, match="second-modality features"):
            model.match(X, Y[:, :-1])
        with pytest.raises(ValueError, match="features"):
            model.match(X[:, :-1], Y)
    else:
        with pytest.raises(ValueError, match="features"):
            model.predict(X[:, :-1])


def test_two_optimisers_step_through_the_engine():
    # every backward goes through Trainer.step (no bare .backward() here)
    for path in (
        cmae_core.__file__,
        Path(cmae_core.__file__).parent / "prediction" / "cmae.py",
        Path(cmae_core.__file__).parent / "matching" / "cmae.py",
    ):
        assert ".backward(" not in Path(path).read_text()


# -- real data: NeurIPS 2021 CITE-seq starter, train s1d1 -> test s1d2 --------

REAL = {
    "hidden_dims": (128, 32),
    "latent_dim": 16,
    "max_epochs": 40,
    "learning_rate": 2e-3,
    "pairing_weight": 10.0,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def cite():
    from skdance.datasets import load_multimodal, split_multimodal

    with warnings.catch_warnings():  # anndata's notes on the files' old format
        warnings.simplefilter("ignore")
        rna, adt = load_multimodal(
            "neurips2021_bmmc_cite_starter", Path(os.environ["SKDANCE_DATA"])
        )
    rna_train, adt_train, rna_test, adt_test = split_multimodal(rna, adt)
    assert set(rna_train.obs["batch"]) == {"s1d1"}
    assert set(rna_test.obs["batch"]) == {"s1d2"}
    return rna_train, adt_train, rna_test, adt_test


def _dense(A):
    return A.toarray() if sp.issparse(A) else np.asarray(A)


def test_cite_prediction_beats_training_mean(cite):
    rna_train, adt_train, rna_test, adt_test = cite
    model = CMAE(**REAL).fit(rna_train, adt_train)
    rmse = -model.score(rna_test, adt_test)
    Y_test = _dense(adt_test.X)
    baseline = np.sqrt(np.mean((Y_test - _dense(adt_train.X).mean(0)) ** 2))
    # measured: 0.647 vs 0.794 (seeds 0-2: 0.634-0.657)
    assert rmse < 0.9 * baseline


def test_cite_matching_far_above_random(cite):
    rna_train, adt_train, rna_test, adt_test = cite
    model = CMAEMatcher(n_partners=5, **REAL).fit(rna_train, adt_train)
    n = rna_test.n_obs
    # measured: score x n = 4.6 (seeds 0-2: 4.4-5.4); random guessing is 1
    assert model.score(rna_test, adt_test) * n > 3.0
