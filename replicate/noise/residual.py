"""Statistics of a denoising residual r = y - x_hat (Kawar et al. 2021, section 4.2): is what the denoiser removed
white Gaussian noise of the right level?"""
from __future__ import annotations

import numpy as np
import torch

NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def residual_stats(r: torch.Tensor) -> dict:
    """One residual image r (C, H, W): std, D'Agostino-Pearson normality p, max |rho| over the 8 neighbour directions.

    rho for direction (dy, dx) = Pearson correlation of r[c, i, j] with r[c, i+dy, j+dx] over all valid pixel pairs
    and channels; the paper takes the direction with the largest |rho| (8 directions; opposite ones coincide).
    """
    from scipy import stats as sps

    r = r.double()
    _, H, W = r.shape
    rhos = []
    for dy, dx in NEIGHBOURS:
        a = r[:, max(0, -dy):H - max(0, dy), max(0, -dx):W - max(0, dx)].flatten()
        b = r[:, max(0, dy):H + min(0, dy), max(0, dx):W + min(0, dx)].flatten()
        rhos.append(float(torch.corrcoef(torch.stack([a, b]))[0, 1]))
    k = int(np.argmax(np.abs(rhos)))
    return {"res_std": float(r.std()), "res_p": float(sps.normaltest(r.flatten().numpy()).pvalue),
            "res_rho": rhos[k], "res_abs_rho": abs(rhos[k]), "res_rho_dir": f"{NEIGHBOURS[k][0]},{NEIGHBOURS[k][1]}"}
