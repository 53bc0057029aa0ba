"""BABEL: modality prediction through a shared latent space."""

import time
import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse import _compressed

from skdance.datasets._base import fetch_file
from skdance.multimodal.prediction import babel as babel_module
from skdance.multimodal.prediction.babel import BABEL, BABELModule
from skdance.nn import history_values

FAST = {
    "hidden_dims": (16,),
    "mod2_hidden_dims": (8,),
    "latent_dim": 4,
    "max_epochs": 5,
    "batch_size": 32,
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # small tensors: a second thread only contends on a busy 2-core machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def paired():
    """Non-negative, sparse-ish "genes" and "proteins" of 120 cells, one latent."""
    rng = np.random.default_rng(0)
    state = rng.normal(size=(120, 3))
    X = np.maximum(state @ rng.normal(size=(3, 30)), 0.0)  # about half zeros
    Y = np.log1p(np.exp(state @ rng.normal(size=(3, 8))))
    return X, Y


def test_shapes_history_and_attributes(paired):
    X, Y = paired
    model = BABEL(**FAST, random_state=0).fit(X, Y)
    assert model.predict(X).shape == (120, 8)
    assert model.predict(X[:7]).dtype == np.float64
    assert model.n_features_in_ == 30 and model.n_features_mod2_ == 8
    assert model.n_iter_ == len(model.history_) <= 5
    row = model.history_[0]
    for key in ("train_loss", "loss_11", "loss_12", "loss_21", "loss_22"):
        assert np.isfinite(row[key])
    assert "valid_loss" in row  # 15% of the cells are held out by default
    assert isinstance(model.module_, BABELModule)
    assert next(model.module_.parameters()).device.type == "cpu"
    # the default (Gaussian) decoders end in a ReLU on non-negative data
    assert (model.predict(X) >= 0).all()
    # a 1-D Y gives a 1-D prediction
    one = BABEL(**FAST, random_state=0).fit(X, Y[:, 0])
    assert one.predict(X).shape == (120,)


def test_deterministic_under_random_state(paired):
    X, Y = paired
    a = BABEL(**FAST, random_state=3).fit(X, Y)
    b = BABEL(**FAST, random_state=3).fit(X, Y)
    c = BABEL(**FAST, random_state=4).fit(X, Y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert history_values(a.history_) == history_values(b.history_)
    assert not np.array_equal(a.predict(X), c.predict(X))


def test_sparse_input_equals_dense_input(paired):
    X, Y = paired
    Yb = (Y > np.median(Y)).astype(float)  # binarised "peaks"
    params = dict(FAST, mod2_likelihood="bernoulli", random_state=0)
    dense = BABEL(**params).fit(X, Yb)
    sparse = BABEL(**params).fit(sp.csr_matrix(X), sp.csr_matrix(Yb))
    np.testing.assert_array_equal(dense.predict(X), sparse.predict(sp.csr_matrix(X)))
    np.testing.assert_array_equal(dense.predict(X), sparse.predict(X))


def test_sparse_input_is_densified_by_mini_batches(monkeypatch):
    # ATAC can be 70k cells x 116k peaks: never densify the whole input
    rng = np.random.default_rng(0)
    X = sp.random(700, 60, density=0.1, format="csr", random_state=rng)
    Y = sp.random(700, 20, density=0.1, format="csr", random_state=rng)
    Y.data[:] = 1.0
    seen = []
    original = _compressed._cs_matrix.toarray

    def spy(self, *args, **kwargs):
        seen.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(_compressed._cs_matrix, "toarray", spy)
    monkeypatch.setattr(babel_module, "_CHUNK_ENTRIES", 60 * 100)
    params = dict(FAST, max_epochs=2, validation_fraction=0.05)
    model = BABEL(**params, mod2_likelihood="bernoulli", random_state=0).fit(X, Y)
    assert seen and max(seen) <= 35  # batches of 32, 35 validation cells
    seen.clear()
    assert model.predict(X).shape == (700, 20)
    assert seen and max(seen) <= 100  # predict: chunks of 6,000 entries


def test_inputs_are_not_modified(paired):
    X, Y = paired
    Xs = sp.csr_matrix(X)
    X0, Y0, data0 = X.copy(), Y.copy(), Xs.data.copy()
    BABEL(**FAST, mod1_likelihood="nb", random_state=0).fit(Xs, Y)
    BABEL(**FAST, random_state=0).fit(X, Y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)
    np.testing.assert_array_equal(Xs.data, data0)


def test_likelihoods(paired):
    X, Y = paired
    rng = np.random.default_rng(1)
    counts = rng.poisson(np.expm1(Y) * 3.0).astype(float)
    peaks = (Y > np.median(Y)).astype(float)
    # NB on counts (mod2): non-negative means; the encoder reads log1p(counts)
    nb = BABEL(**FAST, mod2_likelihood="nb", random_state=0).fit(X, counts)
    pred = nb.predict(X)
    assert np.isfinite(pred).all() and (pred > 0).all()
    # Bernoulli (mod2): probabilities
    bern = BABEL(**FAST, mod2_likelihood="bernoulli", random_state=0).fit(X, peaks)
    prob = bern.predict(X)
    assert ((prob > 0) & (prob < 1)).all()
    # NB and Bernoulli first modalities train too (the 2->1 and 1->1 paths)
    both = BABEL(**FAST, mod1_likelihood="bernoulli", random_state=0)
    both.fit((X > 0).astype(float), Y)
    assert np.isfinite(both.history_[-1]["loss_11"])
    # a normal decoder is linear when its modality has negative values
    centred = Y - Y.mean(axis=0)
    lin = BABEL(**FAST, random_state=0).fit(X, centred)
    assert isinstance(lin.module_.decoder2.activations[0], torch.nn.Identity)
    assert isinstance(
        BABEL(**FAST, random_state=0).fit(X, Y).module_.decoder2.activations[0],
        torch.nn.ReLU,
    )
    assert (lin.predict(X) < 0).any()


def test_early_stopping_and_validation(paired):
    X, Y = paired
    params = dict(FAST, max_epochs=40, patience=2, learning_rate=0.05)
    model = BABEL(**params, random_state=0).fit(X, Y)
    valid = history_values(model.history_, "valid_loss")
    assert model.best_epoch_ == int(np.argmin(valid))
    assert model.n_iter_ <= model.best_epoch_ + 3
    assert model.n_iter_ < 40
    # nothing held out: every epoch runs and no epoch is selected
    none = BABEL(**FAST, validation_fraction=0.0, random_state=0).fit(X, Y)
    assert none.best_epoch_ is None and none.n_iter_ == 5
    assert "valid_loss" not in none.history_[0]


def test_errors(paired):
    X, Y = paired
    with pytest.raises(ValueError, match="same cells"):
        BABEL(**FAST).fit(X, Y[:-1])
    Y_nan = Y.copy()
    Y_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        BABEL(**FAST).fit(X, Y_nan)
    with pytest.raises(ValueError, match="negative binomial"):
        BABEL(**FAST, mod2_likelihood="nb").fit(X, Y - 1.0)
    with pytest.raises(ValueError, match="Bernoulli"):
        BABEL(**FAST, mod1_likelihood="bernoulli").fit(X, Y)
    with pytest.raises(ValueError, match="hidden_dims"):
        BABEL(**dict(FAST, hidden_dims=(8, 0))).fit(X, Y)
    with pytest.raises(ValueError, match="mod2_likelihood"):
        BABEL(**dict(FAST, mod2_likelihood="poisson")).fit(X, Y)
    with pytest.raises(ValueError, match="batch_size"):
        BABEL(**dict(FAST, batch_size=1)).fit(X, Y)
    with pytest.raises(ValueError, match="device"):
        BABEL(**dict(FAST, device="tpu")).fit(X, Y)
    model = BABEL(**FAST, random_state=0).fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :-1])


def _cite_starter():
    # the organisers' files, shipped inside the package
    with warnings.catch_warnings():  # the organisers' files use an old format
        warnings.simplefilter("ignore", ad.OldFormatWarning)
        rna = ad.read_h5ad(fetch_file("neurips2021_bmmc_cite_starter_rna"))
        adt = ad.read_h5ad(fetch_file("neurips2021_bmmc_cite_starter_mod2"))
    # the organisers' X: log-normalised GEX, CLR ADT (the competition's units)
    train = (rna.obs["batch"] == "s1d1").to_numpy()
    X, Y = sp.csr_matrix(rna.X), sp.csr_matrix(adt.X).toarray()
    return X[train], Y[train], X[~train], Y[~train]


def test_gex_to_adt_beats_the_training_mean_on_the_cite_starter():
    # NeurIPS 2021 CITE starter, train donor batch s1d1 (311 cells), test
    # s1d2 (289 cells), 1000 genes -> 134 proteins, DANCE's defaults with
    # 40 epochs at most.  Measured (seeds 0, 1, 2): RMSE 0.519 / 0.547 /
    # 0.527 vs 0.794 for the training mean.
    X_train, Y_train, X_test, Y_test = _cite_starter()
    start = time.perf_counter()
    model = BABEL(max_epochs=40, patience=10, random_state=0)
    model.fit(X_train, Y_train)
    rmse = -model.score(X_test, Y_test)
    baseline = np.sqrt(np.mean((Y_test - Y_train.mean(axis=0)) ** 2))
    assert rmse < 0.8 * baseline, (rmse, baseline)
    assert time.perf_counter() - start < 30  # about 6 s on an idle core
