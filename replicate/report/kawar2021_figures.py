"""Kawar, Vaksman & Elad 2021 report: the figures (denoising grids, sample differences, residual histograms and
images, intermediate iterates, inpainting), drawn from the arrays the experiment stages keep."""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats as sps

from replicate.io import save_figure
from replicate.noise.residual import residual_stats
from replicate.report.common import show_image


def _nearest(keys, value):
    keys = list(keys)
    return min(keys, key=lambda k: abs(float(k) - float(value))) if keys and value is not None else None


def _psnr(img, clean) -> float:
    """PSNR (dB) of an image on [0, 1] against the clean one (for the panels' captions)."""
    mse = float(((torch.as_tensor(img).double().clamp(0, 1) - torch.as_tensor(clean).double()) ** 2).mean())
    return 10 * math.log10(1 / max(mse, 1e-12))


def fig_grid(plt, arrs: dict, sigma0, path, title: str = ""):
    """Original, noisy, MMSE, BM3D and two posterior samples, one column per image, each panel with its PSNR (Figs.
    1-4, 10, 11, 14, 17, 20, 23, 26). A missing panel (BM3D not run in this profile) says so."""
    idxs = sorted(arrs)
    rows = ["clean", "noisy", "mmse", "bm3d", "sample 0", "sample 1"]
    names = {"clean": "clean", "noisy": "noisy y", "mmse": "MMSE D(y)", "bm3d": "BM3D",
             "sample 0": "posterior sample 1", "sample 1": "posterior sample 2"}
    fig, axes = plt.subplots(len(rows), len(idxs), figsize=(1.8 * len(idxs) + 0.4, 1.75 * len(rows)), squeeze=False)
    for j, i in enumerate(idxs):
        a = arrs[i]
        d = a["sigma0"][_nearest(a["sigma0"], sigma0)]
        for r, what in enumerate(rows):
            ax = axes[r, j]
            img = a["clean"] if what == "clean" else d.get(what) if not what.startswith("sample") else \
                (d["samples"][int(what[-1])] if d["samples"].shape[0] > int(what[-1]) else None)
            if img is None:
                ax.axis("off")
                ax.text(0.5, 0.5, f"{names[what]}:\nnot run here", ha="center", va="center", fontsize=6,
                        transform=ax.transAxes)
                continue
            caption = f"clean ({a['name']})" if what == "clean" else f"{names[what]}: {_psnr(img, a['clean']):.2f} dB"
            show_image(ax, img, caption)
            ax.title.set_fontsize(6)
    s0 = float(_nearest(arrs[idxs[0]]["sigma0"], sigma0))
    fig.suptitle(f"{title}σ0 = {s0:.3f}: MMSE estimate vs posterior samples (PSNR against the clean image)",
                 fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=0.4, w_pad=0.3)
    return save_figure(path, fig)


def fig_diff(plt, arrs: dict, sigma0, path):
    """|sample 0 - sample 1| x 4 (Figs. 12, 15, 18, 21, 24, 27)."""
    idxs = sorted(arrs)
    fig, axes = plt.subplots(1, len(idxs), figsize=(1.9 * len(idxs), 2.1), squeeze=False)
    for ax, i in zip(axes[0], idxs):
        d = arrs[i]["sigma0"][_nearest(arrs[i]["sigma0"], sigma0)]
        show_image(ax, (4 * (d["samples"][0] - d["samples"][1]).abs()).clamp(0, 1), arrs[i]["name"])
    fig.suptitle("|difference of two samples| × 4")
    return save_figure(path, fig)


def _res_text(r: torch.Tensor) -> str:
    s = residual_stats(r)
    return f"std {s['res_std']:.2f}, p {s['res_p']:.2f}, ρ {s['res_rho']:.2f}"


def fig_hist(plt, arrs: dict, sigma0, path):
    """Residual y - x_hat histograms of one sample per image with N(0, sigma0^2) (Figs. 5 right, 13, 16, ...)."""
    idxs = sorted(arrs)
    fig, axes = plt.subplots(1, len(idxs), figsize=(2.6 * len(idxs), 2.4), squeeze=False)
    for ax, i in zip(axes[0], idxs):
        s0 = _nearest(arrs[i]["sigma0"], sigma0)
        d = arrs[i]["sigma0"][s0]
        r = (d["noisy"] - d["samples"][0]).double()
        ax.hist(r.flatten().numpy(), bins=60, density=True, color="C0", alpha=0.7)
        t = np.linspace(-4 * s0, 4 * s0, 200)
        ax.plot(t, sps.norm.pdf(t, scale=s0), "k--", lw=1, label=f"N(0, {s0:.3f}²)")
        ax.set_title(f"{arrs[i]['name']}: {_res_text(r)}", fontsize=7)
        ax.legend(fontsize=6)
    return save_figure(path, fig)


def fig_residual(plt, arrs: dict, sigma0, path):
    """Residual images of ours (top) and MMSE (bottom), with std / p / rho (Fig. 5 left)."""
    idxs = sorted(arrs)
    fig, axes = plt.subplots(2, len(idxs), figsize=(2.2 * len(idxs), 4.6), squeeze=False)
    for j, i in enumerate(idxs):
        s0 = _nearest(arrs[i]["sigma0"], sigma0)
        d = arrs[i]["sigma0"][s0]
        for r, (label, est) in enumerate((("ours", d["samples"][0]), ("MMSE", d["mmse"]))):
            res = (d["noisy"] - est).double()
            show_image(axes[r, j], (res / (4 * s0) + 0.5).clamp(0, 1), f"{label}: {_res_text(res)}")
    return save_figure(path, fig)


def fig_steps(plt, arrs: dict, key, path, inpaint: bool = False):
    """Intermediate iterates of sample 0 (Figs. 7, 33)."""
    idxs = sorted(arrs)
    pick = (lambda a: a["masks"].get(key)) if inpaint else (lambda a: a["sigma0"][_nearest(a["sigma0"], key)])
    n = max(len(pick(a)["intermediate"]) for a in arrs.values() if pick(a) is not None)
    fig, axes = plt.subplots(len(idxs), n, figsize=(1.6 * n, 1.7 * len(idxs)), squeeze=False)
    for r, i in enumerate(idxs):
        d = pick(arrs[i])
        for c, (sig, xx) in enumerate(sorted(d["intermediate"].items(), reverse=True)):
            show_image(axes[r, c], xx[0].float(), f"σ_i = {sig:.3f}")
    return save_figure(path, fig)


def fig_inpaint(plt, arrs: dict, mask_kind, path, title: str = ""):
    """Original, observation (mask + noise; missing pixels magenta), two samples with their PSNR (Figs. 8, 9, 29-32);
    images without that mask are skipped."""
    idxs = [i for i in sorted(arrs) if mask_kind in arrs[i]["masks"]] or sorted(arrs)
    fig, axes = plt.subplots(4, len(idxs), figsize=(1.8 * len(idxs) + 0.4, 7.0), squeeze=False)
    for j, i in enumerate(idxs):
        a = arrs[i]
        kind = mask_kind if mask_kind in a["masks"] else next(iter(a["masks"]))
        d = a["masks"][kind]
        obs = d["observed"] * d["mask"] + (1 - d["mask"]) * torch.tensor([1.0, 0.0, 1.0])[:d["observed"].shape[0], None, None]
        show_image(axes[0, j], a["clean"], a["name"])
        show_image(axes[1, j], obs, f"observed ({kind})")
        for s in range(min(2, d["samples"].shape[0])):
            show_image(axes[2 + s, j], d["samples"][s], f"sample {s + 1}: {_psnr(d['samples'][s], a['clean']):.2f} dB")
        for ax in axes[:, j]:
            ax.title.set_fontsize(6)
    fig.suptitle(f"{title}noisy inpainting ({mask_kind}): posterior samples (PSNR against the clean image)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97), h_pad=0.4, w_pad=0.3)
    return save_figure(path, fig)
