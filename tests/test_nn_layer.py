"""The layer below the models: likelihood registry, posterior, row source, engine."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats
from sklearn.base import BaseEstimator

from skdance.nn import (
    LIKELIHOODS,
    LikelihoodHeads,
    RowSource,
    gaussian_kl,
    get_likelihood,
    resolve_likelihood,
    training,
)
from skdance.utils import Widths

RNG = np.random.default_rng(0)
COUNTS = RNG.poisson(2.0, size=(6, 5)).astype(np.float64)
MEAN = RNG.uniform(0.5, 4.0, size=(6, 5))
DISP = RNG.uniform(0.3, 5.0, size=(6, 5))
PI = RNG.uniform(0.05, 0.6, size=(6, 5))


def _t(*arrays):
    return [torch.from_numpy(np.asarray(a, dtype=np.float64)) for a in arrays]


def test_registry_names_every_likelihood_once():
    assert sorted(LIKELIHOODS) == ["bernoulli", "nb", "normal", "poisson", "zinb"]
    for name, lik in LIKELIHOODS.items():
        assert lik.name == name and lik.n_params == len(lik.params)


def test_normal_is_the_scipy_log_pdf():
    x = RNG.normal(size=(6, 5))
    var = DISP
    got = get_likelihood("normal").nll(*_t(x, MEAN, var)).numpy()
    np.testing.assert_allclose(-got, stats.norm.logpdf(x, MEAN, np.sqrt(var)))


def test_bernoulli_is_the_scipy_log_pmf():
    x = (COUNTS > 1).astype(float)
    logits = RNG.normal(size=x.shape)
    got = get_likelihood("bernoulli").nll(*_t(x, logits)).numpy()
    p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(-got, stats.bernoulli.logpmf(x, p), rtol=1e-6)


def test_poisson_is_the_scipy_log_pmf():
    got = get_likelihood("poisson").nll(*_t(COUNTS, MEAN)).numpy()
    np.testing.assert_allclose(-got, stats.poisson.logpmf(COUNTS, MEAN), rtol=1e-8)


def test_nb_is_the_scipy_log_pmf():
    got = get_likelihood("nb").nll(*_t(COUNTS, MEAN, DISP)).numpy()
    want = stats.nbinom.logpmf(COUNTS, DISP, DISP / (DISP + MEAN))
    np.testing.assert_allclose(-got, want, rtol=1e-6, atol=1e-8)


def test_zinb_is_the_zero_inflated_scipy_log_pmf_per_entry():
    got = get_likelihood("zinb").nll(*_t(COUNTS, MEAN, DISP, PI)).numpy()
    nb = stats.nbinom(DISP, DISP / (DISP + MEAN))
    want = np.where(
        COUNTS == 0,
        np.log(PI + (1 - PI) * nb.pmf(0)),
        np.log(1 - PI) + nb.logpmf(COUNTS),
    )
    assert got.shape == COUNTS.shape
    np.testing.assert_allclose(-got, want, rtol=1e-6, atol=1e-8)


def test_zinb_gradient_reaches_every_parameter():
    mean, disp, pi = (t.requires_grad_() for t in _t(MEAN, DISP, PI))
    get_likelihood("zinb").nll(*_t(COUNTS), mean, disp, pi).sum().backward()
    assert all(bool(torch.all(t.grad != 0)) for t in (mean, disp, pi))


def test_cell_nll_sums_over_features():
    lik = get_likelihood("nb")
    per_entry = lik.nll(*_t(COUNTS, MEAN, DISP))
    assert torch.allclose(lik.cell_nll(*_t(COUNTS, MEAN, DISP)), per_entry.sum(1))


def test_means():
    mean, disp, pi = _t(MEAN, DISP, PI)
    assert torch.equal(get_likelihood("nb").mean(mean, disp), mean)
    assert torch.allclose(get_likelihood("zinb").mean(mean, disp, pi), (1 - pi) * mean)
    assert float(get_likelihood("bernoulli").mean(torch.tensor(0.0))) == 0.5


@pytest.mark.parametrize(
    ("X", "want"),
    [
        (COUNTS, "nb"),
        ((COUNTS > 1).astype(float), "bernoulli"),
        (COUNTS + 0.5, "normal"),
        (sp.csr_matrix(COUNTS), "nb"),
    ],
)
def test_resolve_auto_from_the_data(X, want):
    got = resolve_likelihood("auto", X, allowed=("nb", "bernoulli", "normal"))
    assert got.name == want


def test_resolve_rejects_unsupported_names_and_mismatched_data():
    with pytest.raises(ValueError, match="likelihood must be one of"):
        resolve_likelihood("gaussian", COUNTS, allowed=("nb", "normal"))
    with pytest.raises(ValueError, match="mod2_likelihood='nb' models counts"):
        resolve_likelihood("nb", COUNTS - 0.5, allowed=("nb",), param="mod2_likelihood")
    with pytest.raises(ValueError, match="0/1 data"):
        resolve_likelihood("bernoulli", COUNTS, allowed=("bernoulli",))
    with pytest.raises(ValueError, match="unknown likelihood"):
        get_likelihood("gamma")


@pytest.mark.parametrize(("name", "n_heads"), [("zinb", 3), ("nb", 2), ("normal", 1)])
def test_likelihood_heads(name, n_heads):
    heads = LikelihoodHeads(4, 3, name)
    out = heads(torch.ones(2, 4))
    assert len(out) == n_heads and all(o.shape == (2, 3) for o in out)
    assert hasattr(heads, "log_std") == (name == "normal")
    fixed = LikelihoodHeads(4, 3, name, learn_variance=False)
    assert not hasattr(fixed, "log_std") and len(fixed(torch.ones(2, 4))) == n_heads


def test_gaussian_kl_to_a_given_normal_matches_the_closed_form():
    mean, log_var = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3).double()
    prior_mean, prior_var = 0.7, 2.5
    q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(prior_mean, prior_var**0.5)
    want = torch.distributions.kl_divergence(q, p).sum(-1)
    got = gaussian_kl(mean, log_var, prior_mean=prior_mean, prior_var=prior_var)
    assert torch.allclose(got, want)
    std_normal = gaussian_kl(mean, log_var, prior_mean=0.0, prior_var=1.0)
    assert torch.allclose(std_normal, gaussian_kl(mean, log_var))
    with pytest.raises(ValueError, match="both prior_mean and prior_var"):
        gaussian_kl(mean, log_var, prior_mean=0.0)


def test_row_source_gives_the_same_rows_dense_or_sparse():
    dense, sparse = RowSource(COUNTS), RowSource(sp.csc_matrix(COUNTS))
    assert sp.isspmatrix_csr(sparse.X) or sp.issparse(sparse.X)
    idx = torch.tensor([4, 0, 2])
    for rows in (dense, sparse):
        batch = rows.batch(idx, device="cpu")
        assert batch.dtype == torch.float32 and batch.is_contiguous()
        np.testing.assert_array_equal(batch.numpy(), COUNTS[[4, 0, 2]])
        np.testing.assert_array_equal(
            rows.library_of(idx).numpy(), COUNTS[[4, 0, 2]].sum(1)
        )
    zero = RowSource(np.zeros((2, 3)), empty_library=1e-6)
    assert np.all(zero.library == np.float32(1e-6))
    assert [s.stop for s in dense.chunks(4)] == [4, 6]


def test_row_source_batches_are_writable_copies():
    X = np.ones((3, 2), dtype=np.float32)
    batch = RowSource(X).batch([0, 1])
    batch += 1
    assert X.max() == 1


@pytest.mark.parametrize(
    ("value", "allow_empty", "ok"),
    [
        ((8, 4), False, True),
        ((), False, False),
        ((), True, True),
        ((4, 0), False, False),
        ((4, True), False, False),
        (4, False, False),
        ((4.0,), False, False),
    ],
)
def test_widths_constraint(value, allow_empty, ok):
    assert Widths(allow_empty).is_satisfied_by(value) is ok


class _Tiny(BaseEstimator):
    def __init__(self, device="cpu", verbose=0, random_state=0):
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    def fit(self):
        with training(self) as run:
            net = run.place(torch.nn.Linear(3, 1))
            opt = torch.optim.SGD(net.parameters(), lr=0.05)
            x = torch.randn(16, 3, generator=run.generator)
            y = torch.randn(16, 1, generator=run.generator)

            def loss_fn(idx):
                return torch.nn.functional.mse_loss(net(x[idx]), y[idx])

            self.best_epoch_ = run.fit_minibatches(
                opt,
                loss_fn,
                np.arange(12),
                valid=np.arange(12, 16),
                batch_size=4,
                max_epochs=5,
            )
        return self


def test_training_context_stores_the_fitted_attributes_and_is_deterministic():
    state = torch.random.get_rng_state()
    a, b = _Tiny().fit(), _Tiny().fit()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.n_iter_ == 5 == len(a.history_)
    assert {"train_loss", "valid_loss"} <= set(a.history_[0])
    assert not a.module_.training
    assert next(a.module_.parameters()).device.type == "cpu"
    assert a.best_epoch_ is not None
    assert torch.equal(a.module_.weight, b.module_.weight)
    c = _Tiny(random_state=1).fit()
    assert not torch.equal(a.module_.weight, c.module_.weight)


def test_training_context_leaves_nothing_on_an_error():
    est = _Tiny()
    with pytest.raises(RuntimeError, match="boom"):
        with training(est) as run:
            run.place(torch.nn.Linear(2, 1))
            raise RuntimeError("boom")
    assert not hasattr(est, "module_") and not hasattr(est, "history_")


def test_fc_layers_batch_norm_settings_and_dropout_after_every_block():
    from skdance.nn import FCLayers

    net = FCLayers(
        [5, 4, 3],
        batch_norm={"momentum": 0.01, "eps": 1e-3},
        dropout=0.2,
        dropout_last=True,
    )
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [(n.momentum, n.eps) for n in norms] == [(0.01, 1e-3)] * 2
    assert [isinstance(block[-1], torch.nn.Dropout) for block in net] == [True, True]
    plain = FCLayers([5, 4, 3], batch_norm=True, dropout=0.2)
    assert not isinstance(plain[-1][-1], torch.nn.Dropout)
    assert plain[0][1].momentum == 0.1


class _Widths(BaseEstimator):
    _parameter_constraints = {"hidden_dims": [Widths()]}

    def __init__(self, hidden_dims=(4, 2)):
        self.hidden_dims = hidden_dims


def test_widths_constraint_rejects_bad_widths_in_validate_params():
    from sklearn.utils._param_validation import InvalidParameterError

    _Widths()._validate_params()
    _Widths([8])._validate_params()
    with pytest.raises(InvalidParameterError, match="'hidden_dims' parameter"):
        _Widths(())._validate_params()
    with pytest.raises(InvalidParameterError, match="non-empty tuple of positive"):
        _Widths((4, -1))._validate_params()


@pytest.mark.parametrize(("ties", "best"), [("first", 1), ("last", 3)])
def test_fit_minibatches_monitors_a_value_to_maximise(ties, best):
    accuracy = iter([0.1, 0.5, 0.3, 0.5, 0.2])
    est = _Tiny()
    with training(est) as run:
        net = run.place(torch.nn.Linear(3, 1))
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        x = torch.randn(8, 3, generator=run.generator)
        states = []

        def loss_fn(idx):
            return net(x[idx]).pow(2).mean()

        def valid_fn(valid):
            states.append(net.weight.detach().clone())
            return {"valid_accuracy": next(accuracy)}

        kept = run.fit_minibatches(
            opt,
            loss_fn,
            np.arange(6),
            valid=np.arange(6, 8),
            valid_fn=valid_fn,
            monitor="-valid_accuracy",
            ties=ties,
            batch_size=2,
            max_epochs=5,
        )
    assert kept == best
    assert torch.equal(est.module_.weight, states[best])
    assert [r["valid_accuracy"] for r in est.history_] == [0.1, 0.5, 0.3, 0.5, 0.2]


@pytest.mark.parametrize("density", [0.5, 0.02])
@pytest.mark.parametrize("sparse_input", [False, True])
def test_full_batch_matrix_depends_on_values_not_format(density, sparse_input):
    from skdance.nn import FullBatchMatrix, RowSource

    rng = np.random.default_rng(0)
    X = (rng.random((40, 30)) < density) * rng.random((40, 30))
    X = X.astype(np.float32)
    rows = RowSource(sp.csr_matrix(X) if sparse_input else X)
    full = FullBatchMatrix(rows, "cpu")
    assert (full.x_t is None) == (density > 0.05)  # sparse below 5% non-zeros
    assert full.shape == (40, 30)
    assert full.sq_sum == float(np.square(X, dtype=np.float64).sum())
    torch.testing.assert_close(full.dense(), torch.from_numpy(X))
    W = torch.from_numpy(rng.random((30, 4)).astype(np.float32)).requires_grad_()
    out = full.matmul(W)
    torch.testing.assert_close(out, torch.from_numpy(X) @ W)
    out.sum().backward()
    torch.testing.assert_close(W.grad, torch.from_numpy(X).T @ torch.ones(40, 4))
    # the threshold and the size limit are parameters
    assert FullBatchMatrix(rows, "cpu", sparse_below=1.0).x_t is not None
    assert FullBatchMatrix(rows, "cpu", sparse_above=10).x_t is not None
