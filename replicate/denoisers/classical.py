"""Classic-era denoisers behind the project's denoiser interface, from scikit-image (a well-kept library).

They are the "is denoising dead?" rows of the lecture: non-local means, total variation (Chambolle) and wavelet
shrinkage (BayesShrink). None is differentiable and none is an exact MMSE denoiser, so samplers that need a score
should not use them; PnP-style solvers can.

Conventions as everywhere in the project: images in [0, 1], sigma on the same scale. Each image is processed on its
own (scikit-image works per image), channels jointly.
"""
from __future__ import annotations

import numpy as np
import torch

from replicate.denoisers.base import Denoiser


class _PerImageDenoiser(Denoiser):
    differentiable = False

    def _one(self, image: np.ndarray, sigma: float) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def denoise(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        out = []
        for img, s in zip(y.detach().cpu().double().numpy(), sigma.flatten().tolist()):
            hwc = np.moveaxis(img, 0, -1)  # skimage wants channels last
            den = self._one(hwc if hwc.shape[-1] > 1 else hwc[..., 0], float(s))
            den = den if den.ndim == 3 else den[..., None]
            out.append(np.moveaxis(den, -1, 0))
        return torch.from_numpy(np.stack(out)).to(y.dtype).to(y.device)


class NonLocalMeans(_PerImageDenoiser):
    """skimage.restoration.denoise_nl_means with the filter strength h = h_factor * sigma.

    h_factor = 0.8 with fast_mode follows scikit-image's own recommendation ("a slightly smaller h than sigma",
    gallery example "Non-local means denoising"); patch 5x5 within a 13x13 search window (patch_distance 6).
    """

    def __init__(self, h_factor: float = 0.8, patch_size: int = 5, patch_distance: int = 6):
        super().__init__()
        self.h_factor, self.patch_size, self.patch_distance = h_factor, patch_size, patch_distance

    def _one(self, image, sigma):
        from skimage.restoration import denoise_nl_means

        return denoise_nl_means(image, h=self.h_factor * sigma, sigma=sigma, fast_mode=True,
                                patch_size=self.patch_size, patch_distance=self.patch_distance,
                                channel_axis=-1 if image.ndim == 3 else None)


class TotalVariation(_PerImageDenoiser):
    """skimage.restoration.denoise_tv_chambolle with weight = weight_factor * sigma.

    TV has no parameter-free rule; `weight_factor` is chosen on training images (never the test set) by
    `tune_weight_factor`, and the chosen value is recorded with the results.
    """

    def __init__(self, weight_factor: float = 1.0):
        super().__init__()
        self.weight_factor = weight_factor

    def _one(self, image, sigma):
        from skimage.restoration import denoise_tv_chambolle

        return denoise_tv_chambolle(image, weight=self.weight_factor * sigma,
                                    channel_axis=-1 if image.ndim == 3 else None)


class WaveletShrinkage(_PerImageDenoiser):
    """skimage.restoration.denoise_wavelet: BayesShrink soft thresholding of a db1..db8 wavelet decomposition,
    with the true sigma given (no estimation), per-subband thresholds; parameter-free given the wavelet."""

    def __init__(self, wavelet: str = "db2", method: str = "BayesShrink"):
        super().__init__()
        self.wavelet, self.method = wavelet, method

    def _one(self, image, sigma):
        from skimage.restoration import denoise_wavelet

        return denoise_wavelet(image, sigma=sigma, wavelet=self.wavelet, mode="soft", method=self.method,
                               rescale_sigma=True, channel_axis=-1 if image.ndim == 3 else None)


def tune_weight_factor(images: torch.Tensor, sigma: float, factors, generator: torch.Generator) -> float:
    """The TV weight factor of `factors` with the best mean PSNR on `images` (training images) at noise `sigma`."""
    from replicate.metrics import psnr

    y = images + sigma * torch.randn(images.shape, generator=generator, dtype=images.dtype)
    scores = [float(psnr(TotalVariation(f)(y, sigma).clamp(0, 1), images).mean()) for f in factors]
    return float(factors[int(np.argmax(scores))])
