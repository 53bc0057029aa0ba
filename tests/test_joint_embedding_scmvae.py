"""scMVAE: the Gaussian-mixture multimodal VAE and its joint-embedding estimator."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skdance.multimodal.embedding.scmvae import (
    ScMVAE,
    ScMVAEModule,
    gmm_kl,
    product_of_experts,
)

FAST = {
    "hidden_dims": (16, 8),
    "latent_dim": 3,
    "n_clusters": 3,
    "max_epochs": 3,
    "batch_size": 16,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def counts():
    """Two groups of cells with distinct RNA and ATAC profiles."""
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1], 30)
    rates = np.where(group[:, None] == 0, 0.5, 3.0) * rng.uniform(0.5, 1.5, 25)
    rna = rng.poisson(rates).astype(float)
    rna[:, 24] = 0.0  # a feature below the count filter
    peaks = rng.binomial(2, np.where(group[:, None] == 0, 0.1, 0.5), (60, 30))
    return rna, peaks.astype(float), group


# -- pieces ---------------------------------------------------------------------
def test_product_of_experts_matches_precision_weighting():
    means = [torch.tensor([[1.0]]), torch.tensor([[3.0]])]
    log_vars = [torch.log(torch.tensor([[1.0]])), torch.log(torch.tensor([[0.5]]))]
    mean, log_var = product_of_experts(means, log_vars)
    # precisions 1 (prior, mean 0), 1 and 2
    assert float(log_var.exp()) == pytest.approx(1 / 4, rel=1e-6)
    assert float(mean) == pytest.approx((1.0 + 2 * 3.0) / 4, rel=1e-6)


def test_gmm_kl_with_one_component_is_the_gaussian_kl():
    gen = torch.Generator().manual_seed(0)
    mean, log_var = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    mu_c, log_var_c = torch.randn(3, 1, generator=gen), torch.randn(3, 1, generator=gen)
    kl = gmm_kl(mean, mean, log_var, torch.zeros(1), mu_c, log_var_c)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mean, torch.exp(0.5 * log_var)),
        torch.distributions.Normal(mu_c[:, 0], torch.exp(0.5 * log_var_c[:, 0])),
    ).sum(-1)
    torch.testing.assert_close(kl, expected, rtol=1e-5, atol=1e-5)


def test_gmm_kl_is_non_negative_for_a_mixture():
    gen = torch.Generator().manual_seed(1)
    mean = torch.randn(6, 2, generator=gen)
    log_var = torch.randn(6, 2, generator=gen) - 1
    log_pi = torch.log_softmax(torch.randn(4, generator=gen), -1)
    mu_c, log_var_c = torch.randn(2, 4, generator=gen), torch.zeros(2, 4)
    z = mean + torch.exp(0.5 * log_var) * torch.randn(6, 2, generator=gen)
    assert torch.isfinite(gmm_kl(z, mean, log_var, log_pi, mu_c, log_var_c)).all()


@pytest.mark.parametrize("combination", ["poe", "nn", "concat"])
@pytest.mark.parametrize("likelihoods", [("zinb", "bernoulli"), ("nb", "normal")])
def test_module_losses_are_finite_and_backpropagate(combination, likelihoods):
    torch.manual_seed(0)
    priors = [(1.0, 0.5) if lik in ("zinb", "nb") else None for lik in likelihoods]
    module = ScMVAEModule((7, 5), likelihoods, (8, 4), 2, 3, combination, 0.1, priors)
    x1 = torch.poisson(torch.full((6, 7), 2.0))
    x2 = torch.bernoulli(torch.full((6, 5), 0.4))
    out = module.loss([torch.log1p(x1), x2], [x1, x2], 0.5, 4.0)
    assert set(out) == {"total", "rec_1", "rec_2", "kl_l1", "kl_l2", "kl_z"}
    assert all(torch.isfinite(v) for v in out.values())
    out["total"].backward()
    assert module.mu_c.grad is not None
    module.eval()
    assert module.latent([torch.log1p(x1), x2]).shape == (6, 2)


# -- estimator ------------------------------------------------------------------
def test_fit_transform_pair_and_blocks_agree(counts):
    rna, peaks, _ = counts
    model = ScMVAE(**FAST).fit((rna, peaks))
    Z = model.transform((rna, peaks))
    assert Z.shape == (60, 3) and Z.dtype == np.float64
    assert np.isfinite(Z).all()
    assert model.likelihoods_ == ("zinb", "zinb")
    blocks = np.hstack([rna, peaks])
    Zb = ScMVAE(n_features_mod1=25, **FAST).fit(blocks).transform(blocks)
    np.testing.assert_allclose(Zb, Z, rtol=1e-5, atol=1e-6)
    assert model.n_iter_ == len(model.history_) == 3
    assert {"train_loss", "valid_loss", "kl_weight", "kl_z"} <= set(model.history_[0])


def test_sparse_equals_dense(counts):
    rna, peaks, _ = counts
    dense = ScMVAE(**FAST).fit_transform((rna, peaks))
    sparse = ScMVAE(**FAST).fit_transform((sp.csr_matrix(rna), sp.csr_matrix(peaks)))
    np.testing.assert_allclose(sparse, dense, rtol=1e-5, atol=1e-6)


def test_auto_likelihoods_and_feature_selection(counts):
    rna, peaks, _ = counts
    binary = (peaks > 0).astype(float)
    model = ScMVAE(n_top_genes=10, **FAST).fit((rna, binary))
    assert model.likelihoods_ == ("zinb", "bernoulli")
    assert model.features_mod1_.size == 10 and 24 not in model.features_mod1_
    assert model.features_mod2_.size == 10
    # every feature passes: only the empty one is dropped
    full = ScMVAE(n_top_genes=None, **FAST).fit((rna, peaks))
    np.testing.assert_array_equal(full.features_mod1_, np.arange(24))
    assert full.library_priors_[0][1] > 0
    # raw counts modelled as Bernoulli are binarised
    bern = ScMVAE(mod2_likelihood="bernoulli", **FAST).fit((rna, peaks))
    assert bern.likelihoods_[1] == "bernoulli" and bern.library_priors_[1] is None


def test_normalised_input_uses_the_gaussian_fallback(counts):
    rna, peaks, _ = counts
    logged = np.log1p(rna) - 0.5  # negative, non-integer values
    clr = np.log1p(peaks) - np.log1p(peaks).mean(axis=1, keepdims=True)
    model = ScMVAE(**FAST).fit((logged, clr))
    assert model.likelihoods_ == ("normal", "normal")
    assert model.library_priors_ == (None, None)
    assert np.isfinite(model.transform((logged, clr))).all()


def test_combinations_run(counts):
    rna, peaks, _ = counts
    for combination in ("nn", "concat"):
        Z = ScMVAE(combination=combination, **FAST).fit_transform((rna, peaks))
        assert Z.shape == (60, 3) and np.isfinite(Z).all()


def test_clear_errors(counts):
    rna, peaks, _ = counts
    with pytest.raises(ValueError, match="negative or fractional"):
        ScMVAE(mod1_likelihood="zinb", **FAST).fit((np.log1p(rna) + 0.1, peaks))
    with pytest.raises(ValueError, match="negative"):
        ScMVAE(mod2_likelihood="bernoulli", **FAST).fit((rna, peaks - 1))
    with pytest.raises(ValueError, match="n_features_mod1"):
        ScMVAE(n_features_mod1=100, **FAST).fit(np.hstack([rna, peaks]))
    with pytest.raises(ValueError, match="hidden_dims"):
        ScMVAE(**{**FAST, "hidden_dims": ()}).fit((rna, peaks))
    model = ScMVAE(**FAST).fit((rna, peaks))
    with pytest.raises(ValueError, match="negative"):
        model.transform((rna - 5, peaks))
    with pytest.raises(ValueError, match="same cells"):
        model.transform((rna, peaks[:10]))


def test_fitted_module_is_on_cpu(counts):
    rna, peaks, _ = counts
    model = ScMVAE(**FAST).fit((rna, peaks))
    assert next(model.module_.parameters()).device.type == "cpu"


def test_learning_rate_decay_and_warmup_follow_the_original(counts):
    rna, peaks, _ = counts
    params = {**FAST, "max_epochs": 21, "kl_warmup_epochs": 4, "batch_size": 64}
    model = ScMVAE(**{**params, "validation_fraction": 0.0}).fit((rna, peaks))
    rates = [r["learning_rate"] for r in model.history_]
    assert rates[0] == pytest.approx(1e-3) and rates[9] == pytest.approx(9e-4)
    assert rates[19] == pytest.approx(8.1e-4)
    assert [r["kl_weight"] for r in model.history_[:5]] == [0.25, 0.5, 0.75, 1, 1]
    assert model.best_epoch_ is None


def test_default_epochs_follow_a_step_budget():
    # about 3,000 mini-batches (the original's max_iteration), at most 500 epochs
    model = ScMVAE()
    assert model._n_epochs(9279) == 21  # SNARE-seq's training cells
    assert model._n_epochs(1136) == 167  # TEA-seq's
    assert model._n_epochs(10) == 500
    assert ScMVAE(max_epochs=7)._n_epochs(9279) == 7


# -- real data ------------------------------------------------------------------
def test_teaseq_embedding_separates_cell_types(data_home):
    """TEA-seq PBMC counts: KMeans on the embedding recovers the cell types."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from skdance.datasets import load_multimodal

    rna, adt = load_multimodal("teaseq_pbmc", data_home, units="counts")
    rows = np.random.default_rng(0).choice(rna.n_obs, 400, replace=False)
    labels = rna.obs["cell_type"].to_numpy()[rows]
    model = ScMVAE(  # a small network on 300 genes: about 8 s of one core
        hidden_dims=(128, 32, 32),
        n_top_genes=300,
        max_epochs=20,
        batch_size=32,
        random_state=0,
    ).fit((rna.X[rows], adt.X[rows]))
    Z = model.transform((rna.X[rows], adt.X[rows]))
    k = len(np.unique(labels))
    pred = KMeans(k, n_init=10, random_state=0).fit_predict(Z)
    assert adjusted_rand_score(labels, pred) > 0.3  # measured 0.37 (3 KMeans seeds)
