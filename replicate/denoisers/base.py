"""The one denoiser interface every prior in this project speaks.

Convention (project-wide):
  * images are float tensors of shape (N, C, H, W) with clean values in [0, 1];
  * sigma is the standard deviation of additive white Gaussian noise on that same
    [0, 1] scale, a Python float or a tensor of shape (N,) (one level per image);
  * ``D(y, sigma)`` returns an estimate of E[x | y = x + sigma n], n ~ N(0, I);
  * ``score(y, sigma) = (D(y, sigma) - y) / sigma^2`` (Tweedie / Miyasawa), the
    gradient of the log density of the noisy images at level sigma.

Networks trained with other conventions (inputs in [-1, 1], residual outputs,
sigma on the 0-255 scale, integer noise-level labels) are wrapped by the adapters
below so that the samplers never see those conventions.

Inputs are checked at the interface (``D(y, sigma)``, ``score``, ``residual``), with a one-line error that says
what to do: y must be a floating (N, C, H, W) tensor with finite values (integer images are refused: convert them
with replicate.data.to_float, i.e. x / 255 for 8-bit), sigma finite, >= 0 (> 0 for the score) and at most the
denoiser's ``max_sigma`` (1.0, the image range, unless the prior models larger levels: a level above the image range
is almost always a 0-255 level given by mistake). A network's own dtype is used inside, the input's dtype outside.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class DenoiserInputError(ValueError):
    """An input the denoiser interface refuses (the message says what to do)."""


def check_image(y: torch.Tensor, what: str = "denoiser input") -> None:
    """y is a floating (N, C, H, W) tensor with finite values; else DenoiserInputError naming where."""
    if not torch.is_tensor(y):
        raise DenoiserInputError(f"{what} must be a torch tensor, got {type(y).__name__}")
    if y.ndim != 4:
        raise DenoiserInputError(f"{what} must be a batch (N, C, H, W), got shape {tuple(y.shape)}")
    if not y.is_floating_point():
        raise DenoiserInputError(f"{what} has integer dtype {y.dtype}: images are floats in [0, 1]; convert 8-bit "
                                 f"images with replicate.data.to_float (x / 255)")
    bad = ~torch.isfinite(y)
    if bool(bad.any()):
        n, c, h, w = (int(i) for i in bad.nonzero()[0])
        raise DenoiserInputError(f"{what} has {int(bad.sum())} non-finite value(s) (NaN or inf), the first at image "
                                 f"{n}, channel {c}, row {h}, column {w}: fix or mask them before denoising")


def check_sigma(sigma, max_sigma: float = 1.0, *, positive: bool = False) -> None:
    """sigma (float or tensor) is finite, >= 0 (> 0 if positive) and <= max_sigma; else DenoiserInputError."""
    s = torch.as_tensor(sigma).detach()
    if not bool(torch.isfinite(s).all()):
        raise DenoiserInputError(f"sigma must be finite, got {sigma if s.ndim == 0 else s.tolist()}")
    low = float(s.min()) if s.numel() else 0.0
    if low < 0 or (positive and low == 0):
        raise DenoiserInputError(f"sigma must be {'> 0' if positive else '>= 0'}, got {low:g}"
                                 + (" (the score (D(y) - y) / sigma^2 has no limit at sigma = 0)" if positive else ""))
    high = float(s.max()) if s.numel() else 0.0
    if high > max_sigma:
        raise DenoiserInputError(f"sigma = {high:g} is above {max_sigma:g}, the largest noise level this denoiser "
                                 f"models on the [0, 1] image scale: a 0-255 level must be divided by 255")


def sigma_like(sigma, x: torch.Tensor) -> torch.Tensor:
    """Broadcastable per-image sigma of shape (N, 1, 1, 1) on x's device and dtype."""
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    if s.shape != (x.shape[0],):
        raise ValueError(f"sigma must be a scalar or have shape ({x.shape[0]},), got {tuple(s.shape)}")
    return s.view(-1, *([1] * (x.ndim - 1)))


class Denoiser(nn.Module):
    """Base class: subclasses implement ``denoise(y, sigma4)`` with sigma4 of shape (N,1,1,1)."""

    #: number of colour channels the prior models (None: any)
    channels: int | None = None
    #: True when D is differentiable w.r.t. its input (networks, Wiener filter); False for BM3D
    differentiable: bool = True
    #: True when the prior is "blind": the sigma argument is ignored by the model itself
    blind: bool = False
    #: the largest noise level (std on the [0, 1] scale) the prior models; larger ones are refused (see module doc)
    max_sigma: float = 1.0

    def denoise(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, y: torch.Tensor, sigma) -> torch.Tensor:
        check_image(y)
        if self.channels is not None and y.shape[1] != self.channels:
            raise DenoiserInputError(
                f"{type(self).__name__} models {self.channels}-channel images, got {y.shape[1]} channels; "
                "convert the data (e.g. to grey with replicate.data.to_gray) or pick another denoiser"
            )
        check_sigma(sigma, self.max_sigma)
        return self.denoise(y, sigma_like(sigma, y))

    def score(self, y: torch.Tensor, sigma) -> torch.Tensor:
        check_sigma(sigma, self.max_sigma, positive=True)
        s = sigma_like(sigma, y)
        return (self(y, sigma) - y) / s**2

    def residual(self, y: torch.Tensor, sigma) -> torch.Tensor:
        """f(y) = D(y) - y, the denoiser residual of Kadkhodaie & Simoncelli (= sigma^2 * score)."""
        return self(y, sigma) - y


class NetworkDenoiser(Denoiser):
    """Adapter for a network with its own conventions.

    Args:
        net: the module; called as ``net(u)`` or ``net(u, cond)``.
        input_range: "01" (net sees y) or "pm1" (net sees 2y - 1).
        output: "clean" (net returns the denoised image), "residual" (net returns the
            noise estimate n_hat, so D = y - n_hat), or "score" (net returns the score
            in its own input units).
        condition: optional callable sigma4 -> extra argument for the net (e.g. sigma
            on 0-255, an integer label, a noise-level map); None for blind networks.
        channels: number of image channels the network was trained on.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        input_range: str = "01",
        output: str = "clean",
        condition: Callable[[torch.Tensor], object] | None = None,
        channels: int | None = None,
    ):
        super().__init__()
        if input_range not in ("01", "pm1"):
            raise ValueError(f"input_range must be '01' or 'pm1', got {input_range!r}")
        if output not in ("clean", "residual", "score"):
            raise ValueError(f"output must be 'clean', 'residual' or 'score', got {output!r}")
        self.net = net
        self.input_range = input_range
        self.output = output
        self.condition = condition
        self.channels = channels
        self.blind = condition is None
        self._channels_last = False

    def channels_last(self) -> "NetworkDenoiser":
        """Run convolutions in NHWC layout: ~25% faster on CPU (oneDNN) for DnCNN-sized nets, same numbers."""
        self.net = self.net.to(memory_format=torch.channels_last)
        self._channels_last = True
        return self

    def denoise(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        dtype = next((p.dtype for p in self.net.parameters()), y.dtype)
        if y.dtype != dtype:  # the network's own precision inside, the caller's outside
            return self.denoise(y.to(dtype), sigma.to(dtype)).to(y.dtype)
        scale = 2.0 if self.input_range == "pm1" else 1.0
        u = 2.0 * y - 1.0 if self.input_range == "pm1" else y
        if self._channels_last:
            u = u.contiguous(memory_format=torch.channels_last)
        out = self.net(u) if self.condition is None else self.net(u, self.condition(sigma))
        if self.output == "clean":
            return (out + 1.0) / 2.0 if self.input_range == "pm1" else out
        if self.output == "residual":
            return y - out / scale
        # score in u-units: grad_u log p(u); sigma_u = scale * sigma; D_u = u + sigma_u^2 s_u
        u_hat = u + (scale * sigma) ** 2 * out
        return (u_hat + 1.0) / 2.0 if self.input_range == "pm1" else u_hat
