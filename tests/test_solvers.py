"""PnP-ADMM, ADMM-TV and ER/HIO/OSS."""
import torch

from replicate.denoisers.gaussian import StationaryGaussianPrior
from replicate.noise import GaussianNoise
from replicate.operators.base import make_operator
from replicate.operators.nonlinear import PhaseRetrieval
from replicate.solvers.admm_tv import admm_tv, grad, grad_adjoint
from replicate.solvers.phase_retrieval import fienup
from replicate.solvers.plug_and_play import pnp_admm

SHAPE = (1, 8, 8)


def test_pnp_admm_with_wiener_denoiser_reaches_posterior_mean():
    # the Wiener filter at strength 1/sqrt(rho) is the prox of -log p: PnP-ADMM converges to the MAP = posterior mean
    prior = StationaryGaussianPrior(SHAPE, alpha=2.0, scale=0.2, mean=0.5)
    g = torch.Generator().manual_seed(0)
    x = prior.sample(2, g)
    for name, kw in (("super_resolution", {"factor": 2}), ("gaussian_blur", {"kernel_size": 5, "std": 1.0})):
        op = make_operator(name, shape=SHAPE, **kw)
        noise = GaussianNoise(0.1)
        y = noise.sample(op(x), g)
        pm, _ = prior.posterior(op.as_matrix(), y.reshape(2, -1), noise.sigma01)
        est = pnp_admm(prior, op, y, sigma_y=noise.sigma01, denoiser_sigma=0.05, iters=150, cg_iters=30).x
        assert float((est - pm).norm() / (pm - prior.mean).norm()) < 1e-3


def test_tv_gradient_adjoint():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 5, 7, generator=g, dtype=torch.float64)
    v = torch.randn(2, 2, 3, 5, 7, generator=g, dtype=torch.float64)
    assert abs(float((grad(x) * v).sum() - (x * grad_adjoint(v)).sum())) < 1e-10


def test_admm_tv_least_squares_limit_and_denoising():
    g = torch.Generator().manual_seed(2)
    op = make_operator("gaussian_blur", kernel_size=3, std=0.7, shape=SHAPE)
    x = torch.rand(1, *SHAPE, generator=g, dtype=torch.float64)
    # tau = 0: plain least squares: the residual vanishes (A is invertible, if poorly conditioned)
    est = admm_tv(op, op(x), tau=0.0, rho=1e-3, iters=150, cg_iters=100)
    assert float((op(est) - op(x)).norm() / op(x).norm()) < 1e-4
    # a piecewise-constant image in noise: TV denoising lowers the error
    pc = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    pc[..., 4:12, 4:12] = 1.0
    den = make_operator("denoising", shape=(1, 16, 16))
    y = pc + 0.2 * torch.randn(pc.shape, generator=g, dtype=torch.float64)
    tv = admm_tv(den, y, tau=0.15, rho=1.0, iters=100)
    assert float((tv - pc).norm()) < 0.5 * float((y - pc).norm())


def test_phase_retrieval_solvers_reduce_residual():
    g = torch.Generator().manual_seed(3)
    op = PhaseRetrieval(oversample=2.0)
    x = torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64)
    y = op(x)
    start = float((op(torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64)) - y).norm())
    for method in ("er", "hio", "oss"):
        out = fienup(op, y, (1, 16, 16), method=method, iters=300, restarts=2, generator=torch.Generator().manual_seed(0))
        # non-negativity only: the [0, 1] box of the earlier version is not App. D.2's constraint (see
        # tests/test_baselines_fidelity.py; constraint="box" keeps it)
        assert out["x"].shape == x.shape and float(out["x"].min()) >= 0
        assert float(out["residual"][0]) < 0.5 * start, method
