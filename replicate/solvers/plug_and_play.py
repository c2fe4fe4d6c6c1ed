"""Plug-and-play priors (Venkatakrishnan, Bouman & Wohlberg 2013) and RED (Romano, Elad & Milanfar 2017):
a denoiser used as the regulariser of a linear inverse problem y = A x + sigma_y n.

Data term  l(x) = ||A x - y||^2 / (2 sigma_y^2),  gradient  A^T (A x - y) / sigma_y^2.

PnP-ADMM (splitting x = v, penalty rho, the prior's step played by the denoiser at sigma_d = 1 / sqrt(rho)):
    x <- argmin_x l(x) + rho/2 ||x - (v - u)||^2      (conjugate gradients on (A^T A / sigma_y^2 + rho I))
    v <- D(x + u, sigma_d)
    u <- u + x - v
RED regulariser rho(x) = 1/2 x^T (x - D(x)), gradient x - D(x) under local homogeneity and a symmetric Jacobian:
    steepest descent  x <- x - mu [ A^T (A x - y) / sigma_y^2 + lambda (x - D(x, sigma_d)) ]
    fixed point       (A^T A / sigma_y^2 + lambda I) x_{k+1} = A^T y / sigma_y^2 + lambda D(x_k, sigma_d)

With a Gaussian prior the Wiener filter W is linear and symmetric, and both converge to closed forms (tests):
PnP-ADMM with sigma_d = 1/sqrt(rho) to the exact posterior mean; RED to the solution of
(A^T A / sigma_y^2 + lambda (I - W)) x = A^T y / sigma_y^2 + lambda (I - W) mean.

Operators are replicate.operators.base.Operator instances (forward / adjoint(y, like=x)); everything is batched
over images, with per-image inner products.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from replicate.progress import bar as progress_bar

from replicate.denoisers.base import Denoiser
from replicate.solvers._linalg import cg


class SolverDiverged(RuntimeError):
    """The iterate became non-finite or exploded; lower the step size (mu) or raise the denoiser's sigma."""


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, x0: torch.Tensor,
                       iters: int = 50, tol: float = 1e-10) -> torch.Tensor:
    """Solve apply(x) = b for a symmetric positive-definite `apply`, each image of the batch separately."""
    return cg(apply, b, x0=x0, iters=iters, tol=tol)


def operator_norm_sq(op, like: torch.Tensor, iters: int = 30, seed: int = 0) -> float:
    """||A||^2 (largest eigenvalue of A^T A) by power iteration."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(like[:1].shape, generator=gen, dtype=like.dtype).to(like.device)
    lam = 0.0
    for _ in range(iters):
        w = op.adjoint(op(v), like=v)
        lam = float(w.flatten().norm() / v.flatten().norm())
        v = w / w.flatten().norm()
    return lam


@dataclass
class SolverTrace:
    """Per-iteration history: relative change ||x_k - x_{k-1}|| / ||x_k|| and, when a reference is given, PSNR."""
    change: list = field(default_factory=list)
    psnr: list = field(default_factory=list)

    def log(self, x: torch.Tensor, previous: torch.Tensor, reference: torch.Tensor | None) -> None:
        self.change.append(float((x - previous).flatten(1).norm(dim=1).div(x.flatten(1).norm(dim=1)).mean()))
        if reference is not None:
            from replicate.metrics import psnr

            self.psnr.append(float(psnr(x.clamp(0, 1), reference).mean()))


def _check(x: torch.Tensor, k: int, what: str) -> None:
    if not torch.isfinite(x).all() or float(x.abs().max()) > 1e6:
        raise SolverDiverged(f"{what} diverged at iteration {k}: lower the step size or raise the denoiser sigma")


def _init(op, y: torch.Tensor, like_shape, x0):
    if x0 is not None:
        return x0.clone()
    return op.adjoint(y, like=torch.zeros(like_shape, dtype=y.dtype, device=y.device))


def pnp_admm(denoiser: Denoiser, op, y: torch.Tensor, sigma_y: float, *, rho: float, iters: int,
             shape, x0: torch.Tensor | None = None, cg_iters: int = 30, sigma_d: float | None = None,
             reference: torch.Tensor | None = None, progress: bool = False) -> tuple[torch.Tensor, SolverTrace]:
    """PnP-ADMM; `shape` is the image batch shape (N, C, H, W); sigma_d defaults to 1/sqrt(rho) (the MAP pairing)."""
    sigma_d = 1.0 / math.sqrt(rho) if sigma_d is None else sigma_d
    x = _init(op, y, shape, x0)
    v, u = x.clone(), torch.zeros_like(x)
    aty = op.adjoint(y, like=x) / sigma_y**2
    normal = lambda z: op.adjoint(op(z), like=z) / sigma_y**2 + rho * z  # noqa: E731
    trace = SolverTrace()
    for k in progress_bar(range(iters), desc="PnP-ADMM", disable=not progress, leave=False):
        prev = v
        x = conjugate_gradient(normal, aty + rho * (v - u), x, iters=cg_iters)
        with torch.no_grad():
            v = denoiser(x + u, sigma_d)
        u = u + x - v
        _check(v, k, "PnP-ADMM")
        trace.log(v, prev, reference)
    return v, trace


def red_steepest_descent(denoiser: Denoiser, op, y: torch.Tensor, sigma_y: float, *, lam: float, sigma_d: float,
                         iters: int, shape, mu: float | None = None, x0: torch.Tensor | None = None,
                         reference: torch.Tensor | None = None) -> tuple[torch.Tensor, SolverTrace]:
    """RED by steepest descent; mu defaults to 1 / (||A||^2 / sigma_y^2 + lambda), the inverse Lipschitz constant of
    the data gradient plus that of lambda (I - D) for a non-expansive-residual denoiser."""
    x = _init(op, y, shape, x0)
    if mu is None:
        mu = 1.0 / (operator_norm_sq(op, x) / sigma_y**2 + lam)
    trace = SolverTrace()
    for k in range(iters):
        prev = x
        with torch.no_grad():
            d = denoiser(x, sigma_d)
        grad = op.adjoint(op(x) - y, like=x) / sigma_y**2 + lam * (x - d)
        x = x - mu * grad
        _check(x, k, "RED (steepest descent)")
        trace.log(x, prev, reference)
    return x, trace


def red_fixed_point(denoiser: Denoiser, op, y: torch.Tensor, sigma_y: float, *, lam: float, sigma_d: float,
                    iters: int, shape, x0: torch.Tensor | None = None, cg_iters: int = 30,
                    reference: torch.Tensor | None = None) -> tuple[torch.Tensor, SolverTrace]:
    """RED fixed-point iteration: one linear solve (conjugate gradients) per denoiser call."""
    x = _init(op, y, shape, x0)
    aty = op.adjoint(y, like=x) / sigma_y**2
    normal = lambda z: op.adjoint(op(z), like=z) / sigma_y**2 + lam * z  # noqa: E731
    trace = SolverTrace()
    for k in range(iters):
        prev = x
        with torch.no_grad():
            d = denoiser(x, sigma_d)
        x = conjugate_gradient(normal, aty + lam * d, x, iters=cg_iters)
        _check(x, k, "RED (fixed point)")
        trace.log(x, prev, reference)
    return x, trace


# ------------------------------------------------------------------------------------- RED's two conditions
def local_homogeneity_error(denoiser: Denoiser, x: torch.Tensor, sigma: float, eps: float = 1e-2) -> float:
    """||D((1+eps) x) - (1+eps) D(x)|| / (eps ||D(x)||): 0 for a denoiser homogeneous of degree 1 at x."""
    with torch.no_grad():
        d = denoiser(x, sigma)
        d2 = denoiser((1 + eps) * x, sigma)
    return float(((d2 - (1 + eps) * d).flatten().norm() / (eps * d.flatten().norm())))


def jacobian_asymmetry(denoiser: Denoiser, x: torch.Tensor, sigma: float, probes: int = 8, seed: int = 0) -> float:
    """Relative asymmetry of the Jacobian J at x from random probes: mean |u^T J v - v^T J u| / (|u^T J v| + |v^T J u|).

    Uses Jacobian-vector products (torch.func.jvp) and vector-Jacobian products (autograd), so it needs a
    differentiable denoiser; 0 for a symmetric Jacobian (the condition of RED's gradient rule)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    f = lambda z: denoiser(z, sigma)  # noqa: E731
    errs = []
    for _ in range(probes):
        u = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        v = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        _, jv = torch.func.jvp(f, (x,), (v,))
        xr = x.detach().requires_grad_(True)
        (jtv,) = torch.autograd.grad(f(xr), xr, grad_outputs=v)  # J^T v
        a, b = float((u * jv).sum().detach()), float((jtv * u).sum())  # u^T J v and v^T J u
        errs.append(abs(a - b) / (abs(a) + abs(b) + 1e-30))
    return float(sum(errs) / len(errs))
