"""The project's one conjugate-gradient solver (batched, per image): the ADMM / RED x-updates (solvers) and
A^+ for operators without an SVD (samplers.diffusion.pinv_apply)."""
from __future__ import annotations

import torch


def cg(apply, b: torch.Tensor, x0: torch.Tensor | None = None, iters: int = 30, tol: float = 1e-8) -> torch.Tensor:
    """Solve apply(x) = b per image of the batch (apply linear, symmetric positive (semi)definite).

    x0: warm start; None starts at 0 with the residual b itself (no call of ``apply``, as A 0 = 0).
    Stopping: before each of at most ``iters`` steps, stop once every image has ||r||^2 <= tol^2 ||b||^2.
    The callers' settings: ADMM-TV iters=cg_iters, tol 1e-8; PnP-ADMM and RED fixed point (plug_and_play)
    tol 1e-10; pinv_apply iters=cg_iters, tol 1e-10, x0 None."""
    dims = tuple(range(1, b.ndim))
    if x0 is None:
        x = torch.zeros_like(b)
        r = b.clone()
    else:
        x = x0.clone()
        r = b - apply(x)
    p = r.clone()
    rs = (r * r).sum(dims, keepdim=True)
    b2 = (b * b).sum(dims, keepdim=True).clamp(min=1e-300)
    for _ in range(iters):
        if bool((rs <= tol**2 * b2).all()):
            break
        Ap = apply(p)
        alpha = rs / (p * Ap).sum(dims, keepdim=True).clamp(min=1e-300)
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = (r * r).sum(dims, keepdim=True)
        p = r + rs_new / rs.clamp(min=1e-300) * p
        rs = rs_new
    return x
