"""Plug-and-play ADMM (Venkatakrishnan et al. 2013; Chan et al. 2016) with a denoiser as the prior's proximal map.

Minimises (1/(2 sigma_y^2)) ||A x - y||^2 + g(x), g implicit in the denoiser D:
    x <- argmin ||A x - y||^2 / (2 sigma_y^2) + rho/2 ||x - (z - u)||^2     (conjugate gradients)
    z <- D(x + u, sigma_d),  sigma_d = 1 / sqrt(rho)                         (D = prox of g at strength 1/rho)
    u <- u + x - z
With the Wiener filter of a Gaussian prior, D is exactly the proximal map of -log p, so the iteration converges to
the MAP = posterior mean (tests/test_solvers.py checks this). DPS compares with PnP-ADMM using a DnCNN; its
rho / iteration count are not stated in the extracted text: both are settings here.
"""
from __future__ import annotations

import torch

from replicate.solvers.plug_and_play import pnp_admm as _pnp_admm


def pnp_admm(denoiser, operator, y: torch.Tensor, *, sigma_y: float, denoiser_sigma: float, iters: int = 50,
             cg_iters: int = 20, x0: torch.Tensor | None = None, progress: bool = False) -> torch.Tensor:
    """[0, 1]-scale reconstruction (N, C, H, W) from y = A x + sigma_y n (sigma_y on the [0, 1] scale).

    DPS's calling convention around the project's one PnP-ADMM (replicate.solvers.plug_and_play)."""
    if not operator.linear:
        raise TypeError("PnP-ADMM's x-update needs a linear operator")
    shape = (y.shape[0], *operator.shape)
    sigma_y = max(float(sigma_y), 1e-6)  # noiseless data: a tiny sigma keeps the x-update well posed
    x, _ = _pnp_admm(denoiser, operator, y, sigma_y, rho=1.0 / denoiser_sigma**2, iters=iters, shape=shape, x0=x0,
                     cg_iters=cg_iters, progress=progress)
    return x
