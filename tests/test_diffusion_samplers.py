"""Diffusion samplers against the analytic Gaussian prior (exact x0-predictor = Wiener filter, exact posterior).

Tolerances (measured, then given ~1.5-2x headroom; 8x8 images, 256 samples, 100 respaced steps):
  * the prior sampler's per-pixel variance is within 15% of the truth (respacing loses variance: 9% at 100 steps);
  * DPS is an approximation (Jensen gap): its sample mean is within 35% (relative l2, measured 12-19%) of the
    exact posterior mean, where the prior mean is at 100% by definition -- it clearly beats the prior alone;
    its residual ||y - A x|| is at most 1.5x that of exact posterior samples (measured 0.3-1.0x: with the
    constant step size 1.0 DPS fits the measurement more closely than the exact posterior, i.e. partly fits noise);
  * DDRM's mean is within 15% for SR and inpainting (measured 4-7%), 35% for Gaussian deblurring with s_min = 3%
    (measured 31-32% over 5 seeds with the default cut on the 1-D factors, the DDRM code's; 20-21% with the former
    cut on the 2-D products, which zeroes 33 instead of 28 of the 64 coefficients); noiseless inpainting is exactly
    consistent;
  * projection (Score-SDE) is exactly measurement-consistent and so copies the measurement noise.
"""
import pytest
import torch

from replicate.denoisers.gaussian import StationaryGaussianPrior
from replicate.denoisers.vp import DenoiserX0
from replicate.noise import GaussianNoise, PoissonNoise
from replicate.operators.base import make_operator
from replicate.samplers import diffusion as Dm

SHAPE = (1, 8, 8)
N = 256
STEPS = 100


@pytest.fixture(scope="module")
def prior():
    return StationaryGaussianPrior(SHAPE, alpha=2.0, scale=0.2, mean=0.5)


def _problem(prior, name, sigma=0.1, **kw):
    g = torch.Generator().manual_seed(0)
    x = prior.sample(1, g)
    op = make_operator(name, shape=SHAPE, **kw)
    noise = GaussianNoise(sigma, scale="pm1")
    y = noise.sample(op(x), g)
    A = op.as_matrix()
    pm, cov = prior.posterior(A, y.reshape(1, -1), noise.sigma01)
    exact = pm.reshape(1, -1) + torch.randn(N, A.shape[1], generator=g, dtype=torch.float64) @ torch.linalg.cholesky(
        cov + 1e-12 * torch.eye(A.shape[1], dtype=torch.float64)).T
    return op, noise, y.expand(N, *y.shape[1:]), pm[0], exact.reshape(N, *SHAPE)


def _relerr(xs, pm, prior):
    return float((xs.mean(0) - pm).norm() / (prior.mean - pm).norm())


def _residual(op, xs, y):
    return float((op(xs) - y).flatten(1).norm(dim=1).mean())


def test_prior_sampler_variance(prior):
    r = Dm.unconditional(Dm.respaced(DenoiserX0(prior), STEPS), SHAPE, generator=torch.Generator().manual_seed(0), n=N)
    xs = Dm.to01(r.diagnostics["x_pm1"])
    assert abs(float(xs.mean()) - 0.5) < 0.02
    assert float(xs.reshape(N, -1).var(0).mean()) == pytest.approx(prior.scale**2, rel=0.15)


@pytest.mark.parametrize("name,kw", [("super_resolution", {"factor": 2}), ("box_inpainting", {"box": 4, "margin": 1}),
                                     ("gaussian_blur", {"kernel_size": 5, "std": 1.0})])
def test_dps_close_to_exact_posterior(prior, name, kw):
    op, noise, y, pm, exact = _problem(prior, name, **kw)
    r = Dm.dps(Dm.respaced(DenoiserX0(prior), STEPS), op, noise, y, scale=1.0,
               generator=torch.Generator().manual_seed(1))
    xs = Dm.to01(r.diagnostics["x_pm1"])
    assert r.nfe == STEPS
    err, res, ref = _relerr(xs, pm, prior), _residual(op, xs, y), _residual(op, exact, y)
    print(f"DPS {name}: mean rel. error {err:.3f}, residual {res:.4f} vs exact posterior {ref:.4f}")
    assert err < 0.35
    prior_res = _residual(op, prior.sample(N, torch.Generator().manual_seed(2)), y)
    assert res < ref * 1.5 < prior_res  # consistent with y (at or below the noise level), unlike the prior


def test_dps_deterministic_and_poisson_runs(prior):
    op, noise, y, pm, _ = _problem(prior, "super_resolution", factor=2)
    model = Dm.respaced(DenoiserX0(prior), 10)
    a = Dm.dps(model, op, noise, y[:2], scale=1.0, generator=torch.Generator().manual_seed(3))
    b = Dm.dps(model, op, noise, y[:2], scale=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.x, b.x)
    pois = PoissonNoise(rate=1.0)
    yp = pois.sample(op(Dm.to01(a.diagnostics["x_pm1"])), torch.Generator().manual_seed(0))
    for sched in ("linear", "exponential"):
        r = Dm.dps(model, op, pois, yp, scale=0.3, step_schedule=sched, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(r.x).all()
    r = Dm.dps(model, op, noise, y[:2], scale=1.0, step_schedule="likelihood", generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(r.x).all()


@pytest.mark.parametrize("name,kw", [("super_resolution", {"factor": 2}), ("box_inpainting", {"box": 4, "margin": 1}),
                                     ("gaussian_blur", {"kernel_size": 5, "std": 1.0})])
def test_ddrm_close_to_exact_posterior(prior, name, kw):
    op, noise, y, pm, exact = _problem(prior, name, **kw)
    # blur: 1-D singular values below 3e-2 count as unobserved, as the DDRM code does (without it the shared
    # measurement noise in those coordinates biases the mean: 0.59 measured, vs 0.32 with it, 0.21 with the cut on
    # the 2-D products)
    s_min = 0.03 if name == "gaussian_blur" else 0.0
    r = Dm.ddrm(Dm.respaced(DenoiserX0(prior), STEPS), op, noise, y, s_min=s_min,
                generator=torch.Generator().manual_seed(1))
    xs = Dm.to01(r.diagnostics["x_pm1"])
    err = _relerr(xs, pm, prior)
    print(f"DDRM {name}: mean rel. error {err:.3f}")
    assert err < (0.15 if name != "gaussian_blur" else 0.35)
    ref = _residual(op, exact, y)
    assert ref / 3 < _residual(op, xs, y) < 3 * ref


def test_ddrm_noiseless_inpainting_is_consistent(prior):
    op, _, y, _, _ = _problem(prior, "random_inpainting", missing=0.5)
    clean = GaussianNoise(0.0)
    y0 = op(prior.sample(1, torch.Generator().manual_seed(5))).expand(4, *SHAPE)
    r = Dm.ddrm(Dm.respaced(DenoiserX0(prior), 20), op, clean, y0, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(op(Dm.to01(r.diagnostics["x_pm1"])), y0, atol=1e-10)


def test_ddrm_needs_svd():
    op = make_operator("motion_blur", kernel_size=5, shape=SHAPE)
    with pytest.raises(TypeError, match="SVD"):
        Dm.ddrm(None, op, GaussianNoise(), torch.zeros(1, *SHAPE), generator=torch.Generator())


def test_projection_copies_measurement_noise(prior):
    op, noise, y, pm, exact = _problem(prior, "super_resolution", factor=2)
    model = Dm.respaced(DenoiserX0(prior), STEPS)
    r = Dm.projection_sampler(model, op, noise, y[:64], generator=torch.Generator().manual_seed(1))
    assert _residual(op, Dm.to01(r.diagnostics["x_pm1"]), y[:64]) < 1e-8            # fits the noise exactly
    assert _residual(op, exact, y) > 0.5 * 4 * noise.sigma01           # exact posterior does not (m = 16)
    m = Dm.projection_sampler(model, op, noise, y[:8], mcg_scale=0.5, generator=torch.Generator().manual_seed(1))
    assert _residual(op, Dm.to01(m.diagnostics["x_pm1"]), y[:8]) < 1e-8
    t = Dm.project_measurement(op, torch.zeros(1, *SHAPE, dtype=torch.float64), y[:1], mode="transpose")
    assert torch.allclose(t, op.adjoint(y[:1]))


def test_projection_on_a_nonlinear_operator_uses_the_residual(prior):
    """MCG / Score-SDE on a nonlinear image-to-image operator (Table 4's non-uniform blur): x + y - A(x), as the DPS
    code's NonLinearOperator.project; A^+ modes are refused. With A = clamp (nonlinear, identity on [0, 1]) and a
    noiseless y, the last projection lands on y."""
    from replicate.noise import make_noise
    from replicate.operators.base import Operator

    class Clamp(Operator):
        linear = False

        def forward(self, x):
            return x.clamp(0, 1)

    op = Clamp()
    op.shape = SHAPE
    g = torch.Generator().manual_seed(0)
    y = prior.sample(1, g).clamp(0, 1)
    noise = make_noise("gaussian", sigma=0.0, scale="pm1")
    model = Dm.respaced(DenoiserX0(prior), 20)
    with pytest.raises(TypeError, match="residual"):
        Dm.projection_sampler(model, op, noise, y, generator=torch.Generator().manual_seed(1))
    r = Dm.projection_sampler(model, op, noise, y, generator=torch.Generator().manual_seed(1), mode="residual")
    assert torch.allclose(r.x, y, atol=1e-6)


def test_dps_traces_the_residual_every_trace_every_steps_and_the_last(prior):
    """The residual trace (Fig. 8's curves): none by default; with trace_every = 3 over 10 steps, steps 0, 3, 6, 9
    (i = 9 is also t = 0, the last); each entry is ||y - A x0_hat|| at that step, one value per sample."""
    op, noise, y, _, _ = _problem(prior, "super_resolution", factor=2)
    model = Dm.respaced(DenoiserX0(prior), 10)
    plain = Dm.dps(model, op, noise, y[:2], scale=1.0, generator=torch.Generator().manual_seed(3))
    assert plain.trace["residual"] == []
    traced = Dm.dps(model, op, noise, y[:2], scale=1.0, generator=torch.Generator().manual_seed(3), trace_every=3)
    assert torch.equal(traced.x, plain.x)              # tracing changes nothing
    assert len(traced.trace["residual"]) == 4 and traced.trace["residual"][0].shape == (2,)
    four = Dm.dps(model, op, noise, y[:2], scale=1.0, generator=torch.Generator().manual_seed(3), trace_every=4)
    assert len(four.trace["residual"]) == 4             # i = 0, 4, 8 and the last step (t = 0)
