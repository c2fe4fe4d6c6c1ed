"""Annealed Langevin posterior samplers of Kawar, Vaksman & Elad 2021 ("Stochastic image denoising by sampling
from the posterior distribution"): Algorithm 1 (stochastic denoiser) and Algorithm 2 (noisy inpainting).

Both need only a prior score s(x, sigma) = (D(x, sigma) - x) / sigma^2 (paper Eq. 8, the project's
``Denoiser.score``); for an NCSNv2 denoiser this is the network's own score at its ladder level.

Algorithm 1 (paper, lines 1-10), y = x + sigma0 n, ladder sigma0 > sigma_1 > ... > sigma_L:
    x_0 <- y
    for i = 1..L:  alpha_i = eps sigma_i^2 / sigma_L^2
        for t = 1..T:  Delta = s(x, sigma_i) + (y - x) / (sigma0^2 - sigma_i^2)        (Eqs. 6-7)
                       x <- x + alpha_i Delta + sqrt(2 alpha_i) z_t
    output x_T     -- the last iterate: the paper does NOT end with a denoising step (NCSNv2's optional
                      final x + sigma_L^2 s(x, sigma_L) is the setting ``final_denoise``).
Algorithm 2 adds levels sigma_{-K} > ... > sigma_{-1} > sigma0 above the measurement noise, starts from
"i.i.d. Gaussian noise with a very strong variance" and, for observed pixels M while sigma_i > sigma0, uses only
the likelihood term (y^M - x^M) / (sigma_i^2 - sigma0^2) (Eq. 12).  Two misprints of the printed Algorithm 2 are
corrected (NOTES.md section 4): line 6 reads x^R where Eq. 12 has x^M, and line 13 reads sigma_I for sigma_L.

The ladder (NOTES.md section 4, "sigma-ladder pitfall"): sigma0 must itself be a ladder point, and the
levels the sampler visits are the ladder points strictly below it (sigma0 - sigma_i > 0 in the likelihood
term).  The paper's printed L counts sigma0's own grid point (CelebA sigma0 = 0.0996 sits L - 1 = 126 steps
above sigma_L = 0.01 on NCSNv2's 500-level ladder), so the sampler visits L - 1 levels.

Batching: every row of the (N*S, C, H, W) state is one (image, sample) pair with its own torch.Generator, so
a sample's trajectory depends only on its seed, never on the batch it runs in (the T draws of a level are taken
in one call per row).  The denoiser is called once per step on the whole batch.

Verified in tests/test_langevin.py against the analytic Gaussian prior: Monte-Carlo moments of the samples
equal the closed form of ``gaussian_algorithm1_moments``; with long enough chains that closed form equals the
exact posterior (MSE ratio to the Wiener/MMSE estimate -> 2); Algorithm 2 matches the dense Gaussian posterior
given the observed noisy pixels.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import torch

from replicate.denoisers.base import Denoiser
from replicate.denoisers.ladders import geometric_ladder
from replicate.methods.result import Reconstruction

SIGMA_L = 0.01  # "sigma_L = 0.01 in all experiments" (App. A)


# ------------------------------------------------------------------------------------------------ ladders
def geometric_levels(sigma_hi: float, sigma_lo: float, rate: float) -> torch.Tensor:
    """The geometric levels strictly below sigma_hi down to sigma_lo (inclusive), float64: the count from the
    paper's rate, both ends grid points (``replicate.denoisers.ladders.geometric_ladder`` by rate, as sigma0 is on
    NCSNv2's ladder)."""
    return geometric_ladder(sigma_hi, sigma_lo, rate=rate, include_hi=False, dtype=torch.float64)


def split_network_ladder(sigmas: torch.Tensor, sigma0: float, rtol: float = 0.01) -> tuple[torch.Tensor, float, torch.Tensor]:
    """(levels above sigma0, sigma0's grid value, levels below) of a decreasing network ladder (NCSNv2).

    sigma0 must be within rtol of a ladder point (the paper's sigma0 values are grid points, NOTES section 4).
    The levels below are Algorithm 1's {sigma_i}_{i=1}^L (their count is the paper's L minus 1); the levels
    above are Algorithm 2's {sigma_i}_{i=-K}^{-1}.
    """
    s = sigmas.detach().double().cpu()
    j = int((s.log() - math.log(sigma0)).abs().argmin())
    if abs(float(s[j]) / sigma0 - 1) > rtol:
        raise ValueError(f"sigma0={sigma0} is not a point of the network's ladder (nearest {float(s[j]):.4g}); "
                         "Kawar et al.'s sigma0 values are ladder points (NOTES.md section 4)")
    return s[:j], float(s[j]), s[j + 1:]


# ------------------------------------------------------------------------------------------------ results
# Both samplers return a replicate.methods.result.Reconstruction:
#   x      (N*S, C, H, W) the output x_T (or its final denoising, if asked)
#   nfe    batched prior-score evaluations (= evaluations per sample)
#   diagnostics: "last_iterate" x_T; "seconds" wall time of the whole sampler; "denoiser_seconds" wall time inside
#   the prior score; "overhead" sampler time outside the denoiser relative to the denoiser's (target <= 0.10);
#   "levels" noise levels visited; "steps" Langevin steps (levels x T).


def _generators(seeds: Sequence[int], device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def _randn_rows(gens: list[torch.Generator], shape, dtype, device) -> torch.Tensor:
    """One standard normal draw per row, each from its own generator."""
    return torch.stack([torch.randn(shape, generator=g, dtype=dtype, device=device) for g in gens])


def expand_samples(y: torch.Tensor, n_samples: int) -> torch.Tensor:
    """(N, ...) -> (N*S, ...), image-major: row n*S + s is sample s of image n."""
    return y.repeat_interleave(n_samples, dim=0)


def mmse_denoise(denoiser: Denoiser, y: torch.Tensor, sigma0: float) -> torch.Tensor:
    """The MMSE baseline of Table 1: one denoiser call at the input noise level."""
    with torch.no_grad():
        return denoiser(y, sigma0)


# ------------------------------------------------------------------------------------------------ the loop
def _anneal(denoiser: Denoiser, x: torch.Tensor, levels: list[tuple[float, Callable]], *, epsilon: float, T: int,
            sigma_L: float, gens: list[torch.Generator], callback, final_denoise: bool) -> Reconstruction:
    """Annealed Langevin dynamics over `levels` = [(sigma_i, delta_fn)], delta_fn(x, score) -> Delta_t.

    x_t = x_{t-1} + alpha_i Delta_t + sqrt(2 alpha_i) z_t with alpha_i = eps sigma_i^2 / sigma_L^2 (Alg. 1 lines
    3-7; Alg. 2 lines 2-9 and 12-20).
    """
    start = time.perf_counter()
    den_s, calls = 0.0, 0
    shape, dtype, device = x.shape[1:], x.dtype, x.device
    for li, (sigma_i, delta_fn) in enumerate(levels):
        alpha = epsilon * sigma_i**2 / sigma_L**2
        noise_scale = math.sqrt(2.0 * alpha)
        # the T draws z_1..z_T of this level, one generator per row: (rows, T, C, H, W); one call per row and
        # level instead of per step keeps the Python overhead small next to the denoiser
        z_level = _randn_rows(gens, (T, *shape), dtype, device)
        for t in range(T):
            z = z_level[:, t]
            t0 = time.perf_counter()
            with torch.no_grad():
                s = denoiser.score(x, sigma_i)
            den_s += time.perf_counter() - t0
            calls += 1
            x = x + alpha * delta_fn(x, s) + noise_scale * z
        if callback is not None:
            callback(li, sigma_i, x)
    last = x
    if final_denoise:  # NCSNv2 / SNIPS-style extra step, not in the paper's algorithms
        t0 = time.perf_counter()
        with torch.no_grad():
            x = x + sigma_L**2 * denoiser.score(x, sigma_L)
        den_s += time.perf_counter() - t0
        calls += 1
    seconds = time.perf_counter() - start
    return Reconstruction(x, nfe=calls, diagnostics={
        "last_iterate": last, "seconds": seconds, "denoiser_seconds": den_s,
        "overhead": (seconds - den_s) / max(den_s, 1e-12), "levels": len(levels), "steps": len(levels) * T})


def _check_levels(sigmas, below: float | None = None, above: float | None = None) -> list[float]:
    s = [float(v) for v in torch.as_tensor(sigmas, dtype=torch.float64).flatten()]
    if any(b >= a for a, b in zip(s, s[1:])):
        raise ValueError("the noise ladder must be strictly decreasing")
    if below is not None and s and s[0] >= below:
        raise ValueError(f"levels must lie strictly below sigma0={below} (sigma0^2 - sigma_i^2 > 0), got {s[0]}")
    if above is not None and s and s[-1] <= above:
        raise ValueError(f"levels above sigma0 must exceed sigma0={above}, got {s[-1]}")
    return s


def stochastic_denoise(denoiser: Denoiser, y: torch.Tensor, sigma0: float, sigmas, *, epsilon: float, T: int,
                       n_samples: int = 1, seeds: Sequence[int] | None = None, sigma_L: float | None = None,
                       callback: Callable | None = None, final_denoise: bool = False) -> Reconstruction:
    """Algorithm 1: n_samples draws from p(x | y) per noisy image y (N, C, H, W) -> samples (N*S, C, H, W).

    sigmas: {sigma_i}_{i=1}^L, decreasing, all below sigma0 (e.g. ``geometric_levels(sigma0, 0.01, rate)`` or
        the lower part of ``split_network_ladder``).  sigma_L in alpha_i defaults to sigmas[-1].
    seeds: one per output row (image-major, see ``expand_samples``); default 0..N*S-1.
    callback(level_index, sigma_i, x) after each level's T steps (intermediate iterates, Fig. 7).
    """
    levels = _check_levels(sigmas, below=sigma0)
    if not levels:
        raise ValueError("stochastic_denoise needs at least one noise level below sigma0")
    sigma_L = float(levels[-1]) if sigma_L is None else float(sigma_L)
    yy = expand_samples(y, n_samples)
    seeds = list(range(yy.shape[0])) if seeds is None else list(seeds)
    if len(seeds) != yy.shape[0]:
        raise ValueError(f"need one seed per (image, sample) row: {yy.shape[0]}, got {len(seeds)}")
    s0sq = float(sigma0) ** 2

    def level(sigma_i):
        c = 1.0 / (s0sq - sigma_i**2)
        # Delta_t = s(x, sigma_i) + (y - x) / (sigma0^2 - sigma_i^2)   (Alg. 1 line 6, Eqs. 6-7)
        return sigma_i, lambda x, s: s + (yy - x) * c

    x0 = yy.clone()  # line 1: x_0 <- y
    return _anneal(denoiser, x0, [level(s) for s in levels], epsilon=epsilon, T=T, sigma_L=sigma_L,
                   gens=_generators(seeds, y.device), callback=callback, final_denoise=final_denoise)


def noisy_inpaint(denoiser: Denoiser, y: torch.Tensor, mask: torch.Tensor, sigma0: float, sigmas_above, sigmas_below,
                  *, epsilon: float, T: int, n_samples: int = 1, seeds: Sequence[int] | None = None,
                  sigma_L: float | None = None, init: str = "gaussian", init_mean: float = 0.0,
                  callback: Callable | None = None, final_denoise: bool = False) -> Reconstruction:
    """Algorithm 2: samples of p(x | y^M), y^M = x^M + sigma0 n, for a 0/1 mask (1 = observed pixel M).

    sigmas_above: {sigma_i}_{i=-K}^{-1} (decreasing, > sigma0); sigmas_below: {sigma_i}_{i=1}^L (< sigma0).
    init: "gaussian" -> x_0 = init_mean + sigma_{-K} z, the paper's "i.i.d. Gaussian noise image with a very
        strong variance" (the variance is not stated; sigma_{-K}^2 is the variance the first level assumes);
        "uniform" -> U[0, 1), what the NCSNv2 / SNIPS code draws (torch.rand_like).
    mask: broadcastable to y's shape, (N, 1|C, H, W); y outside the mask is ignored.
    """
    above = _check_levels(sigmas_above, above=sigma0)
    below = _check_levels(sigmas_below, below=sigma0)
    if not above and not below:
        raise ValueError("noisy_inpaint needs at least one noise level")
    sigma_L = float((below or above)[-1]) if sigma_L is None else float(sigma_L)
    yy = expand_samples(y, n_samples)
    m = expand_samples(torch.broadcast_to(mask.to(y.dtype), (y.shape[0], *mask.shape[1:])), n_samples)
    r = 1.0 - m
    seeds = list(range(yy.shape[0])) if seeds is None else list(seeds)
    if len(seeds) != yy.shape[0]:
        raise ValueError(f"need one seed per (image, sample) row: {yy.shape[0]}, got {len(seeds)}")
    s0sq = float(sigma0) ** 2
    gens = _generators(seeds, y.device)

    def level_above(sigma_i):
        c = 1.0 / (sigma_i**2 - s0sq)
        # Delta^M = (y^M - x^M) / (sigma_i^2 - sigma0^2) (Eq. 12; the printed line 6 has x^R, a misprint);
        # Delta^R = [s(x, sigma_i)]^R (Eq. 13)
        return sigma_i, lambda x, s: m * (yy - x) * c + r * s

    def level_below(sigma_i):
        c = 1.0 / (s0sq - sigma_i**2)
        # Delta^M = [s]^M + (y^M - x^M) / (sigma0^2 - sigma_i^2) (Eq. 9 + 10); Delta^R = [s]^R (lines 15-17)
        return sigma_i, lambda x, s: s + m * (yy - x) * c

    top = above[0] if above else float(sigma0)
    if init == "gaussian":
        x0 = init_mean + top * _randn_rows(gens, yy.shape[1:], yy.dtype, yy.device)
    elif init == "uniform":
        x0 = torch.stack([torch.rand(yy.shape[1:], generator=g, dtype=yy.dtype, device=yy.device) for g in gens])
    else:
        raise ValueError(f"init must be 'gaussian' or 'uniform', got {init!r}")
    levels = [level_above(s) for s in above] + [level_below(s) for s in below]
    return _anneal(denoiser, x0, levels, epsilon=epsilon, T=T, sigma_L=sigma_L, gens=gens, callback=callback,
                   final_denoise=final_denoise)


# ------------------------------------------------------------------------------------------------ exact check
def gaussian_algorithm1_moments(spectrum: torch.Tensor, prior_mean: float, y: torch.Tensor, sigma0: float, sigmas,
                                *, epsilon: float, T: int, sigma_L: float | None = None):
    """Exact output distribution of Algorithm 1 under a stationary Gaussian prior (replicate.denoisers.gaussian).

    With prior N(mu, F^H diag(S) F) the score at level sigma_i is -(x - mu) / (S + sigma_i^2) per frequency, so
    every update is linear and each Fourier coefficient evolves as X' = a X + b + sqrt(2 alpha) Z with
    a = 1 - alpha (1/(S + sigma_i^2) + 1/(sigma0^2 - sigma_i^2)),
    b = alpha (mu_k/(S + sigma_i^2) + Y_k/(sigma0^2 - sigma_i^2)), E|Z|^2 = 1.
    Returns (mean image (N, C, H, W), per-frequency variance E|X - E X|^2 (C, H, W)) of x_T, starting at x_0 = y.
    Used by the tests (does the code sample what the algorithm defines?) and to say how close the algorithm,
    with a given eps / T / ladder, comes to the true posterior.
    """
    levels = _check_levels(sigmas, below=sigma0)
    sigma_L = float(levels[-1]) if sigma_L is None else float(sigma_L)
    S = spectrum.double()
    Y = torch.fft.fft2(y.double(), norm="ortho")
    mu = torch.fft.fft2(torch.full(S.shape, float(prior_mean), dtype=torch.float64), norm="ortho")
    m, v = Y.clone(), torch.zeros_like(S)
    s0sq = float(sigma0) ** 2
    for sigma_i in levels:
        alpha = epsilon * sigma_i**2 / sigma_L**2
        p, q = 1.0 / (S + sigma_i**2), 1.0 / (s0sq - sigma_i**2)
        a = 1.0 - alpha * (p + q)
        b = alpha * (mu * p + Y * q)
        for _ in range(T):
            m = a * m + b
            v = a**2 * v + 2.0 * alpha
    return torch.fft.ifft2(m, norm="ortho").real, v
