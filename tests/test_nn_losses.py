"""The Gaussian KL of skdance.nn against numerical integration.

The per-entry likelihoods of the registry are tested in test_nn_layer.py.
"""

import numpy as np
import pytest
import torch
from scipy import stats

from skdance.nn import gaussian_kl


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
