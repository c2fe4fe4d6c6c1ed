"""Mohan, Kadkhodaie, Simoncelli, Fernandez-Granda 2020: bias-free CNNs generalise across noise levels.

Stages (dvc.yaml), each writing per-image / per-patch results under results/<profile>/mohan2020/:
  models          self-train small DnCNN / BF-DnCNN (mini, smoke) or fetch the authors' checkpoints (paper)
  generalization  output PSNR/SSIM vs input noise, every model, every test image, every sigma
  linear          first-order decomposition (residual and net-bias norms vs sigma), homogeneity f(ay) = a f(y)
  jacobian        Jacobian A_y by autograd on a crop, its SVD, effective dimensionality vs sigma, adaptive filters
  figures         paper Figs. 1 and 2, generalisation curves, Jacobian figures, tables, claims (report/mohan2020.py)

Conventions (paper and original code): noise levels on the 0-255 scale; PSNR with skimage's convention on values
clamped to [0, 1] (= [0, 255]); input PSNR on the clipped noisy image.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd
import torch
from replicate.progress import bar as progress_bar

from replicate import data as D
from replicate import runtime, seeding
from replicate.denoisers.base import Denoiser
from replicate.experiments.mohan2020_models import load_models, model_specs, models_manifest
from replicate.io import save_torch, write_csv
from replicate.pipeline.stage import Stage, per_image_stage

PAPER = "mohan2020"


def grid(prm: dict) -> dict:
    """The part of the grid that runs here (params.load has already applied the paper profile's CPU subset)."""
    return {"archs": prm["archs"], "ranges": prm["ranges"], "test_sigmas": prm["test_sigmas"],
            "test_sets": list(prm["test_sets"]), "images": prm.get("images"), "subset": prm["subset"],
            "extra_grid": prm.get("extra_grid")}


def test_sets(prm: dict, names=None) -> dict[str, list[D.Image]]:
    """The test sets of this profile by name (all, or those in `names`)."""
    return {name: D.load_set(spec) for name, spec in prm["test_sets"].items() if names is None or name in names}


# ----------------------------------------------------------------------------------------------- stages
@torch.no_grad()
def generalization_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """One test image: output PSNR/SSIM of every model at every test sigma (the unit the scale-out launcher runs).

    Models and images are loaded once per worker process; the noise depends only on (seed, set, image, sigma).
    """
    from replicate.metrics import psnr, ssim
    from replicate.scaleout import per_process

    g = grid(prm)
    models = per_process((PAPER, "models", prm), lambda: load_models(prm, extra=True))
    im = per_process((PAPER, "set", set_name, prm), lambda: test_sets(prm, [set_name])[set_name])[idx]
    dev = runtime.device(prm)
    # the sigmas each model runs at on this image: the main grid's everywhere; the CPU subset's extra grid (other
    # checkpoints, fewer levels) on the first `images` of each set only
    levels = {spec.name: list(g["test_sigmas"]) for spec in model_specs(prm)}
    extra = g["extra_grid"]
    if extra and idx < extra["images"]:
        for spec in model_specs({**prm, "archs": extra["archs"], "ranges": extra["ranges"]}):
            levels[spec.name] = sorted(set(levels.get(spec.name, [])) | set(extra["test_sigmas"]))
    all_sigmas = sorted({s for ss in levels.values() for s in ss})
    x = im.pixels[None]
    # one noise realisation per (image, sigma), shared by every model: paired comparisons
    noise = {s: seeding.randn(im.shape, prm["seed"], PAPER, set_name, idx, int(s)) for s in all_sigmas}
    rows = []
    for name, model in models.items():
        if name not in levels:
            continue
        sig = levels[name]
        sigmas = torch.tensor(sig, dtype=torch.float32) / 255.0
        y = x + sigmas.view(-1, 1, 1, 1) * torch.stack([noise[s] for s in sig])
        psnr_in = psnr(y.clamp(0, 1), x.expand_as(y))
        start = time.perf_counter()
        out = model(y.to(dev), sigmas.to(dev)).cpu().clamp(0, 1)
        seconds = (time.perf_counter() - start) / len(sigmas)
        p_out, s_out = psnr(out, x.expand_as(out)), ssim(out, x.expand_as(out))
        spec = name.split("/")
        for k, s in enumerate(sig):
            rows.append({"set": set_name, "image_index": idx, "image": im.name, "model": name,
                         "arch": spec[0], "variant": spec[1], "train_max": int(spec[2].split("-")[1]),
                         "sigma": s, "seed": prm["seed"], "psnr_in": float(psnr_in[k]),
                         "psnr_out": float(p_out[k]), "ssim_out": float(s_out[k]),
                         "seconds_per_image": seconds, "pixels": im.pixels[0].numel()})
    return rows


def plan_generalization(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of every test set (the CPU subset may take only the first `images` of each)."""
    models_manifest(prm)  # fail here, in one line, when the models stage has not run
    g = grid(prm)
    limit = g.get("images")
    items = [(set_name, idx) for set_name, images in test_sets(prm, g["test_sets"]).items()
             for idx in range(min(len(images), limit or len(images)))]
    return prm, items


def random_patches(images: list[D.Image], n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """n random size x size patches of the images, and the index of the image each came from (the unit of evidence:
    patches of one image are not independent of each other)."""
    out, sources = [], []
    for _ in range(n):
        k = int(torch.randint(len(images), (1,), generator=gen))
        im = images[k].pixels
        top = int(torch.randint(im.shape[-2] - size + 1, (1,), generator=gen))
        left = int(torch.randint(im.shape[-1] - size + 1, (1,), generator=gen))
        out.append(im[:, top : top + size, left : left + size])
        sources.append(k)
    return torch.stack(out), sources


def first_order(model: Denoiser, y: torch.Tensor, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    """f(y) and A_y y (Jacobian-vector product in the direction y): f(y) = A_y y + b_y (paper Eq. 1)."""
    f = lambda u: model(u, sigma)  # noqa: E731
    fy, jy = torch.func.jvp(f, (y,), (y,))
    return fy, jy


def stage_linear(prm: dict) -> None:
    """Section 4: the first-order decomposition f(y) = A_y y + b_y per noise level (decomposition.csv), homogeneity
    f(a y) = a f(y) (homogeneity.csv) and the affine check (affine.csv)."""
    g = grid(prm)
    models = load_models(prm)
    dev = runtime.device(prm)
    dec = prm["decomposition"]
    first_set = g["test_sets"][0]
    images = test_sets(prm, [first_set])[first_set]
    rows, homog = [], []
    chosen = {n: m for n, m in models.items() if n.endswith(f"/0-{dec['train_range']}")}
    if not chosen:
        raise ValueError(f"decomposition.train_range {dec['train_range']} is not among the trained ranges {g['ranges']}")
    for sigma in progress_bar(dec["sigmas"], desc="first-order decomposition"):
        gen = seeding.generator(prm["seed"], PAPER, "patches", sigma)
        x, sources = random_patches(images, dec["patches_per_sigma"], dec["patch"], gen)
        y = x + sigma / 255.0 * torch.randn(x.shape, generator=gen)
        n_pix = x[0].numel()
        for name, model in chosen.items():
            fy, jy = first_order(model, y.to(dev), sigma / 255.0)
            fy, jy = fy.detach().cpu(), jy.detach().cpu()
            bias = fy - jy
            rms = lambda t: (t.flatten(1).norm(dim=1) / n_pix**0.5 * 255).numpy()  # noqa: E731 per-pixel RMS, 0-255
            y_cpu = y.cpu()
            # residual y - f(y) = (I - A_y) y - b_y: the linear part and the net bias, separately
            for k, (r, lin, b, f_norm) in enumerate(zip(rms(y_cpu - fy), rms(y_cpu - jy), rms(bias), rms(fy))):
                rows.append({"model": name, "variant": name.split("/")[1], "train_max": dec["train_range"],
                             "sigma": sigma, "patch_index": k, "image_index": sources[k], "residual_rms": float(r),
                             "linear_residual_rms": float(lin),
                             "net_bias_rms": float(b), "output_rms": float(f_norm), "noise_rms": float(sigma)})
    # exact first-order decomposition (paper Eq. 1): a ReLU network is affine around y, so
    # f(y + e v) - f(y) = e A_y v up to ReLU switches and float32 rounding, for a small step e
    # (float64, and a step of 1e-7 of |y| so that almost no ReLU switches inside it)
    affine = []
    for name, model in models.items():
        model64 = copy.deepcopy(model).double()
        for sigma in (10, 50, 90):
            gen = seeding.generator(prm["seed"], PAPER, "affine", sigma)
            x = random_patches(images, 4, dec["patch"], gen)[0].double()
            y = (x + sigma / 255.0 * torch.randn(x.shape, generator=gen, dtype=x.dtype)).to(dev)
            v = torch.randn(y.shape, generator=gen, dtype=y.dtype).to(dev)
            step = 1e-7 * y.norm() / v.norm()
            fy, jv = torch.func.jvp(lambda u: model64(u, sigma / 255.0), (y,), (v,))
            with torch.no_grad():
                diff = model64(y + step * v, sigma / 255.0) - fy
            rel_err = float(((diff - step * jv).norm() / (step * jv).norm()).detach())
            affine.append({"model": name, "variant": name.split("/")[1], "sigma": sigma, "relative_error": rel_err})
    # homogeneity of degree 1: f(a y) = a f(y) holds exactly for bias-free nets (no additive constants)
    im = images[0].pixels[None]
    y = im + 25 / 255.0 * seeding.randn(im.shape, prm["seed"], PAPER, "homogeneity")
    with torch.no_grad():
        for name, model in models.items():
            fy = model(y.to(dev), 25 / 255.0).cpu()
            for a in prm["homogeneity_scales"]:
                fay = model(a * y.to(dev), a * 25 / 255.0).cpu()
                rel = float((fay - a * fy).norm() / (a * fy).norm())
                homog.append({"model": name, "variant": name.split("/")[1], "scale": a, "relative_error": rel})
    out = runtime.results_dir(prm, PAPER)
    write_csv(out / "decomposition.csv", pd.DataFrame(rows))
    write_csv(out / "homogeneity.csv", pd.DataFrame(homog))
    write_csv(out / "affine.csv", pd.DataFrame(affine))


def jacobian(model: Denoiser, y: torch.Tensor, sigma: float, chunk_size: int = 64) -> torch.Tensor:
    """Dense Jacobian A_y of the denoiser at one image y (C, H, W) -> (D, D), by reverse-mode autograd.

    Rows are computed `chunk_size` at a time: the network sees a batch of `chunk_size` copies of y (it treats batch
    entries independently: eval mode), and one backward pass with one-hot output gradients gives that many rows.
    (torch.func.jacrev with chunk_size still peaked above 23 GB here for a 20-layer DnCNN on a 40x40 crop.)
    """
    d = y.numel()
    rows = []
    for start in range(0, d, chunk_size):
        idx = torch.arange(start, min(start + chunk_size, d))
        u = y.detach().unsqueeze(0).repeat(len(idx), *([1] * y.ndim)).requires_grad_(True)
        out = model(u, sigma).reshape(len(idx), -1)
        onehot = torch.zeros_like(out)
        onehot[torch.arange(len(idx)), idx] = 1.0
        (grad,) = torch.autograd.grad(out, u, grad_outputs=onehot)
        rows.append(grad.reshape(len(idx), -1).detach())
    return torch.cat(rows)


def stage_jacobian(prm: dict) -> None:
    """Section 4: the Jacobian A_y of each model on an image crop by autograd, its SVD and effective dimensionality
    per noise level -> jacobian.csv, jacobian_arrays.npz."""
    g = grid(prm)
    models = load_models(prm)
    jac = prm["jacobian"]
    first_set = g["test_sets"][0]
    images = test_sets(prm, [first_set])[first_set]
    im = images[jac["image"] % len(images)]
    c = jac["crop"]
    x = im.pixels[:, jac["top"] : jac["top"] + c, jac["left"] : jac["left"] + c]
    if x.shape[-2:] != (c, c):
        raise D.ImageSizeError(f"Jacobian crop {c}x{c} at ({jac['top']}, {jac['left']}) does not fit {im.name} {im.shape}")
    variants = jac.get("variants", prm["variants"])
    chosen = {n: m.cpu() for n, m in models.items()
              if n.endswith(f"/0-{jac['train_range']}") and n.split("/")[1] in variants}
    if not chosen:
        raise ValueError(f"jacobian.train_range {jac['train_range']} / variants {variants} match no model of the grid "
                         f"(ranges {g['ranges']}); fix params.yaml")
    rows, arrays = [], {"clean": x.numpy(), "filter_pixels": np.array(pixel_rows(c, x.shape[0]))}
    sigmas = sorted(set(jac["svd_sigmas"]) | set(jac["sigmas"]))
    for name, model in chosen.items():
        for sigma in progress_bar(sigmas, desc=f"jacobian {name}"):
            y = x + sigma / 255.0 * seeding.randn(x.shape, prm["seed"], PAPER, "jacobian", sigma)
            A = jacobian(model, y, sigma / 255.0).detach().double()
            U, S, Vh = torch.linalg.svd(A)
            fy = model(y[None], sigma / 255.0).detach().reshape(-1).double()
            rows.append({"model": name, "variant": name.split("/")[1], "sigma": sigma, "pixels": A.shape[0],
                         "effective_dim": float((S**2).sum()), "top_singular": float(S[0]),
                         "symmetry_error": float((A - A.T).norm() / A.norm()),
                         "net_bias_rel": float((fy - A @ y.reshape(-1).double()).norm() / fy.norm())})
            if sigma in jac["sigmas"]:
                key = f"{name.replace('/', '_')}_s{sigma}"
                arrays[f"{key}_noisy"] = y.numpy()
                arrays[f"{key}_rows"] = A[pixel_rows(c, x.shape[0])].float().numpy()  # adaptive filters
                arrays[f"{key}_U"] = U[:, :16].T.float().numpy()                          # leading singular vectors
                arrays[f"{key}_S"] = S.float().numpy()
    out = runtime.results_dir(prm, PAPER)
    write_csv(out / "jacobian.csv", pd.DataFrame(rows))
    from replicate.io import atomic_path

    with atomic_path(out / "jacobian_arrays.npz", suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def pixel_rows(crop: int, channels: int = 1) -> list[int]:
    """Three pixels whose adaptive filters (rows of A_y) are shown: centre, and two off-centre positions."""
    pts = [(crop // 2, crop // 2), (crop // 4, crop // 4), (3 * crop // 4, crop // 3)]
    return [r * crop + c for r, c in pts]


@torch.no_grad()
def stage_fig2(prm: dict) -> None:
    """Paper Fig. 2: one image denoised at sigma = 90 by DnCNN and BF-DnCNN trained on [0, 10]."""
    models = load_models(prm)
    f2 = prm["fig2"]
    g = grid(prm)
    first_set = g["test_sets"][0]
    im = test_sets(prm, [first_set])[first_set][0]
    x = im.pixels[None]
    y_train = x + f2["train_range"] / 255.0 * seeding.randn(x.shape, prm["seed"], PAPER, "fig2", "train")
    y = x + f2["sigma"] / 255.0 * seeding.randn(x.shape, prm["seed"], PAPER, "fig2", "test")
    arrays = {"clean": x[0], "noisy_train": y_train[0].clamp(0, 1), "noisy": y[0].clamp(0, 1)}
    for variant in prm["variants"]:
        name = f"dncnn/{variant}/0-{f2['train_range']}"
        if name in models:
            arrays[variant] = models[name](y.to(runtime.device(prm)), f2["sigma"] / 255.0)[0].cpu().clamp(0, 1)
    # Figs. 9, 10: y - f(y) = (I - A_y) y - b_y; show A_y y and b_y for the CNN and the BF-CNN, at the training
    # maximum and at the test level
    components = {}
    for variant in prm["variants"]:
        name = f"dncnn/{variant}/0-{f2['train_range']}"
        if name not in models:
            continue
        for sigma, noisy in ((f2["train_range"], y_train), (f2["sigma"], y)):
            with torch.enable_grad():
                fy, jy = first_order(models[name], noisy.to(runtime.device(prm)), sigma / 255.0)
            components[f"{variant}_s{sigma}_linear"] = jy[0].detach().cpu()
            components[f"{variant}_s{sigma}_bias"] = (fy - jy)[0].detach().cpu()
    save_torch(runtime.results_dir(prm, PAPER) / "fig2.pt",
               {"image": im.name, "sigma": f2["sigma"], **arrays, "components": components})


RESULTS = "results/{profile}/mohan2020/"
MODELS = "data/models/{profile}/mohan2020"

STAGES = [
    per_image_stage(PAPER, "generalization", generalization_rows, plan_generalization, inputs=(MODELS,),
                    about="output PSNR/SSIM vs input noise level: every model, every test image, every sigma"),
    Stage("mohan2020_linear", PAPER, stage_linear, inputs=(MODELS,),
          outs=tuple(RESULTS + f for f in ("decomposition.csv", "homogeneity.csv", "affine.csv")),
          about="first-order decomposition f(y) = A_y y + b_y vs sigma; homogeneity f(ay) = a f(y)"),
    Stage("mohan2020_jacobian", PAPER, stage_jacobian, inputs=(MODELS,),
          outs=(RESULTS + "jacobian.csv", RESULTS + "jacobian_arrays.npz"),
          about="Jacobian A_y by autograd on a crop, its SVD and effective dimensionality vs sigma"),
    Stage("mohan2020_fig2", PAPER, stage_fig2, inputs=(MODELS,), outs=(RESULTS + "fig2.pt",),
          about="Fig. 2: one image at sigma 90 through DnCNN and BF-DnCNN trained on [0, 10]"),
]
