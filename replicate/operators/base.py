"""Forward models y = A(x) for the diffusion / plug-and-play inverse-problem papers (DPS, DDRM, SNIPS, PnP).

Conventions (project-wide, see replicate/denoisers/base.py):
  * images x are (N, C, H, W) tensors on the [0, 1] scale; ``A(x)`` is differentiable in x;
  * measurements are in "[0, 1] units": for a linear A, ``A(x)`` is exactly A applied to the [0, 1] image. The DPS
    code applies its operators to [-1, 1] images; for a linear A that is ``2 A x - A 1``, an affine map of ours, so
    residuals differ by the factor 2 only. The noise models (replicate.noise) say which scale their sigma refers to.

Linear operators additionally give ``adjoint(y) = A^T y``. Those with a cheap singular value decomposition
A = U diag(s) V^T (what DDRM and SNIPS need) set ``svd_available`` and expose, with n = C*H*W input coefficients,
m = measurement dimension and r = len(singulars()) <= min(n, m):

    V_T(x)  (N, C, H, W) -> (N, n)   spectral coefficients of x; the first r pair with singulars()
    V(z)    (N, n)       -> (N, C, H, W)
    U_T(y)  measurement  -> (N, m)   the first r pair with singulars()
    U(z)    (N, m)       -> measurement
    singulars()          -> (r,)     singular values (zeros allowed), in the layout of the first r coefficients

so that ``A x = U(pad_m(s * V_T(x)[:, :r]))`` (the layout DDRM's H_functions use). ``pseudo_inverse(y)`` is
V diag(1/s) U^T y, with singular values below ``rcond * max(s)`` treated as zero (the minimum-norm least-squares
solution).

Where an orthonormal basis of A's null space is not cheap (the orthonormal operators), V_T may return n' > n
coordinates, the redundant but exact split [V_r^T x, x - V_r V_r^T x] (the r measured coefficients, then the
null-space component as a full image), with V(z) = V_r z_r + P_null z_rest: V(V_T(x)) = x, and noise added to the
null-space coordinates reaches the image as P_null z, the same distribution as orthonormal null-space coordinates.

One hierarchy, one registry: every operator is an ``Operator`` registered here by name (``register_operator``), in
replicate/operators/linear.py (DPS / DDRM linear models), nonlinear.py (phase retrieval, non-uniform blur) and
orthonormal.py (``OrthonormalOperator``: rows orthonormal, A A^T = I, all singular values 1, the measurement
matrices of Kadkhodaie & Simoncelli 2021 and compressive sensing). They are created by name, as in the DPS code:
``make_operator("super_resolution", factor=4)``, ``make_operator("random_pixels", shape=(1, 40, 40), keep=0.1)``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

OPERATORS: dict[str, type] = {}


def register_operator(name: str) -> Callable[[type], type]:
    """Class decorator: make the operator constructible by ``make_operator(name, **kw)``."""

    def deco(cls: type) -> type:
        if name in OPERATORS and OPERATORS[name] is not cls:
            raise ValueError(f"operator name {name!r} is already registered to {OPERATORS[name].__name__}")
        OPERATORS[name] = cls
        cls.registered_name = name
        return cls

    return deco


def make_operator(name: str, **kwargs) -> "Operator":
    """The registered operator ``name`` built with keyword arguments (``shape=(C, H, W)`` where it needs one)."""
    _load_builtin()
    if name not in OPERATORS:
        raise KeyError(f"unknown operator {name!r}; known: {', '.join(sorted(OPERATORS))}")
    return OPERATORS[name](**kwargs)


def registered_operators() -> dict[str, type]:
    """Every registered operator class by name (the built-in operator modules loaded)."""
    _load_builtin()
    return dict(OPERATORS)


def _load_builtin() -> None:
    # the operator modules register themselves on import; importing here avoids a circular import at load time.
    # Every module that registers an operator is listed here, so no caller needs an import for its side effect.
    from replicate.operators import linear, nonlinear, orthonormal  # noqa: F401


class Operator(nn.Module):
    """A(x). Subclasses implement ``forward``; linear ones may override ``adjoint`` and the SVD methods."""

    linear: bool = False
    svd_available: bool = False
    registered_name: str = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------- linear part
    def adjoint(self, y: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        """A^T y. Default: the vector-Jacobian product of the linear map at 0 (exact, since A is linear).

        ``like`` is an input-shaped tensor (needed because the default cannot infer the input shape from y
        unless the operator stores it in ``self.shape``)."""
        if not self.linear:
            raise TypeError(f"{type(self).__name__} is not linear: it has no adjoint")
        if like is None:
            shape = getattr(self, "shape", None)
            if shape is None:
                raise ValueError("pass like= (an input-shaped tensor) to the default adjoint")
            like = torch.zeros((y.shape[0], *shape), dtype=y.dtype, device=y.device)
        with torch.enable_grad():
            x0 = torch.zeros_like(like, dtype=y.dtype).requires_grad_(True)
            (g,) = torch.autograd.grad(self.forward(x0), x0, grad_outputs=y)
        return g

    def _need_svd(self) -> None:
        if not self.svd_available:
            raise NotImplementedError(f"{type(self).__name__} has no SVD interface (svd_available=False)")

    def V_T(self, x: torch.Tensor) -> torch.Tensor:
        self._need_svd()
        raise NotImplementedError

    def V(self, z: torch.Tensor) -> torch.Tensor:
        self._need_svd()
        raise NotImplementedError

    def U_T(self, y: torch.Tensor) -> torch.Tensor:
        self._need_svd()
        raise NotImplementedError

    def U(self, z: torch.Tensor) -> torch.Tensor:
        self._need_svd()
        raise NotImplementedError

    def singulars(self) -> torch.Tensor:
        self._need_svd()
        raise NotImplementedError

    def pseudo_inverse(self, y: torch.Tensor, rcond: float = 1e-10) -> torch.Tensor:
        """A^+ y = V diag(1/s) U^T y: the minimum-norm least-squares solution of A x = y."""
        self._need_svd()
        s = self.singulars().to(y.device)
        coef = self.U_T(y)
        s = s.to(coef.dtype)
        keep = s > rcond * s.max()
        inv = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
        n = self.input_dim
        z = torch.zeros(coef.shape[0], n, dtype=coef.dtype, device=coef.device)
        z[:, : s.numel()] = coef[:, : s.numel()] * inv
        return self.V(z)

    def svd_apply(self, x: torch.Tensor) -> torch.Tensor:
        """U diag(s) V^T x, i.e. A x computed through the SVD (tests check it equals forward)."""
        self._need_svd()
        s = self.singulars().to(device=x.device)
        coef = self.V_T(x)
        s = s.to(coef.dtype)
        z = torch.zeros(coef.shape[0], self.measurement_dim, dtype=coef.dtype, device=coef.device)
        z[:, : s.numel()] = coef[:, : s.numel()] * s
        return self.U(z)

    @property
    def input_dim(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def measurement_dim(self) -> int:  # overridden where A changes the size
        return self.input_dim

    def as_matrix(self, shape=None, dtype=torch.float64) -> torch.Tensor:
        """Dense matrix of a linear A (rows: flattened measurements, columns: flattened C*H*W pixels); small only."""
        if not self.linear:
            raise TypeError(f"{type(self).__name__} is not linear")
        shape = tuple(shape or self.shape)
        n = int(torch.tensor(shape).prod())
        if n > 4096:
            raise ValueError(f"dense matrix for {n} pixels is too large; use a smaller shape")
        eye = torch.eye(n, dtype=dtype).reshape(n, *shape)
        return self.forward(eye).reshape(n, -1).T

    def extra_repr(self) -> str:
        return f"linear={self.linear}, svd_available={self.svd_available}"
