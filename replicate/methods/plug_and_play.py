"""Plug-and-play methods on any prior: PnP-ADMM (Venkatakrishnan et al. 2013; Chung et al. 2023's baseline and the
lecture's) and RED by steepest descent and by fixed point (Romano, Elad & Milanfar 2017).

The iterations are in replicate.solvers.plug_and_play; the measurement noise level sigma_y comes from ``noise``
(Gaussian, on the [0, 1] scale). ``trace`` holds the relative change per iteration and, given ``reference``, PSNR.
"""
from __future__ import annotations

from replicate.methods.registry import register_method
from replicate.methods.result import Reconstruction
from replicate.solvers import plug_and_play as PnP


@register_method("pnp_admm", requires=("prior", "operator", "linear", "gaussian_noise"), paper="chung2023")
def pnp_admm(denoiser, operator, noise, y, *, generator=None, iters: int, **solver) -> Reconstruction:
    """PnP-ADMM: the x-update solves the data term plus rho/2 ||x - v + u||^2 by conjugate gradients, the v-update
    is the denoiser at sigma_d. The penalty is ``rho`` or ``denoiser_sigma`` (rho = 1 / denoiser_sigma^2)."""
    return PnP.pnp_admm(denoiser, operator, y, noise.sigma01, iters=iters, **solver)


@register_method("red_sd", requires=("prior", "operator", "linear", "gaussian_noise"), paper="elad_lecture")
def red_sd(denoiser, operator, noise, y, *, generator=None, lam: float, sigma_d: float, iters: int,
           **solver) -> Reconstruction:
    """RED, steepest descent on ||A x - y||^2 / (2 sigma_y^2) + lam/2 x^T (x - D(x, sigma_d))."""
    return PnP.red_steepest_descent(denoiser, operator, y, noise.sigma01, lam=lam, sigma_d=sigma_d, iters=iters,
                                    **solver)


@register_method("red_fp", requires=("prior", "operator", "linear", "gaussian_noise"), paper="elad_lecture")
def red_fp(denoiser, operator, noise, y, *, generator=None, lam: float, sigma_d: float, iters: int,
           **solver) -> Reconstruction:
    """RED, fixed-point iteration: (A^T A / sigma_y^2 + lam I) x = A^T y / sigma_y^2 + lam D(x, sigma_d)."""
    return PnP.red_fixed_point(denoiser, operator, y, noise.sigma01, lam=lam, sigma_d=sigma_d, iters=iters,
                               **solver)
