"""Diffusion methods of Chung et al. 2023's tables, on any prior: DPS (Algs. 1 and 2), DDRM, MCG and Score-SDE.

Each wraps its sampler in replicate.samplers.diffusion. The prior becomes an x0-predictor on the 1000-step VP
schedule (``x0_predictor``: an ADM checkpoint's own eps-network, any other denoiser through DenoiserX0), clamped to
[-1, 1] as the DPS configs do, then respaced to ``steps``.

Step sizes are stated as the paper's zeta' (``zeta``; the sampler's ``scale`` = 2 zeta', see
samplers.diffusion.zeta_to_scale) or directly as the released code's ``scale``. ``nfe_compensation`` multiplies the
step by 1000 / steps (a stated setting of reduced-NFE profiles, not the paper's).
"""
from __future__ import annotations

from replicate.denoisers.vp import x0_predictor
from replicate.methods.registry import register_method
from replicate.methods.result import Reconstruction
from replicate.samplers import diffusion as Dm


def _model(denoiser, steps: int, spacing: str = "even", clip_denoised: bool = True):
    return Dm.respaced(x0_predictor(denoiser, clip_denoised=clip_denoised), steps, spacing=spacing)


def _scale(zeta: float | None, scale: float | None, schedule: str, steps: int, compensate: bool) -> float:
    if (zeta is None) == (scale is None):
        raise ValueError("give the step size as exactly one of zeta (the paper's zeta') or scale (the code's)")
    base = Dm.zeta_to_scale(zeta, schedule) if zeta is not None else scale
    return base * Dm.nfe_compensation(steps, compensate)


@register_method("dps", requires=("prior", "gradient", "operator"), paper="chung2023")
def dps(denoiser, operator, noise, y, *, generator=None, steps: int = 1000, zeta: float | None = None,
        scale: float | None = None, step_schedule: str = "constant", decay: float | None = None,
        nfe_compensation: bool = False, **sampler) -> Reconstruction:
    """Diffusion posterior sampling: after each ancestral step, x_{t-1} -= step * grad ||y - A(x0_hat(x_t))|| (the
    noise model's data term: Gaussian Alg. 1, Poisson Alg. 2). ``decay``: the exponential schedule's constant per
    step, raised to 1000 / steps under nfe_compensation (the same curve over the trajectory). Other keywords go to
    samplers.diffusion.dps (shape, x_T, trace_every, data_term)."""
    comp = Dm.nfe_compensation(steps, nfe_compensation)
    if decay is not None:
        sampler["decay"] = decay ** comp
    return Dm.dps(_model(denoiser, steps), operator, noise, y, generator=generator,
                  scale=_scale(zeta, scale, step_schedule, steps, nfe_compensation), step_schedule=step_schedule,
                  **sampler)


@register_method("ddrm", requires=("prior", "operator", "linear", "svd", "gaussian_noise"), paper="chung2023")
def ddrm(denoiser, operator, noise, y, *, generator=None, steps: int = 20, spacing: str = "skip", eta: float = 0.85,
         eta_b: float = 1.0, s_min: float = 0.0, cut: str = "factors", **sampler) -> Reconstruction:
    """DDRM (Kawar et al. 2022) in the spectral basis of A; ``spacing`` "skip" walks the DDRM code's timesteps
    (0, 50, ..., 950 for 20 steps), "even" improved-DDPM's."""
    return Dm.ddrm(_model(denoiser, steps, spacing), operator, noise, y, generator=generator, eta=eta, eta_b=eta_b,
                   s_min=s_min, cut=cut, **sampler)


def _projection(denoiser, operator, noise, y, generator, steps, mcg_scale, rcond, mode, cg_iters, sampler):
    # a nonlinear operator has no A^+: the DPS code's MCG projects it as x + y - A(x) ("residual")
    return Dm.projection_sampler(_model(denoiser, steps), operator, noise, y, generator=generator, rcond=rcond,
                                 mode=mode if operator.linear else "residual", cg_iters=cg_iters,
                                 mcg_scale=mcg_scale, **sampler)


@register_method("mcg", requires=("prior", "gradient", "operator"), paper="chung2023")
def mcg(denoiser, operator, noise, y, *, generator=None, steps: int = 1000, zeta: float | None = None,
        scale: float | None = None, nfe_compensation: bool = False, rcond: float = 1e-10, mode: str = "pinv",
        cg_iters: int = 100, **sampler) -> Reconstruction:
    """Manifold-constrained gradients (Chung et al. 2022): DPS's gradient step (the same zeta', App. D.2), then the
    projection onto the noised measurement."""
    return _projection(denoiser, operator, noise, y, generator, steps,
                       _scale(zeta, scale, "constant", steps, nfe_compensation), rcond, mode, cg_iters, sampler)


@register_method("score_sde", requires=("prior", "operator"), paper="chung2023")
def score_sde(denoiser, operator, noise, y, *, generator=None, steps: int = 1000, rcond: float = 1e-10,
              mode: str = "pinv", cg_iters: int = 100, **sampler) -> Reconstruction:
    """Score-SDE / ILVR-style conditional sampling by projection onto the noised measurement (Song et al. 2021)."""
    return _projection(denoiser, operator, noise, y, generator, steps, 0.0, rcond, mode, cg_iters, sampler)
