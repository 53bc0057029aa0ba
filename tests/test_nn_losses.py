"""The shared likelihoods of skdance.nn against scipy.stats."""

import numpy as np
import pytest
import torch
from scipy import stats

from skdance.nn import bernoulli_nll, gaussian_kl, gaussian_nll, nb_nll, zinb_nll


@pytest.fixture
def nb_params():
    rng = np.random.default_rng(0)
    mean = rng.gamma(2.0, 3.0, size=(40, 7))
    disp = rng.gamma(2.0, 1.0, size=(40, 7)) + 0.05
    x = rng.negative_binomial(disp, disp / (disp + mean)).astype(np.float64)
    x[:3] = 0.0  # some all-zero rows
    return x, mean, disp


def _nb_logpmf(x, mean, disp):
    # scipy's nbinom(n, p): n = dispersion (theta), p = theta / (theta + mean)
    return stats.nbinom.logpmf(x, disp, disp / (disp + mean))


def test_nb_nll_is_the_negative_binomial_log_pmf(nb_params):
    x, mean, disp = nb_params
    got = nb_nll(*(torch.from_numpy(a) for a in (x, mean, disp))).numpy()
    np.testing.assert_allclose(got, -_nb_logpmf(x, mean, disp), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("ridge", [0.0, 0.5])
def test_zinb_nll_is_the_mean_zero_inflated_log_pmf(nb_params, ridge):
    x, mean, disp = nb_params
    pi = np.random.default_rng(1).uniform(0.05, 0.6, size=x.shape)
    nb = np.exp(_nb_logpmf(x, mean, disp))
    pmf = np.where(x == 0, pi + (1 - pi) * nb, (1 - pi) * nb)
    expected = (-np.log(pmf) + ridge * pi**2).mean()
    got = zinb_nll(*(torch.from_numpy(a) for a in (x, mean, disp, pi)), ridge)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_zinb_without_dropout_is_the_mean_nb_nll(nb_params):
    x, mean, disp = nb_params
    t = [torch.from_numpy(a) for a in (x, mean, disp)]
    got = zinb_nll(*t, torch.zeros_like(t[0]))
    assert float(got) == pytest.approx(float(nb_nll(*t).mean()), rel=1e-6)


def test_bernoulli_nll_is_the_bernoulli_log_pmf():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, size=(30, 5))
    x = rng.integers(0, 2, size=logits.shape).astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    got = bernoulli_nll(torch.from_numpy(x), torch.from_numpy(logits)).numpy()
    np.testing.assert_allclose(got, -stats.bernoulli.logpmf(x, p), rtol=1e-9)


def test_gaussian_nll_is_the_normal_log_pdf():
    rng = np.random.default_rng(3)
    x, mean = rng.normal(size=(2, 30, 5))
    var = rng.gamma(2.0, 0.5, size=(30, 5))
    got = gaussian_nll(*(torch.from_numpy(a) for a in (x, mean, var))).numpy()
    expected = -stats.norm.logpdf(x, loc=mean, scale=np.sqrt(var))
    np.testing.assert_allclose(got, expected, rtol=1e-9)


@pytest.mark.parametrize("parameterisation", ["log_var", "log_std"])
def test_gaussian_kl_against_numerical_integration(parameterisation):
    from scipy.integrate import quad

    rng = np.random.default_rng(4)
    mean = rng.normal(size=(3, 2))
    std = rng.uniform(0.3, 2.0, size=(3, 2))
    expected = np.zeros(3)
    for i in range(3):
        for j in range(2):
            q = stats.norm(mean[i, j], std[i, j])
            expected[i] += quad(
                lambda z, q=q: q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z)),
                -30,
                30,
            )[0]
    m = torch.from_numpy(mean)
    if parameterisation == "log_var":
        got = gaussian_kl(m, torch.from_numpy(np.log(std**2)))
    else:
        got = gaussian_kl(m, log_std=torch.from_numpy(np.log(std)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="exactly one"):
        gaussian_kl(m)
