"""Batched conjugate gradients for the normal equations of the ADMM x-updates."""
from __future__ import annotations

import torch


def cg(apply, b: torch.Tensor, x0: torch.Tensor | None = None, iters: int = 30, tol: float = 1e-8) -> torch.Tensor:
    """Solve apply(x) = b per image of the batch (apply symmetric positive definite); warm start x0."""
    dims = tuple(range(1, b.ndim))
    x = torch.zeros_like(b) if x0 is None else x0.clone()
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
