"""Measurement matrices M with orthonormal columns (M^T M = I), for Kadkhodaie & Simoncelli 2021, Sec. 3, and
compressive sensing.

The constrained sampler (Algorithm 2) assumes "the measurement matrix has singular values that are equal to one
(i.e. columns of M are orthogonal unit vectors, and thus M^T M = I)", so that M is the pseudo-inverse of M^T and
M M^T projects an image onto the measurement subspace. Every operator here acts on image batches (N, C, H, W):

    op.M_T(x)     -> (N, m)        measurements x_c = M^T x
    op.M(c)       -> (N, C, H, W)  M c (back-projection of measurements)
    op.project(x) -> (N, C, H, W)  M M^T x (the "least-squares" images of the paper's figures)
    op.as_matrix()-> (D, m)        dense M, D = C*H*W (tests on small images only)

In the terms of replicate.operators.base these are linear operators A = M^T whose rows are orthonormal: A A^T = I,
all singular values are 1, and the pseudo-inverse is the adjoint. ``OrthonormalOperator`` is an ``Operator``:
forward = M^T (measurements laid out ``measurement_shape``, (m,) unless a subclass says otherwise), adjoint = M,
pseudo_inverse = M, singulars() = m ones, U = the identity (reshaped), and V_T / V the redundant split
[M^T x, x - M M^T x] of base.py's docstring. Note: ``as_matrix()`` keeps this module's convention and returns
M = A^T (D x m), not A (m x D) as ``Operator.as_matrix`` does. Each operator is registered by name in the one
registry: ``make_operator("random_pixels", shape=(1, 40, 40), keep=0.1, seed=0)``.

Internal tensors are kept in float64 (unless said otherwise) and cast to the input's dtype and device on use.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from replicate import seeding
from replicate.operators.base import Operator, register_operator

Shape = tuple[int, int, int]


class OrthonormalOperator(Operator):
    """A linear operator A = M^T whose rows are orthonormal: A A^T = I, singular values all 1, pseudo-inverse = adjoint.

    Subclasses implement M_T and M; m is the number of measurements (columns of M, rows of A).
    """

    m: int
    linear = True
    svd_available = True

    def __init__(self, shape):
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"shape must be (C, H, W), got {shape}")
        self.shape: Shape = tuple(int(s) for s in shape)
        self.D = int(np.prod(self.shape))
        self._cache: dict = {}

    def _as(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        # cache one copy per (dtype, device) so large matrices are not re-cast on every sampler step
        key = (id(t), like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = t.to(dtype=like.dtype if like.is_floating_point() else torch.float64,
                                    device=like.device)
        return self._cache[key]

    def _check_image(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"{type(self).__name__} expects images (N, {', '.join(map(str, self.shape))}), "
                             f"got {tuple(x.shape)}")

    def _check_meas(self, c: torch.Tensor) -> None:
        if c.ndim != 2 or c.shape[1] != self.m:
            raise ValueError(f"{type(self).__name__} expects measurements (N, {self.m}), got {tuple(c.shape)}")

    def M_T(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def M(self, c: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """M M^T x: orthogonal projection onto the measurement subspace."""
        return self.M(self.M_T(x))

    def as_matrix(self, dtype=torch.float64) -> torch.Tensor:
        """Dense (D, m) matrix M = A^T, built by applying M to the identity (small images only).

        (The transpose of ``Operator.as_matrix``, which gives A: this module's convention, M with orthonormal
        columns.)"""
        if self.D * self.m > 5e7:
            raise ValueError(f"dense M would have {self.D}x{self.m} entries; use a smaller image")
        eye = torch.eye(self.m, dtype=dtype)
        return self.M(eye).reshape(self.m, self.D).T

    # ------------------------------------------------------------------------------- the Operator interface
    @property
    def measurement_shape(self) -> tuple[int, ...]:
        """Layout of one measurement as ``forward`` returns it (M_T always gives it flattened, (N, m))."""
        return (self.m,)

    @property
    def measurement_dim(self) -> int:
        return self.m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A x = M^T x, laid out (N, *measurement_shape)."""
        return self.M_T(x).reshape(x.shape[0], *self.measurement_shape)

    def adjoint(self, y: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        """A^T y = M y (y in the layout of ``forward`` or flattened)."""
        return self.M(y.reshape(y.shape[0], -1))

    def pseudo_inverse(self, y: torch.Tensor, rcond: float = 1e-10) -> torch.Tensor:
        """A^+ y = A^T y = M y (A A^T = I)."""
        return self.adjoint(y)

    def singulars(self) -> torch.Tensor:
        return torch.ones(self.m, dtype=torch.float64)

    def U_T(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(y.shape[0], -1)

    def U(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(z.shape[0], *self.measurement_shape)

    def V_T(self, x: torch.Tensor) -> torch.Tensor:
        """[M^T x, x - M M^T x]: the m measured coefficients, then the null-space component as a full image (m + D
        coordinates, the redundant split of base.py's docstring; V(V_T(x)) = x)."""
        coef = self.M_T(x)
        null = x - self.M(coef)
        return torch.cat([coef, null.reshape(x.shape[0], -1)], dim=1)

    def V(self, z: torch.Tensor) -> torch.Tensor:
        """M z_m + P_null z_rest (P_null = I - M M^T), the inverse of V_T on images."""
        coef = z[:, : self.m]
        null = z[:, self.m :].reshape(z.shape[0], *self.shape)
        null = null - self.M(self.M_T(null))
        return self.M(coef) + null

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, m={self.m})"


class _SubsetOfIdentity(OrthonormalOperator):
    """M = columns of the identity at the kept (flattened C*H*W) indices: M^T x gathers, M c scatters."""

    def __init__(self, shape, keep_mask: torch.Tensor):
        super().__init__(shape)
        keep_mask = keep_mask.reshape(self.shape).bool()
        self.mask = keep_mask
        self.index = torch.nonzero(keep_mask.flatten(), as_tuple=False).flatten()  # sorted, distinct
        self.m = int(self.index.numel())

    def M_T(self, x):
        self._check_image(x)
        return x.flatten(1)[:, self.index.to(x.device)]

    def M(self, c):
        self._check_meas(c)
        out = c.new_zeros(c.shape[0], self.D)
        out[:, self.index.to(c.device)] = c
        return out.reshape(c.shape[0], *self.shape)


@register_operator("inpaint_block")
class BlockInpainting(_SubsetOfIdentity):
    """Keeps every pixel except a hole x hole block (all channels); paper Fig. 3-4 use a 30 x 30 hole.

    The hole covers rows [cy - hole_h // 2, cy - hole_h // 2 + hole_h) (same for columns), with the centre
    (cy, cx) defaulting to (H // 2, W // 2) -- for even holes the same block as the original code's
    mask[c1 - h/2 : c1 + h/2].
    """

    def __init__(self, shape, hole=30, center=None):
        C, H, W = shape
        hh, hw = (hole, hole) if isinstance(hole, int) else tuple(hole)
        cy, cx = (H // 2, W // 2) if center is None else center
        r0, c0 = cy - hh // 2, cx - hw // 2
        if r0 < 0 or c0 < 0 or r0 + hh > H or c0 + hw > W:
            raise ValueError(f"hole {hh}x{hw} centred at {(cy, cx)} does not fit in a {H}x{W} image")
        keep = torch.ones(C, H, W, dtype=torch.bool)
        keep[:, r0:r0 + hh, c0:c0 + hw] = False
        super().__init__(shape, keep)
        self.hole, self.center = (hh, hw), (cy, cx)


@register_operator("random_pixels")
class RandomPixels(_SubsetOfIdentity):
    """Keeps a random subset of exactly round(keep * count) entries (paper Fig. 5: keep = 0.1 or 0.3).

    per_channel=True (default) follows the original code, whose mask is Bernoulli(p) drawn independently for
    every (channel, row, column) entry, so a colour pixel may be seen in some channels and not others.
    per_channel=False keeps the same spatial locations in all channels. Unlike the original's Bernoulli draw
    we keep an exact count, so m is known in advance.
    """

    def __init__(self, shape, keep=0.3, seed=0, per_channel=True):
        if not 0 < keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        C, H, W = shape
        g = torch.Generator().manual_seed(int(seed))
        n = C * H * W if per_channel else H * W
        chosen = torch.randperm(n, generator=g)[: int(round(keep * n))]
        mask = torch.zeros(n, dtype=torch.bool)
        mask[chosen] = True
        mask = mask.reshape(C, H, W) if per_channel else mask.reshape(1, H, W).expand(C, H, W)
        super().__init__(shape, mask)
        self.keep, self.seed, self.per_channel = keep, seed, per_channel


@register_operator("block_average")
class BlockAverage(OrthonormalOperator):
    """Spatial super-resolution by factor x factor block averaging (paper Fig. 6, factor 4).

    Each column of M is a box over one block of one channel with value 1/factor, i.e. unit norm (as the
    original's kernel ones/||ones||), so the columns are orthonormal. M^T x = factor * avg_pool(x) and
    M M^T x = nearest-upsampled avg_pool(x).
    """

    def __init__(self, shape, factor=4):
        super().__init__(shape)
        C, H, W = self.shape
        if H % factor or W % factor:
            raise ValueError(f"image size {H}x{W} is not divisible by factor {factor}; crop it first")
        self.factor = int(factor)
        self.low_shape = (C, H // factor, W // factor)
        self.m = int(np.prod(self.low_shape))

    def M_T(self, x):
        self._check_image(x)
        return (F.avg_pool2d(x, self.factor) * self.factor).flatten(1)

    def M(self, c):
        self._check_meas(c)
        low = c.reshape(c.shape[0], *self.low_shape) / self.factor
        return low.repeat_interleave(self.factor, dim=2).repeat_interleave(self.factor, dim=3)


def _real_fourier_basis(n: int) -> tuple[torch.Tensor, np.ndarray]:
    """Orthonormal real DFT basis (rows) of length n and each row's integer frequency |k|.

    Rows: constant; sqrt(2/n) cos(2 pi k t / n) and sqrt(2/n) sin(2 pi k t / n) for 0 < k < n/2; the
    alternating Nyquist row for even n. These span exactly the same spaces as the conjugate pairs
    (k, -k) of the orthonormal complex FFT, so a low-pass selection reproduces the FFT mask projection.
    """
    t = torch.arange(n, dtype=torch.float64)
    rows, freqs = [torch.full((n,), 1 / math.sqrt(n), dtype=torch.float64)], [0]
    for k in range(1, (n - 1) // 2 + 1):
        rows += [math.sqrt(2 / n) * torch.cos(2 * math.pi * k * t / n),
                 math.sqrt(2 / n) * torch.sin(2 * math.pi * k * t / n)]
        freqs += [k, k]
    if n % 2 == 0 and n > 1:
        rows.append((-1.0) ** t / math.sqrt(n))
        freqs.append(n // 2)
    return torch.stack(rows), np.asarray(freqs)


def dct_matrix(n: int, dtype=torch.float64) -> torch.Tensor:
    """Orthonormal DCT-II matrix (rows = basis vectors): coefficients = B @ signal (= scipy dct(norm='ortho'))."""
    t = torch.arange(n, dtype=torch.float64)
    k = torch.arange(n, dtype=torch.float64)[:, None]
    B = math.sqrt(2.0 / n) * torch.cos(math.pi * (t + 0.5) * k / n)
    B[0] /= math.sqrt(2.0)
    return B.to(dtype)


def _dct_basis(n: int) -> tuple[torch.Tensor, np.ndarray]:
    """Orthonormal DCT-II basis (rows; equals scipy.fft.dct(norm='ortho')); row k has frequency k/(2n)."""
    return dct_matrix(n), np.arange(n)


@register_operator("low_frequencies")
class LowFrequencies(OrthonormalOperator):
    """Spectral super-resolution / deblurring: keep the lowest-frequency round(keep*H*W) coefficients per channel.

    M must be real with orthonormal columns, so the coefficients are those of a separable real orthonormal
    basis B_h (x) B_w (Kronecker product of orthogonal matrices is orthogonal):
      * basis="fourier" (default): cos/sin pairs of the orthonormal DFT. The original code masks the
        orthonormal FFT to a low-pass set symmetric in +-k; that projection is exactly M M^T here whenever
        the kept set contains whole (|k1|, |k2|) groups. It is periodic (ringing wraps around the border).
      * basis="dct": orthonormal DCT-II (symmetric extension, no wrap-around).
    Coefficients are ranked by radial frequency sqrt((f1/H)^2 + (f2/W)^2) (cycles/pixel, compared exactly in
    integers); ties at the cut-off are broken by flattened index, so the count is exact. m = C * round(keep*H*W).
    """

    def __init__(self, shape, keep=0.1, basis="fourier"):
        super().__init__(shape)
        if not 0 < keep <= 1:
            raise ValueError(f"keep must be in (0, 1], got {keep}")
        C, H, W = self.shape
        make = {"fourier": _real_fourier_basis, "dct": _dct_basis}
        if basis not in make:
            raise ValueError(f"basis must be 'fourier' or 'dct', got {basis!r}")
        self.Bh, fh = make[basis](H)
        self.Bw, fw = make[basis](W)
        # (f1/H)^2 + (f2/W)^2 scaled by H^2 W^2 -> exact integer ranking
        r2 = (fh[:, None].astype(np.int64) * W) ** 2 + (fw[None, :].astype(np.int64) * H) ** 2
        order = np.lexsort((np.arange(H * W), r2.ravel()))
        k = int(round(keep * H * W))
        if k < 1:
            raise ValueError(f"keep={keep} keeps no coefficient of a {H}x{W} image")
        sel = torch.from_numpy(np.sort(order[:k]))
        # the same spatial-frequency set in every channel
        self.index = (torch.arange(C)[:, None] * (H * W) + sel[None, :]).flatten()
        self.keep, self.basis, self.m = keep, basis, C * k

    def M_T(self, x):
        self._check_image(x)
        coeffs = self._as(self.Bh, x) @ x @ self._as(self.Bw, x).T
        return coeffs.flatten(1)[:, self.index.to(x.device)]

    def M(self, c):
        self._check_meas(c)
        z = c.new_zeros(c.shape[0], self.D)
        z[:, self.index.to(c.device)] = c
        z = z.reshape(c.shape[0], *self.shape)
        return self._as(self.Bh, c).T @ z @ self._as(self.Bw, c)


@register_operator("compressive_sensing")
class RandomProjection(OrthonormalOperator):
    """Compressive sensing: M = Q of a reduced QR of a standard Gaussian matrix (as the original code), M^T M = I.

    Give exactly one of m (the number of measurements, op.m) or keep (a fraction; ``ratio`` is the same, the
    lecture configuration's name for it). Dense, so only for small images.

    Two constructions, both kept because committed results use each; for the same seed they draw different
    matrices, so pick the one a result was made with:
      * "per_channel" (default; the lecture's SNIPS task, formerly operators/compressive.py
        ``RandomOrthogonalProjection``): one (H*W) x m_c matrix Q applied to every channel, m_c = round(keep*H*W)
        (or m / C), m = C * m_c. The Gaussian is drawn from seeding.generator(seed, "compressive_sensing", H, W,
        m_c), QR signs as LAPACK returns them, and Q is stored in float32 (float64 inputs use the float32-rounded
        Q, as before). ``forward`` lays the measurements out (N, C, m_c); M_T gives them flattened (N, C*m_c).
        At most 128 x 128 pixels.
      * "whole_image" (Kadkhodaie & Simoncelli 2021 experiments): one D x m matrix over all D = C*H*W entries,
        m = round(keep * D). The Gaussian is drawn from torch.Generator().manual_seed(seed), the QR sign ambiguity
        fixed (positive diagonal of R), Q kept in float64; measurements (N, m). Raises if D * m > 5e7 (e.g. a
        1x64x64 image with m <= 12000 is fine).
    In both, V_T / V are the redundant split [M^T x, x - M M^T x] (base.py), exact without storing a basis of the
    null space.
    """

    MAX_ENTRIES = 5e7
    MAX_PIXELS = 128 * 128
    CONSTRUCTIONS = ("per_channel", "whole_image")

    def __init__(self, shape, m=None, seed=0, keep=None, *, ratio=None, construction: str = "per_channel"):
        super().__init__(shape)
        if ratio is not None:
            if keep is not None:
                raise ValueError("keep and ratio are the same setting: give one")
            keep = ratio
        if (m is None) == (keep is None):
            raise ValueError("give exactly one of m (number of measurements) or keep / ratio (fraction)")
        if construction not in self.CONSTRUCTIONS:
            raise ValueError(f"construction must be one of {self.CONSTRUCTIONS}, got {construction!r}")
        self.construction, self.seed, self.keep = construction, seed, keep
        if construction == "whole_image":
            m = int(round(keep * self.D)) if m is None else int(m)
            if not 0 < m <= self.D:
                raise ValueError(f"m must be in [1, D={self.D}], got {m}")
            if self.D * m > self.MAX_ENTRIES:
                raise ValueError(f"RandomProjection is dense: D*m = {self.D}*{m} > {self.MAX_ENTRIES:.0e} entries; "
                                 "use a smaller crop (e.g. 1x64x64) or fewer measurements")
            g = torch.Generator().manual_seed(int(seed))
            Q, R = torch.linalg.qr(torch.randn(self.D, m, generator=g, dtype=torch.float64))
            # fix the sign ambiguity of QR so the basis is a deterministic function of the seed
            self.register_buffer("Q", Q * torch.sign(torch.diagonal(R))[None, :], persistent=False)
            self.m, self.m_channel = m, None
        else:
            c, h, w = self.shape
            n = h * w
            if m is None:
                mc = int(round(keep * n))
                if not 0 < mc <= n:
                    raise ValueError(f"ratio {keep} gives {mc} measurements of {n} pixels")
            else:
                if int(m) % c or not 0 < int(m) // c <= n:
                    raise ValueError(f"per_channel: m must be C * m_c with 1 <= m_c <= H*W = {n}, got m={m}, C={c}")
                mc = int(m) // c
            if n > self.MAX_PIXELS:
                raise ValueError(f"a dense {n} x {mc} measurement matrix for {h}x{w} images is too large; "
                                 "crop the images")
            g = torch.randn(n, mc, generator=seeding.generator(int(seed), "compressive_sensing", h, w, mc),
                            dtype=torch.float64)
            q, _ = torch.linalg.qr(g)
            self.register_buffer("Q", q.float(), persistent=False)
            self.m, self.m_channel = c * mc, mc

    @property
    def measurement_shape(self) -> tuple[int, ...]:
        return (self.m,) if self.m_channel is None else (self.shape[0], self.m_channel)

    def singulars(self):
        return torch.ones(self.measurement_dim, dtype=self.Q.dtype, device=self.Q.device)

    def M_T(self, x):
        self._check_image(x)
        if self.m_channel is None:
            return x.flatten(1) @ self._as(self.Q, x)
        return (x.reshape(x.shape[0], x.shape[1], -1) @ self._as(self.Q, x)).reshape(x.shape[0], -1)

    def M(self, c):
        self._check_meas(c)
        if self.m_channel is None:
            return (c @ self._as(self.Q, c).T).reshape(c.shape[0], *self.shape)
        per_channel = c.reshape(c.shape[0], self.shape[0], self.m_channel)
        return (per_channel @ self._as(self.Q, c).T).reshape(c.shape[0], *self.shape)
