"""Classical Fourier phase retrieval: error reduction (ER), hybrid input-output (HIO, Fienup 1982) and
oversampling smoothness (OSS, Rodriguez et al. 2013), for ``PhaseRetrieval`` measurements y = |F(pad(z))|.

The unknown is the padded signal g (per channel); the support S is the un-padded image window, where the signal
must also lie in the value range [lo, hi] (our operator's "pm1" convention: z = x - 1/2 in [-1/2, 1/2]).
  Fourier step (all):  g' = F^-1( y * exp(i angle(F g)) )
  ER:   g = P_S(g')  (g' inside S, clipped to the range, zero outside)
  HIO:  g = g' where the object constraints hold, g - beta g' elsewhere       (beta = 0.9, App. D.2)
  OSS:  HIO, then the outside-support region is replaced by a Gaussian-smoothed copy whose width shrinks from the
        array size to ~1 pixel over the iterations (Rodriguez et al.: 10 stages; here a geometric decay)
DPS (App. D.2) runs 10,000 iterations and keeps the best of 4 random restarts by measurement residual
(``best_of``). The returned estimate is only defined up to the trivial ambiguities of the measurement (translation
and conjugate flip): we do not register it against the ground truth, as the paper's metrics presumably did not.
"""
from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from replicate.operators.nonlinear import PhaseRetrieval, fft2_centred


def ifft2_centred(X: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(X, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def _smooth(g: torch.Tensor, width: float) -> torch.Tensor:
    """Gaussian low-pass of g with a frequency-domain filter of std ``width`` pixels (OSS's outside smoothing)."""
    h, w = g.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=g.dtype, device=g.device)
    fx = torch.fft.fftfreq(w, dtype=g.dtype, device=g.device)
    filt = torch.exp(-2 * math.pi**2 * width**2 * (fy[:, None] ** 2 + fx[None, :] ** 2))
    return torch.fft.ifft2(torch.fft.fft2(g) * filt).real


def fienup(operator: PhaseRetrieval, y: torch.Tensor, shape, *, method: str = "hio", iters: int = 10000,
           beta: float = 0.9, generator: torch.Generator, restarts: int = 4, progress: bool = False) -> dict:
    """Best-of-``restarts`` reconstruction. Returns {"x": (N, C, H, W) on [0, 1], "residual": (N,)}."""
    if method not in ("er", "hio", "oss"):
        raise ValueError(f"method must be 'er', 'hio' or 'oss', got {method!r}")
    n, (c, h, w) = y.shape[0], shape
    ph, pw = operator.pad_for(h), operator.pad_for(w)
    lo, hi = (-0.5, 0.5) if operator.input_range == "pm1" else (0.0, 1.0)
    offset = 0.5 if operator.input_range == "pm1" else 0.0
    H, W = h + 2 * ph, w + 2 * pw
    support = torch.zeros(H, W, dtype=torch.bool, device=y.device)
    support[ph : ph + h, pw : pw + w] = True
    best_x, best_r = None, None
    for k in range(restarts):
        g = (torch.rand((n, c, H, W), generator=generator, dtype=y.dtype) * (hi - lo) + lo).to(y.device) * support
        for i in tqdm(range(iters), desc=f"{method.upper()} {k + 1}/{restarts}", disable=not progress, leave=False):
            G = fft2_centred(g)
            gp = ifft2_centred(y * torch.exp(1j * torch.angle(G))).real
            ok = support & (gp >= lo) & (gp <= hi)
            if method == "er":
                g = torch.where(support, gp.clamp(lo, hi), torch.zeros_like(gp))
            else:
                g = torch.where(ok, gp, g - beta * gp)
                if method == "oss":
                    width = max(1.0, H * (1.0 / H) ** (i / max(iters - 1, 1)))
                    g = torch.where(support, g, _smooth(g, width))
        # final object-domain projection, then the measurement residual decides between restarts
        z = torch.where(support, g, torch.zeros_like(g)).clamp(lo, hi)[..., ph : ph + h, pw : pw + w]
        x = z + offset
        r = (operator(x) - y).flatten(1).norm(dim=1)
        if best_x is None:
            best_x, best_r = x, r
        else:
            better = r < best_r
            best_x = torch.where(better.view(-1, 1, 1, 1), x, best_x)
            best_r = torch.minimum(r, best_r)
    return {"x": best_x, "residual": best_r}
