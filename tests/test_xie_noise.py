"""Xie et al. 2023 noise models: the convolution A against its adjoint and inverse, sampling against the stated
moments (Monte Carlo), and the likelihood score f(x, y) against autograd of the log-likelihood."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from replicate.noise.xie2023 import ALL_MODELS, KERNEL_EQ30, CircularConv, table1_model


def test_conv_matches_circular_conv2d_and_its_adjoint_and_inverse():
    A = CircularConv()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 10, generator=g, dtype=torch.float64)
    v = torch.randn(2, 3, 12, 10, generator=g, dtype=torch.float64)
    k = torch.tensor(KERNEL_EQ30, dtype=torch.float64)[None, None].expand(3, 1, 3, 3)
    ref = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), k, groups=3)
    assert torch.allclose(A(x), ref, atol=1e-12)
    assert torch.allclose((A(x) * v).sum(), (x * A.T(v)).sum(), rtol=1e-12)      # <Ax, v> = <x, A^T v>
    assert torch.allclose((A.inv(x) * v).sum(), (x * A.inv_T(v)).sum(), rtol=1e-12)
    assert torch.allclose(A.inv(A(x)), x, atol=1e-10)
    assert torch.allclose(A.gram_inv(A.gram(x)), x, atol=1e-10)
    # Eq. 30's transfer function is 0.2 + 0.2 (1 + cos u)(1 + cos v): condition number 5
    K = A.transfer(16, 16).abs()
    assert abs(float(K.min()) - 0.2) < 1e-12 and abs(float(K.max()) - 1.0) < 1e-12


def test_ill_conditioned_kernel_is_a_clear_error_unless_regularised():
    box = [[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]   # zero gain at the horizontal Nyquist frequency
    with pytest.raises(ValueError, match="ill-conditioned"):
        CircularConv(box).inv(torch.ones(1, 1, 8, 8))
    out = CircularConv(box, eps=1e-2).inv(torch.ones(1, 1, 8, 8))
    assert torch.isfinite(out).all()


def test_table1_has_sixteen_models_with_the_right_structure():
    fams = [table1_model(n).family for n in ALL_MODELS]
    assert fams[:4] == ["gauss", "gauss", "gauss_sd", "gauss_sd"]
    assert fams[4:10] == ["gamma", "gamma", "poisson", "poisson", "rayleigh", "rayleigh"] == fams[10:]
    assert [table1_model(n).correlated for n in ALL_MODELS] == [n % 2 == 0 for n in ALL_MODELS]
    assert [table1_model(n).mixture for n in ALL_MODELS] == [n >= 11 for n in ALL_MODELS]
    assert {n for n in ALL_MODELS if table1_model(n).exponential_family} == {1, 2, 5, 6, 7, 8}
    with pytest.raises(ValueError):
        table1_model(17)


@pytest.mark.parametrize("no", ALL_MODELS)
def test_sampling_matches_stated_mean_and_variance(no):
    model = table1_model(no)
    c = 100.0
    x = torch.full((4, 3, 64, 64), c, dtype=torch.float64)
    y = model.sample(x, torch.Generator().manual_seed(no))
    mean, var = model.moments(c)
    n = y.numel()
    # correlated models: neighbouring pixels are dependent, so allow a few times the iid standard error
    se = math.sqrt(var / n) * (3 if model.correlated else 1)
    assert abs(float(y.mean()) - mean) < 5 * se, (no, float(y.mean()), mean)
    assert abs(float(y.var()) / var - 1) < (0.06 if model.correlated else 0.03), (no, float(y.var()), var)
    assert torch.equal(y, model.sample(x, torch.Generator().manual_seed(no)))  # deterministic given the generator


def test_correlated_gaussian_has_the_covariance_sigma2_AtA():
    model = table1_model(2)
    y = model.sample(torch.zeros(8, 1, 64, 64, dtype=torch.float64), torch.Generator().manual_seed(3))
    k = torch.tensor(KERNEL_EQ30, dtype=torch.float64)
    lag1 = float((k[:, 1:] * k[:, :-1]).sum())        # autocorrelation of the kernel at a horizontal shift of 1
    measured = float((y[..., 1:] * y[..., :-1]).mean())
    assert abs(measured / (25.0**2 * lag1) - 1) < 0.05


def _xy(model, seed=0, shape=(2, 3, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    x = 30 + 190 * torch.rand(shape, generator=g, dtype=torch.float64)
    return x, model.sample(x, g)


@pytest.mark.parametrize("no", range(1, 11))
def test_likelihood_score_matches_autograd(no):
    model = table1_model(no, poisson_score="exact")
    x, y = _xy(model, seed=no)
    y = y.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.log_likelihood(x, y).sum(), y)
    assert torch.allclose(model.score(x, y.detach()), grad, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("no", (7, 8))
def test_paper_poisson_score_is_the_digamma_score_up_to_its_stated_approximation(no):
    exact, paper = table1_model(no, poisson_score="exact"), table1_model(no)
    x, y = _xy(exact, seed=no)
    z = exact.a_op.inv(y) if exact.correlated else y
    keep = 0.2 * z > 3   # psi(u + 1) - log(u + 1/2) = O(1/u^2): the approximation is for non-tiny counts
    d = (paper.score(x, y) - exact.score(x, y)) if not exact.correlated else \
        (paper._base_score(x, z) - exact._base_score(x, z))
    assert d[keep].abs().max() < 0.2 * 0.05


def test_mixture_has_no_closed_form_score():
    with pytest.raises(ValueError, match="Eq. 22"):
        table1_model(11).score(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4))


@pytest.mark.parametrize("no", (1, 3, 5, 7, 9))
def test_log_likelihood_is_the_stated_density(no):
    """log p(y | x) of each uncorrelated family against scipy's density (the Gaussian families leave out the
    constant -1/2 log 2 pi per pixel; the Poisson counts lam y ~ Poisson(lam x), with the Jacobian lam of y = k / lam)."""
    import numpy as np
    from scipy import stats

    model = table1_model(no)
    x, y = _xy(model, seed=no)
    p, xn, yn = model.params, x.numpy(), y.numpy()
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    ref = {"gauss": lambda: stats.norm.logpdf(yn, xn, p["sigma"]) + half_log_2pi,
           "gauss_sd": lambda: stats.norm.logpdf(yn, xn, p["a"] * xn + p["b"]) + half_log_2pi,
           "gamma": lambda: stats.gamma.logpdf(yn, a=p["alpha"], scale=xn / p["alpha"]),
           "poisson": lambda: stats.poisson.logpmf(np.round(p["lam"] * yn), p["lam"] * xn) + math.log(p["lam"]),
           "rayleigh": lambda: stats.rayleigh.logpdf(yn - xn, scale=p["ray_sigma"] * xn)}[model.family]()
    np.testing.assert_allclose(model.log_likelihood(x, y).numpy(), ref.reshape(len(xn), -1).sum(1), rtol=1e-9)


@pytest.mark.parametrize("no", (2, 6, 8, 10))
def test_correlated_log_likelihood_is_the_base_density_of_A_inverse_y_times_the_jacobian(no):
    """The correlated model is the uncorrelated No.`no - 1` seen through the convolution A, a change of variables:
    multiplicative families y = A z, log p(y | x) = log p_base(A^-1 y | x) - C log|det A| (C channels); the additive
    Gaussian y = x + sigma A n transforms the noise, log p_base(x + A^-1 (y - x) | x) - C log|det A|."""
    model, base = table1_model(no), table1_model(no - 1)
    x, y = _xy(model, seed=no)
    A = model.a_op
    h, w = x.shape[-2:]
    z = x + A.inv(y - x) if model.family == "gauss" else A.inv(y)
    expect = base.log_likelihood(x, z) - x.shape[1] * A.log_abs_det(h, w)
    torch.testing.assert_close(model.log_likelihood(x, y), expect, rtol=1e-9, atol=1e-6)
