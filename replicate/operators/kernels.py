"""Blur kernels of Chung et al. 2023 (DPS): a truncated Gaussian and random motion-blur trajectories.

All kernels are float64 (K, K) tensors, non-negative and summing to one.

* ``gaussian_kernel(61, 3.0)`` is the kernel DPS obtains by Gaussian-filtering a centred impulse with
  scipy.ndimage.gaussian_filter: a sampled Gaussian truncated at ``truncate * std`` (scipy's default 4.0, radius 12
  for std 3), each 1-D factor normalised to sum one, embedded in a K x K array. (If the truncation radius exceeds
  K // 2 we crop and renormalise, where scipy would fold the tails back by reflection; DPS's 61/3.0 is far from it.)
* ``motion_blur_kernel(61, 0.5, seed)`` (default ``family="levi"``) reimplements the generator DPS calls,
  ``motionblur.Kernel(size=(61, 61), intensity=0.5).kernelMatrix`` of LeviBorodenko/motionblur (motionblur.py),
  from that code's behaviour (written anew, not copied). What follows the original exactly:

  - the canvas is twice the kernel size (2K x 2K), its diagonal D = (x**2 + y**2)**0.5;
  - path length L = 0.75 D (U(0,1) + U(0, intensity**2));
  - steps are Beta(1, 30) (1 - intensity + 0.1) D, each kept only if shorter than L, drawn until their sum reaches
    L (so the last step overshoots L);
  - step *directions* (absolute angles, not turns): max angle A ~ U(0, intensity pi), jitter J ~ Beta(2, 20); the
    first angle is U(-A, A), each later one has magnitude Triangular(0, intensity A, A + 0.1) and flips the sign of
    the previous angle with probability J, else keeps it (np.sign semantics: a zero angle propagates zeros, so
    intensity 0 gives a straight line);
  - the vertices are the cumulative sums of the steps (the origin is not a vertex), centred on their unweighted mean,
    rotated by U(0, pi) and moved to the canvas centre (x + iy) / 2;
  - rasterisation with Pillow as the original does it: a white polyline of width int(D / 150) (1 px for K = 61) on a
    black 8-bit canvas (pixels painted, not accumulated; parts leaving the canvas are clipped), Pillow's
    GaussianBlur(radius=int(0.01 D)), a LANCZOS resize to K x K, 8-bit values; then division by the sum.
    For K < 54 the original's width int(D / 150) is 0, which Pillow drew as a 1-px line until python-pillow/Pillow
    #9589 (2026; Pillow 13 here) made it draw nothing (an empty kernel, a division by zero): we draw width 1 there,
    what the original got. We draw on an "L" canvas with fill=255 where the original draws on "RGB" and converts to
    "L" at the end: for a grey image the two give identical bytes (checked on 300 paths), and it is 3x cheaper.

  What differs, and why:

  - the random stream: every draw comes from the explicit torch.Generator (seeded by ``seed``), in the original's
    order, instead of numpy's global RNG, so kernels are reproducible everywhere without touching global state but
    are not the original's kernels for a given numpy seed (the family - the distribution - is the same);
  - Beta(1, 30) is drawn by inversion, 1 - (1 - u)**(1/30), and the original's rejection of steps >= L by inverting
    the same law truncated at L (the identical distribution with one uniform per step and no unbounded rejection
    loop); Beta(2, 20) as the 2nd smallest of 21 uniforms; Triangular by numpy's own inversion formula;
  - the final normalisation is in float64 (the original divides in float32 and DPS casts to float32);
  - a guard the original lacks: L is floored at 1e-9 so that a path always has a step (L = 0 has probability 2**-106
    and would make the original divide by zero).
  The path arithmetic uses Python floats (math.cos/sin, IEEE double); Pillow truncates vertex coordinates to
  integers, so a last-bit difference between platforms' libm could move a pixel only when a coordinate falls on an
  integer to within ~1e-14 px. Pillow's line, blur and resize are integer/fixed-point code, stable across machines.

* ``motion_blur_kernel(..., family="described")`` keeps the earlier generator, written from a *description* of the
  original, for comparison: a turning random walk (cumulated turns) with length-proportional sub-pixel (bilinear)
  splatting, a Gaussian line width and shrinking to fit. It is an easier family: over seeds 0..39 its median radius
  of gyration is 7.2 px against the original's 12.3 px, its median sum k**2 0.0075 against 0.0115.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

MOTION_KERNEL_FAMILIES = ("levi", "described")


def _gaussian_1d(std: float, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / std) ** 2)
    return g / g.sum()


def gaussian_kernel(size: int = 61, std: float = 3.0, truncate: float = 4.0) -> torch.Tensor:
    """K x K Gaussian kernel, identical to scipy.ndimage.gaussian_filter(impulse, std) when the support fits."""
    if size < 1 or std <= 0:
        raise ValueError(f"need size >= 1 and std > 0, got size={size}, std={std}")
    radius = min(int(truncate * std + 0.5), size // 2)
    g = _gaussian_1d(std, radius)
    g = g / g.sum()
    k = torch.zeros(size, size, dtype=torch.float64)
    c = size // 2
    k[c - radius : c + radius + 1, c - radius : c + radius + 1] = torch.outer(g, g)
    return k / k.sum()


def uniform_kernel(size: int = 5) -> torch.Tensor:
    """size x size box filter (the uniform blur of the PnP/RED deblurring experiments)."""
    return torch.full((size, size), 1.0 / size**2, dtype=torch.float64)


def _beta_int(a: int, b: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Beta(a, b) draws for integer a, b: the a-th smallest of a + b - 1 uniforms (order statistics).

    Used because torch.distributions cannot take an explicit generator."""
    u = torch.rand(n, a + b - 1, generator=gen, dtype=torch.float64)
    return u.sort(dim=1).values[:, a - 1]


def _trajectory(size: int, intensity: float, gen: torch.Generator) -> torch.Tensor:
    """Vertices (P, 2) of a random trajectory in kernel pixel coordinates (row, col), centred in the kernel."""
    diag = math.sqrt(2.0) * size
    u = torch.rand(3, generator=gen, dtype=torch.float64)
    # total length: a uniform fraction of 3/4 of the kernel diagonal, longer on average for larger intensity
    # (floored at a fifth of the kernel so no kernel degenerates to a dot; shrunk below if it leaves the kernel)
    length = max(0.75 * diag * (u[0] + intensity**2 * u[1]).item(), 0.2 * size)
    # step lengths: many short steps (Beta(1, 30) fractions of the length) until the length is used up
    steps = []
    total = 0.0
    while total < length:
        s = _beta_int(1, 30, 1, gen).item() * length
        s = min(max(s, 1e-3), length - total)
        steps.append(s)
        total += s
    n = len(steps)
    # irregularity: the largest turn per step grows with the intensity (0: a straight line, 1: turns up to +-pi);
    # a Beta(2, 20) jitter adds occasional sharper turns
    max_turn = intensity * math.pi * u[2].item()
    jitter = _beta_int(2, 20, n, gen)
    turn = (2.0 * torch.rand(n, generator=gen, dtype=torch.float64) - 1.0) * max_turn * (1.0 + 4.0 * jitter)
    theta0 = 2.0 * math.pi * torch.rand(1, generator=gen, dtype=torch.float64)
    theta = theta0 + torch.cumsum(turn, 0)
    step_vec = torch.stack([torch.sin(theta), torch.cos(theta)], dim=1) * torch.tensor(steps, dtype=torch.float64)[:, None]
    pts = torch.cat([torch.zeros(1, 2, dtype=torch.float64), torch.cumsum(step_vec, 0)], 0)
    # centre the length-weighted centroid of the path so the blur does not shift the image on average
    mids = 0.5 * (pts[1:] + pts[:-1])
    w = torch.tensor(steps, dtype=torch.float64)[:, None]
    pts = pts - (mids * w).sum(0) / w.sum()
    # shrink if it would leave the kernel (keep a 1.5 px margin for the bilinear splat and the line width)
    half = (size - 1) / 2.0 - 1.5
    extent = pts.abs().max().item()
    if extent > half > 0:
        pts = pts * (half / extent)
    return pts + (size - 1) / 2.0


def _rasterise(pts: torch.Tensor, size: int, spacing: float = 0.25) -> torch.Tensor:
    """Draw the polyline with sub-pixel (bilinear) weights, each unit of length depositing unit mass."""
    k = torch.zeros(size * size, dtype=torch.float64)
    for a, b in zip(pts[:-1], pts[1:]):
        seg = (b - a).norm().item()
        m = max(1, math.ceil(seg / spacing))
        t = (torch.arange(m, dtype=torch.float64) + 0.5) / m
        p = a[None] + t[:, None] * (b - a)[None]
        r0, c0 = p[:, 0].floor(), p[:, 1].floor()
        fr, fc = p[:, 0] - r0, p[:, 1] - c0
        mass = seg / m
        for dr, dc, wgt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            rr, cc = (r0 + dr).long(), (c0 + dc).long()
            ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            k.index_add_(0, (rr * size + cc)[ok], (wgt * mass)[ok])
    return k.reshape(size, size)


def _described_kernel(size: int, intensity: float, generator: torch.Generator) -> torch.Tensor:
    """The earlier generator (``family="described"``): turning walk, bilinear splat, Gaussian line width."""
    pts = _trajectory(size, intensity, generator)
    k = _rasterise(pts, size)
    # a line width of ~1% of the diagonal (the original draws a thick line and blurs it a little)
    sigma = max(0.5, 0.01 * math.sqrt(2.0) * size)
    g = _gaussian_1d(sigma, max(1, int(3 * sigma + 0.5)))
    r = g.numel() // 2
    k = torch.nn.functional.conv2d(k[None, None], g.view(1, 1, -1, 1), padding=(r, 0))
    k = torch.nn.functional.conv2d(k, g.view(1, 1, 1, -1), padding=(0, r))[0, 0]
    return k.clamp(min=0.0)


# ---- the LeviBorodenko/motionblur family (family="levi", the default) ----

_LEVI_EPS = 0.1  # the original's "eps", added to the step scale and to the triangular's upper end


def _rand(gen: torch.Generator) -> float:
    """One U[0, 1) draw from ``gen`` as a Python float."""
    return torch.rand((), generator=gen, dtype=torch.float64).item()


def _uniform(gen: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * _rand(gen)  # numpy's uniform(low, high)


def _triangular(gen: torch.Generator, left: float, mode: float, right: float) -> float:
    """Triangular(left, mode, right) by inversion (numpy's formula)."""
    base = right - left
    u = _rand(gen)
    if u <= (mode - left) / base:
        return left + math.sqrt(u * (mode - left) * base)
    return right - math.sqrt((1.0 - u) * (right - mode) * base)


def _sign(a: float) -> float:
    return float((a > 0) - (a < 0))  # np.sign: 0 for 0


def _levi_canvas(size: int) -> tuple[int, float]:
    """Super-sampled canvas side (2K) and its diagonal, computed as the original does."""
    x = y = 2 * size
    return x, (x**2 + y**2) ** 0.5


def _levi_steps(diag: float, intensity: float, gen: torch.Generator) -> list[float]:
    """Step lengths Beta(1, 30) (1 - I + eps) D, each < L, until their sum reaches L = 0.75 D (U + U(0, I^2))."""
    max_len = 0.75 * diag * (_uniform(gen) + _uniform(gen, 0.0, intensity**2))
    max_len = max(max_len, 1e-9)  # guard (L = 0 has probability 2**-106): always at least one step
    scale = (1.0 - intensity + _LEVI_EPS) * diag
    # the original rejects steps >= L; drawing from Beta(1, 30) truncated at L by inversion is the same law:
    # F(x) = 1 - (1 - x / scale)**30 on [0, scale]
    f_max = 1.0 if max_len >= scale else 1.0 - (1.0 - max_len / scale) ** 30
    steps: list[float] = []
    total = 0.0
    while total < max_len:
        step = scale * (1.0 - (1.0 - _rand(gen) * f_max) ** (1.0 / 30.0))
        if step < max_len:  # always true but for rounding at the truncation point
            steps.append(step)
            total += step
    return steps


def _levi_angles(n: int, intensity: float, gen: torch.Generator) -> list[float]:
    """Absolute step directions: |angle| ~ Triangular(0, I A, A + eps), sign flipped w.p. J ~ Beta(2, 20)."""
    max_angle = _uniform(gen, 0.0, intensity * math.pi)
    jitter = _beta_int(2, 20, 1, gen).item()
    angles = [_uniform(gen, -max_angle, max_angle)]
    while len(angles) < n:
        angle = _triangular(gen, 0.0, intensity * max_angle, max_angle + _LEVI_EPS)
        if _rand(gen) < jitter:
            angle *= -_sign(angles[-1])
        else:
            angle *= _sign(angles[-1])
        angles.append(angle)
    return angles


def _levi_path(size: int, intensity: float, gen: torch.Generator) -> list[tuple[float, float]]:
    """Vertices (x = column, y = row) of the original's path on the 2K x 2K canvas."""
    x, diag = _levi_canvas(size)
    steps = _levi_steps(diag, intensity, gen)
    angles = _levi_angles(len(steps), intensity, gen)
    path: list[complex] = []
    z = 0j
    for r, a in zip(steps, angles):
        z = z + complex(r * math.cos(a), r * math.sin(a))
        path.append(z)
    com = sum(path) / len(path)  # unweighted mean of the vertices
    rot = _uniform(gen, 0.0, math.pi)
    turn = complex(math.cos(rot), math.sin(rot))
    centre = complex(x, x) / 2
    placed = [(p - com) * turn + centre for p in path]
    return [(w.real, w.imag) for w in placed]


def _levi_render(path: list[tuple[float, float]], size: int) -> torch.Tensor:
    """The original's rasterisation: 1-px white polyline on the 2K canvas, Pillow Gaussian blur, LANCZOS to K, 8 bit."""
    x, diag = _levi_canvas(size)
    img = Image.new("L", (x, x), 0)
    # int(D / 150) is 1 for K = 61 (DPS); it is 0 for K < 54, which Pillow drew as a 1-px line until
    # python-pillow/Pillow#9589 made it draw nothing (an empty kernel): we draw 1 px there, as the original got
    ImageDraw.Draw(img).line(xy=path, fill=255, width=max(1, int(diag / 150)))
    img = img.filter(ImageFilter.GaussianBlur(radius=int(diag * 0.01)))
    img = img.resize((size, size), resample=Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(img, dtype=np.float64).copy())


def _levi_kernel(size: int, intensity: float, generator: torch.Generator) -> torch.Tensor:
    return _levi_render(_levi_path(size, intensity, generator), size)


def motion_blur_kernel(size: int = 61, intensity: float = 0.5, seed: int | None = None,
                       generator: torch.Generator | None = None, family: str = "levi") -> torch.Tensor:
    """Random motion-blur kernel (K x K, non-negative, sums to one), reproducible from ``seed`` or ``generator``.

    ``family="levi"`` (default): the LeviBorodenko/motionblur generator DPS uses (see the module docstring);
    ``family="described"``: the project's earlier generator written from a description (kept for comparison)."""
    if family not in MOTION_KERNEL_FAMILIES:
        raise ValueError(f"family must be one of {MOTION_KERNEL_FAMILIES}, got {family!r}")
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"intensity must lie in [0, 1], got {intensity}")
    if size < 5:
        raise ValueError(f"motion-blur kernels need size >= 5, got {size}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    if family == "levi":
        k = _levi_kernel(size, float(intensity), generator)
    else:
        k = _described_kernel(size, intensity, generator)
    total = k.sum()
    if not total > 0:
        raise RuntimeError("empty motion-blur kernel (the path left the canvas)")  # unreachable: path is centred
    return k / total
