"""The shared losses of skdance.nn (ZINB mean, Gaussian KL) against scipy.stats.

The per-entry likelihoods of the registry are tested in test_nn_layer.py.
"""

import numpy as np
import pytest
import torch
from scipy import stats

from skdance.nn import gaussian_kl, get_likelihood, zinb_nll


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
    expected = get_likelihood("nb").nll(*t).mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def test_zinb_nll_is_the_mean_of_the_registry_zinb(nb_params):
    x, mean, disp = nb_params
    pi = np.random.default_rng(1).uniform(0.05, 0.6, size=x.shape)
    t = [torch.from_numpy(a) for a in (x, mean, disp, pi)]
    expected = get_likelihood("zinb").nll(*t).mean()
    assert float(zinb_nll(*t)) == pytest.approx(float(expected), rel=1e-12)


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
