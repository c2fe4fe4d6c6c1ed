r"""ADMM for total-variation regularised least squares (the DPS paper's ADMM-TV baseline, App. D.2, eq. 68):

    min_x 1/2 ||A x - y||^2 + tau TV(x),      D x = (D_v x, D_h x), forward differences along both image axes,
                                              zero at the last row / column (scico's FiniteDifference, append=0)

TV, the ``tv`` setting (p = pixel, c = colour channel; g = D x, g[0] = vertical, g[1] = horizontal difference):

    "isotropic" (default, App. D.2: "isotropic TV")  TV(x) = ||D x||_{2,1} = sum_{c,p} sqrt(g_v[c,p]^2 + g_h[c,p]^2)
    "isotropic_joint"  (colour / vectorial TV)      TV(x) = sum_p sqrt(sum_c g_v[c,p]^2 + g_h[c,p]^2)
    "anisotropic"      (this module's old default)  TV(x) = ||D x||_1   = sum_{c,p} |g_v[c,p]| + |g_h[c,p]|

The default groups the two axis differences of one pixel of one channel: the paper's D "computes the finite difference
with respect to both axes" and its isotropic ||.||_{2,1} groups exactly those (as scico's ``L21Norm`` with l2_axis=0
over ``FiniteDifference`` along the two image axes, the library the paper names, and Goldstein & Osher 2009's isotropic
split Bregman, defined on a scalar image, i.e. applied channel by channel). "isotropic_joint" couples the channels
(Blomgren & Chan 1998); nothing in the paper asks for it.

ADMM with the splitting z = D x (Goldstein & Osher 2009; scaled dual u):

    x <- (A^T A + rho D^T D)^-1 (A^T y + rho D^T (z - u))          (conjugate gradients, warm start)
    z <- prox_{(tau / rho) TV}(D x + u)                             (``shrink``)
    u <- u + D x - z

    prox, anisotropic:   z = sign(v) max(|v| - t, 0)                elementwise (soft threshold)
    prox, isotropic:     z = v max(1 - t / ||v_p||_2, 0)            per group v_p = (v_v[c,p], v_h[c,p])
    prox, joint:         the same with v_p = (v_v[:,p], v_h[:,p])   (all channels of pixel p)

The DPS baseline's tau and rho are not in the extracted text: settings.
"""
from __future__ import annotations

import torch
from replicate.progress import bar as progress_bar

from replicate.solvers._linalg import cg

TV_KINDS = ("isotropic", "anisotropic", "isotropic_joint")


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
    """Elementwise soft threshold: the prox of t ||.||_1."""
    return torch.sign(v) * (v.abs() - t).clamp(min=0.0)


def _check(tv: str) -> None:
    if tv not in TV_KINDS:
        raise ValueError(f"tv must be one of {TV_KINDS}, got {tv!r}")


def _group_dims(tv: str) -> tuple[int, ...]:
    # g is (N, 2, C, H, W): isotropic groups the 2 differences of one channel, joint also the channels
    return (1,) if tv == "isotropic" else (1, 2)


def group_norm(g: torch.Tensor, tv: str = "isotropic") -> torch.Tensor:
    """Per-group Euclidean norms of a gradient field g = D x (kept dims of size 1)."""
    _check(tv)
    if tv == "anisotropic":
        return g.abs()
    return (g * g).sum(_group_dims(tv), keepdim=True).sqrt()


def shrink(v: torch.Tensor, t: float, tv: str = "isotropic") -> torch.Tensor:
    """prox_{t TV-norm}(v) for a gradient field v (N, 2, C, H, W): soft threshold (anisotropic) or the group / vector
    soft threshold v max(1 - t / ||v_p||, 0) (isotropic, per channel or joint); zero groups stay zero."""
    _check(tv)
    if tv == "anisotropic":
        return soft(v, t)
    n = group_norm(v, tv)
    factor = (1.0 - t / n.clamp(min=torch.finfo(v.dtype).tiny)).clamp(min=0.0)
    return v * factor


def tv_norm(x: torch.Tensor, tv: str = "isotropic") -> torch.Tensor:
    """TV(x) per image of the batch, (N,)."""
    n = group_norm(grad(x), tv)
    return n.flatten(1).sum(1)


def tv_objective(operator, y: torch.Tensor, x: torch.Tensor, tau: float, tv: str = "isotropic") -> torch.Tensor:
    """1/2 ||A x - y||^2 + tau TV(x) per image, (N,)."""
    r = (operator(x) - y).flatten(1)
    return 0.5 * (r * r).sum(1) + tau * tv_norm(x, tv)


def admm_tv(operator, y: torch.Tensor, *, tau: float, rho: float = 1.0, iters: int = 100, cg_iters: int = 20,
            progress: bool = False, tv: str = "isotropic") -> torch.Tensor:
    """ADMM-TV estimate (N, C, H, W) on the operator's input scale (not clipped). ``tv``: see the module docstring
    ("isotropic" = the paper; "anisotropic" = this project's earlier behaviour)."""
    _check(tv)
    if not operator.linear:
        raise TypeError("ADMM-TV's x-update needs a linear operator")
    zeros = torch.zeros((y.shape[0], *operator.shape), dtype=y.dtype, device=y.device)
    Aty = operator.adjoint(y, like=zeros)
    x = Aty.clone()
    z = grad(x)
    u = torch.zeros_like(z)
    normal = lambda v: operator.adjoint(operator(v), like=v) + rho * grad_adjoint(grad(v))  # noqa: E731
    for _ in progress_bar(range(iters), desc="ADMM-TV", disable=not progress, leave=False):
        x = cg(normal, Aty + rho * grad_adjoint(z - u), x0=x, iters=cg_iters)
        Dx = grad(x)
        z = shrink(Dx + u, tau / rho, tv)
        u = u + Dx - z
    return x
