"""Geometric noise ladders: the one function behind NCSNv2's sigma ladder, Song & Ermon's / SNIPS's annealing
levels and Kawar et al.'s levels below (or above) a measurement's noise level."""
from __future__ import annotations

import math

import torch


def geometric_ladder(sigma_hi: float, sigma_lo: float, *, count: int | None = None, rate: float | None = None,
                     include_hi: bool = True, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Decreasing geometric levels from sigma_hi down to sigma_lo, both ends grid points: a 1-D tensor
    exp(linspace(log sigma_hi, log sigma_lo, points)), linspace and exp computed in ``dtype``.

    Give exactly one of
      count: the number of points (NCSNv2's num_classes, Song & Ermon's L);
      rate:  the ratio of neighbouring levels instead (in (0, 1)): points = n + 1 with
             n = max(1, round(log(sigma_hi / sigma_lo) / -log(rate))), so the effective rate differs from the given
             one by less than one level over the whole ladder and both ends stay grid points (Kawar et al.: sigma0 is
             a point of NCSNv2's ladder).
    include_hi: False drops sigma_hi itself (the levels strictly below a measurement noise level sigma0).

    The callers: replicate.denoisers.ncsnv2.geometric_sigmas (count, float64, stored as float32),
    replicate.samplers.annealed_langevin.geometric_ladder (count, torch's default dtype),
    replicate.samplers.langevin.geometric_levels (rate, float64, include_hi=False).
    """
    if (count is None) == (rate is None):
        raise ValueError("give exactly one of count= and rate=")
    if rate is not None:
        if not 0 < rate < 1:
            raise ValueError(f"rate must be in (0, 1), got {rate}")
        if not sigma_hi > sigma_lo > 0:
            raise ValueError(f"need sigma_hi > sigma_lo > 0, got {sigma_hi}, {sigma_lo}")
        count = max(1, round(math.log(sigma_hi / sigma_lo) / -math.log(rate))) + 1
    elif not (sigma_hi > 0 and sigma_lo > 0):
        raise ValueError(f"noise levels must be positive, got {sigma_hi}, {sigma_lo}")
    levels = torch.exp(torch.linspace(math.log(sigma_hi), math.log(sigma_lo), count, dtype=dtype))
    return levels if include_hi else levels[1:]
