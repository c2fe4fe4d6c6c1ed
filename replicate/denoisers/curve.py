"""A prior on a curve in the plane with its exact MMSE denoiser: Kadkhodaie & Simoncelli's 2-D toy (Fig. 10), where
the sampler's trajectories towards a one-dimensional manifold can be drawn."""
from __future__ import annotations

import math

import numpy as np
import torch


class CurvePrior(torch.nn.Module):
    """Kadkhodaie & Simoncelli 2021, Fig. 10's toy prior: x uniform (in arc length) on a smooth curve in the plane, with its exact MMSE denoiser.

    The curve is discretised into K arc-length-uniform points, so the prior is an equal-weight mixture of K deltas
    and E[x | y] is a softmax-weighted mean of the points (exact for the mixture; the spacing, ~length/K, is far below
    the smallest noise level used). Images are (N, 1, 1, 2) so that the samplers see a 2-pixel "image".
    Non-blind: it uses the sigma the sampler hands it (sigma_{t-1} = ||d_{t-1}|| / sqrt(2)).
    """

    blind = False

    def __init__(self, points: torch.Tensor):
        super().__init__()
        self.points = points.double()  # (K, 2)

    @classmethod
    def sine(cls, k: int = 4000, amplitude: float = 0.25):
        """A sine-shaped curve in the unit square sampled at `k` points equally spaced in arc length (Fig. 10's
        prior)."""
        def curve(s):
            return torch.stack([0.15 + 0.7 * s, 0.5 + amplitude * torch.sin(2 * math.pi * s)], 1)

        s = torch.linspace(0, 1, 50 * k, dtype=torch.float64)
        xy = curve(s)
        arc = torch.cat([torch.zeros(1, dtype=xy.dtype), (xy[1:] - xy[:-1]).norm(dim=1).cumsum(0)])
        # parameter values at equal arc-length steps (linear interpolation of the inverse arc-length map)
        s_eq = np.interp(np.linspace(0, float(arc[-1]), k), arc.numpy(), s.numpy())
        return cls(curve(torch.from_numpy(s_eq)))

    def log_density(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        """log p_sigma(y) up to a constant (the noisy-signal density, y = x + sigma n), y of shape (n, 2)."""
        d2 = torch.cdist(y.double(), self.points) ** 2
        return torch.logsumexp(-d2 / (2 * sigma**2), dim=1) - math.log(len(self.points)) - math.log(2 * math.pi * sigma**2)

    def forward(self, y: torch.Tensor, sigma) -> torch.Tensor:
        """The exact MMSE denoiser of the curve prior: a softmax-weighted mean of the curve's points."""
        v = y.reshape(y.shape[0], 2).double()
        s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1).expand(v.shape[0], 1)
        w = torch.softmax(-(torch.cdist(v, self.points) ** 2) / (2 * s**2), dim=1)
        return (w @ self.points).reshape(y.shape).to(y.dtype)

    def residual(self, y, sigma):
        """f(y) = D(y) - y, what the sampler steps along."""
        return self(y, sigma) - y

    def distance(self, y: torch.Tensor) -> torch.Tensor:
        """Distance of each point to the curve (how far a sample is from the prior's support)."""
        return torch.cdist(y.reshape(-1, 2).double(), self.points).min(dim=1).values
