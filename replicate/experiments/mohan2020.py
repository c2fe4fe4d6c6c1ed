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
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from replicate import data as D
from replicate import runtime, seeding
from replicate.denoisers.base import Denoiser, NetworkDenoiser
from replicate.io import save_torch, write_csv, write_json

PAPER = "mohan2020"


@dataclass(frozen=True)
class ModelSpec:
    arch: str        # dncnn | unet | rcnn
    variant: str     # bias | bias_free
    train_max: int   # training noise range [0, train_max] on the 0-255 scale

    @property
    def name(self) -> str:
        return f"{self.arch}/{self.variant}/0-{self.train_max}"

    @property
    def file_stem(self) -> str:
        return self.name.replace("/", "_")


def on_gpu(prm: dict) -> bool:
    return runtime.device(prm).type == "cuda"


def grid(prm: dict) -> dict:
    """The part of the grid that runs here: the full grid, or the stated CPU subset of the paper profile."""
    g = {"archs": prm["archs"], "ranges": prm["ranges"], "test_sigmas": prm["test_sigmas"],
         "test_sets": list(prm["test_sets"])}
    if prm["profile"] == "paper" and not on_gpu(prm) and prm.get("cpu_subset"):
        g.update(prm["cpu_subset"])
        g["subset"] = "cpu_subset"
    else:
        g["subset"] = "full"
    return g


def model_specs(prm: dict) -> list[ModelSpec]:
    g = grid(prm)
    return [ModelSpec(a, v, int(r)) for a in g["archs"] for v in prm["variants"] for r in g["ranges"]]


# ----------------------------------------------------------------------------------------------- models
def _small_dncnn(prm: dict, spec: ModelSpec) -> Denoiser:
    from replicate.denoisers.bfcnn import DnCNN

    net = DnCNN(channels=1, depth=prm["arch"]["depth"], features=prm["arch"]["features"], bias=spec.variant == "bias")
    return NetworkDenoiser(net, output="clean", channels=1)


def training_images(prm: dict) -> list[torch.Tensor]:
    """Embedded training data: dead leaves + scikit-image photographs disjoint from the test photographs."""
    n_leaves = prm["train"].get("dead_leaves", 16)
    leaves = D.dead_leaves(n_leaves, 96, 1, seed=prm["seed"])
    photos = [im.pixels for im in D.skimage_set(D.SKIMAGE_GRAY_TRAIN, gray=True)]
    return list(leaves) + photos


def train_models(prm: dict) -> pd.DataFrame:
    from replicate.training import TrainConfig, extract_patches, train_denoiser

    out_dir = runtime.models_dir(prm, PAPER)
    t = prm["train"]
    patches = extract_patches(training_images(prm), t["patch"], t["stride"], tuple(t["scales"]))
    rows = []
    for spec in model_specs(prm):
        torch.manual_seed(seeding.derive_seed(prm["seed"], "init", spec.name))
        model = _small_dncnn(prm, spec)
        cfg = TrainConfig(noise_min=0.0, noise_max=float(spec.train_max), patch=t["patch"], stride=t["stride"],
                          scales=tuple(t["scales"]), batch=t["batch"], epochs=t["epochs"],
                          milestones=tuple(t["milestones"]), seed=seeding.derive_seed(prm["seed"], "train", spec.name),
                          max_patches=t.get("max_patches"), extra={"arch": prm["arch"], "model": spec.name})
        log = train_denoiser(model, patches, cfg, out_dir / f"{spec.file_stem}.pt")
        rows.append({"model": spec.name, "parameters": sum(p.numel() for p in model.parameters()),
                     "steps": log["steps"], "patches": log["patches"],
                     "final_loss": float(np.mean(log["loss"][-20:])), "seconds": round(log["seconds"], 2)})
    rows += train_universal(prm)
    return pd.DataFrame(rows)


def train_universal(prm: dict) -> list[dict]:
    """The universal bias-free priors (grey and colour, sigma in [0, 100]) the other papers use in mini / smoke."""
    from replicate.experiments.priors import small_bf_dncnn
    from replicate.training import TrainConfig, extract_patches, train_denoiser

    u = prm.get("universal")
    if not u:
        return []
    t = u["train"]
    rows = []
    for kind, channels in (("gray", 1), ("color", 3)):
        leaves = D.dead_leaves(t.get("dead_leaves", 16), 96, channels, seed=prm["seed"] + channels)
        photos = [im.pixels for im in D.skimage_set(D.SKIMAGE_GRAY_TRAIN if channels == 1 else D.SKIMAGE_COLOR_TRAIN,
                                                    gray=channels == 1)]
        patches = extract_patches(list(leaves) + photos, t["patch"], t["stride"], tuple(t["scales"]))
        arch = {"channels": channels, "depth": u["arch"]["depth"], "features": u["arch"]["features"]}
        torch.manual_seed(seeding.derive_seed(prm["seed"], "init", "universal", kind))
        model = small_bf_dncnn(**arch)
        cfg = TrainConfig(noise_min=0.0, noise_max=float(u["noise_max"]), patch=t["patch"], stride=t["stride"],
                          scales=tuple(t["scales"]), batch=t["batch"], epochs=t["epochs"],
                          milestones=tuple(t["milestones"]), seed=seeding.derive_seed(prm["seed"], "train", kind),
                          max_patches=t.get("max_patches"), extra={"arch": arch, "model": f"universal_{kind}"})
        log = train_denoiser(model, patches, cfg, runtime.models_dir(prm, PAPER) / f"universal_{kind}.pt")
        rows.append({"model": f"universal/{kind}/0-{u['noise_max']}", "parameters": sum(p.numel() for p in model.parameters()),
                     "steps": log["steps"], "patches": log["patches"],
                     "final_loss": float(np.mean(log["loss"][-20:])), "seconds": round(log["seconds"], 2)})
    return rows


def fetch_checkpoints(prm: dict) -> pd.DataFrame:
    from replicate.assets.registry import fetch

    rows = []
    for spec in model_specs(prm):
        asset = f"weights/bias_free_denoising/{spec.arch}/{spec.variant}/0-{spec.train_max}.pt"
        path = fetch(asset)
        from replicate.denoisers.checkpoints import mohan_denoiser

        n_params = sum(p.numel() for p in mohan_denoiser(spec.arch, spec.variant, f"0-{spec.train_max}", path).parameters())
        rows.append({"model": spec.name, "asset": asset, "parameters": n_params})
    return pd.DataFrame(rows)


def stage_models(prm: dict) -> None:
    out_dir = runtime.models_dir(prm, PAPER)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = train_models(prm) if prm["source"] == "train" else fetch_checkpoints(prm)
    write_csv(runtime.results_dir(prm, PAPER) / "models.csv", table)
    write_json(out_dir / "manifest.json", {"source": prm["source"], "models": table.to_dict("records")})


def load_models(prm: dict) -> dict[str, Denoiser]:
    """Every model of the grid as a project Denoiser (eval mode), keyed by ModelSpec.name."""
    out_dir = runtime.models_dir(prm, PAPER)
    manifest_path = out_dir / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} is missing: run the models stage first (dvc repro mohan2020_models)")
    manifest = json.loads(manifest_path.read_text())
    models = {}
    for spec in model_specs(prm):
        if manifest["source"] == "train":
            model = _small_dncnn(prm, spec)
            state = torch.load(out_dir / f"{spec.file_stem}.pt", map_location="cpu", weights_only=False)
            model.load_state_dict(state["model"])
        else:
            from replicate.denoisers.checkpoints import mohan_denoiser

            from replicate.assets.registry import fetch

            asset = next(r["asset"] for r in manifest["models"] if r["model"] == spec.name)
            model = mohan_denoiser(spec.arch, spec.variant, f"0-{spec.train_max}", fetch(asset))
        models[spec.name] = model.eval().to(runtime.device(prm)).channels_last()
    return models


def test_sets(prm: dict, names=None) -> dict[str, list[D.Image]]:
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
    models = per_process((PAPER, "models", prm), lambda: load_models(prm))
    im = per_process((PAPER, "set", set_name, prm), lambda: test_sets(prm, [set_name])[set_name])[idx]
    dev = runtime.device(prm)
    sigmas = torch.tensor(g["test_sigmas"], dtype=torch.float32) / 255.0
    x = im.pixels[None].expand(len(sigmas), -1, -1, -1)
    # one noise realisation per (image, sigma), shared by every model: paired comparisons
    noise = torch.stack([seeding.randn(im.shape, prm["seed"], PAPER, set_name, idx, int(s)) for s in g["test_sigmas"]])
    y = x + sigmas.view(-1, 1, 1, 1) * noise
    psnr_in = psnr(y.clamp(0, 1), x)
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        out = model(y.to(dev), sigmas.to(dev)).cpu().clamp(0, 1)
        seconds = (time.perf_counter() - start) / len(sigmas)
        p_out, s_out = psnr(out, x), ssim(out, x)
        spec = name.split("/")
        for k, s in enumerate(g["test_sigmas"]):
            rows.append({"set": set_name, "image_index": idx, "image": im.name, "model": name,
                         "arch": spec[0], "variant": spec[1], "train_max": int(spec[2].split("-")[1]),
                         "sigma": s, "seed": prm["seed"], "psnr_in": float(psnr_in[k]),
                         "psnr_out": float(p_out[k]), "ssim_out": float(s_out[k]),
                         "seconds_per_image": seconds, "pixels": im.pixels[0].numel()})
    return rows


def stage_generalization(prm: dict) -> None:
    """Every test image through `generalization_rows`, sharded as params.yaml's `launcher:` block says (default: this
    process), one part file per image (a rerun resumes), merged into the same CSV as an unsharded run."""
    from replicate.scaleout import run_per_image

    g = grid(prm)
    limit = g.get("images")  # the CPU subset may take only the first images of each set
    items = [(set_name, idx) for set_name, images in test_sets(prm, g["test_sets"]).items()
             for idx in range(min(len(images), limit or len(images)))]
    run_per_image(generalization_rows, prm, items, runtime.results_dir(prm, PAPER) / "generalization.csv")

def random_patches(images: list[D.Image], n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    out = []
    for _ in range(n):
        im = images[int(torch.randint(len(images), (1,), generator=gen))].pixels
        top = int(torch.randint(im.shape[-2] - size + 1, (1,), generator=gen))
        left = int(torch.randint(im.shape[-1] - size + 1, (1,), generator=gen))
        out.append(im[:, top : top + size, left : left + size])
    return torch.stack(out)


def first_order(model: Denoiser, y: torch.Tensor, sigma) -> tuple[torch.Tensor, torch.Tensor]:
    """f(y) and A_y y (Jacobian-vector product in the direction y): f(y) = A_y y + b_y (paper Eq. 1)."""
    f = lambda u: model(u, sigma)  # noqa: E731
    fy, jy = torch.func.jvp(f, (y,), (y,))
    return fy, jy


def stage_linear(prm: dict) -> None:
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
    for sigma in tqdm(dec["sigmas"], desc="first-order decomposition"):
        gen = seeding.generator(prm["seed"], PAPER, "patches", sigma)
        x = random_patches(images, dec["patches_per_sigma"], dec["patch"], gen)
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
                             "sigma": sigma, "patch_index": k, "residual_rms": float(r), "linear_residual_rms": float(lin),
                             "net_bias_rms": float(b), "output_rms": float(f_norm), "noise_rms": float(sigma)})
    # exact first-order decomposition (paper Eq. 1): a ReLU network is affine around y, so
    # f(y + e v) - f(y) = e A_y v up to ReLU switches and float32 rounding, for a small step e
    # (float64, and a step of 1e-7 of |y| so that almost no ReLU switches inside it)
    affine = []
    for name, model in models.items():
        model64 = copy.deepcopy(model).double()
        for sigma in (10, 50, 90):
            gen = seeding.generator(prm["seed"], PAPER, "affine", sigma)
            x = random_patches(images, 4, dec["patch"], gen).double()
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
    rows, arrays = [], {"clean": x.numpy()}
    sigmas = sorted(set(jac["svd_sigmas"]) | set(jac["sigmas"]))
    for name, model in chosen.items():
        for sigma in tqdm(sigmas, desc=f"jacobian {name}"):
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


def stage_report(prm: dict) -> None:
    from replicate.report import mohan2020 as report

    report.build(prm)


STAGES = {
    "models": stage_models,
    "generalization": stage_generalization,
    "linear": stage_linear,
    "jacobian": stage_jacobian,
    "fig2": stage_fig2,
    "report": stage_report,
}
