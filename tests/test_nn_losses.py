"""The shared likelihoods of skdance.nn against scipy.stats."""

import numpy as np
import pytest
import torch
from scipy import stats

from skdance.nn import nb_nll, zinb_nll


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
