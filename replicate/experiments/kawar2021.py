"""Kawar, Vaksman & Elad 2021: stochastic denoising (Algorithm 1) and noisy inpainting (Algorithm 2) by annealed
Langevin posterior sampling with an MMSE denoiser as the prior.

Stages (kawar2021_* in dvc.yaml), each writing per-image results under results/<profile>/kawar2021/:
  denoise     Table 1 / 4 and section 4.2: per image and sigma0, PSNR of BM3D, the MMSE denoiser (one call at
              sigma0) and n_samples posterior samples; MSE; LPIPS (when its backbone is available); residual
              y - x_hat statistics (std, D'Agostino-Pearson p, max |Pearson rho| over 8 neighbours) of every
              sample and of the MMSE output; timings.  Arrays of the first images go to denoise_arrays/.
  inpaint     Algorithm 2 on text-overlay / missing-rows / missing-eye masks (Figs. 8, 9, 29-33).
  exactness   Algorithm 1 under an analytic stationary Gaussian prior with each run's (eps, T, ladder): the
              closed-form MSE ratio ours/MMSE (2 for an exact posterior sampler) - what the settings can achieve.
  figures     tables, figures, claims (replicate/report/kawar2021.py).

A "run" (params `runs:`) wires one prior to one image set: the paper's NCSNv2 checkpoints on CelebA / LSUN / FFHQ
(paper profile, GPU, files not in this mirror: the run is recorded as "not available here" with the reason), the
universal bias-free denoiser on CBSD68 / Kodak24 (paper profile, CPU subset), or the self-trained one on scikit-image
photographs (mini, smoke), and in mini also an analytic stationary Gaussian prior whose MMSE denoiser is exact
(the Wiener filter).  The sampler only sees a Denoiser, an image batch and sigma0.

Noise ladders: an NCSNv2 prior is sampled on its own ladder (sigma0 is a ladder point; the levels below it are
Algorithm 1's {sigma_i}; the paper's L counts sigma0's own point, so L - 1 levels are visited and the printed L is
checked); any other prior on geometric_levels(sigma0, sigma_L, rate) with the rate stated in params.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from replicate import params as P
from replicate import data as D
from replicate import methods, runtime, seeding
from replicate.io import save_torch, write_csv
from replicate.noise import make_noise
from replicate.noise.residual import residual_stats
from replicate.operators.linear import Inpainting
from replicate.pipeline import availability
from replicate.pipeline.stage import Stage, per_image_stage
from replicate.samplers import langevin as LG

PAPER = "kawar2021"


# ------------------------------------------------------------------------------------------------ runs and data
def runs(prm: dict) -> dict:
    """The runs of this profile: name -> prior, images, sigma0s and the algorithms' settings."""
    return dict(prm["runs"])


def run_availability(prm: dict, name: str) -> tuple[bool, str]:
    """(available, reason): registry sets the run needs (checkpoint, data set), and the universal prior's file."""
    from replicate.assets.registry import obtain

    r = runs(prm)[name]
    reasons = []
    for set_name in r.get("needs", []):
        ok, why = obtain(set_name)
        if not ok:
            reasons.append(f"{set_name}: {why.splitlines()[0]}")
    if prior_kind(prm, name) == "universal" and P.code_profile(prm) != "paper":
        path = runtime.models_dir(prm, "mohan2020") / f"universal_{r['prior']['channels']}.pt"
        if not path.exists():
            reasons.append(f"{path} missing: run the mohan2020 models stage first (python -m replicate mohan2020 models)")
    return (not reasons), "; ".join(reasons)


def prior_spec(prm: dict, name: str) -> dict:
    """The run's prior (replicate.denoisers.priors spec): params' `runs.<name>.prior`, the top-level `prior` in place
    of a learned one; the analytic Gaussian prior gets its spectrum fitted here (``gaussian_fit``)."""
    from replicate.denoisers import priors

    spec = dict(runs(prm)[name]["prior"])
    if spec["kind"] == "gaussian":
        spec = gaussian_fit(prm, name)
    return priors.resolve(spec, prm.get("prior_override"))


def prior_kind(prm: dict, name: str) -> str:
    """The kind of prior the run samples with."""
    from replicate.denoisers import priors

    return priors.resolve(runs(prm)[name]["prior"], prm.get("prior_override"))["kind"]


def load_prior(prm: dict, name: str):
    """The run's Denoiser (eval mode, on the run's device; a network NHWC on the CPU: same numbers, faster)."""
    from replicate.denoisers import priors

    spec = prior_spec(prm, name)
    dev = runtime.device(prm)
    den = priors.load_prior(spec, prm)
    if spec["kind"] == "universal" and dev.type == "cpu":
        den = den.channels_last()
    return den.to(dev)


def gaussian_fit(prm: dict, name: str) -> dict:
    """A stationary Gaussian prior with a 1/f^alpha spectrum whose mean and per-pixel std are fitted to the
    scikit-image training photographs (disjoint from the test photographs), at the run's image size.

    Its MMSE denoiser is the exact Wiener filter, so this run shows what Algorithms 1 and 2 do on real photographs
    when the denoiser really is the MMSE denoiser of the prior (the premise of the paper); the prior itself is
    mis-specified for photographs, which is a separate matter from the sampler.
    """
    from replicate import datasets_ncsn as N

    run = runs(prm)[name]
    size = run["images"]["square"]
    train = torch.stack([N.square_transform(im.pixels, size) for im in D.skimage_set(D.SKIMAGE_COLOR_TRAIN)])
    return {"kind": "gaussian", "shape": (3, size, size), "alpha": float(run["prior"].get("alpha", 2.0)),
            "scale": float(train.std()), "mean": float(train.mean())}


def load_images(prm: dict, name: str) -> list[D.Image]:
    """The run's test images: the paper's datasets (NCSNv2 preprocessing) or a project set, optionally squared."""
    from replicate import datasets_ncsn as N

    spec = dict(runs(prm)[name]["images"])
    if spec["source"] in N.DATASETS:
        images = N.load_dataset(spec["source"], spec["limit"], spec.get("lsun_order", "resize_crop"))
    else:
        images = D.load_set(spec)
    if spec.get("square"):  # central square resized (the LSUN recipe): face-sized inputs from photographs (mini), or
        # the dataset's own preprocessing, then smaller (dryrun: NCSNv2 is fully convolutional)
        images = [D.Image(im.name, N.square_transform(im.pixels, spec["square"])) for im in images]
    return images


def sigma_levels(prior, run: dict, sigma0: float, prm: dict) -> tuple[list[float], list[float]]:
    """(levels above sigma0, levels below sigma0) for this prior; checks the paper's L where it is given."""
    if hasattr(prior, "sigmas") and run["prior"]["kind"] == "ncsnv2":
        above, _, below = LG.split_network_ladder(prior.sigmas, sigma0)
        L = (run.get("L") or {}).get(sigma0) or (run.get("L") or {}).get(str(sigma0))
        if L is not None and len(below) != int(L) - 1:
            raise ValueError(f"ladder gives {len(below)} levels below sigma0={sigma0}, the paper's L={L} implies {L - 1}")
        return above.tolist(), below.tolist()
    d = run["denoise"]
    below = LG.geometric_levels(sigma0, prm["sigma_L"], d["rate"]).tolist()
    return [], below


def thin(levels: list[float], n: int | None) -> list[float]:
    """`n` levels of a ladder, evenly spaced with both ends kept (the dryrun profile's `levels`); all when n is None."""
    if not n or n >= len(levels):
        return list(levels)
    return [levels[i] for i in sorted(set(np.linspace(0, len(levels) - 1, n).round().astype(int).tolist()))]


def above_levels(prior, run: dict, sigma0: float, prm: dict) -> list[float]:
    """Algorithm 2's {sigma_i}_{i=-K}^{-1}: the network's ladder above sigma0, or geometric from sigma_top."""
    if hasattr(prior, "sigmas") and run["prior"]["kind"] == "ncsnv2":
        return sigma_levels(prior, run, sigma0, prm)[0]
    ip = run["inpaint"]
    top = float(ip["sigma_top"])
    return [top] + LG.geometric_levels(top, sigma0, ip["rate"]).tolist()[:-1]


def gaussian_noise(sigma0: float):
    """The measurement noise y = x + sigma0 n of both algorithms (sigma0 on the [0, 1] scale)."""
    return make_noise("gaussian", sigma=sigma0, scale="01")


def noisy(prm: dict, name: str, idx: int, x: torch.Tensor, sigma0: float, what: str = "denoise") -> torch.Tensor:
    """y = x + sigma0 n; n depends only on (seed, paper, noise key, image, sigma0, what). Not clipped (y = x + n).

    The noise key is the run's `noise_key` (default: the run name): runs that share it see the same noisy images,
    so their results are paired."""
    key = runs(prm)[name].get("noise_key", name)
    return x + sigma0 * seeding.randn(x.shape, prm["seed"], PAPER, key, idx, what, float(sigma0))


def sample_seeds(prm: dict, name: str, idx: int, sigma0: float, n: int, what: str = "denoise") -> list[int]:
    """One seed per posterior sample of (run, image, sigma0, algorithm): a sample never depends on which others
    share its batch."""
    return [seeding.derive_seed(prm["seed"], PAPER, name, idx, what, float(sigma0), "sample", s) for s in range(n)]


# ------------------------------------------------------------------------------------------------ denoising
def _lpips(prm: dict):
    from replicate.metrics import LPIPS, lpips_available

    ok, _ = lpips_available(prm["lpips_net"])
    return LPIPS(prm["lpips_net"], device=runtime.device(prm)) if ok else None


@torch.no_grad()
def denoise_rows(prm: dict, name: str, idx: int) -> list[dict]:
    """One image of one run: BM3D, MMSE and n_samples posterior samples at every sigma0 of the run."""
    from replicate.denoisers.bm3d import BM3DDenoiser
    from replicate.metrics import mse, psnr_for
    from replicate.scaleout import per_process

    run = runs(prm)[name]
    prior = per_process((PAPER, "prior", name, prm), lambda: load_prior(prm, name))
    im = per_process((PAPER, "images", name, prm), lambda: load_images(prm, name))[idx]
    lp = per_process((PAPER, "lpips", prm), lambda: _lpips(prm))
    dev = runtime.device(prm)
    S = int(prm["n_samples"])
    x = im.pixels[None]
    d = run["denoise"]
    rows, arrays = [], {"clean": x[0], "name": im.name, "sigma0": {}}
    # diagnostic of the prior: an MMSE denoiser at sigma_L = 0.01 barely changes a clean image; the Langevin steps
    # near sigma_L move by eps/sigma_L^2 (D(x) - x) per step, so a large RMS(D(x) - x) drags the samples away
    clean_rmse = float((prior(x.to(dev), prm["sigma_L"]).cpu() - x).pow(2).mean().sqrt())
    for sigma0 in run["sigma0s"]:
        sigma0 = float(sigma0)
        y = noisy(prm, name, idx, x, sigma0)
        t0 = time.perf_counter()
        mmse = prior(y.to(dev), sigma0).cpu()
        t_mmse = time.perf_counter() - t0
        t0 = time.perf_counter()
        bm3d = BM3DDenoiser()(y, sigma0) if run.get("bm3d", prm.get("bm3d", True)) else None
        t_bm3d = time.perf_counter() - t0
        below = thin(sigma_levels(prior, run, sigma0, prm)[1], run["denoise"].get("levels"))
        snaps = {}
        keep = set(np.linspace(0, len(below) - 1, prm["intermediate_steps"]).round().astype(int).tolist())

        def snap(level, sigma_i, xx, snaps=snaps, keep=keep):  # intermediate iterates of sample 0 (Fig. 7);
            if level in keep:                                    # float16: for display only, keeps results/ small
                snaps[float(sigma_i)] = xx[:1].detach().cpu().to(torch.float16)

        res = methods.run("kawar_denoise", prior, None, gaussian_noise(sigma0), y.to(dev), sigmas=below,
                          epsilon=d["epsilon"], T=d["T"], n_samples=S, seeds=sample_seeds(prm, name, idx, sigma0, S),
                          sigma_L=prm["sigma_L"], callback=snap, final_denoise=prm["final_denoise"])
        samples = res.x.cpu()
        xs = x.expand(S, -1, -1, -1)
        p_ours, m_ours = psnr_for(PAPER, samples, xs), mse(samples.clamp(0, 1), xs)
        p_mmse, m_mmse = float(psnr_for(PAPER, mmse, x)), float(mse(mmse.clamp(0, 1), x))
        p_bm3d = float(psnr_for(PAPER, bm3d, x)) if bm3d is not None else float("nan")
        l_ours = lp(samples.clamp(0, 1), xs) if lp is not None else None
        l_mmse = float(lp(mmse.clamp(0, 1), x)) if lp is not None else float("nan")
        base = {"run": name, "image_index": idx, "image": im.name, "sigma0": sigma0, "seed": prm["seed"],
                "levels": len(below), "T": d["T"], "epsilon": d["epsilon"], "pixels": x[0].numel(),
                "psnr_noisy": float(psnr_for(PAPER, y, x)), "psnr_bm3d": p_bm3d, "psnr_mmse": p_mmse,
                "mse_mmse": m_mmse, "lpips_mmse": l_mmse, "seconds_mmse": t_mmse, "seconds_bm3d": t_bm3d,
                "prior_clean_rmse": clean_rmse}
        mmse_res = residual_stats((y - mmse)[0])
        for s in range(S):
            rows.append({**base, "sample": s, "psnr_ours": float(p_ours[s]), "mse_ours": float(m_ours[s]),
                         "mse_ratio": float(m_ours[s]) / m_mmse,
                         "lpips_ours": float(l_ours[s]) if l_ours is not None else float("nan"),
                         **residual_stats((y - samples[s:s + 1])[0]),
                         **{f"mmse_{k}": v for k, v in mmse_res.items()},
                         "seconds_ours_per_sample": res.diagnostics["seconds"] / S, "denoiser_calls": res.nfe,
                         "denoiser_seconds": res.diagnostics["denoiser_seconds"], "sampler_seconds": res.diagnostics["seconds"],
                         "sampler_overhead": res.diagnostics["overhead"]})
        if idx < prm["figure_images"]:
            arrays["sigma0"][sigma0] = {"noisy": y[0], "mmse": mmse[0], "bm3d": None if bm3d is None else bm3d[0],
                                        "samples": samples, "intermediate": snaps}
    if idx < prm["figure_images"]:
        save_torch(runtime.arrays_dir(prm, PAPER, "denoise") / f"{name}_{idx:03d}.pt", arrays)
    return rows


def _available_runs(prm: dict) -> tuple[list[str], list[dict]]:
    ok_runs, table = [], []
    for name, r in runs(prm).items():
        ok, why = run_availability(prm, name)
        table.append({"item": name, "available": ok, "reason": why, "dataset": r.get("dataset", name),
                      "prior": prior_kind(prm, name), "gpu": bool(r.get("gpu", False))})
        if ok:
            ok_runs.append(name)
    return ok_runs, table


def _plan(prm: dict, out_name: str) -> tuple[dict, list[tuple]]:
    """Every image of every run whose prior and data are here; the others are listed with the reason in
    <out_name>_availability.csv."""
    names, table = _available_runs(prm)
    availability.write(prm, PAPER, out_name, table)
    return prm, [(name, i) for name in names for i in range(len(load_images(prm, name)))]


def plan_denoise(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of every run whose prior and data are here (the others in denoise_availability.csv)."""
    return _plan(prm, "denoise")


def plan_inpaint(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of every run whose prior and data are here (the others in inpaint_availability.csv)."""
    return _plan(prm, "inpaint")


# ------------------------------------------------------------------------------------------------ inpainting
def make_mask(kind: str, shape: tuple[int, int, int]) -> torch.Tensor:
    """(1, 1, H, W) 0/1 mask, 1 = observed pixel.  The paper does not give the geometry (catalogue: UNKNOWN):

    rows  20 missing rows of a 64-row image (scaled to H): a contiguous band centred vertically (Fig. 9);
    eye   a box over the left eye of an aligned 64 x 64 CelebA face, rows 24-36, columns 14-30 (scaled) (Fig. 32);
    text  a text overlay: lines of PIL's default bitmap font repeated across the image (Figs. 8, 29-31).
    """
    _, H, W = shape
    m = torch.ones(1, 1, H, W)
    if kind == "rows":
        n = max(1, round(20 * H / 64))
        top = (H - n) // 2
        m[..., top:top + n, :] = 0
    elif kind == "eye":
        m[..., round(24 * H / 64):round(36 * H / 64), round(14 * W / 64):round(30 * W / 64)] = 0
    elif kind == "text":
        from PIL import Image, ImageDraw

        canvas = Image.new("L", (W, H), 0)
        draw = ImageDraw.Draw(canvas)
        for k, top in enumerate(range(2, H - 8, 12)):
            draw.text((2 + 5 * (k % 3), top), "Stochastic denoising 2021 " * (W // 100 + 1), fill=255)
        m[0, 0] = torch.from_numpy(np.asarray(canvas) < 128).float()
    else:
        raise KeyError(f"unknown mask {kind!r} (rows | eye | text)")
    return m


@torch.no_grad()
def inpaint_rows(prm: dict, name: str, idx: int) -> list[dict]:
    """One image of one run through Algorithm 2 for each mask: PSNR over the image and over the missing pixels, the
    observed pixels' residual, per sample."""
    from replicate.metrics import mse, psnr_for
    from replicate.scaleout import per_process

    run = runs(prm)[name]
    ip = run["inpaint"]
    prior = per_process((PAPER, "prior", name, prm), lambda: load_prior(prm, name))
    im = per_process((PAPER, "images", name, prm), lambda: load_images(prm, name))[idx]
    dev = runtime.device(prm)
    S = int(prm["n_samples"])
    x = im.pixels[None]
    sigma0 = float(ip["sigma0"])
    masks = ip["masks"]
    if ip.get("cycle_masks"):  # one mask per image, in turn (mini: fewer chains)
        masks = [masks[idx % len(masks)]]
    rows, arrays = [], {"clean": x[0], "name": im.name, "sigma0": sigma0, "masks": {}}
    for kind in masks:
        mask = make_mask(kind, tuple(x.shape[1:]))
        y = noisy(prm, name, idx, x, sigma0, what=f"inpaint/{kind}") * mask  # unobserved pixels carry nothing
        above = thin(above_levels(prior, run, sigma0, prm), ip.get("levels"))
        own_ladder = hasattr(prior, "sigmas") and run["prior"]["kind"] == "ncsnv2"   # an NCSNv2 walks its own
        below = thin(sigma_levels(prior, run, sigma0, prm)[1] if own_ladder else
                     LG.geometric_levels(sigma0, prm["sigma_L"], ip["rate"]).tolist(), ip.get("levels"))
        snaps = {}
        n_levels = len(above) + len(below)
        keep = set(np.linspace(0, n_levels - 1, prm["intermediate_steps"]).round().astype(int).tolist())

        def snap(level, sigma_i, xx, snaps=snaps, keep=keep):  # Fig. 33 (sample 0, float16, display only)
            if level in keep:
                snaps[float(sigma_i)] = xx[:1].detach().cpu().to(torch.float16)

        res = methods.run("kawar_inpaint", prior, Inpainting(mask, shape=tuple(x.shape[1:])).to(dev),
                          gaussian_noise(sigma0), y.to(dev), sigmas_above=above, sigmas_below=below,
                          epsilon=ip["epsilon"], T=ip["T"], n_samples=S,
                          seeds=sample_seeds(prm, name, idx, sigma0, S, what=f"inpaint/{kind}"), sigma_L=prm["sigma_L"],
                          init=prm["inpaint_init"], init_mean=prm["inpaint_init_mean"], callback=snap,
                          final_denoise=prm["final_denoise"])
        samples = res.x.cpu()
        xs = x.expand(S, -1, -1, -1)
        p = psnr_for(PAPER, samples, xs)
        miss = (1 - mask).expand_as(xs).bool()
        for s in range(S):
            d_miss = (samples[s].clamp(0, 1) - x[0])[miss[s]].double()
            obs = (y[0] - samples[s])[mask[0].expand_as(x[0]).bool()].double()
            rows.append({"run": name, "image_index": idx, "image": im.name, "mask": kind, "sigma0": sigma0,
                         "sample": s, "seed": prm["seed"], "missing_fraction": float(1 - mask.mean()),
                         "levels_above": len(above), "levels_below": len(below), "T": ip["T"],
                         "psnr": float(p[s]), "mse": float(mse(samples[s:s + 1].clamp(0, 1), x)),
                         "psnr_missing": float(-10 * torch.log10(d_miss.pow(2).mean())),
                         "observed_residual_std": float(obs.std()), "denoiser_calls": res.nfe,
                         "sampler_seconds": res.diagnostics["seconds"], "sampler_overhead": res.diagnostics["overhead"]})
        if idx < prm["figure_images"]:
            arrays["masks"][kind] = {"mask": mask[0], "observed": y[0], "samples": samples, "intermediate": snaps}
    if idx < prm["figure_images"]:
        save_torch(runtime.arrays_dir(prm, PAPER, "inpaint") / f"{name}_{idx:03d}.pt", arrays)
    return rows


# ------------------------------------------------------------------------------------------------ exactness
def stage_exactness(prm: dict) -> None:
    """Closed-form output law of Algorithm 1 under a Gaussian prior with each run's settings (no data needed).

    Prior: StationaryGaussianPrior, 1/f^2 spectrum, per-pixel std 0.25 (natural-image-like), 64 x 64 grey. For
    NCSNv2 runs the levels are the network's ladder (rebuilt from the config, no checkpoint needed). Output: the
    expected MSE of a sample over the MMSE, averaged over `exactness.images` draws of (x, y): 2 for exact sampling.
    """
    from replicate.denoisers.gaussian import StationaryGaussianPrior
    from replicate.denoisers.ncsnv2 import NCSNV2_CONFIGS, geometric_sigmas

    ex = prm["exactness"]
    size = ex["size"]
    gp = StationaryGaussianPrior((1, size, size), alpha=2.0, scale=0.25, mean=0.5)
    S = gp.spectrum
    rows = []
    for name, run in runs(prm).items():
        for sigma0 in run["sigma0s"]:
            sigma0 = float(sigma0)
            if run["prior"]["kind"] == "ncsnv2":
                c = NCSNV2_CONFIGS[run["prior"]["config"]]
                below = LG.split_network_ladder(geometric_sigmas(c["sigma_begin"], c["sigma_end"], c["num_classes"]),
                                                sigma0)[2].tolist()
            else:
                below = LG.geometric_levels(sigma0, prm["sigma_L"], run["denoise"]["rate"]).tolist()
            epsilons = {"params (the paper's table)": run["denoise"]["epsilon"],
                        **run["denoise"].get("also_epsilon", {})}
            for source, eps in epsilons.items():
                g = seeding.generator(prm["seed"], PAPER, "exactness", name, sigma0)
                x = gp.sample(ex["images"], g)
                y = x + sigma0 * torch.randn(x.shape, generator=g, dtype=x.dtype)
                m, v = LG.gaussian_algorithm1_moments(S, 0.5, y, sigma0, below, epsilon=eps, T=run["denoise"]["T"],
                                                      sigma_L=prm["sigma_L"])
                post = gp.posterior_variance_denoising(sigma0)
                mse_ours = (((m - gp(y, sigma0)) ** 2).flatten(1).sum(1) + v.sum() + post.sum()) / x[0].numel()
                mse_mmse = post.sum() / x[0].numel()
                # the likelihood term's step at the first level: alpha_1 / (sigma0^2 - sigma_1^2), stable below 2
                alpha_1 = eps * below[0] ** 2 / prm["sigma_L"] ** 2
                rows.append({"run": name, "sigma0": sigma0, "levels": len(below), "T": run["denoise"]["T"],
                             "epsilon": eps, "epsilon_source": source,
                             "likelihood_step_first_level": alpha_1 / (sigma0**2 - below[0] ** 2),
                             "mse_ratio_closed_form": float((mse_ours / mse_mmse).mean()),
                             "variance_ratio_mean": float((v / post).mean()), "images": ex["images"]})
    write_csv(runtime.results_dir(prm, PAPER) / "exactness.csv", pd.DataFrame(rows))


RESULTS = "results/{profile}/kawar2021/"
UNIVERSAL = ("data/models/{profile}/mohan2020",)   # the universal prior of mini / smoke


STAGES = [
    per_image_stage(PAPER, "denoise", denoise_rows, plan_denoise, inputs=UNIVERSAL, arrays=True, availability=True,
                    key_columns=("run", "image_index"),
                    about="Algorithm 1: BM3D, MMSE and posterior samples per image and sigma0; residual statistics"),
    per_image_stage(PAPER, "inpaint", inpaint_rows, plan_inpaint, inputs=UNIVERSAL, arrays=True, availability=True,
                    key_columns=("run", "image_index"),
                    about="Algorithm 2: noisy inpainting, text / rows / eye masks"),
    Stage("kawar2021_exactness", PAPER, stage_exactness, outs=(RESULTS + "exactness.csv",),
          about="Algorithm 1 on an analytic Gaussian prior with each run's settings: the closed-form MSE ratio"),
]
