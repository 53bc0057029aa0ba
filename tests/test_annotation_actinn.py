"""ACTINN (and the deep annotators) on real PBMC cells; GridSearchCV over a pipeline."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from skdance.annotation import ACTINN
from skdance.annotation.actinn import actinn_scale
from skdance.datasets import load_pbmc_4k_subset
from skdance.nn import history_values
from skdance.preprocessing import HighlyVariableGenes


@pytest.fixture(scope="module")
def pbmc_split():
    X, y = load_pbmc_4k_subset()
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def actinn(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    return ACTINN(max_epochs=40, random_state=0).fit(X_tr, y_tr.astype(str))


def test_actinn_scale_matches_its_definition():
    X = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    out = actinn_scale(X)
    np.testing.assert_allclose(
        out[0], np.log2(1 + np.array([2500.0, 7500.0, 0.0])), rtol=1e-6
    )
    assert not out[1].any()


def test_actinn_accuracy_proba_and_string_labels(pbmc_split, actinn):
    _, X_te, _, y_te = pbmc_split
    # floor well below the ~0.87 it reaches here; chance is ~0.30
    assert actinn.score(X_te, y_te.astype(str)) > 0.75
    assert actinn.classes_.dtype.kind == "U"
    assert set(actinn.predict(X_te)) <= set(actinn.classes_)
    proba = actinn.predict_proba(X_te)
    assert proba.shape == (X_te.shape[0], actinn.classes_.size)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    loss = history_values(actinn.history_)
    assert len(loss) == 40 and loss[-1] < 0.5 * loss[0]


def test_actinn_gene_filters_follow_the_paper(pbmc_split, actinn):
    X_tr = pbmc_split[0]
    E = actinn_scale(X_tr)
    kept = actinn.genes_
    detected = np.flatnonzero((E > 0).any(axis=0))
    assert set(kept) <= set(detected)
    # two percentile filters each drop about 2% of the genes
    assert 0.9 * detected.size < kept.size < detected.size
    total = E[:, detected].sum(axis=0)
    lo, hi = np.percentile(total, [1, 99])
    assert lo * 0.999 <= E[:, kept].sum(axis=0).min()
    assert E[:, kept].sum(axis=0).max() <= hi * 1.001


def test_actinn_rejects_negative_counts_unless_told(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    X = X_tr.toarray()
    X[0, 0] = -1.0
    with pytest.raises(ValueError, match="Negative values"):
        ACTINN(max_epochs=1).fit(X, y_tr)
    ACTINN(max_epochs=1, normalize=False).fit(X, y_tr)


def test_actinn_learning_rate_decays(pbmc_split):
    X_tr, _, y_tr, _ = pbmc_split
    params = {
        "max_epochs": 5,
        "batch_size": 100,
        "learning_rate": 1e-3,
        "random_state": 0,
    }
    steady = ACTINN(learning_rate_decay=1.0, **params).fit(X_tr, y_tr)
    # the rate shrinks 100-fold after every step: training all but stops
    frozen = ACTINN(decay_steps=1, learning_rate_decay=0.01, **params).fit(X_tr, y_tr)
    steady_loss = history_values(steady.history_)
    frozen_loss = history_values(frozen.history_)
    assert steady_loss[-1] < 0.5 * steady_loss[0]
    assert frozen_loss[-1] > 0.95 * frozen_loss[0]


def test_actinn_verbose_shows_the_loss_of_each_epoch(pbmc_split, capsys):
    X_tr, _, y_tr, _ = pbmc_split
    model = ACTINN(max_epochs=3, batch_size=64, random_state=0, verbose=1)
    model.fit(X_tr[:150], y_tr[:150])
    err = capsys.readouterr().err
    # one bar over the epochs, left on screen with the last epoch's loss
    last = [part for part in err.replace("\n", "\r").split("\r") if part.strip()][-1]
    assert "3/3" in last
    loss = history_values(model.history_)
    assert f"train_loss={loss[-1]:.4g}" in last


def test_gridsearch_over_actinn_pipeline(pbmc_split):
    X_tr, X_te, y_tr, y_te = pbmc_split
    pipe = Pipeline(
        [
            ("hvg", HighlyVariableGenes(n_top_genes=500, flavor="seurat_v3")),
            ("clf", ACTINN(max_epochs=15, random_state=0)),
        ]
    )
    grid = {"hvg__n_top_genes": [300, 1000], "clf__learning_rate": [1e-4, 1e-3]}
    search = GridSearchCV(pipe, grid, scoring="accuracy", cv=3).fit(X_tr, y_tr)
    assert search.cv_results_["mean_test_score"].shape == (4,)
    assert search.best_params_["hvg__n_top_genes"] in (300, 1000)
    assert (
        search.best_estimator_[-1].n_features_in_
        == search.best_params_["hvg__n_top_genes"]
    )
    assert search.score(X_te, y_te) > 0.75
