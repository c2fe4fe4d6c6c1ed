"""PnP-ADMM and RED against closed forms under the analytic Gaussian prior, and RED's two conditions."""
import pytest
import torch

from replicate.denoisers.gaussian import StationaryGaussianPrior
from replicate.solvers._linalg import cg
from replicate.solvers.plug_and_play import (jacobian_asymmetry, local_homogeneity_error, pnp_admm, red_fixed_point,
                                             red_steepest_descent)

SHAPE = (1, 6, 6)
D = 36


class MatrixOperator:
    """A dense linear operator with the project's operator call signature (forward / adjoint(y, like=))."""

    def __init__(self, A):
        self.A = A

    def __call__(self, x):
        return x.flatten(1) @ self.A.T

    def adjoint(self, y, like=None):
        return (y @ self.A).reshape(y.shape[0], *SHAPE)


@pytest.fixture(scope="module")
def problem():
    gen = torch.Generator().manual_seed(0)
    prior = StationaryGaussianPrior(SHAPE, alpha=2.0, scale=0.2, mean=0.5)
    A = torch.randn(20, D, generator=gen, dtype=torch.float64) / D**0.5   # 20 measurements of 36 pixels
    x = prior.sample(2, generator=gen)
    sigma_y = 0.05
    y = x.flatten(1) @ A.T + sigma_y * torch.randn(2, 20, generator=gen, dtype=torch.float64)
    return prior, MatrixOperator(A), A, y, sigma_y


def test_conjugate_gradient_solves_spd_system():
    gen = torch.Generator().manual_seed(1)
    M = torch.randn(10, 10, generator=gen, dtype=torch.float64)
    M = M @ M.T + torch.eye(10, dtype=torch.float64)
    b = torch.randn(3, 10, generator=gen, dtype=torch.float64)
    exact = torch.linalg.solve(M, b.T).T
    x = cg(lambda z: z @ M, b, torch.zeros_like(b), iters=50, tol=1e-10)
    assert torch.allclose(x, exact, atol=1e-9)
    # no warm start: the residual is b itself (no call of apply before the first step), same answer
    calls = []
    x_cold = cg(lambda z: calls.append(1) or z @ M, b, iters=50, tol=1e-10)
    assert torch.allclose(x_cold, exact, atol=1e-9) and len(calls) <= 50
    # the stopping rule is checked before each step: an exact start stops at once, a zero right-hand side gives 0
    assert torch.equal(cg(lambda z: calls.append(1) or z @ M, exact @ M, exact.clone(), iters=5, tol=1e-6), exact)
    assert torch.equal(cg(lambda z: z @ M, torch.zeros_like(b), iters=5), torch.zeros_like(b))


def test_pnp_admm_two_conventions_are_one_iteration(problem):
    # Chung et al. 2023's denoiser_sigma is the lecture's rho = 1 / denoiser_sigma^2 (with sigma_d = 1/sqrt(rho))
    prior, op, A, y, sigma_y = problem
    a = pnp_admm(prior, op, y, sigma_y, rho=1.0 / 0.05**2, iters=5, shape=(2, *SHAPE), cg_iters=4)
    b = pnp_admm(prior, op, y, sigma_y=sigma_y, denoiser_sigma=0.05, iters=5, shape=(2, *SHAPE), cg_iters=4)
    assert torch.equal(a.x, b.x) and a.nfe == b.nfe == 5 and len(a.trace["change"]) == 5 and a.trace["psnr"] == []
    with pytest.raises(ValueError, match="exactly one"):
        pnp_admm(prior, op, y, sigma_y, rho=1.0, denoiser_sigma=1.0, iters=1, shape=(2, *SHAPE))


def test_pnp_admm_with_wiener_filter_converges_to_exact_posterior_mean(problem):
    prior, op, A, y, sigma_y = problem
    mean, _ = prior.posterior(A, y, sigma_y)
    # sigma_d = 1/sqrt(rho): the Wiener filter is the proximal map of the Gaussian prior's -log density scaled by rho
    res = pnp_admm(prior, op, y, sigma_y, rho=400.0, iters=300, shape=(2, *SHAPE), cg_iters=60)
    x = res.x
    assert torch.allclose(x, mean, atol=1e-5), float((x - mean).abs().max())
    assert res.trace["change"][-1] < 1e-6


def red_closed_form(prior, A, y, sigma_y, lam, sigma_d):
    # RED fixed point with a linear symmetric D = mean + W (x - mean): (A^T A / s^2 + lam (I - W)) x = A^T y / s^2
    # + lam (I - W) mean
    eye = torch.eye(D, dtype=torch.float64)
    W = prior(eye.reshape(D, *SHAPE) + 0.5, sigma_d).flatten(1).T - prior(torch.full((1, *SHAPE), 0.5,
                                                                                     dtype=torch.float64), sigma_d).flatten(1).T
    mu = torch.full((D,), 0.5, dtype=torch.float64)
    lhs = A.T @ A / sigma_y**2 + lam * (eye - W)
    rhs = (y @ A).T / sigma_y**2 + (lam * (eye - W) @ mu)[:, None]
    return torch.linalg.solve(lhs, rhs).T.reshape(-1, *SHAPE), W


@pytest.mark.parametrize("solver", ["fixed_point", "steepest_descent"])
def test_red_converges_to_its_closed_form(problem, solver):
    prior, op, A, y, sigma_y = problem
    sigma_d, lam = 0.1, 100.0
    target, W = red_closed_form(prior, A, y, sigma_y, lam, sigma_d)
    assert torch.allclose(W, W.T, atol=1e-12)  # the Wiener filter meets RED's symmetric-Jacobian condition
    if solver == "fixed_point":
        x = red_fixed_point(prior, op, y, sigma_y, lam=lam, sigma_d=sigma_d, iters=600, shape=(2, *SHAPE),
                            cg_iters=40).x
    else:
        x = red_steepest_descent(prior, op, y, sigma_y, lam=lam, sigma_d=sigma_d, iters=6000,
                                 shape=(2, *SHAPE)).x
    assert torch.allclose(x, target, atol=1e-5), float((x - target).abs().max())
    start = red_closed_form(prior, A, y, sigma_y, lam, sigma_d)[0]
    assert float((op.adjoint(y) - start).abs().max()) > 1e-2  # the start is far from the answer: the test can fail


def test_red_solution_tends_to_posterior_mean_as_sigma_d_falls(problem):
    # lam = 1/sigma_d^2 gives lam (I - W) = (C + sigma_d^2 I)^-1 -> C^-1: RED becomes the exact Gaussian MAP = MMSE
    prior, op, A, y, sigma_y = problem
    mean, _ = prior.posterior(A, y, sigma_y)
    errs = [float((red_closed_form(prior, A, y, sigma_y, 1 / s**2, s)[0] - mean).abs().max()) for s in (0.1, 0.03, 0.003)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3, errs


def test_red_conditions_measured():
    prior = StationaryGaussianPrior(SHAPE, mean=0.0)  # zero mean: the Wiener filter is linear, hence homogeneous
    x = prior.sample(1, generator=torch.Generator().manual_seed(2))
    assert local_homogeneity_error(prior, x, 0.1) < 1e-8
    assert jacobian_asymmetry(prior, x, 0.1) < 1e-8
    # an asymmetric linear "denoiser" is caught
    gen = torch.Generator().manual_seed(3)
    M = torch.randn(D, D, generator=gen, dtype=torch.float64)

    class Skew(torch.nn.Module):
        def forward(self, z, sigma):
            return (z.flatten(1) @ M.T).reshape(z.shape)

    assert jacobian_asymmetry(Skew(), x, 0.1) > 0.1
    shifted = StationaryGaussianPrior(SHAPE, mean=0.5)  # affine, not homogeneous
    assert local_homogeneity_error(shifted, x, 0.1) > 1e-3
