"""BM3D (Dabov et al. 2007) behind the project's Denoiser interface: Kawar et al.'s classical baseline (Table 1).

Uses the `bm3d` package (Mäkinen, Azzari & Foi's reference implementation): ``bm3d.bm3d`` for grey images and
``bm3d.bm3d_rgb`` (YCbCr-opp colour transform, as in CBM3D) for colour.  sigma is the noise standard deviation on
the [0, 1] data scale, exactly as the project's denoisers take it and as Kawar et al. state sigma0 (Table 1);
the package takes ``sigma_psd`` on the scale of its input, so [0, 1] images get sigma unchanged.
BM3D is not differentiable and runs image by image on the CPU (numpy), so it is a baseline, not a prior.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import Denoiser


class BM3DDenoiser(Denoiser):
    differentiable = False

    def __init__(self, profile: str = "np"):
        super().__init__()
        self.profile = profile  # the package's parameter profile ("np" = normal profile, the paper default)

    def denoise(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        import bm3d

        out = []
        for img, s in zip(y.detach().cpu().double().numpy(), sigma.flatten().tolist()):
            if s <= 0:
                out.append(img)
                continue
            if img.shape[0] == 3:
                den = bm3d.bm3d_rgb(np.ascontiguousarray(img.transpose(1, 2, 0)), s, profile=self.profile)
                out.append(np.asarray(den).transpose(2, 0, 1))
            elif img.shape[0] == 1:
                out.append(np.asarray(bm3d.bm3d(img[0], s, profile=self.profile))[None])
            else:
                raise ValueError(f"BM3D handles grey (1) or RGB (3) images, got {img.shape[0]} channels")
        return torch.from_numpy(np.stack(out)).to(y.dtype).to(y.device)
