"""The sparse-DCT prior baseline of Kadkhodaie & Simoncelli 2021, Fig. 8 (compressive sensing).

The paper compares its denoiser prior with "a sparse discrete cosine transform (DCT) prior" for recovery from random
orthogonal projections, without naming the solver. We use the textbook one: l1-regularised least squares on the
orthonormal 2-D DCT coefficients a of the image x = Psi a (Psi = inverse DCT, per channel),

    minimise_a  0.5 ||M^T Psi a - x_c||^2 + lam ||a||_1,

solved by FISTA (Beck & Teboulle 2009) with soft thresholding. M has orthonormal columns and Psi is orthogonal, so
||M^T Psi|| <= 1 and the step size 1 is safe (Lipschitz constant of the gradient <= 1). A gradient step is then
"project the image onto the measurement constraint": Psi a + M (x_c - M^T Psi a) = P_C(Psi a). The threshold is
lowered along a decreasing path (continuation, warm starts), and the returned image is P_C(Psi a): it satisfies the
(noise-free) measurements exactly, as the denoiser-prior restorations do to within sigma_L.

The threshold is chosen without the ground truth, by K-fold cross-validation on held-out measurements: the
measurements are split into K folds; for each fold the path is solved from the other folds and the held-out
residual ||M_k^T x_hat - x_c,k||^2 is recorded; the lam with the smallest total held-out residual wins (pooled over
the batch of images at one measurement ratio, or per image). Because M's columns are orthonormal, leaving columns out
still gives an operator with orthonormal columns, and the held-out columns are orthogonal to the fitted ones (so the
projection onto the fitted constraint does not touch the held-out residual).

Works with any operator of replicate.operators.orthonormal through its dense matrix M (small images only). A
solver, not an operator: it lives with the solvers; the DCT basis (``dct_matrix``) is the operators' (the
low-frequency operator's DCT basis), re-exported here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from replicate.operators.orthonormal import dct_matrix

__all__ = ["DCT2", "SparseDCTResult", "dct_matrix", "fista_path", "fold_masks", "oracle", "project_onto_measurements",
           "recover", "soft_threshold"]


class DCT2:
    """Separable orthonormal 2-D DCT of (..., H, W) arrays, each channel on its own."""

    def __init__(self, height: int, width: int, dtype=torch.float64, device=None):
        self.Bh = dct_matrix(height, dtype).to(device)
        self.Bw = dct_matrix(width, dtype).to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.Bh @ x @ self.Bw.T

    def inverse(self, a: torch.Tensor) -> torch.Tensor:
        return self.Bh.T @ a @ self.Bw


def soft_threshold(a: torch.Tensor, lam) -> torch.Tensor:
    """prox of lam ||.||_1: shrink every coefficient towards 0 by lam (lam broadcasts against a)."""
    return torch.sign(a) * torch.clamp(a.abs() - lam, min=0.0)


def fista_path(Q: torch.Tensor, xc: torch.Tensor, shape, lambdas, *, iters: int = 150,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """FISTA along a decreasing threshold path (warm starts). Returns the images Psi a, shape (L, n, C, H, W).

    Q: (D, m) dense M with orthonormal columns; xc: (n, m) measurements; lambdas: L thresholds, decreasing;
    mask: optional (n, m) 0/1 weights choosing which measurements each row is fitted to (cross-validation).
    """
    C, H, W = shape
    n = xc.shape[0]
    dct = DCT2(H, W, dtype=Q.dtype, device=Q.device)
    w = torch.ones_like(xc) if mask is None else mask.to(xc.dtype)
    xc = xc * w

    def grad_step(coeffs):
        # a + Psi^T M (w * (x_c - M^T Psi a)): one gradient step of size 1 on the data term
        x = dct.inverse(coeffs)
        r = (xc - x.reshape(n, -1) @ Q) * w
        return coeffs + dct.forward((r @ Q.T).reshape(n, C, H, W))

    a = torch.zeros(n, C, H, W, dtype=Q.dtype, device=Q.device)
    out = []
    for lam in lambdas:
        z, t = a.clone(), 1.0  # restart the momentum at each threshold of the path
        for _ in range(iters):
            a_next = soft_threshold(grad_step(z), float(lam))
            t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
            z = a_next + ((t - 1.0) / t_next) * (a_next - a)
            a, t = a_next, t_next
        out.append(dct.inverse(a))
    return torch.stack(out)


def project_onto_measurements(Q: torch.Tensor, x: torch.Tensor, xc: torch.Tensor) -> torch.Tensor:
    """P_C(x) = x + M (x_c - M^T x): the closest image to x that satisfies the measurements exactly."""
    flat = x.reshape(x.shape[0], -1)
    return (flat + (xc - flat @ Q) @ Q.T).reshape(x.shape)


@dataclass
class SparseDCTResult:
    images: torch.Tensor      # (n, C, H, W) recoveries, projected onto the measurement constraint
    lam: torch.Tensor         # (n,) chosen threshold of each image
    lambdas: torch.Tensor     # (L,) the grid, decreasing
    cv_error: torch.Tensor    # (n, L) held-out squared residual per measurement, summed over folds


def fold_masks(m: int, folds: int, generator: torch.Generator) -> torch.Tensor:
    """(folds, m) 0/1 masks: row k is 0 on the k-th random fold of measurements (held out) and 1 elsewhere."""
    if not 2 <= folds <= m:
        raise ValueError(f"need 2 <= folds <= m, got folds={folds}, m={m}")
    order = torch.randperm(m, generator=generator)
    masks = torch.ones(folds, m, dtype=torch.float64)
    for k, held in enumerate(order.chunk(folds)):
        masks[k, held] = 0.0
    return masks


def recover(operator, measurements: torch.Tensor, *, lambdas, folds: int = 4, iters: int = 150,
            select: str = "pooled", seed: int = 0) -> SparseDCTResult:
    """Sparse-DCT recovery of n images from x_c = M^T x, threshold by K-fold cross-validation.

    operator: an orthonormal operator (replicate.operators.orthonormal) whose dense matrix fits in memory;
    measurements: (n, m); lambdas: the threshold grid (sorted decreasing here); select: "pooled" (one threshold for
    the whole batch, e.g. all images at one measurement ratio) or "per_image".
    """
    if select not in ("pooled", "per_image"):
        raise ValueError(f"select must be 'pooled' or 'per_image', got {select!r}")
    Q = operator.as_matrix(dtype=torch.float64)
    xc = measurements.to(torch.float64)
    n, m = xc.shape
    lams = torch.tensor(sorted({float(v) for v in lambdas}, reverse=True), dtype=torch.float64)
    if (lams <= 0).any():
        raise ValueError("thresholds must be positive")
    masks = fold_masks(m, folds, torch.Generator().manual_seed(seed))
    # all folds of all images in one batch: row (k, i) fits image i without fold k
    rows_mask = masks.repeat_interleave(n, dim=0)                       # (folds*n, m)
    path = fista_path(Q, xc.repeat(folds, 1), operator.shape, lams, iters=iters, mask=rows_mask)
    held_out = (1.0 - rows_mask)                                        # (folds*n, m)
    resid = ((path.reshape(len(lams), folds * n, -1) @ Q - xc.repeat(folds, 1)) * held_out).pow(2).sum(-1)
    cv = resid.reshape(len(lams), folds, n).sum(1).T / m                # (n, L)
    if select == "pooled":
        best = torch.full((n,), int(cv.sum(0).argmin()), dtype=torch.long)
    else:
        best = cv.argmin(1)
    # final fit with every measurement, along the same path down to the chosen threshold
    full = fista_path(Q, xc, operator.shape, lams[: int(best.max()) + 1], iters=iters)
    chosen = full[best, torch.arange(n)]
    images = project_onto_measurements(Q, chosen, xc)
    return SparseDCTResult(images=images, lam=lams[best], lambdas=lams, cv_error=cv)


def oracle(operator, measurements: torch.Tensor, truth: torch.Tensor, *, lambdas, iters: int = 150) -> SparseDCTResult:
    """The sparse-DCT recovery with the threshold of the path that is closest to the TRUE image (MSE), per image.

    Not a method (it needs the ground truth): an upper bound on what any threshold choice can give the DCT prior,
    so that a win of the denoiser prior cannot come from a poorly tuned baseline.
    """
    Q = operator.as_matrix(dtype=torch.float64)
    xc = measurements.to(torch.float64)
    lams = torch.tensor(sorted({float(v) for v in lambdas}, reverse=True), dtype=torch.float64)
    path = fista_path(Q, xc, operator.shape, lams, iters=iters)                  # (L, n, C, H, W)
    images = torch.stack([project_onto_measurements(Q, p, xc) for p in path])    # every point of the path, projected
    err = (images - truth.to(torch.float64)).pow(2).flatten(2).mean(-1)          # (L, n)
    best = err.argmin(0)
    n = xc.shape[0]
    return SparseDCTResult(images=images[best, torch.arange(n)], lam=lams[best], lambdas=lams, cv_error=err.T)
