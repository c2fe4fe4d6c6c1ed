"""Chung et al. 2023, the wiring every stage shares: test sets, priors, tasks, measurement noise, the methods' settings
from params, metrics, availability. The stages are the sibling modules (see the package docstring)."""
from __future__ import annotations

import torch

from replicate import data as D
from replicate import methods, runtime, seeding
from replicate.io import save_torch
from replicate.pipeline import availability

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
        images = _paper_images(spec)
        if spec.get("square"):   # the dryrun profile: the paper's 256 px images resized (the ADMs take any 32k px)
            from replicate.datasets_ncsn import square_transform

            images = [D.Image(im.name, square_transform(im.pixels, spec["square"])) for im in images]
        return images
    images = D.load_set(spec)
    return images[: spec["limit"]] if spec.get("limit") else images


def image_sets(prm: dict) -> tuple[dict[str, list[D.Image]], dict[str, str]]:
    """(sets that are here, {set: why not} for the others, data or checkpoint missing)."""
    sets, missing = {}, {}
    for name in prm["test_sets"]:
        try:
            images = load_image_set(prm, name)
            prior_cached(prm, prior_of(prm, name))
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


def prior_of(prm: dict, set_name: str) -> dict:
    """The prior of a test set (replicate.denoisers.priors spec): the set's `prior` (else the section's), the top-level
    `prior` in place of it; "universal" is the colour universal bias-free denoiser."""
    from replicate.denoisers import priors

    name = prm["test_sets"][set_name].get("prior", prm["prior"])
    spec = {"kind": "universal", "channels": "color"} if name == "universal" else name
    return priors.resolve(spec, prm.get("prior_override"))


def prior(prm: dict, spec: dict):
    """The score model of a test set as a Denoiser on the run's device; Unavailable (with the registry's message)
    where its checkpoint cannot be had."""
    from replicate.denoisers import priors

    try:
        return priors.load_prior(spec, prm).to(runtime.device(prm))
    except priors.PriorUnavailable as e:
        raise Unavailable(str(e)) from e


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
    """The bkse blur network, loaded once per process."""
    from replicate.scaleout import per_process

    return per_process((PAPER, "bkse", prm["nonuniform"]["weights"]), lambda: bkse_network(prm))


def denoiser(prm: dict):
    """The plain project denoiser for PnP-ADMM (the paper: a DnCNN; here the universal bias-free DnCNN, or the
    top-level `prior`)."""
    from replicate.denoisers import priors

    spec = priors.resolve({"kind": "universal", "channels": "color"}, prm.get("prior_override"))
    return priors.load_prior(spec, prm).to(runtime.device(prm))


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
    """The measurement noise of a table: Gaussian sigma_y on [-1, 1], noiseless (sigma 0, same conventions) or
    Poisson (the released code's data term unless `likelihood` says otherwise)."""
    from replicate.noise import make_noise as mk

    if kind == "gaussian":
        return mk("gaussian", sigma=prm["noise"]["sigma"], scale=prm["noise"]["scale"])
    if kind == "noiseless":  # y = A(x); the Gaussian model at sigma 0 keeps every other convention of the tables
        return mk("gaussian", sigma=0.0, scale=prm["noise"]["scale"])
    return mk("poisson", rate=prm["poisson"]["rate"], likelihood=likelihood or prm["poisson"]["likelihood"])


def measure(prm: dict, op, noise, x: torch.Tensor, set_name: str, index: int, task: str, kind: str) -> torch.Tensor:
    """y = noise(A x) for one image, task and noise kind; the draw depends only on (seed, set, image, task, kind)."""
    gen = seeding.generator(prm["seed"], PAPER, "measurement", set_name, index, task, kind)
    return noise.sample(op(x.double()), gen).to(x.dtype)


def dps_zeta(prm: dict, task: str, noise) -> float:
    """The paper's step size zeta' of DPS on ``task`` under ``noise`` (params.yaml states every DPS step as zeta'):
    ``dps_scale`` for Gaussian noise; for Poisson noise ``dps_scale_poisson`` with the released code's data term
    (likelihood "poisson_code") and ``poisson.text_scale`` with the text's data terms."""
    if noise.registered_name == "poisson":
        return prm["dps_scale_poisson"][task] if noise.likelihood == "poisson_code" else prm["poisson"]["text_scale"]
    return prm["dps_scale"][task]


def method_settings(prm: dict, method: str, task: str, noise, *, steps: int | None = None,
                    dps_kw: dict | None = None) -> dict:
    """The registry settings (replicate.methods) of one method on one task, from params' chung2023 section.

    Step sizes are the paper's zeta' (``zeta``); the methods convert them to the code's scale = 2 zeta', times the
    NFE compensation of reduced profiles (``dps_nfe_compensation``). ``dps_kw`` overrides DPS's settings (the
    ablations: zeta, step_schedule, decay)."""
    compensate = bool(prm.get("dps_nfe_compensation"))
    p, d = prm["projection"], prm["ddrm"]
    projection = {"steps": steps or prm["steps"].get(method), "rcond": p["rcond"], "mode": p["mode"],
                  "cg_iters": p["cg_iters"]}
    build = {
        "dps": lambda: {"steps": steps or prm["steps"]["dps"], "zeta": dps_zeta(prm, task, noise),
                        "nfe_compensation": compensate, **(dps_kw or {})},
        # the DDRM code's timesteps (range(0, 1000, 1000 // NFE)) unless ddrm.timesteps says "even"
        "ddrm": lambda: {"steps": steps or prm["steps"]["ddrm"], "spacing": d["timesteps"], "eta": d["eta"],
                         "eta_b": d["eta_b"], "s_min": d["s_min"].get(task, 0.0), "cut": d["cut"]},
        # MCG's gradient step: the same zeta' as DPS (App. D.2)
        "mcg": lambda: {**projection, "zeta": prm["dps_scale"][task], "nfe_compensation": compensate},
        "score_sde": lambda: projection,
        "pnp_admm": lambda: {k: prm["pnp_admm"][k] for k in ("denoiser_sigma", "iters", "cg_iters")},
        "admm_tv": lambda: {k: prm["admm_tv"][k] for k in ("tau", "rho", "iters", "cg_iters")},
    }
    return build[method]()


#: the prior each method runs with: the diffusion methods the test set's score model, PnP-ADMM the plain denoiser
#: (the paper's DnCNN; here the universal bias-free one), ADMM-TV none
PRIOR_OF_METHOD = {"dps": "score", "ddrm": "score", "mcg": "score", "score_sde": "score", "pnp_admm": "denoiser",
                   "admm_tv": None}


def method_prior(prm: dict, method: str, set_name: str):
    """The prior a method runs with on a test set (see PRIOR_OF_METHOD), loaded once per process."""
    role = PRIOR_OF_METHOD[method]
    if role == "score":
        return prior_cached(prm, prior_of(prm, set_name))
    return denoiser_cached(prm) if role == "denoiser" else None


def run_method(prm: dict, method: str, op, noise, y: torch.Tensor, task: str, gen: torch.Generator, set_name: str, *,
               steps: int | None = None, dps_kw: dict | None = None) -> tuple[torch.Tensor, int]:
    """(reconstructions on [0, 1], NFE per image) of one registered method; y carries one row per sample."""
    r = methods.run(method, method_prior(prm, method, set_name), op, noise, y.to(runtime.device(prm)), generator=gen,
                    **method_settings(prm, method, task, noise, steps=steps, dps_kw=dps_kw))
    return r.x.clamp(0, 1), r.nfe


def compensation(prm: dict, steps: int) -> float:
    """The DPS / MCG step-size factor of this profile (samplers.diffusion.nfe_compensation, on when
    ``dps_nfe_compensation``)."""
    from replicate.samplers.diffusion import nfe_compensation

    return nfe_compensation(steps, bool(prm.get("dps_nfe_compensation")))


def prior_cached(prm, spec: dict):
    """The score model of a prior spec, loaded once per process."""
    from replicate.scaleout import per_process

    return per_process((PAPER, "prior", spec, prm), lambda: prior(prm, spec))


def denoiser_cached(prm):
    """PnP-ADMM's denoiser, loaded once per process."""
    from replicate.scaleout import per_process

    return per_process((PAPER, "denoiser", prm), lambda: denoiser(prm))


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


def _save_examples(prm, stage, set_name, idx, arrays):
    """The reconstructions of the first ``examples`` images of each set (the report's figures)."""
    if idx < prm["examples"]:
        save_torch(runtime.arrays_dir(prm, PAPER, stage) / f"{set_name}_{idx}.pt", arrays)


def _plan(prm: dict, name: str, view=None, needs=None) -> tuple[dict, list[tuple]]:
    """Every image of every available set; sets whose data or checkpoint is not here are listed with the reason in
    <name>_availability.csv and get no rows. ``view(prm)`` adapts the params (Table 4's own sets); ``needs(prm)``
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
    availability.write_missing(prm, PAPER, name, prm["test_sets"], missing)
    return prm, [(s, i) for s, ims in sets.items() for i in range(len(ims))]
