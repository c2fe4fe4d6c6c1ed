"""Exact tests of every sampler's update rule (issue 22, "tests that catch deviations").

Each sampler runs for one or a few steps with a denoiser whose output is known in closed form and with seeded
generators, and its output is compared with the update rule written out HERE, from the paper (not from the code),
in float64 to 1e-10. A one-line change of an update rule (a coefficient, a sign, which sigma a term uses, an initial
mean) moves the result by far more than that and fails. The random draws are reproduced in the order each sampler
documents (Kawar et al.: one torch.Generator per output row, the init draw, then the T draws of each level in one
call; the others: one generator, drawn in the order of the algorithm).

The denoisers:
  * ``DiagonalGaussian``: the exact MMSE denoiser of a Gaussian prior N(mu, diag(w)) with per-pixel mu and w,
    D(x, s) = mu + w / (w + s^2) (x - mu); its score is -(x - mu) / (w + s^2) (written out in ``score``);
  * ``LinearX0``: an x0-predictor x0_hat(x_t, t) = a_t x_t + b_t with a stated log-variance c_t per step, for the
    diffusion samplers (the gradient through it is a_t times the operator's adjoint: written out per sampler).
Operators are small dense matrices (``DenseSVD``, singular values chosen so that every coefficient class of DDRM and
SNIPS occurs) or the project's own operators compared with their dense matrices.

Also here: Kawar et al.'s Algorithm 1 at the paper's CelebA settings under the analytic stationary Gaussian prior,
compared with the exact output law of the algorithm (``gaussian_algorithm1_moments``, itself checked against a dense
pixel-domain recursion) with Monte-Carlo tolerances computed from the number of samples; and Kadkhodaie &
Simoncelli's Algorithm 1 in the regime where the paper's sigma_t = (1 - beta h_t) sigma_{t-1} holds exactly.
"""
from __future__ import annotations

import math

import pytest
import torch

from replicate.denoisers.base import Denoiser
from replicate.denoisers.gaussian import StationaryGaussianPrior, vec
from replicate.denoisers.vp import VPSchedule
from replicate.noise import GaussianNoise, PoissonNoise
from replicate.operators.base import Operator, make_operator
from replicate.samplers import annealed_langevin as AL
from replicate.samplers import diffusion as Dm
from replicate.samplers import implicit_prior as KS
from replicate.samplers import langevin as KV

F64 = torch.float64
TOL = dict(rtol=0, atol=1e-10)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def close(a, b, tol=TOL):
    torch.testing.assert_close(a, b, **tol)


# ================================================================================================ denoisers
class DiagonalGaussian(Denoiser):
    """The MMSE denoiser of x ~ N(mu, diag(w)) on (C, H, W) images: D(x, s) = mu + w / (w + s^2) (x - mu)."""

    max_sigma = float("inf")

    def __init__(self, shape, seed: int = 0, max_sigma: float = float("inf")):
        super().__init__()
        g = _gen(seed)
        self.w = 0.01 + 0.08 * torch.rand(shape, generator=g, dtype=F64)
        self.mu = 0.3 + 0.4 * torch.rand(shape, generator=g, dtype=F64)
        self.max_sigma = max_sigma
        self.seen: list[torch.Tensor] = []   # the sigma of every call, per image

    def denoise(self, y, sigma4):
        self.seen.append(sigma4.flatten().clone())
        return self.mu + self.w / (self.w + sigma4**2) * (y - self.mu)

    def score_(self, x, s):
        """grad log N(x; mu, (w + s^2) I), written out (not through D)."""
        s = torch.as_tensor(s, dtype=F64)
        s = s.view(-1, 1, 1, 1) if s.ndim == 1 else s
        return -(x - self.mu) / (self.w + s**2)

    def residual_(self, x, s):
        """D(x, s) - x = -s^2 / (w + s^2) (x - mu)."""
        s = torch.as_tensor(s, dtype=F64).view(-1, 1, 1, 1)
        return -(s**2) / (self.w + s**2) * (x - self.mu)


class LinearX0:
    """x0_hat(x_t, t) = a_t x_t + b_t and log-variance c_t of p(x_{t-1} | x_t), on a VP schedule."""

    def __init__(self, schedule: VPSchedule, shape, seed: int = 0):
        g = _gen(seed)
        n = schedule.num_steps
        self.schedule = schedule
        self.a = [0.9 - 0.5 * k / max(n - 1, 1) for k in range(n)]            # x0_hat leans on x_t less as t grows
        self.b = [0.1 * torch.randn(shape, generator=g, dtype=F64) for _ in range(n)]
        self.c = [math.log(0.3 + 0.2 * k) for k in range(n)]                   # NOT the posterior variance: the
        self.calls = 0                                                         # sampler must use the model's

    def x0(self, x, t):
        return self.a[t] * x + self.b[t]

    def predict(self, x, t):
        self.calls += 1
        return {"x0": self.x0(x, int(t)), "log_variance": torch.full_like(x, self.c[int(t)])}


def schedule_by_hand(betas):
    """abar_t, abar_{t-1}, and q(x_{t-1} | x_t, x0)'s mean coefficients and variance (DDPM Eqs. 6-7), written out."""
    b = torch.as_tensor(betas, dtype=F64)
    abar = torch.cumprod(1 - b, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=F64), abar[:-1]])
    coef_x0 = b * abar_prev.sqrt() / (1 - abar)
    coef_xt = (1 - b).sqrt() * (1 - abar_prev) / (1 - abar)
    return b, abar, abar_prev, coef_x0, coef_xt


class DenseSVD(Operator):
    """A = U diag(s) V^T as a dense (m, n) matrix with the SVD interface of replicate.operators.base, r = len(s)."""

    linear = True
    svd_available = True

    def __init__(self, shape, s, m: int, seed: int = 0):
        super().__init__()
        self.shape = tuple(shape)
        n = math.prod(shape)
        g = _gen(seed)
        self.Um = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=F64))[0]
        self.Vm = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))[0]
        self.s = torch.as_tensor(s, dtype=F64)
        Sm = torch.zeros(m, n, dtype=F64)
        Sm[range(len(self.s)), range(len(self.s))] = self.s
        self.H = self.Um @ Sm @ self.Vm.T
        self.m = m

    @property
    def measurement_dim(self):
        return self.m

    def forward(self, x):
        return vec(x) @ self.H.T

    def adjoint(self, y, like=None):
        return (y @ self.H).reshape(-1, *self.shape)

    def U_T(self, y):
        return y @ self.Um

    def U(self, z):
        return z @ self.Um.T

    def V_T(self, x):
        return vec(x) @ self.Vm

    def V(self, z):
        return (z @ self.Vm.T).reshape(-1, *self.shape)

    def singulars(self):
        return self.s


class DenseNoSVD(Operator):
    """A dense linear operator without an SVD (default adjoint by autograd; pseudo-inverse by CG)."""

    linear = True

    def __init__(self, H, shape):
        super().__init__()
        self.H, self.shape = H, tuple(shape)

    def forward(self, x):
        return vec(x) @ self.H.T


# ================================================================================ Kawar, Vaksman & Elad 2021
def kawar_alg1(den: DiagonalGaussian, y, sigma0, sigmas, *, eps, T, seeds, n_samples=1, sigma_L=None):
    """Algorithm 1 (paper p. 4), with the draws of one generator per row (all T draws of a level in one call)."""
    sigma_L = sigmas[-1] if sigma_L is None else sigma_L
    yy = y.repeat_interleave(n_samples, 0)
    gens = [_gen(s) for s in seeds]
    x = yy.clone()                                                  # line 1: x_0 <- y
    iterates = []
    for sigma_i in sigmas:
        alpha = eps * sigma_i**2 / sigma_L**2                        # line 3
        z = torch.stack([torch.randn((T, *y.shape[1:]), generator=g, dtype=F64) for g in gens])
        for t in range(T):
            delta = den.score_(x, sigma_i) + (yy - x) / (sigma0**2 - sigma_i**2)   # line 6
            x = x + alpha * delta + math.sqrt(2 * alpha) * z[:, t]               # line 7
        iterates.append(x)
    return x, iterates


def _kawar_problem(shape=(2, 3, 4), n=2):
    den = DiagonalGaussian(shape, seed=1)
    g = _gen(2)
    y = den.mu + 0.3 * torch.randn((n, *shape), generator=g, dtype=F64)
    return den, y


def test_kawar_algorithm1_update_rule():
    """alpha_i = eps sigma_i^2 / sigma_L^2, Delta = s(x, sigma_i) + (y - x) / (sigma0^2 - sigma_i^2), the noise
    sqrt(2 alpha_i) z_t, x_0 = y: three levels, T = 3, two samples of two images, against the paper's lines."""
    den, y = _kawar_problem()
    sigmas, seeds = [0.2, 0.1, 0.05], [11, 12, 13, 14]
    seen = []
    res = KV.stochastic_denoise(den, y, 0.3, sigmas, epsilon=1e-3, T=3, n_samples=2, seeds=seeds,
                                callback=lambda i, s, x: seen.append((i, s, x.clone())))
    want, iterates = kawar_alg1(den, y, 0.3, sigmas, eps=1e-3, T=3, seeds=seeds, n_samples=2)
    close(res.x, want)
    close(res.diagnostics["last_iterate"], want)
    assert [(i, s) for i, s, _ in seen] == list(enumerate(sigmas))
    for (_, _, x), w in zip(seen, iterates):
        close(x, w)
    assert res.nfe == 9 and res.diagnostics["levels"] == 3 and res.diagnostics["steps"] == 9
    assert all(float(s.unique()) in sigmas for s in den.seen)        # the score is taken at sigma_i
    # the likelihood term matters: with 1 / sigma0^2 in its place the result moves by far more than the tolerance
    assert float((want - kawar_alg1(den, y, 0.3 * 1.0001, sigmas, eps=1e-3, T=3, seeds=seeds, n_samples=2)[0])
                 .abs().max()) > 1e-7


def test_kawar_algorithm1_sigma_L_and_final_denoise():
    """An explicit sigma_L enters alpha_i; the optional final step is x + sigma_L^2 s(x, sigma_L) (NCSNv2's)."""
    den, y = _kawar_problem()
    sigmas = [0.25, 0.12]
    res = KV.stochastic_denoise(den, y[:1], 0.3, sigmas, epsilon=2e-4, T=2, seeds=[5], sigma_L=0.04,
                                final_denoise=True)
    last, _ = kawar_alg1(den, y[:1], 0.3, sigmas, eps=2e-4, T=2, seeds=[5], sigma_L=0.04)
    close(res.diagnostics["last_iterate"], last)
    close(res.x, last + 0.04**2 * den.score_(last, 0.04))
    assert res.nfe == 5 and res.diagnostics["steps"] == 4
    d = res.diagnostics
    assert d["seconds"] >= d["denoiser_seconds"] > 0 and d["overhead"] >= 0
    # the sampler's own time per second of denoiser time (the overhead that the cost tables report)
    assert d["overhead"] == pytest.approx((d["seconds"] - d["denoiser_seconds"]) / d["denoiser_seconds"], rel=1e-9)


def kawar_alg2(den, y, mask, sigma0, above, below, *, eps, T, seeds, n_samples=1, sigma_L=None, init="gaussian",
               init_mean=0.0):
    """Algorithm 2 (paper p. 6) with Eq. 12's x^M in line 6 (the printed x^R is a misprint) and sigma_L in line 13."""
    sigma_L = (below or above)[-1] if sigma_L is None else sigma_L
    yy = y.repeat_interleave(n_samples, 0)
    m = mask.expand(y.shape[0], *mask.shape[1:]).repeat_interleave(n_samples, 0)
    gens = [_gen(s) for s in seeds]
    shape = y.shape[1:]
    top = above[0] if above else sigma0
    if init == "gaussian":   # "i.i.d. Gaussian noise with a very strong variance": sigma_{-K}^2 about init_mean
        x = init_mean + top * torch.stack([torch.randn(shape, generator=g, dtype=F64) for g in gens])
    else:                    # NCSNv2 / SNIPS code: U[0, 1)
        x = torch.stack([torch.rand(shape, generator=g, dtype=F64) for g in gens])

    def run(levels, delta_fn, x):
        for sigma_i in levels:
            alpha = eps * sigma_i**2 / sigma_L**2
            z = torch.stack([torch.randn((T, *shape), generator=g, dtype=F64) for g in gens])
            for t in range(T):
                x = x + alpha * delta_fn(x, sigma_i) + math.sqrt(2 * alpha) * z[:, t]
        return x

    # i < 0 (lines 2-11): Delta^M = (y^M - x^M) / (sigma_i^2 - sigma0^2), Delta^R = [s(x, sigma_i)]^R
    x = run(above, lambda x, s: m * (yy - x) / (s**2 - sigma0**2) + (1 - m) * den.score_(x, s), x)
    # i > 0 (lines 12-21): Delta = s(x, sigma_i) + M (y^M - x^M) / (sigma0^2 - sigma_i^2)
    return run(below, lambda x, s: den.score_(x, s) + m * (yy - x) / (sigma0**2 - s**2), x)


@pytest.mark.parametrize("above,below,init,init_mean,sigma_L", [
    ([0.8, 0.5], [0.2, 0.1], "gaussian", 0.5, None),
    ([0.8, 0.5], [0.2, 0.1], "gaussian", 0.0, 0.05),
    ([], [0.2, 0.1], "uniform", 0.0, None),
    ([0.9, 0.6, 0.4], [], "gaussian", 0.25, None),
])
def test_kawar_algorithm2_update_rule(above, below, init, init_mean, sigma_L):
    """Both phases of Algorithm 2, the initialisation (mean, variance sigma_{-K}^2 or uniform) and the step sizes."""
    den, y = _kawar_problem()
    mask = (torch.rand((2, 1, 3, 4), generator=_gen(3)) < 0.6).to(F64)   # (N, 1, H, W): shared by the channels
    seeds = [21, 22, 23, 24]
    res = KV.noisy_inpaint(den, y, mask, 0.3, above, below, epsilon=1e-3, T=2, n_samples=2, seeds=seeds,
                           init=init, init_mean=init_mean, sigma_L=sigma_L)
    want = kawar_alg2(den, y, mask, 0.3, above, below, eps=1e-3, T=2, seeds=seeds, n_samples=2, init=init,
                      init_mean=init_mean, sigma_L=sigma_L)
    close(res.x, want)
    assert res.nfe == 2 * (len(above) + len(below))


def test_kawar_samplers_refuse_bad_input():
    den, y = _kawar_problem()
    mask = torch.ones(1, 1, 3, 4, dtype=F64)
    with pytest.raises(ValueError, match="above sigma0"):
        KV.noisy_inpaint(den, y, mask, 0.3, [0.5, 0.3], [], epsilon=1e-3, T=1, seeds=[0, 1])
    with pytest.raises(ValueError, match="strictly below"):
        KV.noisy_inpaint(den, y, mask, 0.3, [], [0.3], epsilon=1e-3, T=1, seeds=[0, 1])
    with pytest.raises(ValueError, match="at least one"):
        KV.noisy_inpaint(den, y, mask, 0.3, [], [], epsilon=1e-3, T=1, seeds=[0, 1])
    with pytest.raises(ValueError, match="one seed per"):
        KV.noisy_inpaint(den, y, mask, 0.3, [0.5], [], epsilon=1e-3, T=1, seeds=[0])
    with pytest.raises(ValueError, match="init"):
        KV.noisy_inpaint(den, y, mask, 0.3, [0.5], [], epsilon=1e-3, T=1, seeds=[0, 1], init="zeros")
    with pytest.raises(ValueError, match="at least one"):
        KV.stochastic_denoise(den, y, 0.3, [], epsilon=1e-3, T=1)
    # a level equal to sigma0 would divide by zero; equal neighbours are not decreasing
    with pytest.raises(ValueError, match="decreasing"):
        KV.stochastic_denoise(den, y, 0.3, [0.2, 0.2], epsilon=1e-3, T=1)


def test_split_network_ladder_and_defaults():
    s = torch.tensor([1.0, 0.5, 0.25, 0.125, 0.0625])
    above, s0, below = KV.split_network_ladder(s, 0.25)
    assert above.tolist() == [1.0, 0.5] and s0 == 0.25 and below.tolist() == [0.125, 0.0625]
    assert KV.split_network_ladder(s, 0.252)[1] == 0.25                 # within rtol = 1 %
    with pytest.raises(ValueError, match="not a point"):
        KV.split_network_ladder(s, 0.26)
    den, y = _kawar_problem()
    a = KV.stochastic_denoise(den, y, 0.3, [0.1], epsilon=1e-3, T=2, n_samples=2)       # default seeds 0..3
    close(a.x, kawar_alg1(den, y, 0.3, [0.1], eps=1e-3, T=2, seeds=range(4), n_samples=2)[0])
    close(KV.expand_samples(y, 3)[3:6], y[1:2].expand(3, -1, -1, -1))
    close(KV.mmse_denoise(den, y, 0.3), den.mu + den.w / (den.w + 0.09) * (y - den.mu))


def test_gaussian_algorithm1_moments_is_the_dense_recursion():
    """The closed form of Algorithm 1's output law under N(mu, C) equals the mean / covariance recursion written out
    with dense matrices in the pixel domain: x' = x + alpha ((C + s_i^2 I)^-1 (mu - x) + (y - x) / (s0^2 - s_i^2))
    + sqrt(2 alpha) z, i.e. m' = A m + b and V' = A V A^T + 2 alpha I."""
    prior = StationaryGaussianPrior((1, 4, 4), alpha=2.0, scale=0.2, mean=0.45)
    g = _gen(4)
    y = prior.sample(1, g) + 0.3 * torch.randn((1, 1, 4, 4), generator=g, dtype=F64)
    sigmas, eps, T, sigma0, sigma_L = [0.2, 0.09, 0.04], 2e-3, 3, 0.3, 0.05
    m, v = KV.gaussian_algorithm1_moments(prior.spectrum, prior.mean, y, sigma0, sigmas, epsilon=eps, T=T,
                                          sigma_L=sigma_L)
    C, mu, d = prior.covariance_matrix(), prior.mean_vector(), 16
    I = torch.eye(d, dtype=F64)
    mean, cov = vec(y)[0].clone(), torch.zeros(d, d, dtype=F64)
    for s in sigmas:
        alpha = eps * s**2 / sigma_L**2
        P = torch.linalg.inv(C + s**2 * I)
        q = 1 / (sigma0**2 - s**2)
        A = I - alpha * (P + q * I)
        b = alpha * (P @ mu + q * vec(y)[0])
        for _ in range(T):
            mean, cov = A @ mean + b, A @ cov @ A.T + 2 * alpha * I
    close(vec(m)[0], mean)
    close(prior._dense(v), cov)
    # sigma_L defaults to the last level
    m2, _ = KV.gaussian_algorithm1_moments(prior.spectrum, prior.mean, y, sigma0, sigmas, epsilon=eps * 0.04**2 /
                                           0.05**2, T=T)
    close(m2, m)


# ----------------------------------------------------------------------- Kawar Algorithm 1 at the paper's settings
def test_kawar_algorithm1_at_celeba_settings_matches_its_exact_law():
    """Table 2's CelebA settings (NCSNv2's 500-level ladder, sigma0 = 0.1 -> the 126 levels below it, eps = 3.3e-6,
    T = 5, sigma_L = 0.01) on the analytic 1/f^2 prior. The algorithm's output law is Gaussian with the exact
    moments of ``gaussian_algorithm1_moments`` (checked above against a dense recursion); the samples must match:
      * the MSE ratio ours / MMSE on this image, whose exact expectation is (|m - x|^2 + tr V) / |x_mmse - x|^2
        (on this one image 1.57; averaged over p(x | y) 1.95, close to an exact posterior sampler's 2), within
        4.5 Monte-Carlo standard deviations of the mean of n samples:
        Var |s - x|^2 = 2 tr(V^2) + 4 (m - x)^T V (m - x) for s ~ N(m, V);
      * the per-frequency variance (chi-square with n - 1 degrees of freedom: 4.5 sd, ~sqrt(2 / n) each, on the
        average over frequencies) and the mean of every pixel (4.5 standard errors).
    With 1 / sigma0^2 in place of 1 / (sigma0^2 - sigma_i^2) the MSE ratio is 10 sd off (1.611 vs 1.571)."""
    from replicate.denoisers.ncsnv2 import geometric_sigmas

    _, sigma0, below = KV.split_network_ladder(geometric_sigmas(90.0, 0.01, 500), 0.1)
    assert len(below) == 126
    prior = StationaryGaussianPrior((1, 8, 8), alpha=2.0, scale=0.2, mean=0.5)
    g = _gen(7)
    x = prior.sample(1, g)
    y = x + sigma0 * torch.randn(x.shape, generator=g, dtype=F64)
    n = 3000
    res = KV.stochastic_denoise(prior, y, sigma0, below, epsilon=3.3e-6, T=5, n_samples=n, seeds=range(n),
                                sigma_L=0.01)
    s = res.x
    m, v = KV.gaussian_algorithm1_moments(prior.spectrum, 0.5, y, sigma0, below, epsilon=3.3e-6, T=5, sigma_L=0.01)
    # (1) MSE ratio against its exact value
    mmse = float(((prior(y, sigma0) - x) ** 2).sum())
    mu_err = torch.fft.fft2(m - x, norm="ortho")[0]
    exact = (float(((m - x) ** 2).sum()) + float(v.sum())) / mmse
    sd = math.sqrt((2 * float((v**2).sum()) + 4 * float((v * mu_err.abs() ** 2).sum())) / n) / mmse
    got = float(((s - x) ** 2).sum((1, 2, 3)).mean()) / mmse
    # the algorithm at these settings is close to an exact posterior sampler: averaged over x ~ p(x | y) the ratio
    # is (|m - E[x|y]|^2 + tr V + tr V_post) / tr V_post, 2 for an exact sampler
    post = prior.posterior_variance_denoising(sigma0).sum()
    alg = (float(((m - prior(y, sigma0)) ** 2).sum()) + float(v.sum()) + float(post)) / float(post)
    assert abs(alg - 2) < 0.08, alg                                     # measured 1.95
    assert abs(got - exact) < 4.5 * sd, (got, exact, sd)
    # (2) per-frequency variance: E|F(s - mean)|^2 = v; |F|^2 / v of a self-conjugate frequency (k = -k) is
    # chi-square_{n-1} / (n-1) (variance 2 / n), of the others chi-square_{2(n-1)} / (2(n-1)) (1 / n) with k and -k
    # equal: the average over the D = 64 frequencies has variance 2 / (n D) (D real degrees of freedom)
    emp = torch.fft.fft2(s - s.mean(0), norm="ortho").abs().pow(2).sum(0) / (n - 1)
    ratio = float((emp / v).mean())
    assert abs(ratio - 1) < 4.5 * math.sqrt(2 / (n * 64)), ratio
    # (3) the mean of every pixel (circulant: each pixel has variance mean_k v_k)
    z = (s.mean(0) - m[0]).abs() / (v.mean().sqrt() / math.sqrt(n))
    assert float(z.max()) < 4.5, float(z.max())


# ================================================================================= Kadkhodaie & Simoncelli 2021
def ks_reference(den: DiagonalGaussian, y0, direction, *, sigma0, sigmaL, h0, beta, max_iter, g):
    """Algorithms 1 / 2 (paper Sec. 2.3 / 3.1) per image, the conventions of implicit_prior.py's docstring: the
    denoiser gets sigma_{t-1} (sigma0 at t = 1, clamped to its max_sigma); an image stops after the first step with
    sigma_t <= sigma_L; z_t is drawn for the whole batch every step; the output is y_T + f(y_T)."""
    y = y0.clone()
    n, N = y.shape[0], y[0].numel()
    sigma_prev = torch.full((n,), float(sigma0), dtype=F64)
    active = [True] * n
    steps = [0] * n
    trace = {k: [] for k in ("sigma", "h", "gamma", "removed", "injected")}
    t = 0
    while any(active) and t < max_iter:
        t += 1
        h = h0 * t / (1 + h0 * (t - 1))                                   # h_t
        f = den.residual_(y, sigma_prev.clamp(max=den.max_sigma))         # f(y_{t-1})
        d = direction(y, f)                                               # d_t
        sigma = d.flatten(1).norm(dim=1) / math.sqrt(N)                   # sigma_t^2 = ||d_t||^2 / N
        gamma = ((1 - beta * h) ** 2 - (1 - h) ** 2) ** 0.5 * sigma       # gamma_t from the CURRENT sigma_t
        z = torch.randn(y.shape, generator=g, dtype=F64)
        row = {k: torch.full((n,), float("nan"), dtype=F64) for k in trace}
        for k in range(n):
            if not active[k]:
                continue
            y[k] = y[k] + h * d[k] + gamma[k] * z[k]                      # y_t = y_{t-1} + h_t d_t + gamma_t z_t
            row["sigma"][k], row["h"][k], row["gamma"][k] = sigma[k], h, gamma[k]
            row["removed"][k], row["injected"][k] = (h * d[k]).norm(), (gamma[k] * z[k]).norm()
            sigma_prev[k] = sigma[k]
            steps[k] += 1
            active[k] = bool(sigma[k] > sigmaL)
        for k in trace:
            trace[k].append(row[k])
    x = y + den.residual_(y, sigma_prev.clamp(max=den.max_sigma))
    return x, y, {k: torch.stack(v) for k, v in trace.items()}, steps, t


def _check_ks(res, want):
    x, y, trace, steps, t = want
    close(res.x, x)
    close(res.diagnostics["last_iterate"], y)
    for k, v in trace.items():
        close(res.trace[k], v, dict(rtol=0, atol=1e-10, equal_nan=True))
    assert res.diagnostics["steps"].tolist() == steps
    assert res.nfe == t + 1


@pytest.mark.parametrize("beta", [0.5, 0.01])
def test_kadkhodaie_algorithm1_update_rule(beta):
    """h_t = h0 t / (1 + h0 (t - 1)), d_t = f(y_{t-1}), sigma_t^2 = ||d_t||^2 / N, gamma_t^2 = ((1 - beta h_t)^2 -
    (1 - h_t)^2) sigma_t^2, y_t = y_{t-1} + h_t d_t + gamma_t z_t, y_0 ~ N(0.5, sigma0^2 I), output y_T + f(y_T);
    four images that stop at different steps."""
    shape = (2, 3, 4)
    den = DiagonalGaussian(shape, seed=3, max_sigma=0.8)   # sigma0 = 1 > max_sigma: the clamp is used at t = 1
    sigmaL = 0.55 if beta == 0.5 else 0.42
    res = KS.sample_prior(den, shape, 4, sigma0=1.0, sigmaL=sigmaL, h0=0.3, beta=beta, max_iter=50,
                          generator=_gen(8), dtype=F64)
    g = _gen(8)
    y0 = 0.5 + 1.0 * torch.randn((4, *shape), generator=g, dtype=F64)
    want = ks_reference(den, y0, lambda y, f: f, sigma0=1.0, sigmaL=sigmaL, h0=0.3, beta=beta, max_iter=50, g=g)
    _check_ks(res, want)
    assert len(set(want[3])) > 1, want[3]                       # images stopped at different steps
    assert res.diagnostics["converged"].all() and res.diagnostics["message"] == ""
    close(res.diagnostics["final_sigma"], torch.stack([want[2]["sigma"][s - 1, k] for k, s in enumerate(want[3])]))
    assert res.diagnostics["why"] == [""] * 4


def test_kadkhodaie_algorithm1_stops_at_max_iter():
    shape = (1, 3, 4)
    den = DiagonalGaussian(shape, seed=3)
    res = KS.sample_prior(den, shape, 3, sigma0=0.5, sigmaL=1e-3, h0=0.1, beta=0.5, max_iter=4, generator=_gen(9),
                          dtype=F64)
    g = _gen(9)
    y0 = 0.5 + 0.5 * torch.randn((3, *shape), generator=g, dtype=F64)
    want = ks_reference(den, y0, lambda y, f: f, sigma0=0.5, sigmaL=1e-3, h0=0.1, beta=0.5, max_iter=4, g=g)
    _check_ks(res, want)
    d = res.diagnostics
    assert not d["converged"].any() and d["steps"].tolist() == [4, 4, 4]
    assert "max_iter=4" in d["message"] and all(w.endswith("after 4 steps") for w in d["why"])
    with pytest.raises(ValueError, match="beta"):
        KS.sample_prior(den, shape, 1, beta=1.5)
    with pytest.raises(ValueError, match="h0"):
        KS.sample_prior(den, shape, 1, h0=0.0)


def test_kadkhodaie_step_size_values():
    assert [KS.step_size(t, 0.2) for t in (1, 2, 3)] == pytest.approx([0.2, 0.4 / 1.2, 0.6 / 1.4], abs=1e-15)


@pytest.mark.parametrize("name,kw", [("random_pixels", dict(keep=0.4, seed=0)),
                                     ("compressive_sensing", dict(m=9, seed=1, construction="whole_image"))])
def test_kadkhodaie_algorithm2_update_rule(name, kw):
    """Algorithm 2: y_0 ~ N(0.5 (I - M M^T) e + M x_c, sigma0^2 I) and d_t = (I - M M^T) f(y_{t-1}) + (M x_c -
    M M^T y_{t-1}) (Eq. 8), the rest as Algorithm 1; with the dense M of the operator."""
    shape = (1, 4, 6)
    den = DiagonalGaussian(shape, seed=4)
    op = make_operator(name, shape=shape, **kw)
    M = op.as_matrix()                                             # (D, m), orthonormal columns
    P = M @ M.T
    xc = torch.randn((3, M.shape[1]), generator=_gen(10), dtype=F64)
    res = KS.sample_posterior_linear(den, op, xc, sigma0=1.0, sigmaL=0.5, h0=0.3, beta=0.3, max_iter=30,
                                     generator=_gen(11))
    g = _gen(11)
    Mxc = xc @ M.T
    mean0 = 0.5 * (torch.ones(24, dtype=F64) - P @ torch.ones(24, dtype=F64)) + Mxc
    y0 = (mean0 + torch.randn(mean0.shape, generator=g, dtype=F64)).reshape(3, *shape)

    def direction(y, f):
        return ((vec(f) @ (torch.eye(24, dtype=F64) - P).T) + Mxc - vec(y) @ P.T).reshape(y.shape)

    want = ks_reference(den, y0, direction, sigma0=1.0, sigmaL=0.5, h0=0.3, beta=0.3, max_iter=30, g=g)
    _check_ks(res, want)
    assert len(set(want[3])) > 1, want[3]
    # one measurement row, n samples of it
    one = KS.sample_posterior_linear(den, op, xc[0], n=2, sigma0=1.0, sigmaL=0.5, h0=0.3, beta=0.3,
                                     generator=_gen(11))
    g = _gen(11)
    y0 = (mean0[:1] + torch.randn((2, 24), generator=g, dtype=F64)).reshape(2, *shape)
    Mxc1 = Mxc[:1]
    want = ks_reference(den, y0, lambda y, f: ((vec(f) @ (torch.eye(24, dtype=F64) - P).T) + Mxc1 - vec(y) @ P.T)
                        .reshape(y.shape), sigma0=1.0, sigmaL=0.5, h0=0.3, beta=0.3, max_iter=5000, g=g)
    _check_ks(one, want)
    close(KS.least_squares(op, xc), Mxc.reshape(3, *shape))
    with pytest.raises(ValueError, match="single measurement row"):
        KS.sample_posterior_linear(den, op, xc, n=2)
    with pytest.raises(ValueError, match="entries"):
        KS.sample_posterior_linear(den, op, xc[:, :-1])


def test_kadkhodaie_sigma_shrinks_by_one_minus_beta_h_for_white_noise():
    """The paper's design (Eq. 7): with a denoiser whose residual is exactly the noise (prior = a point mass at 0.5,
    D = 0.5), the effective noise shrinks as (1 - beta h_t) per step. The traced sigma of step t + 1 measures the
    noise of y_t, so trace[t + 1] / trace[t] = ||(1 - h_t) u + gamma_t z|| / ||u|| with ||u|| = sqrt(N) sigma_t:
    mean (1 - beta h_t), relative sd sqrt(4 (1 - h_t)^2 g^2 + 2 g^4) / (2 (1 - beta h_t)^2 sqrt(N)), g = gamma_t /
    sigma_t; each step within 4.5 sd."""

    class PointMass(Denoiser):
        max_sigma = float("inf")

        def denoise(self, y, sigma4):
            return torch.full_like(y, 0.5)

    shape, beta, h0 = (1, 64, 64), 0.5, 0.05
    res = KS.sample_prior(PointMass(), shape, 2, sigma0=1.0, sigmaL=0.05, h0=h0, beta=beta, generator=_gen(12),
                          dtype=F64)
    sig = res.trace["sigma"][:, 0]
    sig = sig[~sig.isnan()]
    N = math.prod(shape)
    assert len(sig) > 15
    for t in range(1, len(sig)):
        h = KS.step_size(t, h0)
        g2 = (1 - beta * h) ** 2 - (1 - h) ** 2
        sd = math.sqrt(4 * (1 - h) ** 2 * g2 + 2 * g2**2) / (2 * (1 - beta * h) ** 2 * math.sqrt(N))
        r = float(sig[t] / sig[t - 1])
        assert abs(r / (1 - beta * h) - 1) < 4.5 * sd, (t, r, 1 - beta * h, sd)
    close(res.x, torch.full_like(res.x, 0.5))


# ================================================================================================ DPS
BETAS = [0.05, 0.2, 0.5]


def _dps_problem(noise, shape=(2, 4, 6), n=2):
    sched = VPSchedule(betas=torch.tensor(BETAS, dtype=F64))
    model = LinearX0(sched, shape, seed=5)
    op = make_operator("super_resolution", factor=2, shape=shape)
    A = op.as_matrix()                                                  # (m, D)
    g = _gen(13)
    x = 0.5 + 0.2 * torch.randn((n, *shape), generator=g, dtype=F64)
    y = noise.sample(op(x), g)
    return model, op, A, y


def dps_reference(model, A, y, data_grad, *, scale, g, shape, steps=None, x_T=None):
    """DPS Alg. 1 (Chung et al. 2023): x_T ~ N(0, I); per step x0_hat = model(x_i), the ancestral step
    x'_{i-1} = sqrt(abar_{i-1}) beta_i / (1 - abar_i) x0_hat + sqrt(alpha_i) (1 - abar_{i-1}) / (1 - abar_i) x_i
    + sigma_i z, then x_{i-1} = x'_{i-1} - zeta_i grad_{x_i} data (no noise at the last step)."""
    b, abar, abar_prev, c0, ct = schedule_by_hand(BETAS)
    n = len(BETAS)
    x = torch.randn((y.shape[0], *shape), generator=g, dtype=F64) if x_T is None else x_T
    for i, t in enumerate(range(n - 1, -1, -1)):
        x0 = model.x0(x, t)
        u = (x0 + 1) / 2                                                # back to [0, 1]
        r = y.flatten(1) - vec(u) @ A.T
        grad = data_grad(r, y, t) @ A * model.a[t] / 2                  # d data / d u = data_grad(r) A; du/dx = a/2
        mean = c0[t] * x0 + ct[t] * x
        if t > 0:
            mean = mean + math.exp(model.c[t] / 2) * torch.randn(x.shape, generator=g, dtype=F64)
        step = scale if steps is None else steps(i, t)
        x = mean - step * grad.reshape(x.shape)
    return x


def _norm_grad(unit):
    """d/du of unit ||y - A u|| = -unit r^T A / ||r||, as (N, m) rows to multiply by A."""
    return lambda r, y, t: -unit * r / r.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("noise_name", ["gaussian_pm1", "gaussian_01", "poisson_code"])
def test_dps_update_rule(noise_name):
    """x_{t-1} = ancestral(x_t) - scale grad_{x_t} ||y - A x0_hat||: the norm, not squared (the released code), in
    the noise model's units (x2 on [-1, 1]); the Poisson default is the released code's ||r|| mean(1 / |y|)."""
    noise = {"gaussian_pm1": GaussianNoise(0.1, scale="pm1"), "gaussian_01": GaussianNoise(0.05, scale="01"),
             "poisson_code": PoissonNoise(rate=1.0)}[noise_name]
    shape = (2, 4, 6)
    model, op, A, y = _dps_problem(noise, shape)
    res = Dm.dps(model, op, noise, y, scale=0.7, generator=_gen(14), trace_every=2)
    if noise_name == "poisson_code":
        # data = ||2 r|| mean(1 / |2 y - 1|): d/du = -2 mean(1/|2y - 1|) r / ||r||
        k = (1 / (2 * y - 1).abs().clamp(min=1 / 255)).flatten(1).mean(1, keepdim=True)
        grad = lambda r, yy, t: -2 * k * r / r.norm(dim=1, keepdim=True)  # noqa: E731
    else:
        grad = _norm_grad(noise.unit)
    want = dps_reference(model, A, y, grad, scale=0.7, g=_gen(14), shape=shape)
    close(res.diagnostics["x_pm1"], want)
    close(res.x, ((want + 1) / 2).clamp(0, 1))
    assert res.nfe == 3 and model.calls == 3
    assert len(res.trace["residual"]) == 2                           # steps i = 0 and i = 2 (t = 0)


@pytest.mark.parametrize("schedule", ["linear", "exponential", "likelihood", "posterior"])
def test_dps_step_schedules(schedule):
    """Table 5's schedules: linear scale (n - i) / n; exponential scale decay^i; "likelihood" steps along the
    gradient of -log p(y | x0_hat) = ||y - A x0_hat||^2 / (2 sigma_y^2) with the plain scale; "posterior" with
    scale beta_t / sqrt(alpha_t)."""
    noise = GaussianNoise(0.1, scale="pm1")
    shape = (2, 4, 6)
    model, op, A, y = _dps_problem(noise, shape)
    res = Dm.dps(model, op, noise, y, scale=0.4, step_schedule=schedule, decay=0.7, generator=_gen(15))
    n, b = len(BETAS), torch.tensor(BETAS, dtype=F64)
    steps = {"linear": lambda i, t: 0.4 * (n - i) / n, "exponential": lambda i, t: 0.4 * 0.7**i,
             "likelihood": lambda i, t: 0.4, "posterior": lambda i, t: 0.4 * float(b[t] / (1 - b[t]).sqrt())}[schedule]
    if schedule in ("likelihood", "posterior"):
        grad = lambda r, yy, t: -r / noise.sigma01**2  # noqa: E731   d/du ||r||^2 / (2 s^2)
    else:
        grad = _norm_grad(2.0)
    want = dps_reference(model, A, y, grad, scale=None, g=_gen(15), shape=shape, steps=steps)
    close(res.diagnostics["x_pm1"], want)


def test_dps_data_term_and_given_start():
    """``data_term`` replaces the data term; ``x_T`` replaces the initial draw (the first draw is then a step's)."""
    noise = GaussianNoise(0.1, scale="pm1")
    shape = (2, 4, 6)
    model, op, A, y = _dps_problem(noise, shape)
    x_T = torch.randn((2, *shape), generator=_gen(16), dtype=F64)
    res = Dm.dps(model, op, noise, y, scale=0.3, generator=_gen(17), x_T=x_T,
                 data_term=lambda yy, Ax, t: 3.0 * ((yy - Ax) ** 2).flatten(1).sum(1))
    want = dps_reference(model, A, y, lambda r, yy, t: -6.0 * r, scale=0.3, g=_gen(17), shape=shape, x_T=x_T)
    close(res.diagnostics["x_pm1"], want)
    with pytest.raises(ValueError, match="shape"):
        Dm.dps(model, object(), noise, y, scale=0.3, generator=_gen(0))
    with pytest.raises(ValueError, match="step_schedule"):
        Dm.dps(model, op, noise, y, scale=0.3, generator=_gen(0), step_schedule="cosine")


def test_zeta_and_step_helpers():
    assert Dm.zeta_to_scale(0.15) == 0.3 and Dm.zeta_to_scale(0.15, "linear") == 0.3
    assert Dm.zeta_to_scale(0.15, "likelihood") == 0.15 and Dm.zeta_to_scale(0.15, "posterior") == 0.15
    with pytest.raises(ValueError, match="step_schedule"):
        Dm.zeta_to_scale(0.1, "cosine")
    assert Dm.nfe_compensation(200, True) == 5.0 and Dm.nfe_compensation(200, False) == 1.0
    assert Dm.nfe_compensation(100, True, paper_steps=300) == 3.0
    assert Dm.skip_timesteps(1000, 20) == list(range(0, 1000, 50))
    assert Dm.skip_timesteps(1000, 3) == [0, 333, 666, 999] and Dm.skip_timesteps(10, 10) == list(range(10))
    for bad in (0, 11):
        with pytest.raises(ValueError, match="cannot pick"):
            Dm.skip_timesteps(10, bad)
    sched = VPSchedule(num_steps=1000)
    model = LinearX0(sched, (1, 2, 2))
    skip = Dm.respaced(model, 20, spacing="skip")
    assert skip.schedule.timestep_map.tolist() == list(range(0, 1000, 50)) and model.schedule is sched
    even = Dm.respaced(model, 20)
    assert even.schedule.timestep_map.tolist()[:3] == [0, 53, 105] and even.schedule.timestep_map[-1] == 999
    assert Dm.respaced(model, 1000) is model
    with pytest.raises(ValueError, match="spacing"):
        Dm.respaced(model, 20, spacing="odd")


def test_measurement_scale_helpers():
    op = make_operator("super_resolution", factor=2, shape=(1, 4, 4))
    x = torch.rand((2, 1, 4, 4), generator=_gen(0), dtype=F64)
    y = op(x)
    # linear A on [-1, 1]: A(2x - 1) = 2 A x - A 1
    close(Dm.measurement_pm1(op, y, x), op(2 * x - 1))
    close(Dm.forward_pm1(op, 2 * x - 1), op(2 * x - 1))
    close(Dm.to01(torch.tensor([-1.0, 0.0, 1.0], dtype=F64)), torch.tensor([0.0, 0.5, 1.0], dtype=F64))

    class Square(Operator):      # nonlinear, image to image on [0, 1]
        linear = False

        def forward(self, x):
            return x**2

    sq = Square()
    close(Dm.measurement_pm1(sq, sq(x), x), 2 * x**2 - 1)
    close(Dm.forward_pm1(sq, 2 * x - 1), 2 * x**2 - 1)


# ================================================================================================ DDRM
DDRM_BETAS = [0.022, 0.182, 0.75]          # sigma_t = sqrt((1 - abar) / abar) ~ 0.15, 0.5, 2


def ddrm_reference(model, op, y, sigma_y, *, eta, eta_b, g, s=None):
    """DDRM (Kawar et al. 2022, Eqs. 7-8; the efficient_generalized_steps of its code) per spectral coefficient i,
    with x_t / sqrt(abar_t) = x0 + sigma_t n, sigma_t = sqrt((1 - abar_t) / abar_t), y_bar_i = (U^T y)_i / s_i:
      s_i = 0:                  x0_i + sqrt(1 - eta^2) sigma' eps_i + eta sigma' z       (eps_i: the model's noise)
      sigma' < sigma_y / s_i:   x0_i + sqrt(1 - eta^2) sigma' (y_bar_i - x0_i) / (sigma_y / s_i) + eta sigma' z
      sigma' >= sigma_y / s_i:  eta_b y_bar_i + (1 - eta_b) x0_i + sqrt(sigma'^2 - sigma_y^2 / s_i^2 eta_b^2) z
    (sigma' = sigma_{t-1}, the next level); x_{t-1} = sqrt(abar_{t-1}) V x_bar. Returns x_0 and the classes seen."""
    b, abar, abar_prev, _, _ = schedule_by_hand(DDRM_BETAS)
    s = op.singulars() if s is None else s
    r = len(s)
    x = torch.randn((y.shape[0], *op.shape), generator=g, dtype=F64)
    Uy = op.U_T(2 * y - op(torch.ones_like(x)))[:, :r]                 # the measurement on [-1, 1]
    seen = set()
    for t in range(len(DDRM_BETAS) - 1, -1, -1):
        sig = math.sqrt((1 - abar[t]) / abar[t])
        nxt = math.sqrt((1 - abar_prev[t]) / abar_prev[t])
        x0 = op.V_T(model.x0(x, t))
        eps = (op.V_T(x / math.sqrt(abar[t])) - x0) / sig
        z_c = torch.randn(x0.shape, generator=g, dtype=F64)
        z_a = torch.randn((x0.shape[0], r), generator=g, dtype=F64)
        z_b = torch.randn((x0.shape[0], r), generator=g, dtype=F64)
        out = torch.empty_like(x0)
        for i in range(x0.shape[1]):
            si = float(s[i]) if i < r else 0.0
            if si == 0:
                seen.add("unobserved")
                out[:, i] = x0[:, i] + math.sqrt(1 - eta**2) * nxt * eps[:, i] + eta * nxt * z_c[:, i]
            elif nxt < sigma_y / si:
                seen.add("noisier")
                ybar = Uy[:, i] / si
                out[:, i] = (x0[:, i] + math.sqrt(1 - eta**2) * nxt * (ybar - x0[:, i]) / (sigma_y / si)
                             + eta * nxt * z_a[:, i])
            else:
                seen.add("cleaner")
                ybar = Uy[:, i] / si
                out[:, i] = (eta_b * ybar + (1 - eta_b) * x0[:, i]
                             + math.sqrt(max(nxt**2 - sigma_y**2 / si**2 * eta_b**2, 0.0)) * z_b[:, i])
        x = math.sqrt(abar_prev[t]) * op.V(out)
    return x, seen


@pytest.mark.parametrize("eta,eta_b,sigma", [(0.85, 1.0, 0.1), (0.6, 0.7, 0.1), (0.85, 1.0, 0.0)])
def test_ddrm_update_rule(eta, eta_b, sigma):
    """Every coefficient class in one run: singular values 1.5, 0.4, 0.05, 0 and two coordinates beyond r; the
    schedule's levels 2 -> 0.5 -> 0.15 -> 0 put 0.05 and 0.4 on both sides of sigma_y / s_i."""
    shape = (1, 2, 3)
    op = DenseSVD(shape, [1.5, 0.4, 0.05, 0.0], m=4, seed=2)
    model = LinearX0(VPSchedule(betas=torch.tensor(DDRM_BETAS, dtype=F64)), shape, seed=6)
    noise = GaussianNoise(sigma, scale="pm1")
    x = 0.5 + 0.2 * torch.randn((3, *shape), generator=_gen(18), dtype=F64)
    y = op(x) + sigma / 2 * torch.randn((3, 4), generator=_gen(19), dtype=F64)
    res = Dm.ddrm(model, op, noise, y, eta=eta, eta_b=eta_b, generator=_gen(20))
    want, seen = ddrm_reference(model, op, y, sigma, eta=eta, eta_b=eta_b, g=_gen(20))
    close(res.diagnostics["x_pm1"], want)
    assert res.nfe == 3
    assert seen == ({"unobserved", "noisier", "cleaner"} if sigma else {"unobserved", "cleaner"})
    if sigma == 0:   # noiseless: the observed coefficients are copied from y
        close(op(Dm.to01(want)), y)


def test_ddrm_small_singular_values_are_unobserved():
    """s_min: with the product rule, singular values below s_min * max count as zero (unobserved)."""
    shape = (1, 2, 3)
    op = DenseSVD(shape, [1.5, 0.4, 0.05, 0.0], m=4, seed=2)
    model = LinearX0(VPSchedule(betas=torch.tensor(DDRM_BETAS, dtype=F64)), shape, seed=6)
    noise = GaussianNoise(0.1, scale="pm1")
    y = op(0.5 + 0.2 * torch.randn((2, *shape), generator=_gen(18), dtype=F64))
    res = Dm.ddrm(model, op, noise, y, s_min=0.1, cut="product", generator=_gen(21))
    want, _ = ddrm_reference(model, op, y, 0.1, eta=0.85, eta_b=1.0, g=_gen(21),
                             s=torch.tensor([1.5, 0.4, 0.0, 0.0], dtype=F64))
    close(res.diagnostics["x_pm1"], want)
    with pytest.raises(TypeError, match="Gaussian"):
        Dm.ddrm(model, op, PoissonNoise(), y, generator=_gen(0))
    with pytest.raises(ValueError, match="cut"):
        Dm.cut_singulars(op, 0.1, cut="both")


def test_cut_singulars_on_the_1d_factors():
    """cut "factors" (the DDRM code): the 1-D singular values of a separable operator below s_min are zeroed before
    the products; "product": the products below s_min * max; s_min = 0 keeps everything."""
    op = make_operator("gaussian_blur", kernel_size=5, std=1.5, shape=(2, 6, 8))
    sh = torch.linalg.svdvals(op._sep.Rh.double())
    sw = torch.linalg.svdvals(op._sep.Rw.double())
    full = torch.outer(sh, sw).expand(2, -1, -1).reshape(-1)
    close(op.singulars().double(), full)
    s_min = float(sh.sort().values[2])                 # cuts two of the six 1-D values along h
    want = torch.outer(sh * (sh >= s_min), sw * (sw >= s_min)).expand(2, -1, -1).reshape(-1)
    got = Dm.cut_singulars(op, s_min)
    close(got, want)
    assert int((got == 0).sum()) > 0
    close(Dm.cut_singulars(op, s_min, cut="product"), torch.where(full < s_min * full.max(), 0 * full, full))
    close(Dm.cut_singulars(op, 0.0), full)
    sr = make_operator("super_resolution", factor=2, shape=(1, 8, 8))
    assert Dm._separable_factors(sr) is not None
    inp = make_operator("box_inpainting", box=2, margin=1, shape=(1, 4, 4))
    assert Dm._separable_factors(inp) is None
    close(Dm.cut_singulars(inp, 0.5), inp.singulars().double())


# ======================================================================================= projection samplers
def projection_reference(model, op, y, *, g, mcg_scale=0.0, mode="pinv"):
    """Score-SDE / ILVR projection (Song et al. 2021): x'_{t-1} = ancestral step [- mcg grad ||y - A x0_hat||];
    y_{t-1} = sqrt(abar_{t-1}) y + sqrt(1 - abar_{t-1}) A z; x_{t-1} = x' + A^+ (y_{t-1} - A x') (pinv), or
    x' + A^T (...) (transpose)."""
    b, abar, abar_prev, c0, ct = schedule_by_hand(BETAS)
    A = op.as_matrix()
    Ap = torch.linalg.pinv(A) if mode == "pinv" else A.T
    x = torch.randn((y.shape[0], *op.shape), generator=g, dtype=F64)
    ypm = vec(2 * y) - torch.ones(A.shape[1], dtype=F64) @ A.T
    for t in range(len(BETAS) - 1, -1, -1):
        x0 = model.x0(x, t)
        r = vec(y) - vec((x0 + 1) / 2) @ A.T
        grad = (-2 * r / r.norm(dim=1, keepdim=True) @ A * model.a[t] / 2).reshape(x.shape)
        mean = c0[t] * x0 + ct[t] * x
        if t > 0:
            mean = mean + math.exp(model.c[t] / 2) * torch.randn(x.shape, generator=g, dtype=F64)
        x = mean - mcg_scale * grad
        z = torch.randn(x.shape, generator=g, dtype=F64)
        y_t = math.sqrt(abar_prev[t]) * ypm + math.sqrt(1 - abar_prev[t]) * vec(z) @ A.T
        x = x + ((y_t - vec(x) @ A.T) @ Ap.T).reshape(x.shape)
    return x


@pytest.mark.parametrize("mcg,mode", [(0.0, "pinv"), (0.6, "pinv"), (0.0, "transpose")])
def test_projection_sampler_update_rule(mcg, mode):
    shape = (1, 4, 4)
    model = LinearX0(VPSchedule(betas=torch.tensor(BETAS, dtype=F64)), shape, seed=7)
    op = make_operator("super_resolution", factor=2, shape=shape)
    noise = GaussianNoise(0.1, scale="pm1")
    y = noise.sample(op(0.5 + 0.2 * torch.randn((2, *shape), generator=_gen(22), dtype=F64)), _gen(23))
    res = Dm.projection_sampler(model, op, noise, y, mcg_scale=mcg, mode=mode, generator=_gen(24))
    close(res.diagnostics["x_pm1"], projection_reference(model, op, y, g=_gen(24), mcg_scale=mcg, mode=mode))
    assert res.nfe == 3


def test_projection_on_a_nonlinear_operator_draws_measurement_noise():
    """Nonlinear A (image to image): x + (y_{t-1} - A(x)) with y_{t-1} = sqrt(abar) y_pm1 + sqrt(1 - abar) z_y."""
    shape = (1, 3, 3)
    model = LinearX0(VPSchedule(betas=torch.tensor(BETAS, dtype=F64)), shape, seed=8)

    class Cube(Operator):
        linear = False

        def forward(self, x):
            return x**3

    op = Cube()
    op.shape = shape
    noise = GaussianNoise(0.0, scale="pm1")
    y = torch.rand((2, *shape), generator=_gen(25), dtype=F64)
    res = Dm.projection_sampler(model, op, noise, y, mode="residual", generator=_gen(26))
    b, abar, abar_prev, c0, ct = schedule_by_hand(BETAS)
    g = _gen(26)
    x = torch.randn((2, *shape), generator=g, dtype=F64)
    ypm = 2 * y - 1
    for t in (2, 1, 0):
        x0 = model.x0(x, t)
        mean = c0[t] * x0 + ct[t] * x
        if t > 0:
            mean = mean + math.exp(model.c[t] / 2) * torch.randn(x.shape, generator=g, dtype=F64)
        y_t = math.sqrt(abar_prev[t]) * ypm + math.sqrt(1 - abar_prev[t]) * torch.randn(x.shape, generator=g, dtype=F64)
        x = mean + (y_t - (2 * ((mean + 1) / 2) ** 3 - 1))
    close(res.diagnostics["x_pm1"], x)
    with pytest.raises(TypeError, match="linear"):
        Dm.project_measurement(op, x, y, mode="pinv")


def test_pseudo_inverse_without_svd_by_cg():
    """pinv_apply on an operator without an SVD: A^T (A A^T)^-1 r by conjugate gradients; with an SVD: V S^+ U^T r."""
    shape = (1, 3, 4)
    H = torch.randn(5, 12, generator=_gen(27), dtype=F64)
    op = DenseNoSVD(H, shape)
    r = torch.randn(2, 5, generator=_gen(28), dtype=F64)
    like = torch.zeros((2, *shape), dtype=F64)
    want = (r @ torch.linalg.pinv(H).T).reshape(2, *shape)
    close(Dm.pinv_apply(op, r, like), want, dict(rtol=0, atol=1e-8))
    x = torch.randn((2, *shape), generator=_gen(29), dtype=F64)
    close(Dm.project_measurement(op, x, r), x + (((r - vec(x) @ H.T) @ torch.linalg.pinv(H).T)).reshape(x.shape),
          dict(rtol=0, atol=1e-8))
    close(Dm.project_measurement(op, x, r, mode="transpose"), x + ((r - vec(x) @ H.T) @ H).reshape(x.shape))
    with pytest.raises(ValueError, match="projection mode"):
        Dm.project_measurement(op, x, r, mode="exact")
    sv = DenseSVD(shape, [2.0, 1.0, 1e-12], m=3, seed=3)
    rr = torch.randn(2, 3, generator=_gen(30), dtype=F64)
    Hp = sv.Vm[:, :2] @ torch.diag(torch.tensor([0.5, 1.0], dtype=F64)) @ sv.Um[:, :2].T
    close(Dm.pinv_apply(sv, rr, like), (rr @ Hp.T).reshape(2, *shape))


def test_unconditional_is_ancestral_sampling():
    shape = (1, 2, 3)
    model = LinearX0(VPSchedule(betas=torch.tensor(BETAS, dtype=F64)), shape, seed=9)
    res = Dm.unconditional(model, shape, generator=_gen(31), n=3)
    b, abar, abar_prev, c0, ct = schedule_by_hand(BETAS)
    g = _gen(31)
    x = torch.randn((3, *shape), generator=g, dtype=F64)
    for t in (2, 1, 0):
        mean = c0[t] * model.x0(x, t) + ct[t] * x
        x = mean + (math.exp(model.c[t] / 2) * torch.randn(x.shape, generator=g, dtype=F64) if t else 0)
    close(res.diagnostics["x_pm1"], x)
    assert res.nfe == 3


# ===================================================================================== Song & Ermon, SNIPS
def test_song_ermon_update_rule():
    """Song & Ermon 2019 Alg. 1: x <- x + alpha_i / 2 s(x, sigma_i) + sqrt(alpha_i) z, alpha_i = eps sigma_i^2 /
    sigma_L^2, from U[0, 1); optional final D(x, sigma_L)."""
    shape = (2, 1, 3, 4)
    den = DiagonalGaussian(shape[1:], seed=5)
    sigmas = [0.5, 0.2, 0.08]
    for final in (False, True):
        res = AL.song_ermon_sample(den, shape, sigmas, eps=2e-4, T=3, generator=_gen(32), dtype=F64,
                                   final_denoise=final)
        g = _gen(32)
        x = torch.rand(shape, generator=g, dtype=F64)
        for s in sigmas:
            alpha = 2e-4 * s**2 / 0.08**2
            for _ in range(3):
                x = x + alpha / 2 * den.score_(x, s) + math.sqrt(alpha) * torch.randn(shape, generator=g, dtype=F64)
        if final:
            x = den.mu + den.w / (den.w + 0.08**2) * (x - den.mu)
        close(res.x, x)
        assert res.nfe == 9 + final
    x0 = torch.full(shape, 0.5, dtype=F64)
    a = AL.song_ermon_sample(den, shape, sigmas[:1], eps=1e-4, T=1, generator=_gen(33), x0=x0)
    g = _gen(33)
    close(a.x, x0 + 1e-4 / 2 * den.score_(x0, 0.5) + 0.01 * torch.randn(shape, generator=g, dtype=F64))
    with pytest.raises(AL.LangevinDiverged, match="level 0"):
        AL.song_ermon_sample(den, shape, [0.5], eps=1e9, T=2, generator=_gen(34), dtype=F64)
    assert AL.geometric_ladder(1.0, 0.01, 3) == pytest.approx([1.0, 0.1, 0.01], rel=1e-6)


def snips_reference(den, op, y, sigma_0, sigmas, *, eps, T, shape, g, zero=1e-3, x0=None):
    """SNIPS (Kawar, Vaksman & Elad 2021b, Alg. 1, with the step sizes of snips_torch) per spectral coefficient j of
    x_bar = V^T x, y_bar = U^T y, c = eps / sigma_L^2:
      s_j = 0:                 step c sigma^2,                         grad = score_j
      0 < s_j sigma <= s0:     step c sigma^2 (1 - s_j^2 sigma^2 / s0^2),
                               grad = score_j + s_j (y_bar_j - s_j x_bar_j) / (s0^2 - s_j^2 sigma^2)
      s_j sigma > s0:          step c (sigma^2 - s0^2 / s_j^2),        grad = s_j (y_bar_j - s_j x_bar_j) /
                                                                              (s_j^2 sigma^2 - s0^2)
      x_bar <- x_bar + step grad + sqrt(2 step) z."""
    s_full = op.singulars().clone()
    s_full[s_full < zero] = 0
    r = len(s_full)
    x = torch.rand(shape, generator=g, dtype=F64) if x0 is None else x0.clone()
    xb = op.V_T(x)
    n = xb.shape[1]
    s = torch.zeros(n, dtype=F64)
    s[:r] = s_full
    yb = torch.zeros_like(xb)
    yb[:, :r] = op.U_T(y)[:, :r]
    c = eps / sigmas[-1] ** 2
    classes = set()
    for sigma in sigmas:
        for _ in range(T):
            score = op.V_T(den.score_(op.V(xb), sigma))
            new = xb.clone()
            for j in range(n):
                sj = float(s[j])
                if sj == 0:
                    step, grad = c * sigma**2, score[:, j]
                    classes.add("prior")
                elif sj * sigma <= sigma_0:
                    step = c * sigma**2 * (1 - sj**2 * sigma**2 / sigma_0**2)
                    grad = score[:, j] + sj * (yb[:, j] - sj * xb[:, j]) / (sigma_0**2 - sj**2 * sigma**2)
                    classes.add("noisier")
                else:
                    step = c * (sigma**2 - sigma_0**2 / sj**2)
                    grad = sj * (yb[:, j] - sj * xb[:, j]) / (sj**2 * sigma**2 - sigma_0**2)
                    classes.add("cleaner")
                new[:, j] = xb[:, j] + step * grad
            xb = new + (2 * _snips_steps(s, sigma, sigma_0, c)).sqrt() * torch.randn(xb.shape, generator=g, dtype=F64)
    return op.V(xb), classes


def _snips_steps(s, sigma, sigma_0, c):
    return torch.tensor([c * sigma**2 if sj == 0 else
                         c * sigma**2 * (1 - sj**2 * sigma**2 / sigma_0**2) if sj * sigma <= sigma_0 else
                         c * (sigma**2 - sigma_0**2 / sj**2) for sj in s.tolist()], dtype=F64)


def test_snips_update_rule():
    shape = (1, 2, 3)
    den = DiagonalGaussian(shape, seed=6)
    op = DenseSVD(shape, [1.5, 0.4, 0.05, 5e-4], m=4, seed=4)     # 5e-4 < zero = 1e-3: unobserved
    y = op(0.5 + 0.2 * torch.randn((2, *shape), generator=_gen(35), dtype=F64))
    sigmas, sigma_0 = [0.6, 0.3, 0.1], 0.1
    res = AL.snips(den, op, y, sigma_0, sigmas, eps=2e-3, T=2, shape=(2, *shape), generator=_gen(36))
    want, classes = snips_reference(den, op, y, sigma_0, sigmas, eps=2e-3, T=2, shape=(2, *shape), g=_gen(36))
    close(res.x, want)
    assert classes == {"prior", "noisier", "cleaner"} and res.nfe == 6
    fin = AL.snips(den, op, y, sigma_0, sigmas, eps=2e-3, T=2, shape=(2, *shape), generator=_gen(36),
                   final_denoise=True)
    close(fin.x, den.mu + den.w / (den.w + 0.01) * (want - den.mu))
    x0 = torch.full((2, *shape), 0.4, dtype=F64)
    got = AL.snips(den, op, y, sigma_0, sigmas[:1], eps=2e-3, T=1, shape=(2, *shape), generator=_gen(37), x0=x0)
    close(got.x, snips_reference(den, op, y, sigma_0, sigmas[:1], eps=2e-3, T=1, shape=None, g=_gen(37), x0=x0)[0])
    with pytest.raises(ValueError, match="sigma_0 > 0"):
        AL.snips(den, op, y, 0.0, sigmas, eps=2e-3, T=1, shape=(2, *shape), generator=_gen(0))
    with pytest.raises(AL.LangevinDiverged):
        AL.snips(den, op, y, sigma_0, sigmas, eps=1e6, T=2, shape=(2, *shape), generator=_gen(0))
