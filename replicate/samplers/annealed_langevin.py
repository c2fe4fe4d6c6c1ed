"""Annealed Langevin dynamics with a denoiser's score: prior synthesis (Song & Ermon 2019, Algorithm 1) and SNIPS
(Kawar, Vaksman & Elad 2021b, "SNIPS: Solving noisy inverse problems stochastically"), its posterior version for
y = H x + sigma_0 z in the SVD domain of H = U diag(s) V^T.

Both walk a decreasing noise ladder sigma_1 > ... > sigma_L with T steps per level and step size
alpha_i = eps sigma_i^2 / sigma_L^2, and use only the score s(x, sigma) = (D(x, sigma) - x) / sigma^2.

Song & Ermon:  x <- x + alpha_i / 2 s(x, sigma_i) + sqrt(alpha_i) z.

SNIPS works on the spectral coefficients xb = V^T x, yb = U^T y with singular values s_j.  For each coefficient the
measurement is either noisier than the current level (s_j sigma_i < sigma_0: prior score plus a likelihood term) or
cleaner (s_j sigma_i > sigma_0: likelihood only), or absent (s_j = 0: prior only); each kind gets its own step
(a diagonal preconditioner), with c = eps / sigma_L^2:
    s_j = 0:                 step c sigma_i^2,                              grad = score_j
    s_j sigma_i < sigma_0:   step c sigma_i^2 (1 - s_j^2 sigma_i^2 / sigma_0^2),
                             grad = score_j + s_j (yb_j - s_j xb_j) / (sigma_0^2 - s_j^2 sigma_i^2)
    s_j sigma_i > sigma_0:   step c (sigma_i^2 - sigma_0^2 / s_j^2),    grad = s_j (yb_j - s_j xb_j) / (s_j^2 sigma_i^2 - sigma_0^2)
    xb <- xb + step * grad + sqrt(2 step) z
(The update rule of the paper's Algorithm 1, with the step sizes of the authors' code snips_torch; singular values
below `zero` (1e-3 there) count as 0.)  SNIPS initialises with U[0, 1) noise, as the authors' code.

Operators are replicate.operators.base.Operator instances with `svd_available` (V_T, V, U_T, singulars).
Both samplers return a replicate.methods.result.Reconstruction: ``x`` the samples (unclamped), ``nfe`` the denoiser
calls per sample (levels x T, + 1 with ``final_denoise``).
"""
from __future__ import annotations

import math

import torch
from replicate.progress import bar as progress_bar

from replicate.denoisers.base import Denoiser
from replicate.denoisers.ladders import geometric_ladder as _geometric_ladder
from replicate.methods.result import Reconstruction


class LangevinDiverged(RuntimeError):
    """Samples became non-finite or exploded; lower eps (the step size) or use more levels."""


def geometric_ladder(sigma_max: float, sigma_min: float, levels: int) -> list[float]:
    """sigma_1 > ... > sigma_L, geometric (Song & Ermon; NCSNv2), computed in torch's default dtype (float32 unless
    changed) as Python floats: ``replicate.denoisers.ladders.geometric_ladder`` by count."""
    return _geometric_ladder(sigma_max, sigma_min, count=levels, dtype=torch.get_default_dtype()).tolist()


def _noise(shape, generator, like):
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def _check(x: torch.Tensor, level: int) -> None:
    if not torch.isfinite(x).all() or float(x.abs().max()) > 1e4:
        raise LangevinDiverged(f"annealed Langevin diverged at level {level}: lower eps or add levels")


@torch.no_grad()
def song_ermon_sample(denoiser: Denoiser, shape, sigmas, *, eps: float, T: int, generator: torch.Generator,
                      x0: torch.Tensor | None = None, final_denoise: bool = False, dtype=torch.float32,
                      progress: bool = False) -> Reconstruction:
    """Song & Ermon's annealed Langevin dynamics from the prior; starts from U[0, 1) noise unless x0 is given.

    final_denoise: end with one denoiser call at sigma_L (Song & Ermon 2020's "denoising" step); off in their 2019
    algorithm."""
    x = torch.rand(shape, generator=generator, dtype=dtype) if x0 is None else x0.clone()
    sigma_L = sigmas[-1]
    for i, sigma in enumerate(progress_bar(sigmas, desc="Song-Ermon synthesis", disable=not progress)):
        alpha = eps * sigma**2 / sigma_L**2
        for _ in range(T):
            x = x + 0.5 * alpha * denoiser.score(x, sigma) + math.sqrt(alpha) * _noise(x.shape, generator, x)
        _check(x, i)
    return Reconstruction(denoiser(x, sigma_L) if final_denoise else x, nfe=len(sigmas) * T + int(final_denoise))


@torch.no_grad()
def snips(denoiser: Denoiser, op, y: torch.Tensor, sigma_0: float, sigmas, *, eps: float, T: int,
          shape, generator: torch.Generator, zero: float = 1e-3, x0: torch.Tensor | None = None,
          final_denoise: bool = False, progress: bool = False) -> Reconstruction:
    """SNIPS posterior sampling for y = H x + sigma_0 z; `shape` is the batch shape (N, C, H, W) of the samples.

    Every row of y is one measurement; draw several samples of one measurement by repeating its row."""
    if sigma_0 <= 0:
        raise ValueError("SNIPS needs measurement noise sigma_0 > 0 (its likelihood terms divide by it)")
    dtype = y.dtype
    x = torch.rand(shape, generator=generator, dtype=dtype).to(y.device) if x0 is None else x0.clone()
    s_full = op.singulars().to(device=y.device, dtype=dtype)
    s_full = torch.where(s_full < zero, torch.zeros_like(s_full), s_full)
    r = s_full.numel()
    yb = op.U_T(y)[:, :r]
    xb = op.V_T(x)
    n = xb.shape[1]
    s = torch.zeros(n, dtype=dtype, device=y.device)
    s[:r] = s_full
    observed = s > 0
    c = eps / sigmas[-1] ** 2
    yb_full = torch.zeros_like(xb)
    yb_full[:, :r] = yb
    for i, sigma in enumerate(progress_bar(sigmas, desc="SNIPS", disable=not progress)):
        cleaner = observed & (s * sigma > sigma_0)      # measurement less noisy than the current level
        noisier = observed & ~cleaner                   # measurement noisier: prior + likelihood
        step = torch.full_like(s, c * sigma**2)
        step[cleaner] = c * (sigma**2 - (sigma_0 / s[cleaner]) ** 2)
        step[noisier] = c * sigma**2 * (1 - (s[noisier] * sigma / sigma_0) ** 2)
        denom = torch.ones_like(s)
        denom[cleaner] = s[cleaner] ** 2 * sigma**2 - sigma_0**2
        denom[noisier] = sigma_0**2 - s[noisier] ** 2 * sigma**2
        for _ in range(T):
            x = op.V(xb)
            score = op.V_T(denoiser.score(x, sigma))
            likelihood = torch.where(observed, s * (yb_full - s * xb) / denom, torch.zeros_like(xb))
            grad = torch.where(cleaner, likelihood, score + likelihood)
            xb = xb + step * grad + torch.sqrt(2 * step) * _noise(xb.shape, generator, xb)
        _check(xb, i)
    x = op.V(xb)
    return Reconstruction(denoiser(x, sigmas[-1]) if final_denoise else x, nfe=len(sigmas) * T + int(final_denoise))
