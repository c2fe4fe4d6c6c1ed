"""Linear forward models of DPS (Chung et al. 2023) and DDRM, with adjoints and, where cheap, an exact SVD.

(One module of ~540 lines on purpose: the blurs, super-resolution and inpainting share the separable-matrix and
real-Fourier SVD machinery below, and DDRM relies on their common coefficient layout.)

Registered names (``make_operator(name, **kw)``):

  super_resolution           bicubic downsampling with antialiasing (the Shocher-style resizer DPS uses); SVD from
                             the SVDs of the two 1-D resize matrices (A = R_h (x) R_w per channel)
  gaussian_blur, motion_blur, uniform_blur
                             convolution with the DPS boundary handling: reflect-pad by K//2 (no edge repeat,
                             "dcb|abcd|cba", torch's ReflectionPad2d) then a valid 2-D cross-correlation with the
                             kernel, each channel separately. The shared facts do not state the padding; this is the
                             released code as we recall it (nn.ReflectionPad2d(K//2) + Conv2d(groups=3)). It is not
                             circulant; the Gaussian blur is separable (kernel and padding factor over the axes) and
                             gets an exact SVD from two 1-D SVDs (DDRM's separable treatment); motion blur has none.
  gaussian_blur_circular, motion_blur_circular, uniform_blur_circular
                             the same kernels with periodic boundaries: a circulant operator with an exact real SVD
                             via the FFT, for DDRM/SNIPS. It equals the reflect version away from the border (K//2
                             pixels). Use these for SVD-based samplers and say so when comparing with DPS numbers.
  inpainting, box_inpainting, random_inpainting
                             y = mask * x (the full image with zeros where missing, as DPS); SVD = a permutation
  denoising                  the identity (DDRM's denoising task)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from replicate import seeding
from replicate.operators.base import Operator, register_operator
from replicate.operators.kernels import gaussian_kernel, motion_blur_kernel, uniform_kernel

Shape = tuple[int, int, int]
DEFAULT_SHAPE: Shape = (3, 256, 256)


def _shape(shape) -> Shape:
    if len(shape) != 3:
        raise ValueError(f"shape must be (C, H, W), got {shape}")
    return tuple(int(s) for s in shape)


# ============================================================================================ super-resolution


def cubic(d: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB imresize's 'bicubic'); support |d| < 2."""
    ad = d.abs()
    near = ((a + 2) * ad**3 - (a + 3) * ad**2 + 1) * (ad <= 1)
    far = (a * ad**3 - 5 * a * ad**2 + 8 * a * ad - 4 * a) * ((ad > 1) & (ad < 2))
    return near + far


def resize_matrix(in_len: int, out_len: int | None = None, scale: float | None = None,
                  antialias: bool = True) -> torch.Tensor:
    """(out_len, in_len) float64 matrix of 1-D bicubic resizing, in the MATLAB-imresize / Shocher-resizer style.

    * Output pixel i (1-based) is centred at input coordinate u_i = i / s + (1 - 1/s) / 2 - (out - in*s) / (2 s),
      with pixel j's centre at j (1-based): the pixel grids are aligned at their outer edges.
    * Downscaling (s < 1) with antialiasing stretches the kernel by 1/s, k_s(d) = s * cubic(s d), so each output
      averages over the footprint of the input pixels it covers (support 4/s input pixels) -- a low-pass filter
      before subsampling, which is what suppresses aliasing.
    * The weights of each row are normalised to sum one (so constants are preserved exactly).
    * Boundary: taps that fall outside [1, in_len] are mirrored with the edge sample repeated ("cba|abc|cba"),
      i.e. symmetric (half-sample) extension, and their weights are added to the mirrored pixel.
    """
    if scale is None and out_len is None:
        raise ValueError("give out_len or scale")
    if scale is None:
        scale = out_len / in_len
    if out_len is None:
        out_len = int(math.ceil(in_len * scale))
    aa = antialias and scale < 1.0
    width = 4.0 / scale if aa else 4.0
    i = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = (i - (out_len - in_len * scale) / 2.0) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    j = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # 1-based input positions
    d = u[:, None] - j
    w = scale * cubic(scale * d) if aa else cubic(d)
    w = w / w.sum(dim=1, keepdim=True)
    # symmetric extension: 0-based index folded onto the period 2n sequence 0..n-1, n-1..0
    j0 = (j - 1).long() % (2 * in_len)
    j0 = torch.where(j0 >= in_len, 2 * in_len - 1 - j0, j0)
    R = torch.zeros(out_len, in_len, dtype=torch.float64)
    R.scatter_add_(1, j0, w)
    return R


class SeparableOperator(Operator):
    """A = R_h (x) R_w applied per channel, Y_c = R_h X_c R_w^T, with the exact SVD from the two 1-D SVDs.

    Used by bicubic super-resolution and by separable convolutions with reflect boundaries (the DPS Gaussian
    blur: reflect-padding and the 61 x 61 Gaussian both factor over the axes), which is how DDRM handles
    Gaussian deblurring ("separable 1-D convolutions" for the SVD).
    """

    linear = True
    svd_available = True

    def _init_separable(self, Rh: torch.Tensor, Rw: torch.Tensor) -> None:
        c, h, w = self.shape
        self.out_hw = (Rh.shape[0], Rw.shape[0])
        self.register_buffer("Rh", Rh, persistent=False)
        self.register_buffer("Rw", Rw, persistent=False)
        # SVD of each factor; full V (H x H) so V spans the whole input space (null space included)
        Uh, sh, Vh_T = torch.linalg.svd(Rh, full_matrices=True)
        Uw, sw, Vw_T = torch.linalg.svd(Rw, full_matrices=True)
        for name, t in (("Uh", Uh), ("Vh", Vh_T.T), ("Uw", Uw), ("Vw", Vw_T.T)):
            self.register_buffer(name, t, persistent=False)
        ro, co = min(Rh.shape), min(Rw.shape)
        self._rc = (ro, co)
        self.register_buffer("_s", torch.outer(sh, sw).expand(c, ro, co).reshape(-1).clone(), persistent=False)
        # spectral layout: coefficient (c, a, b) of V_h[:, a] (x) V_w[:, b]; the (a < ro, b < co) block pairs with s
        self.register_buffer("_perm", self._block_perm((c, h, w), ro, co), persistent=False)
        self.register_buffer("_inv_perm", torch.argsort(self._perm), persistent=False)
        ho, wo = self.out_hw
        self.register_buffer("_uperm", self._block_perm((c, ho, wo), ro, co), persistent=False)
        self.register_buffer("_inv_uperm", torch.argsort(self._uperm), persistent=False)

    @staticmethod
    def _block_perm(shape, ro: int, co: int) -> torch.Tensor:
        block = torch.zeros(shape, dtype=torch.bool)
        block[:, :ro, :co] = True
        flat = torch.arange(block.numel())
        return torch.cat([flat[block.reshape(-1)], flat[~block.reshape(-1)]])

    @property
    def measurement_dim(self) -> int:
        return self.shape[0] * self.out_hw[0] * self.out_hw[1]

    def _m(self, name: str, like: torch.Tensor) -> torch.Tensor:
        return getattr(self, name).to(dtype=like.dtype, device=like.device)

    def forward(self, x):
        return self._m("Rh", x) @ x @ self._m("Rw", x).T

    def adjoint(self, y, like=None):
        return self._m("Rh", y).T @ y @ self._m("Rw", y)

    def V_T(self, x):
        z = self._m("Vh", x).T @ x @ self._m("Vw", x)
        return z.reshape(x.shape[0], -1)[:, self._perm.to(x.device)]

    def V(self, z):
        c, h, w = self.shape
        img = z[:, self._inv_perm.to(z.device)].reshape(-1, c, h, w)
        return self._m("Vh", z) @ img @ self._m("Vw", z).T

    def U_T(self, y):
        z = self._m("Uh", y).T @ y @ self._m("Uw", y)
        return z.reshape(y.shape[0], -1)[:, self._uperm.to(y.device)]

    def U(self, z):
        c = self.shape[0]
        img = z[:, self._inv_uperm.to(z.device)].reshape(-1, c, *self.out_hw)
        return self._m("Uh", z) @ img @ self._m("Uw", z).T

    def singulars(self):
        return self._s


@register_operator("super_resolution")
class SuperResolution(SeparableOperator):
    """y = bicubic downsampling of x by ``factor`` (with antialiasing), per channel: Y_c = R_h X_c R_w^T."""

    def __init__(self, factor: int = 4, shape=DEFAULT_SHAPE, antialias: bool = True):
        super().__init__()
        self.factor = int(factor)
        self.shape = _shape(shape)
        _, h, w = self.shape
        self._init_separable(resize_matrix(h, scale=1.0 / factor, antialias=antialias),
                             resize_matrix(w, scale=1.0 / factor, antialias=antialias))


def reflect_conv_matrix(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n, n) matrix of 1-D cross-correlation with the odd kernel g after ReflectionPad(len(g) // 2)."""
    p = g.numel() // 2
    if p >= n:
        raise ValueError(f"reflect padding {p} needs a signal longer than {p}, got {n}")
    src = torch.arange(-p, n + p)
    src = torch.where(src < 0, -src, src)
    src = torch.where(src >= n, 2 * (n - 1) - src, src)
    M = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):  # n <= a few hundred: built once
        M[i].index_add_(0, src[i : i + g.numel()], g.to(torch.float64))
    return M


# ========================================================================================== convolutions


class _RealFourier:
    """A real orthonormal basis of R^{H x W} built from the orthonormal 2-D DFT.

    Per channel the coefficients are [Re X_k for self-conjugate k (k = -k mod (H, W), at most 4),
    sqrt2 Re X_k and sqrt2 Im X_k for one representative k of each conjugate pair]. Since x is real, X_{-k} =
    conj X_k, and the map is an isometry onto R^{HW}: a real SVD basis for circulant operators.
    """

    def __init__(self, h: int, w: int):
        k1, k2 = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        f = (k1 * w + k2).reshape(-1)
        partner = (((-k1) % h) * w + (-k2) % w).reshape(-1)
        self.h, self.w = h, w
        self.self_conj = f[partner == f]
        self.rep = f[f < partner]
        self.rep_partner = partner[self.rep]

    def layout(self, v: torch.Tensor) -> torch.Tensor:
        """A per-frequency real quantity (..., H, W) in coefficient layout (..., HW)."""
        v = v.reshape(*v.shape[:-2], -1)
        return torch.cat([v[..., self.self_conj], v[..., self.rep], v[..., self.rep]], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        X = torch.fft.fft2(x, norm="ortho").reshape(*x.shape[:-2], -1)
        r2 = math.sqrt(2.0)
        coef = torch.cat([X[..., self.self_conj].real, r2 * X[..., self.rep].real, r2 * X[..., self.rep].imag], -1)
        return coef.reshape(x.shape[0], -1)

    def inverse(self, z: torch.Tensor, channels: int) -> torch.Tensor:
        z = z.reshape(z.shape[0], channels, -1)
        ns, nr = self.self_conj.numel(), self.rep.numel()
        a, b, c = z[..., :ns], z[..., ns : ns + nr], z[..., ns + nr :]
        cdtype = torch.complex128 if z.dtype == torch.float64 else torch.complex64
        X = torch.zeros(*z.shape[:2], self.h * self.w, dtype=cdtype, device=z.device)
        X[..., self.self_conj] = a.to(cdtype)
        Xr = torch.complex(b, c) / math.sqrt(2.0)
        X[..., self.rep] = Xr
        X[..., self.rep_partner] = Xr.conj()
        return torch.fft.ifft2(X.reshape(*z.shape[:2], self.h, self.w), norm="ortho").real


class Convolution(Operator):
    """y_c = k (star) x_c for each channel c: 2-D cross-correlation with an odd K x K kernel, "same" size output.

    boundary: "reflect" (DPS; ReflectionPad2d(K//2)), "zeros", or "circular" (periodic; exact FFT-SVD).
    """

    linear = True

    def __init__(self, kernel: torch.Tensor, boundary: str = "reflect", shape=DEFAULT_SHAPE):
        super().__init__()
        kernel = torch.as_tensor(kernel, dtype=torch.float64)
        if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
            raise ValueError(f"kernel must be a square K x K tensor with odd K, got {tuple(kernel.shape)}")
        if boundary not in ("reflect", "zeros", "circular"):
            raise ValueError(f"boundary must be 'reflect', 'zeros' or 'circular', got {boundary!r}")
        self.register_buffer("kernel", kernel, persistent=False)
        self.boundary = boundary
        self.shape = _shape(shape)
        self._spec: dict = {}

    @property
    def svd_available(self) -> bool:  # type: ignore[override]
        return self.boundary == "circular"

    def forward(self, x):
        c = x.shape[1]
        p = self.kernel.shape[0] // 2
        wgt = self.kernel.to(dtype=x.dtype, device=x.device).expand(c, 1, -1, -1)
        if self.boundary == "zeros":
            return F.conv2d(x, wgt, padding=p, groups=c)
        return F.conv2d(F.pad(x, (p, p, p, p), mode=self.boundary), wgt, groups=c)

    def adjoint(self, y, like=None):
        return super().adjoint(y, like=y)  # "same"-size output: the input has the measurement's shape

    # ---- circulant SVD: A = F* diag(lam) F, lam = DFT of the circulant's first column -------------------------
    def _spectrum(self):
        if "lam" not in self._spec:
            _, h, w = self.shape
            K = self.kernel.shape[0]
            p = K // 2
            # y[i] = sum_u k[u] x[i + u - p]  =>  first column col[(p - u) mod H] = k[u]
            rows = (p - torch.arange(K)) % h
            cols = (p - torch.arange(K)) % w
            col = torch.zeros(h, w, dtype=torch.float64)
            col.index_put_((rows[:, None].expand(K, K), cols[None, :].expand(K, K)), self.kernel, accumulate=True)
            lam = torch.fft.fft2(col)
            mag = lam.abs()
            tiny = mag <= 1e-300
            phase = torch.where(tiny, torch.ones_like(lam), lam / torch.where(tiny, torch.ones_like(mag), mag))
            rf = _RealFourier(h, w)
            self._spec.update(lam=lam, phase=phase, rf=rf,
                              s=rf.layout(mag).repeat(self.shape[0]))
        return self._spec

    def _check_svd(self):
        self._need_svd()
        return self._spectrum()

    def _allpass(self, x, conj: bool):
        X = torch.fft.fft2(x)
        ph = self._check_svd()["phase"].to(device=x.device, dtype=X.dtype)
        return torch.fft.ifft2(X * (ph.conj() if conj else ph)).real

    def V_T(self, x):
        return self._check_svd()["rf"].forward(x)

    def V(self, z):
        return self._check_svd()["rf"].inverse(z, self.shape[0])

    def U_T(self, y):
        # U = P V with P the all-pass circulant carrying the phase of lam (conjugate-symmetric, so P is real)
        return self.V_T(self._allpass(y, conj=True))

    def U(self, z):
        return self._allpass(self.V(z), conj=False)

    def singulars(self):
        return self._check_svd()["s"]


@register_operator("gaussian_blur")
class GaussianBlur(Convolution):
    """DPS Gaussian deblurring: 61 x 61 kernel, std 3.0, reflect boundary.

    With the reflect boundary the operator is separable, A = R (x) R with R the 1-D reflect-padded Gaussian
    filter, so it has an exact SVD through ``SeparableOperator`` (DDRM's separable treatment)."""

    def __init__(self, kernel_size: int = 61, std: float = 3.0, boundary: str = "reflect", shape=DEFAULT_SHAPE):
        super().__init__(gaussian_kernel(kernel_size, std), boundary=boundary, shape=shape)
        self.kernel_size, self.std = kernel_size, std
        self._sep = None
        if boundary == "reflect":
            k = self.kernel
            g = k.sum(1)  # the 1-D factor: k = outer(g, g) with g summing to one
            if torch.allclose(torch.outer(g, g), k, atol=1e-14):
                _, h, w = self.shape
                sep = SeparableOperator()
                sep.shape = self.shape
                sep._init_separable(reflect_conv_matrix(h, g), reflect_conv_matrix(w, g))
                self._sep = sep

    @property
    def svd_available(self) -> bool:  # type: ignore[override]
        return self.boundary == "circular" or self._sep is not None

    def V_T(self, x):
        return self._sep.V_T(x) if self._sep is not None else super().V_T(x)

    def V(self, z):
        return self._sep.V(z) if self._sep is not None else super().V(z)

    def U_T(self, y):
        return self._sep.U_T(y) if self._sep is not None else super().U_T(y)

    def U(self, z):
        return self._sep.U(z) if self._sep is not None else super().U(z)

    def singulars(self):
        return self._sep.singulars() if self._sep is not None else super().singulars()


@register_operator("motion_blur")
class MotionBlur(Convolution):
    """DPS motion deblurring: a random 61 x 61 trajectory kernel of intensity 0.5 (seeded), reflect boundary."""

    def __init__(self, kernel_size: int = 61, intensity: float = 0.5, seed: int = 0, boundary: str = "reflect",
                 shape=DEFAULT_SHAPE):
        super().__init__(motion_blur_kernel(kernel_size, intensity, seed=seed), boundary=boundary, shape=shape)
        self.kernel_size, self.intensity, self.seed = kernel_size, intensity, seed


@register_operator("uniform_blur")
class UniformBlur(Convolution):
    """size x size box blur (PnP/RED-style deblurring experiments)."""

    def __init__(self, size: int = 5, boundary: str = "reflect", shape=DEFAULT_SHAPE):
        super().__init__(uniform_kernel(size), boundary=boundary, shape=shape)
        self.size = size


@register_operator("gaussian_blur_circular")
class GaussianBlurCircular(GaussianBlur):
    """GaussianBlur with periodic boundaries: circulant, exact FFT-SVD (for DDRM / SNIPS)."""

    def __init__(self, kernel_size: int = 61, std: float = 3.0, shape=DEFAULT_SHAPE):
        super().__init__(kernel_size, std, boundary="circular", shape=shape)


@register_operator("motion_blur_circular")
class MotionBlurCircular(MotionBlur):
    """MotionBlur with periodic boundaries: circulant, exact FFT-SVD (for DDRM / SNIPS)."""

    def __init__(self, kernel_size: int = 61, intensity: float = 0.5, seed: int = 0, shape=DEFAULT_SHAPE):
        super().__init__(kernel_size, intensity, seed, boundary="circular", shape=shape)


@register_operator("uniform_blur_circular")
class UniformBlurCircular(UniformBlur):
    def __init__(self, size: int = 5, shape=DEFAULT_SHAPE):
        super().__init__(size, boundary="circular", shape=shape)


# ============================================================================================== masks


@register_operator("inpainting")
class Inpainting(Operator):
    """y = mask * x: the full-size image with zeros where pixels are missing (as DPS).

    ``masks``: (n, 1 or C, H, W) with 1 = observed; n = 1 broadcasts over the batch, otherwise image i of the
    batch uses mask i. SVD: A = diag(mask), so U = V = the permutation putting observed entries first, s = 1.
    """

    linear = True
    svd_available = True

    def __init__(self, masks: torch.Tensor, shape=DEFAULT_SHAPE):
        super().__init__()
        self.shape = _shape(shape)
        masks = torch.as_tensor(masks).to(torch.float64)
        if masks.ndim == 3:
            masks = masks[None]
        masks = masks.expand(masks.shape[0], *self.shape).contiguous()
        if not torch.all((masks == 0) | (masks == 1)):
            raise ValueError("masks must be binary (1 = observed, 0 = missing)")
        self.register_buffer("masks", masks, persistent=False)
        kept = masks.reshape(masks.shape[0], -1).sum(1)
        if not torch.all(kept == kept[0]):
            raise ValueError("every mask of the batch must observe the same number of entries (one SVD layout)")
        self.r = int(kept[0])
        flat = masks.reshape(masks.shape[0], -1)
        # stable sort: observed entries first, each group in raster order
        perm = torch.argsort(1 - flat, dim=1, stable=True)
        self.register_buffer("_perm", perm, persistent=False)
        self.register_buffer("_inv_perm", torch.argsort(perm, dim=1), persistent=False)

    def _mask(self, x):
        if self.masks.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"operator holds {self.masks.shape[0]} masks, got a batch of {x.shape[0]}")
        return self.masks.to(dtype=x.dtype, device=x.device)

    def forward(self, x):
        return x * self._mask(x)

    def adjoint(self, y, like=None):
        return y * self._mask(y)

    def _idx(self, idx, n):
        return idx.expand(n, -1) if idx.shape[0] == 1 else idx

    def V_T(self, x):
        return x.reshape(x.shape[0], -1).gather(1, self._idx(self._perm, x.shape[0]).to(x.device))

    def V(self, z):
        return z.gather(1, self._idx(self._inv_perm, z.shape[0]).to(z.device)).reshape(-1, *self.shape)

    U_T = V_T
    U = V

    def singulars(self):
        return torch.ones(self.r, dtype=torch.float64)


def box_mask(box: int, margin: int, hw: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """(H, W) mask with a box x box hole whose top-left corner is uniform over positions that keep the whole box
    at least ``margin`` pixels from every border (DPS: 128 x 128 box, margin 16)."""
    h, w = hw
    if box + 2 * margin > min(h, w):
        raise ValueError(f"a {box} px box with margin {margin} does not fit in {h} x {w}")
    t = int(torch.randint(margin, h - margin - box + 1, (1,), generator=gen))
    left = int(torch.randint(margin, w - margin - box + 1, (1,), generator=gen))
    m = torch.ones(h, w, dtype=torch.float64)
    m[t : t + box, left : left + box] = 0.0
    return m


def random_mask(missing: float, hw: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """(H, W) mask with exactly floor(missing * H * W) pixels missing (all channels), chosen uniformly."""
    h, w = hw
    n_missing = int(missing * h * w)
    m = torch.ones(h * w, dtype=torch.float64)
    m[torch.randperm(h * w, generator=gen)[:n_missing]] = 0.0
    return m.reshape(h, w)


@register_operator("box_inpainting")
class BoxInpainting(Inpainting):
    """DPS box inpainting: a 128 x 128 hole, random location per image (margin 16).

    Image ``first_index + i`` of the batch gets its box from seeding.generator(seed, "box_inpainting", index), so a
    mask depends only on (seed, image index), not on how the images are batched.
    """

    def __init__(self, box: int = 128, margin: int = 16, seed: int = 0, shape=DEFAULT_SHAPE, n_images: int = 1,
                 first_index: int = 0):
        shape = _shape(shape)
        masks = torch.stack([box_mask(box, margin, shape[1:], seeding.generator(seed, "box_inpainting", i))
                             for i in range(first_index, first_index + n_images)])[:, None]
        super().__init__(masks, shape=shape)
        self.box, self.margin, self.seed = box, margin, seed


@register_operator("random_inpainting")
class RandomInpainting(Inpainting):
    """DPS random inpainting: 92% of the pixels missing (all RGB channels of a pixel together), per-image mask."""

    def __init__(self, missing: float = 0.92, seed: int = 0, shape=DEFAULT_SHAPE, n_images: int = 1,
                 first_index: int = 0):
        shape = _shape(shape)
        masks = torch.stack([random_mask(missing, shape[1:], seeding.generator(seed, "random_inpainting", i))
                             for i in range(first_index, first_index + n_images)])[:, None]
        super().__init__(masks, shape=shape)
        self.missing, self.seed = missing, seed


# ============================================================================================== identity


@register_operator("denoising")
class Denoising(Operator):
    """A = I (DDRM's denoising task): U = V = I, every singular value is one."""

    linear = True
    svd_available = True

    def __init__(self, shape=DEFAULT_SHAPE):
        super().__init__()
        self.shape = _shape(shape)

    def forward(self, x):
        return x

    def adjoint(self, y, like=None):
        return y

    def V_T(self, x):
        return x.reshape(x.shape[0], -1)

    def V(self, z):
        return z.reshape(-1, *self.shape)

    U_T = V_T
    U = V

    def singulars(self):
        return torch.ones(self.input_dim, dtype=torch.float64)
