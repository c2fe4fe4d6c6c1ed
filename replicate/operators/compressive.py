"""Compressive sensing with random orthonormal measurements, y = Q^T vec(x) (Q: n x m, Q^T Q = I), with the SVD
interface SNIPS/DDRM use (replicate.operators.base).

All singular values are 1 (H = I_m [I 0] V^T with V = [Q, Q_perp]).  Rather than store the n x n orthogonal
complement Q_perp, V_T returns the redundant but exact split [Q^T x, x - Q Q^T x]: m measured coefficients followed
by the null-space component as a full image (n more coordinates), and V(z) = Q z_m + P_null z_rest, so that
V(V_T(x)) = x.  Samplers that add noise to the null-space coordinates get P_null z after V, the right thing.
Q is drawn from a seeded Gaussian matrix (QR), one per image size and ratio; per-channel for colour images.
"""
from __future__ import annotations

import torch

from replicate import seeding
from replicate.operators.base import Operator, register_operator


@register_operator("compressive_sensing")
class RandomOrthogonalProjection(Operator):
    linear = True
    svd_available = True

    def __init__(self, ratio: float = 0.125, seed: int = 0, shape=(1, 64, 64)):
        super().__init__()
        c, h, w = (int(v) for v in shape)
        self.shape, self.ratio, self.seed = (c, h, w), float(ratio), int(seed)
        n = h * w
        m = int(round(ratio * n))
        if not 0 < m <= n:
            raise ValueError(f"ratio {ratio} gives {m} measurements of {n} pixels")
        if n > 128 * 128:
            raise ValueError(f"a dense {n} x {m} measurement matrix for {h}x{w} images is too large; crop the images")
        g = torch.randn(n, m, generator=seeding.generator(seed, "compressive_sensing", h, w, m), dtype=torch.float64)
        q, _ = torch.linalg.qr(g)
        self.register_buffer("Q", q.float(), persistent=False)
        self.m = m

    def _flat(self, x):
        return x.reshape(x.shape[0], x.shape[1], -1)

    def forward(self, x):
        return self._flat(x) @ self.Q.to(x.dtype)                    # (N, C, m)

    def adjoint(self, y, like=None):
        c, h, w = self.shape
        return (y @ self.Q.to(y.dtype).T).reshape(y.shape[0], c, h, w)

    def pseudo_inverse(self, y, rcond: float = 1e-10):
        return self.adjoint(y)                                        # Q^T Q = I

    @property
    def measurement_dim(self) -> int:
        return self.shape[0] * self.m

    def singulars(self):
        return torch.ones(self.measurement_dim, dtype=self.Q.dtype, device=self.Q.device)

    def U_T(self, y):
        return y.reshape(y.shape[0], -1)

    def U(self, z):
        return z.reshape(z.shape[0], self.shape[0], self.m)

    def V_T(self, x):
        coef = self.forward(x)
        null = x - self.adjoint(coef)
        return torch.cat([coef.reshape(x.shape[0], -1), null.reshape(x.shape[0], -1)], dim=1)

    def V(self, z):
        c, h, w = self.shape
        k = c * self.m
        coef = z[:, :k].reshape(z.shape[0], c, self.m)
        null = z[:, k:].reshape(z.shape[0], c, h, w)
        null = null - self.adjoint(self.forward(null))                # P_null
        return self.adjoint(coef) + null
