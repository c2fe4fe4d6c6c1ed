"""Chung, Kim, McCann, Klasky, Ye 2023: Diffusion Posterior Sampling (DPS) for general noisy inverse problems.

Stages (chung2023_* in dvc.yaml), per-image results under results/<profile>/chung2023/:
  linear          Tables 1/2/6/7 + Poisson (Fig. 5): every method on every noisy linear task, per image and sample:
                  PSNR, SSIM, LPIPS (where its backbone is here), measurement fit, seconds, NFE
  phase_retrieval Table 3: DPS (best of ``best_of`` samples) vs ER / HIO / OSS (best of 4 restarts)
  ablations       Table 5 (step-size schedules), Fig. 8 (step-size sweep), Fig. 11 (LPIPS/PSNR vs NFE, DPS vs DDRM),
                  App. C.4 Poisson likelihood variants
  benchmark       wall-clock table: seconds per image per method, DPS overhead (forward + backward vs forward only)
  nonuniform      Table 4: DPS and MCG on non-uniform deblurring through the bkse blur network (its own image sets:
                  H, W multiples of 128); "not available here" without the network's weights
  jensen_gap      Remark 2 measured: on an analytic Gaussian prior (exact posterior known), the error of DPS's
                  approximation p(y | x_t) ~ p(y | x0_hat) against the same sampler with the exact p(y | x_t), over
                  a range of measurement noise levels
  report          tables, figures, claims (replicate/report/chung2023.py)

Priors: ``prior: universal`` wraps the project's universal bias-free denoiser as a VP x0-predictor
(vp.DenoiserX0; mini/smoke: self-trained small BF-DnCNN; paper CPU part: the authors' BF-CNN);
``prior: adm_ffhq`` / ``adm_imagenet``: the DPS / guided-diffusion checkpoints (paper profile on a GPU). Data and
checkpoints that the asset registry cannot provide make a stage write ``unavailable.json`` with the reason instead
of rows; the report then says "not available here".

Scale conventions: images on [0, 1] in this module; the diffusion runs on [-1, 1] as the DPS code; the Gaussian
measurement noise sigma_y = 0.05 refers to the [-1, 1] scale (0.025 on [0, 1]); Poisson noise: 255 * rate photons per
unit intensity (replicate/noise/measurement.py).
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from replicate import data as D
from replicate import runtime, seeding
from replicate.io import save_torch, write_csv, write_json
from replicate.pipeline.stage import PerImage, Stage

PAPER = "chung2023"

LINEAR_METHODS = ("dps", "ddrm", "mcg", "score_sde", "pnp_admm", "admm_tv")
PR_METHODS = ("dps", "er", "hio", "oss")
METHOD_NAMES = {"dps": "DPS (ours)", "ddrm": "DDRM", "mcg": "MCG", "score_sde": "Score-SDE", "pnp_admm": "PnP-ADMM",
                "admm_tv": "ADMM-TV", "er": "ER", "hio": "HIO", "oss": "OSS"}


class Unavailable(RuntimeError):
    """A dataset / checkpoint this stage needs cannot be had here (message says which and why)."""


# ------------------------------------------------------------------------------------------------ wiring
def effective(prm: dict) -> dict:
    """The params with the sets the paper profile's CPU subset leaves to the GPU (params.load applied the subset):
    they are reported as not run here, with the registry's reason when their files are missing too."""
    dropped = prm.get("not_run_on_cpu", {})
    return {**prm, "gpu_only_sets": dropped.get("test_sets", {}),
            "nonuniform_gpu_only_sets": dropped.get("nonuniform.test_sets", {})}


def load_image_set(prm: dict, name: str) -> list[D.Image]:
    """One evaluation set; raises Unavailable (with the registry's reason) if its files are not here."""
    from replicate.assets.registry import obtain

    spec = prm["test_sets"][name]
    if spec["source"] in ("ffhq256", "imagenet256"):
        ok, why = obtain(spec["asset_set"])
        if not ok:
            raise Unavailable(f"{name}: {why}")
        return _paper_images(spec)
    images = D.load_set(spec)
    return images[: spec["limit"]] if spec.get("limit") else images


def image_sets(prm: dict) -> tuple[dict[str, list[D.Image]], dict[str, str]]:
    """(sets that are here, {set: why not} for the others, data or checkpoint missing)."""
    sets, missing = {}, {}
    for name in prm["test_sets"]:
        try:
            images = load_image_set(prm, name)
            x0_model_cached(prm, prior_of(prm, name))
            sets[name] = images
        except Unavailable as e:
            missing[name] = str(e)
    missing.update(gpu_only_reasons(prm))
    return sets, missing


def gpu_only_reasons(prm: dict) -> dict[str, str]:
    """{set: why it does not run here} for the paper profile's GPU sets when running its CPU subset."""
    from replicate.assets.registry import availability

    out = {}
    for name, spec in prm.get("gpu_only_sets", {}).items():
        ok, why = availability(spec["asset_set"]) if "asset_set" in spec else (True, "")
        out[name] = "GPU part of the paper profile, not run on this CPU" + ("" if ok else f"; and not available "
                                                                                        f"here: {why}")
    return out


def _image(prm: dict, set_name: str, idx: int) -> D.Image:
    from replicate.scaleout import per_process

    return per_process((PAPER, "set", set_name, prm), lambda: load_image_set(prm, set_name))[idx]


def _paper_images(spec: dict) -> list[D.Image]:
    """FFHQ 00000-00999 at 256 px (from the 1024 px zip) or the first ImageNet val images with side >= 256
    (shorter side resized to 256, centre crop, as guided-diffusion's preprocessing)."""
    import io
    import tarfile
    import zipfile

    from PIL import Image as PILImage

    from replicate.assets.registry import fetch_set

    path = fetch_set(spec["asset_set"])[0]
    n = int(spec.get("limit", 1000))
    images = []
    if spec["source"] == "ffhq256":
        with zipfile.ZipFile(path) as zf:
            names = sorted(m for m in zf.namelist() if m.endswith(".png"))[:n]
            for m in names:
                im = PILImage.open(io.BytesIO(zf.read(m))).convert("RGB").resize((256, 256), PILImage.LANCZOS)
                images.append(D.Image(m.rsplit("/", 1)[-1][:-4], D.to_float(__import__("numpy").asarray(im))))
        return images
    with tarfile.open(path) as tf:
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            im = PILImage.open(tf.extractfile(m)).convert("RGB")
            if min(im.size) < 256:
                continue
            s = 256 / min(im.size)
            im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), PILImage.BICUBIC)
            x = D.center_crop(D.to_float(__import__("numpy").asarray(im)), 256)
            images.append(D.Image(m.name.rsplit(".", 1)[0], x))
            if len(images) == n:
                break
    return images


def prior_of(prm: dict, set_name: str) -> str:
    return prm["test_sets"][set_name].get("prior", prm["prior"])


def x0_model(prm: dict, kind: str):
    """The shared score function of every diffusion method, as an x0-predictor on the 1000-step VP schedule."""
    from replicate.denoisers.vp import DenoiserX0, EpsModelX0

    if kind == "universal":
        from replicate.experiments.priors import universal_denoiser

        return DenoiserX0(universal_denoiser(prm, "color").to(runtime.device(prm)), clip_denoised=True)
    from replicate.assets.registry import AssetError, fetch
    from replicate.denoisers.adm import load_adm_checkpoint

    asset, config = {"adm_ffhq": ("weights/dps_ffhq/ffhq_10m.pt", "ffhq256_dps"),
                     "adm_imagenet": ("weights/guided_diffusion_imagenet256/256x256_diffusion_uncond.pt",
                                      "imagenet256_uncond")}[kind]
    try:
        path = fetch(asset)
    except AssetError as e:
        raise Unavailable(f"checkpoint {asset}: {e}") from e
    # clip_denoised: DPS clamps x0_hat to [-1, 1] (its configs), as we do for the denoiser prior
    return EpsModelX0(load_adm_checkpoint(path, config).to(runtime.device(prm)), clip_denoised=True)


def bkse_network(prm: dict):
    """Table 4's forward model: the bkse GOPRO KernelWizard (replicate/operators/bkse.py) from the asset registry;
    Unavailable, with the registry's instructions, where its weights are not here."""
    from replicate.assets.registry import AssetError, fetch, get
    from replicate.operators.nonlinear import load_bkse_blur_network

    asset = prm["nonuniform"]["weights"]
    try:
        path = fetch(asset)
    except AssetError as e:
        raise Unavailable(f"the bkse blur network {asset} is not available here (a manual download from "
                          f"{get(asset).download_page}; the registry's message follows)\n{e}") from e
    return load_bkse_blur_network(path).to(runtime.device(prm))


def bkse_network_cached(prm):
    from replicate.scaleout import per_process

    return per_process((PAPER, "bkse", prm["nonuniform"]["weights"]), lambda: bkse_network(prm))


def denoiser(prm: dict):
    """The plain project denoiser for PnP-ADMM (the paper: a DnCNN; here the universal bias-free DnCNN)."""
    from replicate.experiments.priors import universal_denoiser

    return universal_denoiser(prm, "color").to(runtime.device(prm))


def make_task(prm: dict, task: str, shape, index: int):
    """The operator of a task for image ``index`` (masks depend only on (seed, index); one motion kernel per run,
    as the DPS code builds its operator once)."""
    from replicate.operators.base import make_operator

    spec = dict(prm["tasks"][task])
    name = spec.pop("operator")
    if name in ("box_inpainting", "random_inpainting"):
        spec.update(seed=seeding.derive_seed(prm["seed"], PAPER, name), first_index=index, n_images=1)
    if name == "motion_blur":
        spec.update(seed=seeding.derive_seed(prm["seed"], PAPER, "motion_kernel"))
    return make_operator(name, shape=shape, **spec)


def make_noise(prm: dict, kind: str, likelihood: str | None = None):
    from replicate.noise import make_noise as mk

    if kind == "gaussian":
        return mk("gaussian", sigma=prm["noise"]["sigma"], scale=prm["noise"]["scale"])
    if kind == "noiseless":  # y = A(x); the Gaussian model at sigma 0 keeps every other convention of the tables
        return mk("gaussian", sigma=0.0, scale=prm["noise"]["scale"])
    return mk("poisson", rate=prm["poisson"]["rate"], likelihood=likelihood or prm["poisson"]["likelihood"])


def measure(prm: dict, op, noise, x: torch.Tensor, set_name: str, index: int, task: str, kind: str) -> torch.Tensor:
    gen = seeding.generator(prm["seed"], PAPER, "measurement", set_name, index, task, kind)
    return noise.sample(op(x.double()), gen).to(x.dtype)


def dps_zeta(prm: dict, task: str, noise) -> float:
    """The paper's step size zeta' of DPS on ``task`` under ``noise`` (params.yaml states every DPS step as zeta'):
    ``dps_scale`` for Gaussian noise; for Poisson noise ``dps_scale_poisson`` with the released code's data term
    (likelihood "poisson_code") and ``poisson.text_scale`` with the text's data terms."""
    if noise.registered_name == "poisson":
        return prm["dps_scale_poisson"][task] if noise.likelihood == "poisson_code" else prm["poisson"]["text_scale"]
    return prm["dps_scale"][task]


def run_method(prm: dict, method: str, op, noise, y: torch.Tensor, task: str, gen: torch.Generator, set_name: str, *,
               steps: int | None = None, dps_kw: dict | None = None) -> tuple[torch.Tensor, int]:
    """(reconstructions on [0, 1], NFE per image) of one method; y carries one row per sample. ``dps_kw`` overrides
    DPS's keywords, with ``zeta`` (the paper's zeta', params.yaml's convention) in place of the code's ``scale``:
    the sampler gets scale = samplers.diffusion.zeta_to_scale(zeta, schedule) = 2 zeta' (times the NFE compensation
    of reduced profiles)."""
    from replicate.samplers import diffusion as Dm

    dev = runtime.device(prm)
    y = y.to(dev)
    if method in ("dps", "ddrm", "mcg", "score_sde"):
        n_steps = steps or prm["steps"][method]
        base = x0_model_cached(prm, prior_of(prm, set_name))
        # DDRM: the DDRM code's timesteps (range(0, 1000, 1000 // NFE)) unless ddrm.timesteps says "even"
        model = Dm.respaced(base, n_steps, spacing=prm["ddrm"]["timesteps"] if method == "ddrm" else "even")
        comp = compensation(prm, n_steps)
        if method == "dps":
            kw = {"zeta": dps_zeta(prm, task, noise)}
            kw.update(dps_kw or {})
            zeta = kw.pop("zeta")
            kw["scale"] = Dm.zeta_to_scale(zeta, kw.get("step_schedule", "constant")) * comp
            if "decay" in kw:  # the same decay curve over the trajectory: decay per step ** (1000 / NFE)
                kw["decay"] = kw["decay"] ** comp
            r = Dm.dps(model, op, noise, y, generator=gen, **kw)
        elif method == "ddrm":
            d = prm["ddrm"]
            r = Dm.ddrm(model, op, noise, y, generator=gen, eta=d["eta"], eta_b=d["eta_b"],
                        s_min=d["s_min"].get(task, 0.0), cut=d["cut"])
        else:
            p = prm["projection"]
            # a nonlinear operator has no A^+: the DPS code's MCG projects it as x + y - A(x) ("residual"). MCG's
            # gradient step: the same zeta' as DPS (App. D.2), as the code's scale
            r = Dm.projection_sampler(model, op, noise, y, generator=gen, rcond=p["rcond"],
                                      mode=p["mode"] if op.linear else "residual",
                                      cg_iters=p["cg_iters"],
                                      mcg_scale=Dm.zeta_to_scale(prm["dps_scale"][task]) * comp
                                      if method == "mcg" else 0.0)
        return r.x, r.nfe
    sigma01 = getattr(noise, "sigma01", None)
    if method == "pnp_admm":
        from replicate.solvers.pnp_admm import pnp_admm

        p = prm["pnp_admm"]
        x = pnp_admm(denoiser_cached(prm), op, y, sigma_y=sigma01, denoiser_sigma=p["denoiser_sigma"],
                     iters=p["iters"], cg_iters=p["cg_iters"])
        return x.clamp(0, 1), p["iters"]
    if method == "admm_tv":
        from replicate.solvers.admm_tv import admm_tv

        p = prm["admm_tv"]
        return admm_tv(op, y, tau=p["tau"], rho=p["rho"], iters=p["iters"], cg_iters=p["cg_iters"]).clamp(0, 1), 0
    raise KeyError(f"unknown method {method!r}")


def compensation(prm: dict, steps: int) -> float:
    """The DPS / MCG step-size factor of this profile (samplers.diffusion.nfe_compensation, on when
    ``dps_nfe_compensation``)."""
    from replicate.samplers.diffusion import nfe_compensation

    return nfe_compensation(steps, bool(prm.get("dps_nfe_compensation")))


def x0_model_cached(prm, kind: str):
    from replicate.scaleout import per_process

    return per_process((PAPER, "x0_model", kind, prm), lambda: x0_model(prm, kind))


def denoiser_cached(prm):
    from replicate.scaleout import per_process

    return per_process((PAPER, "denoiser", prm), lambda: denoiser(prm))


def applicable(method: str, op, noise) -> str:
    """'' if the method can run on (operator, noise), else why not (the paper's '-' cells)."""
    if method == "ddrm" and not op.svd_available:
        return "no SVD of the operator (paper: '-')"
    if method == "ddrm" and noise.registered_name != "gaussian":
        return "DDRM models Gaussian noise only"
    if method in ("pnp_admm", "admm_tv") and noise.registered_name != "gaussian":
        return "Gaussian data term only"
    return ""


class Metrics:
    """PSNR / SSIM always; LPIPS-VGG (the DPS code's choice) only when its backbone is in the mirror."""

    def __init__(self, prm):
        from replicate.metrics import lpips_available

        self.lpips = None
        ok, _ = lpips_available(prm["lpips_net"])
        if ok:
            from replicate.metrics import LPIPS

            self.lpips = LPIPS(prm["lpips_net"])

    def __call__(self, xs: torch.Tensor, ref: torch.Tensor) -> dict:
        from replicate.metrics import psnr, ssim

        xs, ref = xs.float().cpu().clamp(0, 1), ref.float().expand_as(xs).cpu()
        out = {"psnr": psnr(xs, ref).tolist(), "ssim": ssim(xs, ref).tolist()}
        out["lpips"] = self.lpips(xs, ref).reshape(-1).tolist() if self.lpips is not None else [float("nan")] * len(xs)
        return out


def _fit(op, noise, xs, x, y, ref_sigma01: float | None = None) -> dict:
    """Measurement fit in noise-std units: ||A xhat - y|| and ||A xhat - A x|| / (sigma01 sqrt(m)) (Gaussian; for
    noiseless measurements in units of ``ref_sigma01``, the noise level of the noisy tables)."""
    with torch.no_grad():
        Ah = op(xs.double().to(y.device))
        Ax = op(x.double().to(y.device))
        if noise.registered_name == "gaussian":
            sig = noise.sigma01 or ref_sigma01
        else:
            sig = (Ax.clamp(min=1e-3) / noise.counts_per_unit).mean().sqrt().item()
        m = Ah[0].numel()
        return {"fit_y": ((Ah - y.double()).flatten(1).norm(dim=1) / (sig * m**0.5)).tolist(),
                "fit_clean": ((Ah - Ax).flatten(1).norm(dim=1) / (sig * m**0.5)).tolist()}


EXAMPLE_STAGES = ("linear", "phase_retrieval", "nonuniform")  # the stages whose first images keep their reconstructions


def _examples_dir(prm, stage):
    return runtime.results_dir(prm, PAPER) / f"examples_{stage}"


def _save_examples(prm, stage, set_name, idx, arrays):
    if idx < prm["examples"]:
        save_torch(_examples_dir(prm, stage) / f"{set_name}_{idx}.pt", arrays)


# ------------------------------------------------------------------------------------------ per-image rows
def linear_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """One image: every (noise, task, method) of the Gaussian tables and the Poisson runs, ``samples`` samples."""
    from replicate.scaleout import per_process

    im = _image(prm, set_name, idx)
    metrics = per_process((PAPER, "metrics", prm), lambda: Metrics(prm))
    x = im.pixels[None]
    rows, arrays = [], {"image": im.name, "clean": x[0]}
    runs = [("gaussian", t, m) for t in prm["tasks"] for m in prm["methods"]]
    runs += [("poisson", t, "dps") for t in prm["poisson"]["tasks"]]
    for kind, task, method in runs:
        op = make_task(prm, task, im.shape, idx)
        noise = make_noise(prm, kind)
        y = measure(prm, op, noise, x, set_name, idx, task, kind)
        why = applicable(method, op, noise)
        if why:
            rows.append({"set": set_name, "image_index": idx, "image": im.name, "noise": kind, "task": task,
                         "method": method, "sample": 0, "status": why})
            continue
        gen = seeding.generator(prm["seed"], PAPER, set_name, idx, task, kind, method)
        method_rows, xs = _method_rows(prm, metrics, im, set_name, idx, method, op, noise, y, task, kind, gen)
        rows += method_rows
        arrays[f"{kind}/{task}/{method}"] = xs[: prm["grid_samples"]]
        arrays[f"{kind}/{task}/measurement"] = y[0].float()
    _save_examples(prm, "linear", set_name, idx, arrays)
    return rows


def _method_rows(prm, metrics, im, set_name, idx, method, op, noise, y, task, kind, gen):
    """(one row per sample, reconstructions on the CPU) of one method on one measurement y of image ``im``: several
    samples per measurement for DPS (Figs. 13-20), one for the others; PSNR / SSIM / LPIPS, fit, NFE, seconds."""
    x = im.pixels[None]
    n = prm["samples"] if method == "dps" else 1
    t0 = time.perf_counter()
    xs, nfe = run_method(prm, method, op, noise, y.expand(n, *y.shape[1:]).contiguous(), task, gen, set_name)
    sec = (time.perf_counter() - t0) / n
    xs = xs.float().cpu()
    met, fit = metrics(xs, x), _fit(op, noise, xs, x, y)
    rows = [{"set": set_name, "image_index": idx, "image": im.name, "noise": kind, "task": task, "method": method,
             "sample": s, "status": "ok", "psnr": met["psnr"][s], "ssim": met["ssim"][s], "lpips": met["lpips"][s],
             "fit_y": fit["fit_y"][s], "fit_clean": fit["fit_clean"][s], "nfe": nfe, "seconds_per_image": sec,
             "pixels": x[0].numel(), "seed": prm["seed"]} for s in range(n)]
    return rows, xs


def phase_retrieval_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """Table 3: DPS keeps the best of ``best_of`` samples by measurement residual (the paper's best of 4); ER / HIO /
    OSS keep the best of ``restarts`` random starts (App. D.2)."""
    from replicate.operators.nonlinear import PhaseRetrieval
    from replicate.samplers import diffusion as Dm
    from replicate.scaleout import per_process
    from replicate.solvers.phase_retrieval import fienup

    im = _image(prm, set_name, idx)
    metrics = per_process((PAPER, "metrics", prm), lambda: Metrics(prm))
    x = im.pixels[None]
    pr = prm["phase_retrieval"]
    op = PhaseRetrieval(oversample=pr["oversample"])
    op.shape = im.shape
    noise = make_noise(prm, "gaussian")
    y = measure(prm, op, noise, x, set_name, idx, "phase_retrieval", "gaussian").double()
    rows, arrays = [], {"image": im.name, "clean": x[0]}
    for method in pr["methods"]:
        gen = seeding.generator(prm["seed"], PAPER, set_name, idx, "phase_retrieval", method)
        t0 = time.perf_counter()
        if method == "dps":
            k = pr["best_of"]
            model = Dm.respaced(x0_model_cached(prm, prior_of(prm, set_name)), prm["steps"]["dps"])
            r = Dm.dps(model, op, noise, y.float().expand(k, *y.shape[1:]).contiguous().to(runtime.device(prm)),
                       scale=Dm.zeta_to_scale(prm["dps_scale"]["phase_retrieval"])
                       * compensation(prm, prm["steps"]["dps"]),
                       generator=gen)
            res = (op(r.x.double().cpu()) - y).flatten(1).norm(dim=1)
            best = r.x[int(res.argmin())][None].float().cpu()
            nfe, tries = r.nfe, k
        else:
            out = fienup(op, y, im.shape, method=method, iters=pr["iters"], beta=pr["beta"], generator=gen,
                         restarts=pr["restarts"])
            best, nfe, tries = out["x"].float(), 0, pr["restarts"]
        sec = time.perf_counter() - t0
        met = metrics(best, x)
        # the measurement cannot tell x from its flipped copy (and translations): also report the better of the two
        met_flip = metrics(torch.flip(best, (-2, -1)), x)
        rows.append({"set": set_name, "image_index": idx, "image": im.name, "noise": "gaussian",
                     "task": "phase_retrieval", "method": method, "sample": 0, "status": "ok",
                     "psnr": met["psnr"][0], "ssim": met["ssim"][0], "lpips": met["lpips"][0],
                     "psnr_flip_aligned": max(met["psnr"][0], met_flip["psnr"][0]),
                     "residual": float((op(best.double()) - y).norm()), "tries": tries, "nfe": nfe,
                     "seconds_per_image": sec, "pixels": x[0].numel(), "seed": prm["seed"]})
        arrays[method] = best
    _save_examples(prm, "phase_retrieval", set_name, idx, arrays)
    return rows


NONUNIFORM_TASK = "deblur_nonuniform"


def nonuniform_operator(prm: dict, set_name: str, idx: int, shape):
    """The bkse blur of one image: one blur code per image, drawn N(0, latent_scale^2) from a generator seeded by
    (seed, set, image) (the DPS code draws a fresh one on every call; ``resample_latent: true`` does that)."""
    from replicate.operators.nonlinear import NonUniformBlur

    nu = prm["nonuniform"]
    net = bkse_network_cached(prm)
    op = NonUniformBlur(net=net, seed=seeding.derive_seed(prm["seed"], PAPER, "bkse_code", set_name, idx),
                        latent_scale=nu["latent_scale"], latent_shape=net.code_shape(*shape[-2:]),
                        resample_latent=nu["resample_latent"])
    op.shape = tuple(shape)
    return op


def nonuniform_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """Table 4: every method of ``nonuniform.methods`` on one image's non-uniform blur with Gaussian noise."""
    from replicate.scaleout import per_process

    im = _image(prm, set_name, idx)
    metrics = per_process((PAPER, "metrics", prm), lambda: Metrics(prm))
    x = im.pixels[None]
    op = nonuniform_operator(prm, set_name, idx, im.shape)
    noise = make_noise(prm, "gaussian")
    y = measure(prm, op, noise, x, set_name, idx, NONUNIFORM_TASK, "gaussian")
    rows, arrays = [], {"image": im.name, "clean": x[0], "measurement": y[0].float()}
    for method in prm["nonuniform"]["methods"]:
        gen = seeding.generator(prm["seed"], PAPER, set_name, idx, NONUNIFORM_TASK, method)
        method_rows, xs = _method_rows(prm, metrics, im, set_name, idx, method, op, noise, y, NONUNIFORM_TASK,
                                       "gaussian", gen)
        rows += method_rows
        arrays[method] = xs[: prm["grid_samples"]]
    _save_examples(prm, "nonuniform", set_name, idx, arrays)
    return rows


def ablation_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """Table 5 (schedules on Gaussian deblurring), Fig. 8 (step sizes), Fig. 11 (NFE: DPS vs DDRM), App. C.4
    (Poisson likelihood variants on SR), and noiseless SR (DPS vs the projection methods, Sec. 4's MCG claim)."""
    from replicate.scaleout import per_process

    im = _image(prm, set_name, idx)
    metrics = per_process((PAPER, "metrics", prm), lambda: Metrics(prm))
    x = im.pixels[None]
    ab = prm["ablations"]
    rows = []

    ref_sigma01 = make_noise(prm, "gaussian").sigma01   # fit units of the noiseless runs

    def record(study, setting, value, task, kind, method, xs, nfe, sec, op, noise, y):
        met = metrics(xs.float().cpu(), x)
        fit = _fit(op, noise, xs.float().cpu(), x, y, ref_sigma01=ref_sigma01)
        rows.append({"set": set_name, "image_index": idx, "image": im.name, "study": study, "setting": setting,
                     "value": value, "task": task, "noise": kind, "method": method, "psnr": met["psnr"][0],
                     "ssim": met["ssim"][0], "lpips": met["lpips"][0], "fit_y": fit["fit_y"][0],
                     "fit_clean": fit["fit_clean"][0], "nfe": nfe, "seconds_per_image": sec, "seed": prm["seed"]})

    def go(study, setting, value, task, kind, method, steps=None, dps_kw=None, likelihood=None):
        op = make_task(prm, task, im.shape, idx)
        noise = make_noise(prm, kind, likelihood)
        y = measure(prm, op, noise, x, set_name, idx, task, kind)
        gen = seeding.generator(prm["seed"], PAPER, "ablation", set_name, idx, study, setting, value, method)
        t0 = time.perf_counter()
        xs, nfe = run_method(prm, method, op, noise, y, task, gen, set_name, steps=steps, dps_kw=dps_kw)
        record(study, setting, value, task, kind, method, xs, nfe, time.perf_counter() - t0, op, noise, y)

    task = ab["task"]
    # every value is the paper's zeta' (run_method converts to the code's scale = 2 zeta'); the rows' "value" too
    for sched in ab["schedules"]:  # Table 5
        go("schedule", sched["schedule"], sched["scale"], task, "gaussian", "dps",
           dps_kw={"zeta": sched["scale"], "step_schedule": sched["schedule"], "decay": sched.get("decay", 0.99)})
    for s in ab["step_sizes"]:  # Fig. 8
        go("step_size", "constant", s, task, "gaussian", "dps", dps_kw={"zeta": s})
    for nfe in ab["nfe"]:  # Fig. 11
        for method in ("dps", "ddrm"):
            go("nfe", method, nfe, ab["nfe_task"], "gaussian", method, steps=nfe)
    for lik in ab["poisson_likelihoods"]:  # App. C.4
        go("poisson_likelihood", lik, 0, ab["poisson_task"], "poisson", "dps", likelihood=lik)
    for method in ab.get("noiseless_methods", []):  # Sec. 4: "MCG fails dramatically in SR even without noise"
        go("noiseless", method, 0, ab["noiseless_task"], "noiseless", method)
    return rows


# ------------------------------------------------------------------------------------------------ stages
def _plan(prm: dict, name: str, view=None, needs=None) -> tuple[dict, list[tuple]]:
    """Every image of every available set; sets whose data or checkpoint is not here are listed with the reason in
    <name>.unavailable.json and get no rows. ``view(prm)`` adapts the params (Table 4's own sets); ``needs(prm)``
    loads what every set needs and raises Unavailable if it is not here (the bkse network): then every set is
    listed with that reason."""
    prm = effective(prm)
    prm = view(prm) if view else prm
    try:
        if needs:
            needs(prm)
    except Unavailable as e:
        sets, missing = {}, {**{s: str(e) for s in prm["test_sets"]}, **gpu_only_reasons(prm)}
    else:
        sets, missing = image_sets(prm)
    write_json(runtime.results_dir(prm, PAPER) / f"{name}.unavailable.json",
               {"stage": name, "subset": prm["subset"], "unavailable": missing})
    return prm, [(s, i) for s, ims in sets.items() for i in range(len(ims))]


def plan_linear(prm: dict) -> tuple[dict, list[tuple]]:
    return _plan(prm, "linear")


def plan_phase_retrieval(prm: dict) -> tuple[dict, list[tuple]]:
    return _plan(prm, "phase_retrieval")


def plan_ablations(prm: dict) -> tuple[dict, list[tuple]]:
    return _plan(prm, "ablations")


def _nonuniform_view(prm: dict) -> dict:
    """Table 4's params: its own image sets (the bkse network needs H, W multiples of 128)."""
    return {**prm, "test_sets": prm["nonuniform"]["test_sets"],
            "gpu_only_sets": prm.get("nonuniform_gpu_only_sets", {})}


def plan_nonuniform(prm: dict) -> tuple[dict, list[tuple]]:
    """Table 4. Without the bkse weights every set is listed as not available here, with the registry's reason."""
    return _plan(prm, "nonuniform", view=_nonuniform_view, needs=bkse_network_cached)


def jensen_gap_rows(prm: dict) -> list[dict]:
    """Remark 2 on an analytic prior. x ~ N(mean, C) stationary Gaussian, y = A x + sigma_y n, A linear: the exact
    posterior is Gaussian, and so is p(x0 | x_t), with a covariance Sigma_t that does not depend on x_t. Hence
    p(y | x_t) = N(y; A x0_hat(x_t), sigma_y^2 I + A Sigma_t A^T) exactly, while DPS uses N(y; A x0_hat, sigma_y^2 I):
    the A Sigma_t A^T term is the Jensen gap. Three samplers per (sigma_y, measurement), same noise draws:
      exact       the reverse-SDE step with the exact grad log p(y | x_t) (control: discretisation + Monte Carlo)
      dps_approx  the same step with DPS's approximation (step schedule "posterior", scale 1)
      dps_paper   DPS as run in the tables: constant step zeta' on the gradient of ||y - A x0_hat||
    Errors against the exact posterior N(m, S): ||mean of samples - m|| / sqrt(tr S) and tr(cov of samples) / tr S.
    """
    from replicate.denoisers.gaussian import StationaryGaussianPrior, vec
    from replicate.denoisers.vp import DenoiserX0
    from replicate.noise import GaussianNoise
    from replicate.operators.base import make_operator
    from replicate.samplers import diffusion as Dm

    jg = prm["jensen_gap"]
    shape = tuple(jg["shape"])
    prior = StationaryGaussianPrior(shape, **jg["prior"])
    spec = dict(jg["operator"])
    op = make_operator(spec.pop("operator"), shape=shape, **spec)
    A = op.as_matrix()
    model = Dm.respaced(DenoiserX0(prior), jg["steps"])
    sched = model.schedule
    # Cov[x0 | x_t] on [0, 1] is the Wiener posterior covariance at the denoising level of step t
    levels = sched.noise_level01().to(torch.float64)
    a_sigma_at = [A @ prior.denoising_posterior_covariance(level) @ A.T for level in levels.tolist()]
    rows = []
    for sigma in jg["sigmas"]:
        noise = GaussianNoise(sigma, scale=prm["noise"]["scale"])
        s01 = noise.sigma01
        k_inv = [torch.linalg.inv(s01**2 * torch.eye(A.shape[0], dtype=torch.float64) + m) for m in a_sigma_at]
        # size of what DPS neglects, tr(A Sigma_t A^T) / tr(sigma_y^2 I), averaged over the steps
        neglected = sum(float(torch.diagonal(m).sum()) for m in a_sigma_at) / len(a_sigma_at) / (A.shape[0] * s01**2)

        def exact_term(y, Ax, t, k_inv=k_inv):
            r = (y - Ax).flatten(1).double()
            return 0.5 * ((r @ k_inv[t]) * r).sum(1)

        runs = {"exact": dict(step_schedule="posterior", scale=1.0, data_term=exact_term),
                "dps_approx": dict(step_schedule="posterior", scale=1.0),
                "dps_paper": dict(step_schedule="constant",
                                  scale=Dm.zeta_to_scale(jg["paper_scale"]) * compensation(prm, jg["steps"]))}

        for m in range(jg["measurements"]):
            g = seeding.generator(prm["seed"], PAPER, "jensen_gap", sigma, m)
            x = prior.sample(1, g)
            y = noise.sample(op(x), g)
            pm, cov = prior.posterior(A, y.reshape(1, -1), s01)
            tr = float(torch.diagonal(cov).sum())
            y_n = y.expand(jg["samples"], *y.shape[1:]).contiguous()
            for method, kw in runs.items():
                gen = seeding.generator(prm["seed"], PAPER, "jensen_gap", "sampler", sigma, m)  # common draws
                t0 = time.perf_counter()
                r = Dm.dps(model, op, noise, y_n, generator=gen, shape=shape, **kw)
                xs = Dm.to01(r.x_pm1).reshape(jg["samples"], -1)  # unclamped: the Gaussian has no bounds
                mean_err = float((xs.mean(0) - vec(pm)[0]).norm()) / tr**0.5
                var_ratio = float(xs.var(0).sum()) / tr
                rows.append({"sigma_y": sigma, "measurement": m, "method": method, "mean_err": mean_err,
                             "var_ratio": var_ratio, "posterior_std": (tr / prior.dim) ** 0.5,
                             "neglected_cov_ratio": neglected,
                             "samples": jg["samples"], "steps": jg["steps"],
                             "seconds": time.perf_counter() - t0, "seed": prm["seed"]})
    return rows


def stage_jensen_gap(prm: dict) -> None:
    prm = effective(prm)
    # 64-pixel problems: one thread is fastest (two oversubscribe a busy machine ~10x) and keeps the float64
    # reductions in one order whatever REPLICATE_THREADS says
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = jensen_gap_rows(prm)
    finally:
        torch.set_num_threads(threads)
    write_csv(runtime.results_dir(prm, PAPER) / "jensen_gap.csv", pd.DataFrame(rows))


def stage_benchmark(prm: dict) -> None:
    """DPS overhead: seconds per step of the x0-predictor forward only vs forward + backward (what DPS needs), and
    seconds per image of a full DPS run at the profile's NFE; the per-method times come from the linear stage."""
    prm = effective(prm)
    out = runtime.results_dir(prm, PAPER) / "benchmark.csv"
    sets, missing = image_sets(prm)
    write_json(out.with_name("benchmark.unavailable.json"), {"stage": "benchmark", "unavailable": missing})
    if not sets:
        write_csv(out, pd.DataFrame(columns=["what", "seconds"]))
        return
    set_name = next(iter(sets))
    model = x0_model_cached(prm, prior_of(prm, set_name))
    dev = runtime.device(prm)
    im = sets[set_name][0]
    x = torch.randn(1, *im.shape, generator=seeding.generator(prm["seed"], PAPER, "benchmark")).to(dev)
    reps = prm["benchmark"]["reps"]
    t = 500
    with torch.no_grad():
        model.predict(x, t)  # warm-up
        t0 = time.perf_counter()
        for _ in range(reps):
            model.predict(x, t)
        fwd = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(model.predict(xi, t)["x0"].square().sum(), xi)
    fb = (time.perf_counter() - t0) / reps
    nfe = prm["steps"]["dps"]
    rows = [{"what": "forward per step", "seconds": fwd, "pixels": x[0].numel(), "device": str(dev)},
            {"what": "forward+backward per step", "seconds": fb, "pixels": x[0].numel(), "device": str(dev)},
            {"what": "DPS overhead factor", "seconds": fb / fwd, "pixels": x[0].numel(), "device": str(dev)},
            {"what": f"DPS projected per image at {nfe} NFE", "seconds": fb * nfe, "pixels": x[0].numel(),
             "device": str(dev)},
            {"what": "DPS projected per image at 1000 NFE", "seconds": fb * 1000, "pixels": x[0].numel(),
             "device": str(dev)}]
    write_csv(out, pd.DataFrame(rows))


RESULTS = "results/{profile}/chung2023/"
UNIVERSAL = ("data/models/{profile}/mohan2020",)   # the universal prior of mini / smoke


def _per_image(name: str, rows, plan, about: str) -> Stage:
    csv = RESULTS + f"{name}.csv"
    side = RESULTS + f"examples_{name}" if name in EXAMPLE_STAGES else None
    outs = (csv, RESULTS + f"{name}.unavailable.json") + ((side,) if side else ())
    return Stage(f"chung2023_{name}", PAPER, None, outs=outs, inputs=UNIVERSAL,
                 per_image=PerImage(rows, plan, csv, side=side), about=about)


STAGES = [
    _per_image("linear", linear_rows, plan_linear,
               "Tables 1/2/6/7 + Poisson: every method on every noisy linear task, per image and sample"),
    _per_image("phase_retrieval", phase_retrieval_rows, plan_phase_retrieval,
               "Table 3: DPS (best of k samples) vs ER / HIO / OSS (best of 4 restarts)"),
    _per_image("ablations", ablation_rows, plan_ablations,
               "Table 5, Figs. 8 and 11, App. C.4: step-size schedules and sizes, NFE, Poisson likelihoods"),
    Stage("chung2023_benchmark", PAPER, stage_benchmark, inputs=UNIVERSAL,
          outs=(RESULTS + "benchmark.csv", RESULTS + "benchmark.unavailable.json"),
          about="wall-clock: forward vs forward + backward of the x0-predictor, DPS's overhead"),
    _per_image("nonuniform", nonuniform_rows, plan_nonuniform,
               "Table 4: DPS and MCG on non-uniform deblurring through the bkse blur network"),
    Stage("chung2023_jensen_gap", PAPER, stage_jensen_gap, outs=(RESULTS + "jensen_gap.csv",),
          about="Remark 2 measured: DPS's approximation of p(y | x_t) vs the exact one on a Gaussian prior"),
]
