"""Plug-and-play priors (Venkatakrishnan, Bouman & Wohlberg 2013) and RED (Romano, Elad & Milanfar 2017):
a denoiser used as the regulariser of a linear inverse problem y = A x + sigma_y n.

Data term  l(x) = ||A x - y||^2 / (2 sigma_y^2),  gradient  A^T (A x - y) / sigma_y^2.

PnP-ADMM (splitting x = v, penalty rho, the prior's step played by the denoiser at sigma_d = 1 / sqrt(rho)):
    x <- argmin_x l(x) + rho/2 ||x - (v - u)||^2      (conjugate gradients on (A^T A / sigma_y^2 + rho I))
    v <- D(x + u, sigma_d)
    u <- u + x - v
With the Wiener filter of a Gaussian prior, D is exactly the proximal map of -log p, so the iteration converges to
the MAP = posterior mean. Two callers: the lecture (penalty ``rho``, Venkatakrishnan et al. 2013) and Chung et al.
2023's baseline (Venkatakrishnan et al. 2013; Chan et al. 2016) with a DnCNN, given as ``denoiser_sigma``; DPS does
not state its rho / iteration count: both are settings there.
RED regulariser rho(x) = 1/2 x^T (x - D(x)), gradient x - D(x) under local homogeneity and a symmetric Jacobian:
    steepest descent  x <- x - mu [ A^T (A x - y) / sigma_y^2 + lambda (x - D(x, sigma_d)) ]
    fixed point       (A^T A / sigma_y^2 + lambda I) x_{k+1} = A^T y / sigma_y^2 + lambda D(x_k, sigma_d)

With a Gaussian prior the Wiener filter W is linear and symmetric, and both converge to closed forms (tests):
PnP-ADMM with sigma_d = 1/sqrt(rho) to the exact posterior mean; RED to the solution of
(A^T A / sigma_y^2 + lambda (I - W)) x = A^T y / sigma_y^2 + lambda (I - W) mean.

Operators are replicate.operators.base.Operator instances (forward / adjoint(y, like=x)); everything is batched
over images, with per-image inner products. Every solver returns a replicate.methods.result.Reconstruction: ``x`` the
last iterate (unclamped), ``nfe`` the denoiser calls per image (= iterations), ``trace["change"]`` the relative
change ||x_k - x_{k-1}|| / ||x_k|| per iteration (mean over images) and ``trace["psnr"]`` the PSNR of the clamped
iterate against ``reference`` (empty without one).
"""
from __future__ import annotations

import math

import torch
from replicate.progress import bar as progress_bar

from replicate.denoisers.base import Denoiser
from replicate.methods.result import Reconstruction
from replicate.solvers._linalg import cg


class SolverDiverged(RuntimeError):
    """The iterate became non-finite or exploded; lower the step size (mu) or raise the denoiser's sigma."""


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


def _log(trace: dict, x: torch.Tensor, previous: torch.Tensor, reference: torch.Tensor | None) -> None:
    """Append this iteration's relative change ||x_k - x_{k-1}|| / ||x_k|| and, given a reference, PSNR."""
    trace["change"].append(float((x - previous).flatten(1).norm(dim=1).div(x.flatten(1).norm(dim=1)).mean()))
    if reference is not None:
        from replicate.metrics import psnr

        trace["psnr"].append(float(psnr(x.clamp(0, 1), reference).mean()))


def _check(x: torch.Tensor, k: int, what: str) -> None:
    if not torch.isfinite(x).all() or float(x.abs().max()) > 1e6:
        raise SolverDiverged(f"{what} diverged at iteration {k}: lower the step size or raise the denoiser sigma")


def _init(op, y: torch.Tensor, like_shape, x0):
    if x0 is not None:
        return x0.clone()
    return op.adjoint(y, like=torch.zeros(like_shape, dtype=y.dtype, device=y.device))


def pnp_admm(denoiser: Denoiser, op, y: torch.Tensor, sigma_y: float, *, iters: int, rho: float | None = None,
             denoiser_sigma: float | None = None, shape=None, x0: torch.Tensor | None = None, cg_iters: int = 30,
             sigma_d: float | None = None, reference: torch.Tensor | None = None,
             progress: bool = False) -> Reconstruction:
    """PnP-ADMM for y = A x + sigma_y n (sigma_y on the [0, 1] scale; below 1e-6, i.e. noiseless data, it is raised
    to 1e-6 to keep the x-update well posed). A must be linear.

    The penalty: give ``rho`` (the lecture) or ``denoiser_sigma`` (Chung et al. 2023's baseline: rho =
    1 / denoiser_sigma^2); sigma_d, the denoiser's level, defaults to 1/sqrt(rho) (the MAP pairing).
    shape: the image batch shape (N, C, H, W), default (len(y), *op.shape). x0: the start, default A^T y.
    Each x-update runs at most ``cg_iters`` conjugate-gradient steps (tol 1e-10), warm-started at the last x."""
    if (rho is None) == (denoiser_sigma is None):
        raise ValueError("give the ADMM penalty as exactly one of rho= and denoiser_sigma= (rho = 1 / sigma^2)")
    if not getattr(op, "linear", True):
        raise TypeError("PnP-ADMM's x-update needs a linear operator")
    rho = 1.0 / denoiser_sigma**2 if rho is None else rho
    sigma_d = 1.0 / math.sqrt(rho) if sigma_d is None else sigma_d
    sigma_y = max(float(sigma_y), 1e-6)
    shape = (y.shape[0], *op.shape) if shape is None else shape
    x = _init(op, y, shape, x0)
    v, u = x.clone(), torch.zeros_like(x)
    aty = op.adjoint(y, like=x) / sigma_y**2
    normal = lambda z: op.adjoint(op(z), like=z) / sigma_y**2 + rho * z  # noqa: E731
    trace = {"change": [], "psnr": []}
    for k in progress_bar(range(iters), desc="PnP-ADMM", disable=not progress, leave=False):
        prev = v
        x = cg(normal, aty + rho * (v - u), x0=x, iters=cg_iters, tol=1e-10)
        with torch.no_grad():
            v = denoiser(x + u, sigma_d)
        u = u + x - v
        _check(v, k, "PnP-ADMM")
        _log(trace, v, prev, reference)
    return Reconstruction(v, nfe=iters, trace=trace)


def red_steepest_descent(denoiser: Denoiser, op, y: torch.Tensor, sigma_y: float, *, lam: float, sigma_d: float,
                         iters: int, shape, mu: float | None = None, x0: torch.Tensor | None = None,
                         reference: torch.Tensor | None = None) -> Reconstruction:
    """RED by steepest descent; mu defaults to 1 / (||A||^2 / sigma_y^2 + lambda), the inverse Lipschitz constant of
    the data gradient plus that of lambda (I - D) for a non-expansive-residual denoiser."""
    x = _init(op, y, shape, x0)
    if mu is None:
        mu = 1.0 / (operator_norm_sq(op, x) / sigma_y**2 + lam)
    trace = {"change": [], "psnr": []}
    for k in range(iters):
        prev = x
        with torch.no_grad():
            d = denoiser(x, sigma_d)
        grad = op.adjoint(op(x) - y, like=x) / sigma_y**2 + lam * (x - d)
        x = x - mu * grad
        _check(x, k, "RED (steepest descent)")
        _log(trace, x, prev, reference)
    return Reconstruction(x, nfe=iters, trace=trace)


def red_fixed_point(denoiser: Denoiser, op, y: torch.Tensor, sigma_y: float, *, lam: float, sigma_d: float,
                    iters: int, shape, x0: torch.Tensor | None = None, cg_iters: int = 30,
                    reference: torch.Tensor | None = None) -> Reconstruction:
    """RED fixed-point iteration: one linear solve (conjugate gradients) per denoiser call."""
    x = _init(op, y, shape, x0)
    aty = op.adjoint(y, like=x) / sigma_y**2
    normal = lambda z: op.adjoint(op(z), like=z) / sigma_y**2 + lam * z  # noqa: E731
    trace = {"change": [], "psnr": []}
    for k in range(iters):
        prev = x
        with torch.no_grad():
            d = denoiser(x, sigma_d)
        x = cg(normal, aty + lam * d, x0=x, iters=cg_iters, tol=1e-10)
        _check(x, k, "RED (fixed point)")
        _log(trace, x, prev, reference)
    return Reconstruction(x, nfe=iters, trace=trace)


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
