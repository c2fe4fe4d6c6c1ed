"""Nonlinear forward models of DPS (Chung et al. 2023): Fourier phase retrieval and non-uniform (network) blur.

Phase retrieval
---------------
DPS measures the magnitude of the centred, orthonormal 2-D DFT of the image zero-padded on every side, each colour
channel separately (the operator acts on the (N, 3, H, W) batch; nothing is averaged over channels). The shared facts
give 64 px of padding per side for 256 px images at "oversample 2.0"; that is pad = oversample / 8 * size (the
released code, as we recall it, hard-codes oversample / 8 * 256). Note that this is *not* the textbook
oversampling ratio: the padded side is (1 + oversample / 4) * size = 1.5 * size. (The formula
(oversample - 1) / 2 * size would give 128 px; we follow the facts.) ``pad=`` overrides the formula.

The DPS code pads the [-1, 1] image with zeros, i.e. pads with mid-grey. On our [0, 1] images, with measurements in
[0, 1] units (half the [-1, 1] ones, see replicate/operators/base.py):

    input_range="pm1" (default, DPS):  A(x) = |F(pad_0(x - 1/2))| = |F(pad_0(2x - 1))| / 2
    input_range="01":                  A(x) = |F(pad_0(x))|

Non-uniform blur
----------------
DPS blurs with the pretrained bkse network of Tran et al. 2021 (``GOPRO_wVAE.pth``) and a random blur latent
randn(1, 512, 2, 2) * 1.2; the image enters on [0, 1] and the output is clamped to the valid range. The network
("KernelWizard", forward path ``adaptKernel``) is implemented in replicate/operators/bkse.py from the bkse repository
(VinAIResearch/blur-kernel-space-exploring) with the state-dict names of the original, so that the published file
loads with strict=True; this is unverified against the weights, which are not available here. Without the file,
loading raises ``ForwardModelUnavailable`` naming it, and ``NonUniformBlur.available`` is False. A callable
``net(x01, latent)`` can be injected instead.

The latent here is drawn once, at construction, from a seeded generator, so that A is one fixed operator. The DPS
code (guided_diffusion/measurements.py, NonlinearBlurOperator.forward) draws a fresh randn(1, 512, 2, 2) * 1.2 on
every call, i.e. the measurement and each guidance step use different blurs: ``resample_latent=True`` does that.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from replicate.assets.registry import AssetError
from replicate.operators.base import Operator, register_operator


def fft2_centred(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D DFT over the last two axes (zero frequency in the middle, Parseval holds)."""
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


@register_operator("phase_retrieval")
class PhaseRetrieval(Operator):
    """y = |F(pad(x))| per channel; see the module docstring for the padding and the [-1, 1] convention."""

    linear = False

    def __init__(self, oversample: float = 2.0, input_range: str = "pm1", pad: int | None = None):
        super().__init__()
        if input_range not in ("pm1", "01"):
            raise ValueError(f"input_range must be 'pm1' or '01', got {input_range!r}")
        self.oversample = float(oversample)
        self.input_range = input_range
        self.pad = pad

    def pad_for(self, size: int) -> int:
        return int(self.pad) if self.pad is not None else int(self.oversample / 8.0 * size)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.pad_for(x.shape[-2]), self.pad_for(x.shape[-1])
        z = x - 0.5 if self.input_range == "pm1" else x
        return F.pad(z, (pw, pw, ph, ph))

    def forward(self, x):
        return fft2_centred(self.padded(x)).abs()


class ForwardModelUnavailable(AssetError, FileNotFoundError):
    """The weights of a learned forward model are not here (caught by ``except AssetError`` like other assets)."""

    def __str__(self) -> str:
        return self.args[0]


BKSE_WEIGHTS = "GOPRO_wVAE.pth"
BKSE_DEFAULT_PATH = os.path.join("bkse", "experiments", "pretrained", BKSE_WEIGHTS)


def bkse_weights_path(path: str | os.PathLike | None = None) -> str:
    return os.fspath(path or BKSE_DEFAULT_PATH)


def load_bkse_blur_network(path: str | os.PathLike | None = None):
    """The bkse GOPRO_wVAE KernelWizard as a callable ``net(x01, latent)`` (frozen, eval mode, on the CPU).

    Raises ForwardModelUnavailable when the file is missing, and bkse.BkseCheckpointError (a ValueError) when its
    tensors do not fit the network.
    """
    path = bkse_weights_path(path)
    if not os.path.isfile(path):
        raise ForwardModelUnavailable(
            f"non-uniform deblurring needs the pretrained bkse blur network {BKSE_WEIGHTS!r} (Tran et al. 2021, "
            f"'Explore image deblurring via encoded blur kernel space', GOPRO model with VAE), looked for at {path!r}. "
            "It is distributed by the bkse authors by manual download and is not available here; the DPS code "
            f"expects it at {BKSE_DEFAULT_PATH!r}. This task is marked unavailable.")
    from replicate.operators.bkse import load_kernel_wizard

    return load_kernel_wizard(path)  # an nn.Module whose forward(x01, latent) is adaptKernel


class _WeightsPresent:
    """``available``: on the class, whether the default weights file exists; on an operator, whether it has a
    network (loaded or injected) or its weights file exists."""

    def __get__(self, obj, owner=None) -> bool:
        if obj is None:
            return os.path.isfile(bkse_weights_path())
        return obj.net is not None or os.path.isfile(bkse_weights_path(obj.weights))


@register_operator("nonlinear_blur")
class NonUniformBlur(Operator):
    """DPS non-uniform deblurring: A(x) = clamp(net(x, z), 0, 1) with a fixed latent z = randn(1, 512, 2, 2) * 1.2.

    ``available`` is True only where the bkse weights are (see _WeightsPresent). The latent is drawn from an explicit
    generator seeded by ``seed``, once, at construction (its spatial size must be H/128 x W/128: 2 x 2 at 256 px).
    """

    linear = False
    available = _WeightsPresent()
    weights_file = BKSE_WEIGHTS

    def __init__(self, weights: str | os.PathLike | None = None, seed: int = 0, latent_scale: float = 1.2,
                 latent_shape=(1, 512, 2, 2), net=None, load: bool = True, resample_latent: bool = False):
        super().__init__()
        self._gen = torch.Generator().manual_seed(int(seed))
        self.latent_scale, self.latent_shape = float(latent_scale), tuple(latent_shape)
        self.register_buffer("latent", torch.randn(*latent_shape, generator=self._gen) * latent_scale,
                             persistent=False)
        # resample_latent=True: the DPS code's behaviour, a fresh latent (still from the seeded generator) on every
        # call, so that the measurement and every guidance step see a different blur; off by default (one fixed A)
        self.resample_latent = bool(resample_latent)
        self.weights = weights
        self.net = net
        if net is None and load:
            self.net = load_bkse_blur_network(weights)

    def forward(self, x):
        if self.net is None:
            load_bkse_blur_network(self.weights)  # raises with the reason
        if self.resample_latent:
            self.latent = torch.randn(*self.latent_shape, generator=self._gen) * self.latent_scale
        # the network runs in its own dtype / device (float32 weights; measurements are simulated in float64)
        p = next(self.net.parameters(), None) if isinstance(self.net, torch.nn.Module) else None
        dev, dt = (p.device, p.dtype) if p is not None else (x.device, x.dtype)
        z = self.latent.to(dtype=dt, device=dev)
        return self.net(x.to(device=dev, dtype=dt), z).clamp(0.0, 1.0).to(device=x.device, dtype=x.dtype)
