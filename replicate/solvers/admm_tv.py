"""ADMM for total-variation regularised least squares (anisotropic TV, Goldstein & Osher 2009 splitting):

    min_x 1/2 ||A x - y||^2 + tau ||D x||_1,   D = forward differences (zero at the last row / column)

    x <- (A^T A + rho D^T D)^-1 (A^T y + rho D^T (z - u))   (conjugate gradients)
    z <- soft(D x + u, tau / rho);  u <- u + D x - z
The DPS baseline's tau and rho are not in the extracted text: settings.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from replicate.solvers._linalg import cg


def grad(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 2, C, H, W) forward differences, zero at the far border (Neumann)."""
    dv = torch.zeros_like(x)
    dh = torch.zeros_like(x)
    dv[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dh[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return torch.stack([dv, dh], dim=1)


def grad_adjoint(g: torch.Tensor) -> torch.Tensor:
    """D^T (exact adjoint of ``grad``)."""
    dv, dh = g[:, 0], g[:, 1]
    out = torch.zeros_like(dv)
    out[..., :-1, :] -= dv[..., :-1, :]
    out[..., 1:, :] += dv[..., :-1, :]
    out[..., :, :-1] -= dh[..., :, :-1]
    out[..., :, 1:] += dh[..., :, :-1]
    return out


def soft(v: torch.Tensor, t: float) -> torch.Tensor:
    return torch.sign(v) * (v.abs() - t).clamp(min=0.0)


def admm_tv(operator, y: torch.Tensor, *, tau: float, rho: float = 1.0, iters: int = 100, cg_iters: int = 20,
            progress: bool = False) -> torch.Tensor:
    if not operator.linear:
        raise TypeError("ADMM-TV's x-update needs a linear operator")
    zeros = torch.zeros((y.shape[0], *operator.shape), dtype=y.dtype, device=y.device)
    Aty = operator.adjoint(y, like=zeros)
    x = Aty.clone()
    z = grad(x)
    u = torch.zeros_like(z)
    normal = lambda v: operator.adjoint(operator(v), like=v) + rho * grad_adjoint(grad(v))  # noqa: E731
    for _ in tqdm(range(iters), desc="ADMM-TV", disable=not progress, leave=False):
        x = cg(normal, Aty + rho * grad_adjoint(z - u), x0=x, iters=cg_iters)
        Dx = grad(x)
        z = soft(Dx + u, tau / rho)
        u = u + Dx - z
    return x
