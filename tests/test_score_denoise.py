"""Solvers of Xie et al. 2023 given the EXACT score of the noisy-image density.

* Gaussian prior + Gaussian noise (No.1, No.2): the noisy density is Gaussian, its score analytic, and Eq. 5 must
  return the exact posterior mean (checked against the Wiener filter and against dense linear algebra).
* Exponential families (Gamma, Poisson): with a discrete prior the score is autograd of a log-sum-exp; the solution
  of Eq. 2 must be Tweedie's E[H(x) | y] mapped back (= Noise2Score): posterior harmonic / geometric mean.
* Rayleigh, Algorithm 2: the iterations must converge to the root of s = f(x, y).
"""
from __future__ import annotations

import pytest
import torch

from replicate.denoisers.gaussian import StationaryGaussianPrior
from replicate.noise.xie2023 import table1_model
from replicate.solvers.score_denoise import (equation_residual, fixed_point_sd, noise2score, quadratic_sd,
                                              rayleigh_iteration, solve)

D = torch.float64


def gaussian_setup(no, shape=(2, 8, 8)):
    prior = StationaryGaussianPrior(shape, alpha=2.0, scale=40.0, mean=120.0)   # 0-255 units
    model = table1_model(no)
    g = torch.Generator().manual_seed(no)
    x = prior.sample(3, generator=g)
    y = model.sample(x, g)
    S = prior.spectrum
    noise_spec = 25.0**2 * (model.a_op.transfer(8, 8).abs() ** 2 if model.correlated else torch.ones_like(S))
    # exact score of N(m, C + Sigma): both circulant, so -(C + Sigma)^-1 (y - m) in the Fourier domain
    s = -torch.fft.ifft2(torch.fft.fft2(y - prior.mean) / (S + noise_spec)).real
    post = prior.mean + torch.fft.ifft2(S / (S + noise_spec) * torch.fft.fft2(y - prior.mean)).real
    return prior, model, y, s, post


def test_eq5_is_the_wiener_posterior_mean_for_white_noise():
    prior, model, y, s, post = gaussian_setup(1)
    xhat = solve(model, y, s)
    assert torch.allclose(xhat, prior(y, 25.0), atol=1e-9)
    assert torch.allclose(xhat, post, atol=1e-9)


def test_eq5_is_the_posterior_mean_for_correlated_noise_dense_check():
    prior, model, y, s, post = gaussian_setup(2, shape=(1, 8, 8))
    xhat = solve(model, y, s)
    # independent dense linear algebra: E[x|y] = m + C (C + Sigma)^-1 (y - m), Sigma = 25^2 A^T A
    n = 64
    eye = torch.eye(n, dtype=D).reshape(n, 1, 8, 8)
    A = model.a_op(eye).reshape(n, n).T
    C = torch.fft.ifft2(prior.spectrum * torch.fft.fft2(eye)).real.reshape(n, n).T
    Sig = 25.0**2 * A.T @ A
    r = (y - prior.mean).reshape(3, n).T
    dense = prior.mean + (C @ torch.linalg.solve(C + Sig, r)).T.reshape(y.shape)
    assert torch.allclose(xhat, dense, atol=1e-8)
    assert torch.allclose(xhat, post, atol=1e-8)


@pytest.mark.parametrize("no", (1, 2))
def test_noise2score_equals_eq5_for_gaussian(no):
    _, model, y, s, _ = gaussian_setup(no)
    assert torch.allclose(noise2score(model, y, s), solve(model, y, s), atol=1e-9)


def discrete_posterior(model, y, support, weights):
    """Exact score of p(y) = sum_k pi_k p(y | x_k) (every pixel independent, same prior) by autograd, and the
    posterior weights p(x_k | y)."""
    y = y.clone().requires_grad_(True)
    logs = torch.stack([model.log_likelihood_pixels(torch.full_like(y, float(xk)), y) + torch.log(w)
                        for xk, w in zip(support, weights)])          # (K, *y.shape)
    logp = torch.logsumexp(logs, dim=0)
    (s,) = torch.autograd.grad(logp.sum(), y)
    post = torch.softmax(logs.detach(), dim=0)
    return s, post


def _pixel_loglik(model):
    """Per-pixel log p(y|x) for independent models (no A): the log_likelihood of a 1x1 image, vectorised."""
    def f(x, y):
        return model.log_likelihood(x.reshape(-1, 1, 1, 1), y.reshape(-1, 1, 1, 1)).reshape(y.shape)
    return f


@pytest.fixture
def prior_pixels():
    support = torch.tensor([40.0, 90.0, 150.0, 220.0], dtype=D)
    weights = torch.tensor([0.2, 0.3, 0.3, 0.2], dtype=D)
    return support, weights


def _noisy(model, support, n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = support[torch.randint(len(support), (1, 1, 20, n // 20), generator=g)]
    return model.sample(x, g)


def _setup_discrete(no, support, weights, **kw):
    model = table1_model(no, **kw)
    object.__setattr__(model, "log_likelihood_pixels", _pixel_loglik(model))
    y = _noisy(model, support, seed=no)
    s, post = discrete_posterior(model, y, support, weights)
    return model, y, s, post


def test_gamma_eq9_is_tweedie_the_posterior_harmonic_mean(prior_pixels):
    support, weights = prior_pixels
    model, y, s, post = _setup_discrete(5, support, weights)
    harmonic = 1.0 / (post / support.view(-1, 1, 1, 1, 1)).sum(0)   # 1 / E[1/x | y] = H^-1(E[H(x) | y])
    xhat = solve(model, y, s)
    assert torch.allclose(xhat, harmonic, rtol=1e-9)
    assert torch.allclose(noise2score(model, y, s), xhat, rtol=1e-9)   # the method equals Noise2Score


def test_poisson_eq13_is_tweedie_the_posterior_geometric_mean(prior_pixels):
    support, weights = prior_pixels
    model, y, s, post = _setup_discrete(7, support, weights, poisson_score="exact")
    geometric = torch.exp((post * torch.log(support).view(-1, 1, 1, 1, 1)).sum(0))
    xhat = solve(model, y, s)
    assert torch.allclose(xhat, geometric, rtol=1e-9)
    assert torch.allclose(noise2score(model, y, s), xhat, rtol=1e-9)
    # the paper's Eq. 13 (log(lambda y + 1/2) for the digamma) stays within a fraction of a grey level
    paper = solve(table1_model(7), y, s)
    keep = 0.2 * y > 3
    assert (paper - geometric)[keep].abs().max() < 1.0


def test_rayleigh_algorithm3_converges_to_the_root(prior_pixels):
    support, weights = prior_pixels
    model, y, s, post = _setup_discrete(9, support, weights)
    trace = []
    x50 = rayleigh_iteration(model, y, s, iters=50, trace=trace)
    assert trace[-1] < 1e-8 * float(y.abs().max())                 # converged
    assert float(equation_residual(model, x50, y, s).max()) < 1e-8  # and to a root of s = f(x, y)
    x10 = solve(model, y, s)                                         # the paper's 10 iterations
    assert float((x10 - x50).abs().max()) < 1e-3 * float(y.max())
    # Theorem 3.1: s is the posterior average of f, so the root lies inside the posterior's support
    assert (x50 >= support.min() - 1e-9).all() and (x50 <= support.max() + 1e-9).all()


def test_algorithm4_with_A_reduces_to_the_independent_model(prior_pixels):
    support, weights = prior_pixels
    ind, z, s_z, post = _setup_discrete(5, support, weights)
    cor = table1_model(6)
    A = cor.a_op
    y = A(z)
    s_y = A.inv_T(s_z)       # score of y = A z: A^-T s_z(A^-1 y) (change of variables, Eq. 18)
    assert torch.allclose(solve(cor, y, s_y), solve(ind, z, s_z), rtol=1e-9)


def test_algorithm5_removes_the_gaussian_part_then_solves():
    mix, base = table1_model(15), table1_model(9)
    g = torch.Generator().manual_seed(0)
    y = 100 + 50 * torch.rand(1, 3, 8, 8, generator=g, dtype=D)
    s = 0.01 * torch.randn(1, 3, 8, 8, generator=g, dtype=D)
    assert torch.allclose(solve(mix, y, s), solve(base, y + 100 * s, s))
    # the training-only sigma_e of No.5-10 is removed the same way
    assert torch.allclose(solve(base, y, s, sigma_e=5.0), solve(base, y + 25 * s, s))


def test_fixed_point_algorithm2_converges_when_contractive_and_quadratic_is_the_root():
    model = table1_model(3, {"a": 0.1, "b": 25.0})
    g = torch.Generator().manual_seed(1)
    x = 30 + 190 * torch.rand(1, 3, 16, 16, generator=g, dtype=D)
    y = model.sample(x, g)
    # a score of the right size: the posterior-mean residual of a shrinkage towards x
    s = -(y - (0.7 * x + 0.3 * y)) / (model.params["a"] * x + model.params["b"]) ** 2
    root = quadratic_sd(model, y, s)
    assert float(equation_residual(model, root, y, s).max()) < 1e-10
    trace = []
    xfp = fixed_point_sd(model, y, s, iters=100, trace=trace)
    assert trace[-1] < 1e-8 and torch.allclose(xfp, root, atol=1e-6)


def test_fixed_point_algorithm2_with_the_papers_a_is_not_a_contraction():
    """Documented finding: at a = 0.98 the derivative 2a(ax+b)s of the fixed-point map exceeds 1 in magnitude where
    the noise exceeds ~half its std, so the paper's 10 iterations do not converge on such pixels. (The printed a; the
    default is the official code's 25/255, with which Algorithm 2 converges: tests/test_xie_fidelity.py.)"""
    model = table1_model(3, {"a": 0.98})
    g = torch.Generator().manual_seed(2)
    x = 30 + 190 * torch.rand(1, 3, 16, 16, generator=g, dtype=D)
    y = model.sample(x, g)
    s = -(y - (0.5 * x + 0.5 * y)) / (0.98 * x + 25) ** 2
    root = quadratic_sd(model, y, s)
    slope = (2 * 0.98 * (0.98 * root + 25) * s).abs()
    assert (slope > 1).float().mean() > 0.05
    trace = []
    fixed_point_sd(model, y, s, iters=10, trace=trace)
    assert not trace[-1] < 1.0   # still moving by more than a grey level after 10 iterations (or diverged: nan)
