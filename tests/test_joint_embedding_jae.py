"""Tests of JAE, the joint autoencoder with cell-type, batch and cycle parts."""

import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from skdance.multimodal.embedding import cell_cycle_scores
from skdance.multimodal.embedding._cell_cycle import G2M_GENES, S_GENES
from skdance.multimodal.embedding.jae import JAE, ModalityReducer, uniform_batch_loss

FAST = {
    "latent_dim": 12,
    "svd_components": (8, None),
    "hidden_dims": (16,),
    "decoder_dims": (16,),
    "max_epochs": 4,
    "finetune_epochs": 2,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["B", "NK", "T"]), 30)
    codes = np.searchsorted(np.unique(y), y)
    gex = np.log1p(rng.poisson(1.0 + 2.0 * (codes[:, None] == np.arange(40) % 3)))
    adt = rng.normal(size=(90, 6)) + codes[:, None]
    batch = np.tile(np.array(["s1", "s2"]), 45)
    return gex, adt, y, batch


def test_y_is_required(data):
    gex, adt, _, _ = data
    with pytest.raises(ValueError, match="requires y to be passed"):
        JAE(**FAST).fit((gex, adt))
    assert JAE().__sklearn_tags__().target_tags.required


def test_all_unlabelled_raises(data):
    gex, adt, y, _ = data
    with pytest.raises(ValueError, match="at least some cells"):
        JAE(**FAST).fit((gex, adt), np.full(len(y), None, dtype=object))


def test_parts_shape_and_transform_without_labels(data):
    gex, adt, y, batch = data
    cycle = np.random.default_rng(1).normal(size=(len(y), 2))
    params = {**FAST, "max_epochs": 20, "learning_rate": 1e-2}
    jae = JAE(**params).fit((gex, adt), y, batch=batch, cell_cycle=cycle)
    Z = jae.transform((gex, adt))
    assert Z.shape == (90, 12) and Z.dtype == np.float64 and np.isfinite(Z).all()
    parts = jae.embedding_parts_
    assert parts == {
        "cell_type": slice(0, 3),
        "batch": slice(3, 5),
        "cell_cycle": slice(5, 7),
        "rest": slice(7, 12),
    }
    assert list(jae.classes_) == ["B", "NK", "T"]
    assert list(jae.batch_classes_) == ["s1", "s2"]
    assert jae.cell_cycle_source_ == "given"
    # the cell-type part holds logits: after training they point to the labels
    logits = Z[:, parts["cell_type"]]
    assert (logits.argmax(1) == np.searchsorted(jae.classes_, y)).mean() > 0.9
    phases = {row["phase"] for row in jae.history_}
    assert phases == {"supervised", "finetune"}
    assert jae.n_iter_ == len(jae.history_) == 22
    losses = {"reconstruction", "cell_type", "batch", "cell_cycle"}
    assert losses <= set(jae.history_[0])


def test_without_batch_or_cycle_the_parts_are_empty(data):
    gex, adt, y, _ = data
    jae = JAE(**FAST).fit((gex, adt), y)
    assert jae.batch_classes_ is None and jae.cell_cycle_source_ is None
    parts = jae.embedding_parts_
    assert parts["batch"] == slice(3, 3) and parts["cell_cycle"] == slice(3, 3)
    assert parts["rest"] == slice(3, 12)
    assert all(row.get("batch", 0.0) == 0.0 for row in jae.history_)


def test_blocks_equal_pair(data):
    gex, adt, y, batch = data
    a = JAE(**FAST).fit((gex, adt), y, batch=batch).transform((gex, adt))
    blocks = np.hstack([gex, adt])
    est = JAE(n_features_mod1=gex.shape[1], **FAST).fit(blocks, y, batch=batch)
    np.testing.assert_allclose(est.transform(blocks), a, rtol=1e-6, atol=1e-6)


def test_latent_dim_none_is_jae_sizing_and_too_small_raises(data):
    gex, adt, y, batch = data
    params = {**FAST, "latent_dim": None}
    jae = JAE(**params).fit((gex, adt), y, batch=batch)
    assert jae.transform((gex, adt)).shape[1] == 3 + 2 + 5
    with pytest.raises(ValueError, match="latent_dim=4 is smaller"):
        JAE(**{**FAST, "latent_dim": 4}).fit((gex, adt), y, batch=batch)


def test_mismatched_lengths_raise(data):
    gex, adt, y, batch = data
    jae = JAE(**FAST)
    with pytest.raises(ValueError, match="y has 89 labels"):
        jae.fit((gex, adt), y[:-1])
    with pytest.raises(ValueError, match="batch= has 89 rows"):
        jae.fit((gex, adt), y, batch=batch[:-1])
    with pytest.raises(ValueError, match="cell_cycle= has 10 rows"):
        jae.fit((gex, adt), y, cell_cycle=np.zeros((10, 2)))
    with pytest.raises(ValueError, match="same cells"):
        jae.fit((gex, adt[:-1]), y)
    with pytest.raises(ValueError, match="NaN"):
        bad = gex.copy()
        bad[0, 0] = np.nan
        jae.fit((bad, adt), y)


def test_side_information_not_modified(data):
    gex, adt, y, batch = data
    copies = [a.copy() for a in (gex, adt, y, batch)]
    cycle = np.ones((len(y), 2))
    JAE(**FAST).fit((gex, adt), y, batch=batch, cell_cycle=cycle)
    for before, after in zip(copies, (gex, adt, y, batch)):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(cycle, 1.0)


def test_unlabelled_cells_are_allowed(data):
    gex, adt, y, _ = data
    partial = y.astype(object)
    partial[::3] = None
    jae = JAE(**FAST).fit((gex, adt), partial)
    assert list(jae.classes_) == ["B", "NK", "T"]
    numeric = np.searchsorted(np.unique(y), y)
    numeric[:30] = -1  # the whole first class unlabelled
    assert JAE(**FAST).fit((gex, adt), numeric).classes_.tolist() == [1, 2]


def test_sparse_embedding_is_per_cell(data):
    gex, adt, y, _ = data
    pair = (sp.csr_matrix(gex), adt)
    jae = JAE(**FAST).fit(pair, y)
    Z = jae.transform(pair)
    # the embedding of a cell does not depend on the other cells passed
    np.testing.assert_allclose(
        jae.transform((pair[0][:10], adt[:10])), Z[:10], rtol=1e-10, atol=1e-12
    )


def test_metadata_routing(data):
    gex, adt, y, batch = data
    X = np.hstack([gex, adt])
    with sklearn.config_context(enable_metadata_routing=True):
        # batches are requested by default, like ScMoGNNEmbedding's
        jae = JAE(n_features_mod1=gex.shape[1], **FAST)
        pipe = Pipeline([("jae", jae)]).fit(X, y, batch=batch)
        assert list(pipe[0].batch_classes_) == ["s1", "s2"]
        # and a request can be withdrawn (the batches then reach no step)
        jae = JAE(n_features_mod1=gex.shape[1], **FAST).set_fit_request(batch=False)
        with pytest.raises(TypeError, match="not routed"):
            Pipeline([("jae", jae)]).fit(X, y, batch=batch)


def test_joint_embeddings_request_side_information_alike():
    from skdance.multimodal.embedding import ScMoGNNEmbedding

    requests = [
        cls().get_metadata_routing().fit.requests for cls in (JAE, ScMoGNNEmbedding)
    ]
    assert requests[0] == requests[1] == {"batch": True, "cell_cycle": True}


def test_anndata_batch_key(data):
    ad = pytest.importorskip("anndata")
    gex, adt, y, batch = data
    obs = pd.DataFrame({"sample": batch}, index=[f"c{i}" for i in range(len(y))])
    var = pd.DataFrame(index=[f"g{i}" for i in range(gex.shape[1])])
    rna = ad.AnnData(gex, obs=obs, var=var)
    jae = JAE(batch_key="sample", **FAST).fit((rna, adt), y)
    assert list(jae.batch_classes_) == ["s1", "s2"]
    with pytest.raises(ValueError, match="adata.obs\\['nope'\\]"):
        JAE(batch_key="nope", **FAST).fit((rna, adt), y, batch=None)


def test_cell_cycle_scored_from_gene_names(data):
    _, adt, y, _ = data
    rng = np.random.default_rng(2)
    # mouse-style names: matched case-insensitively to the human list
    names = [g.capitalize() for g in S_GENES[:8] + G2M_GENES[:8]]
    names += [f"gene{i}" for i in range(64)]
    gex = pd.DataFrame(np.log1p(rng.poisson(1.0, (len(y), len(names)))), columns=names)
    jae = JAE(**FAST).fit((gex, adt), y)
    assert jae.cell_cycle_source_ == "scored"
    assert jae.embedding_parts_["cell_cycle"] == slice(3, 5)
    off = JAE(cell_cycle_genes=None, **FAST).fit((gex, adt), y)
    assert off.cell_cycle_source_ is None
    scores = cell_cycle_scores(gex.to_numpy(), names, random_state=0)
    state = np.random.get_state()[1].copy()
    again = cell_cycle_scores(gex.to_numpy(), names, random_state=0)
    np.testing.assert_array_equal(scores, again)
    np.testing.assert_array_equal(state, np.random.get_state()[1])  # restored
    unknown = [f"x{i}" for i in range(80)]
    with pytest.raises(ValueError, match="marker gene"):
        cell_cycle_scores(gex.to_numpy(), unknown)
    with pytest.raises(ValueError, match="at least 50 genes"):
        cell_cycle_scores(gex.to_numpy()[:, :16], names[:16])


def test_reducer_and_batch_loss():
    X = sp.random(30, 50, density=0.2, random_state=0, format="csr")
    red = ModalityReducer(5, "svd", 0)
    assert red.fit_transform(X).shape == (30, 5)
    assert ModalityReducer(5, "lsi", 0).fit_transform(X).shape == (30, 5)
    assert ModalityReducer(None, "svd", 0).fit_transform(X).shape == (30, 50)
    import torch

    assert float(uniform_batch_loss(torch.zeros(3, 4))) == pytest.approx(np.log(4))
    assert float(uniform_batch_loss(torch.tensor([[5.0, -5.0]]))) > np.log(2)


def test_bad_parameters(data):
    gex, adt, y, _ = data
    with pytest.raises(ValueError, match="svd_components"):
        JAE(**{**FAST, "svd_components": (8,)}).fit((gex, adt), y)
    with pytest.raises(ValueError, match="hidden_dims"):
        JAE(**{**FAST, "hidden_dims": (0,)}).fit((gex, adt), y)
    # widths are parameters checked up front, with the parameter's name
    with pytest.raises(InvalidParameterError, match="'hidden_dims' parameter"):
        JAE(**{**FAST, "hidden_dims": ()}).fit((gex, adt), y)
    with pytest.raises(InvalidParameterError, match="'decoder_dims' parameter"):
        JAE(**{**FAST, "decoder_dims": (8, -1)}).fit((gex, adt), y)
    with pytest.raises(ValueError, match="cell_cycle_genes"):
        JAE(**{**FAST, "cell_cycle_genes": ("MCM5", "TOP2A")}).fit((gex, adt), y)


DATA = os.environ["SKDANCE_DATA"]  # set by conftest.py


def test_teaseq_held_out_cells_accuracy_floor():
    """Fit on labelled TEA-seq cells, cluster the embedding of held-out cells."""
    from skdance.datasets import load_multimodal

    rna, adt = load_multimodal("teaseq_pbmc", data_home=DATA)
    rng = np.random.default_rng(0)
    cells = rng.permutation(rna.shape[0])[:700]
    train, test = cells[:500], cells[500:]
    labels = rna.obs["cell_type"].astype(str).to_numpy()
    jae = JAE(
        svd_components=(50, None),
        max_epochs=60,
        finetune_epochs=0,
        batch_size=64,
        learning_rate=1e-3,
        cell_cycle_genes=None,
        random_state=0,
    ).fit((rna[train], adt[train]), labels[train])
    Z = jae.transform((rna[test], adt[test]))
    k = len(np.unique(labels[test]))
    pred = KMeans(k, n_init=10, random_state=0).fit_predict(Z)
    assert adjusted_rand_score(labels[test], pred) > 0.45
