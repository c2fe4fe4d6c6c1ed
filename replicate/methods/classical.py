"""Methods without a learned prior: Chung et al. 2023's ADMM-TV and ER / HIO / OSS phase-retrieval baselines.

The algorithms are in replicate.solvers.admm_tv and replicate.solvers.phase_retrieval (settings and the paper's
App. D.2 documented there); ``denoiser`` is ignored (None).
"""
from __future__ import annotations

from replicate.methods.registry import register_method
from replicate.methods.result import Reconstruction
from replicate.solvers import admm_tv as TV
from replicate.solvers import phase_retrieval as PR


@register_method("admm_tv", requires=("operator", "linear", "gaussian_noise"), paper="chung2023")
def admm_tv(denoiser, operator, noise, y, *, generator=None, tau: float, rho: float = 1.0, iters: int = 100,
            cg_iters: int = 20, **solver) -> Reconstruction:
    """min_x ||A x - y||^2 / 2 + tau TV(x) by ADMM (isotropic TV unless ``tv`` says otherwise), clamped to [0, 1]."""
    x = TV.admm_tv(operator, y, tau=tau, rho=rho, iters=iters, cg_iters=cg_iters, **solver)
    return Reconstruction(x.clamp(0, 1), nfe=0)


def _fienup(method: str, operator, y, generator, shape, solver) -> Reconstruction:
    out = PR.fienup(operator, y, shape or operator.shape, method=method, generator=generator, **solver)
    return Reconstruction(out["x"], nfe=0, diagnostics={k: v for k, v in out.items() if k != "x"})


@register_method("er", requires=("operator",), paper="chung2023")
def er(denoiser, operator, noise, y, *, generator=None, shape=None, **solver) -> Reconstruction:
    """Error reduction (Fienup 1982): alternate projections onto the measured Fourier magnitudes and the object
    constraints; best of ``restarts`` random starts by measurement residual (diagnostics: residual, object)."""
    return _fienup("er", operator, y, generator, shape, solver)


@register_method("hio", requires=("operator",), paper="chung2023")
def hio(denoiser, operator, noise, y, *, generator=None, shape=None, **solver) -> Reconstruction:
    """Hybrid input-output (Fienup 1982, beta = 0.9), best of ``restarts``."""
    return _fienup("hio", operator, y, generator, shape, solver)


@register_method("oss", requires=("operator",), paper="chung2023")
def oss(denoiser, operator, noise, y, *, generator=None, shape=None, **solver) -> Reconstruction:
    """Oversampling smoothness (Rodriguez et al. 2013): HIO with a Gaussian smoothing of the outside-support part
    whose width shrinks over 10 stages, best of ``restarts``."""
    return _fienup("oss", operator, y, generator, shape, solver)
