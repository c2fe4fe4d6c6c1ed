"""Blur kernels of Chung et al. 2023 (DPS): a truncated Gaussian and random motion-blur trajectories.

All kernels are float64 (K, K) tensors, non-negative and summing to one.

* ``gaussian_kernel(61, 3.0)`` is the kernel DPS obtains by Gaussian-filtering a centred impulse with
  scipy.ndimage.gaussian_filter: a sampled Gaussian truncated at ``truncate * std`` (scipy's default 4.0, radius 12
  for std 3), each 1-D factor normalised to sum one, embedded in a K x K array. (If the truncation radius exceeds
  K // 2 we crop and renormalise, where scipy would fold the tails back by reflection; DPS's 61/3.0 is far from it.)
* ``motion_blur_kernel(61, 0.5, seed)`` follows the *description* of the LeviBorodenko/motionblur generator the DPS
  code uses (kernel size 61, intensity 0.5): a random trajectory whose length and whose turning are controlled by the
  intensity, rasterised with sub-pixel weights, slightly blurred to give the line a width, normalised to sum one.
  It is written from that description, not ported, and it draws from an explicit torch.Generator, so the kernels are
  statistically of the same family but not bit-identical to the original's (which uses numpy's global RNG and PIL
  line drawing).
"""
from __future__ import annotations

import math

import torch


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


def motion_blur_kernel(size: int = 61, intensity: float = 0.5, seed: int | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Random motion-blur kernel (K x K, non-negative, sums to one), reproducible from ``seed`` or ``generator``."""
    if not 0.0 <= intensity <= 1.0:
        raise ValueError(f"intensity must lie in [0, 1], got {intensity}")
    if size < 5:
        raise ValueError(f"motion-blur kernels need size >= 5, got {size}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    pts = _trajectory(size, intensity, generator)
    k = _rasterise(pts, size)
    # a line width of ~1% of the diagonal (the original draws a thick line and blurs it a little)
    sigma = max(0.5, 0.01 * math.sqrt(2.0) * size)
    g = _gaussian_1d(sigma, max(1, int(3 * sigma + 0.5)))
    r = g.numel() // 2
    k = torch.nn.functional.conv2d(k[None, None], g.view(1, 1, -1, 1), padding=(r, 0))
    k = torch.nn.functional.conv2d(k, g.view(1, 1, 1, -1), padding=(0, r))[0, 0]
    k = k.clamp(min=0.0)
    return k / k.sum()
