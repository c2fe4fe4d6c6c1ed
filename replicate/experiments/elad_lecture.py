"""Elad's lecture "Image Denoising ... Not What You Think": one MMSE denoiser, many uses.

Stages (each writes per-image results under results/<profile>/elad_lecture/):
  classic     the "is denoising dead?" table: classic denoisers (BM3D, non-local means, TV, wavelet shrinkage) next
              to the project's learned denoisers (DnCNN and bias-free DnCNN of Mohan et al., the universal BF-CNN of
              Kadkhodaie & Simoncelli), PSNR/SSIM at sigma in {15, 25, 50} on Set12 and BSD68 (paper) or on the
              skimage photographs (mini).
  inverse     PnP-ADMM, RED (steepest descent, fixed point) with one denoiser on deblurring (uniform 5x5, Gaussian)
              and super-resolution x2 / x4: PSNR/SSIM and per-iteration convergence; RED's two conditions (local
              homogeneity, Jacobian symmetry) measured for each learned denoiser.
  synthesis   images from the prior implicit in the same denoiser: Song & Ermon's annealed Langevin dynamics and
              Kadkhodaie & Simoncelli's coarse-to-fine ascent.
  snips       SNIPS posterior samples for noisy inpainting, SR x4, 5x5 uniform deblurring and 12.5% compressive
              sensing at sigma_0 = 25/255 (the lecture's slides).
  perception  denoising at a high sigma_0 by MMSE, MAP-like (PnP-ADMM, RED) and posterior samplers (Kawar et al.'s
              stochastic denoiser, SNIPS, DDRM, DPS): distortion (MSE) against a perception index, with the
              factor-2 bound.
  report      tables and figures (replicate/report/elad_lecture.py).

One denoiser serves every stage but `classic`: `universal_denoiser(prm, "gray")` (self-trained small BF-DnCNN in
mini, the authors' universal BF-CNN in paper).
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from replicate import data as D
from replicate import params as P
from replicate import methods, runtime, seeding
from replicate.denoisers.base import Denoiser
from replicate.io import save_npz, write_csv
from replicate.noise import make_noise
from replicate.pipeline.stage import Stage, per_image_stage

PAPER = "elad_lecture"


# ------------------------------------------------------------------------------------------------ denoisers
def learned_denoisers(prm: dict) -> dict[str, Denoiser]:
    """The project's learned grey denoisers: Mohan et al.'s DnCNN / BF-DnCNN (training range in params) and the
    universal BF-CNN (self-trained small one in mini/smoke, the authors' in paper)."""
    from replicate.experiments.mohan2020_models import load_models

    r = prm["classic"]["learned_range"]
    if P.code_profile(prm) == "paper":  # the authors' checkpoints, straight from the registry
        from replicate.assets.registry import fetch
        from replicate.denoisers.checkpoints import mohan_denoiser

        models = {f"dncnn/{v}/0-{r}": mohan_denoiser("dncnn", v, f"0-{r}",
                                                       fetch(f"weights/bias_free_denoising/dncnn/{v}/0-{r}.pt"))
                  for v in ("bias", "bias_free")}
    else:  # the small DnCNNs the mohan2020_models stage trained for this profile
        models = load_models(P.load("mohan2020", profile=prm["profile"]))
    out = {}
    for variant, label in (("bias", "DnCNN"), ("bias_free", "BF-DnCNN")):
        key = f"dncnn/{variant}/0-{r}"
        if key not in models:
            raise KeyError(f"{key} is not among mohan2020's models ({', '.join(models)}): set elad_lecture.classic."
                           "learned_range to one of mohan2020's ranges in params.yaml")
        out[f"{label} [0,{r}]"] = models[key].eval()
    out[prior_label(prm)] = the_denoiser(prm)
    return out


def classic_denoisers(prm: dict) -> dict[str, Denoiser]:
    """The classic-era denoisers of the lecture's table: BM3D, non-local means, total variation, wavelet shrinkage."""
    from replicate.denoisers.bm3d import BM3DDenoiser
    from replicate.denoisers.classical import NonLocalMeans, TotalVariation, WaveletShrinkage

    c = prm["classic"]
    return {"BM3D": BM3DDenoiser(), "NLM": NonLocalMeans(c["nlm_h_factor"]), "TV": TotalVariation(1.0),
            "Wavelet": WaveletShrinkage(c["wavelet"])}


def tv_weight_factors(prm: dict) -> dict[int, float]:
    """TV's weight/sigma per test sigma, chosen on training images (never the test images)."""
    from replicate.denoisers.classical import tune_weight_factor

    c = prm["classic"]
    train = torch.stack([im.pixels for im in D.load_set(c["tv_tuning_set"])])
    out = {}
    for s in c["sigmas"]:
        gen = seeding.generator(prm["seed"], PAPER, "tv_tuning", s)
        out[s] = tune_weight_factor(train, s / 255.0, c["tv_factors"], gen)
    return out


# ------------------------------------------------------------------------------------------------ stages
@torch.no_grad()
def kair_dncnn_s() -> Denoiser:
    """Zhang et al.'s DnCNN-S for sigma = 25 (KAIR's model_zoo/dncnn_25.pth, the published network): the row of the
    classic table that Zhang et al. print for Set12 and BSD68. A per-sigma network: it runs at sigma 25 only."""
    from replicate.assets.registry import fetch
    from replicate.denoisers.checkpoints import kair_denoiser

    return kair_denoiser(fetch("weights/kair/dncnn_25.pth"))


KAIR_NAME, KAIR_SIGMA = "DnCNN-S σ=25 (KAIR)", 25


def classic_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """One test image at every sigma through every denoiser; noise realisations (``noise_repeats`` of them, seeded by
    (image, sigma, repeat)) shared by all denoisers (paired comparison). On the papers' full test sets the spread
    over realisations, not over images, is the uncertainty about a published number: hence the repeats."""
    from replicate.metrics import psnr, ssim
    from replicate.scaleout import per_process

    c = prm["classic"]
    dens = per_process((PAPER, "classic_denoisers", prm),
                       lambda: {**classic_denoisers(prm), **learned_denoisers(prm),
                                **({KAIR_NAME: kair_dncnn_s()} if c.get("kair_dncnn_s") else {})})
    tv = per_process((PAPER, "tv", prm), lambda: tv_weight_factors(prm))
    im = per_process((PAPER, "set", set_name, prm), lambda: D.load_set(c["test_sets"][set_name]))[idx]
    x = im.pixels[None]
    rows = []
    for r in range(int(c.get("noise_repeats", 1))):
        for s in c["sigmas"]:
            key = ("classic", set_name, idx, s) + ((r,) if r else ())  # repeat 0: the original single realisation
            y = x + s / 255.0 * seeding.randn(x.shape, prm["seed"], PAPER, *key)
            for name, den in dens.items():
                if name == KAIR_NAME and s != KAIR_SIGMA:
                    continue
                if name == "TV":
                    den.weight_factor = tv[s]
                start = time.perf_counter()
                out = den(y, s / 255.0).clamp(0, 1)
                seconds = time.perf_counter() - start
                rows.append({"set": set_name, "image_index": idx, "image": im.name, "noise_repeat": r, "sigma": s,
                             "denoiser": name,
                             "kind": "learned" if name == prior_label(prm) or "DnCNN" in name else "classic",
                             "psnr_in": float(psnr(y.clamp(0, 1), x)[0]), "psnr": float(psnr(out, x)[0]),
                             "ssim": float(ssim(out, x)[0]), "seconds_per_image": seconds, "seed": prm["seed"],
                             "setting": f"weight={tv[s]:g}*sigma" if name == "TV" else ""})
    return rows


def plan_classic(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of the classic table's test sets."""
    return prm, _items(prm["classic"]["test_sets"])


# ------------------------------------------------------------------------------------------------ inverse problems
def tasks(block: dict) -> dict:
    """The task specs of a stage block, restricted to `task_subset` where one is given (the smoke profile)."""
    subset = block.get("task_subset")
    return {k: v for k, v in block["tasks"].items() if subset is None or k in subset}


def make_task(name: str, spec: dict, shape):
    """(operator, sigma_y) of one inverse problem; specs name a registered operator (replicate.operators)."""
    from replicate.operators.base import make_operator

    kw = {k: v for k, v in spec.items() if k not in ("operator", "sigma_y")}
    return make_operator(spec["operator"], shape=tuple(shape), **kw), spec["sigma_y"] / 255.0


def the_denoiser(prm: dict) -> Denoiser:
    """The lecture's one denoiser: the grey universal bias-free denoiser, or the top-level `prior` in its place."""
    from replicate.denoisers import priors

    spec = priors.resolve({"kind": "universal", "channels": "gray"}, prm.get("prior_override"))
    return priors.load_prior(spec, prm).to(runtime.device(prm))


def prior_label(prm: dict) -> str:
    """How tables name the one denoiser: "universal BF-CNN", or "prior <name>" for a user's."""
    from replicate.denoisers import priors

    override = prm.get("prior_override")
    return "universal BF-CNN" if override is None else f"prior {priors.describe(override)}"


def inverse_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """One test image through every task and every solver; the measurement noise depends only on (image, task)."""
    from replicate.metrics import psnr, ssim
    from replicate.scaleout import per_process
    from replicate.solvers.plug_and_play import SolverDiverged

    c = prm["inverse"]
    den = per_process((PAPER, "denoiser", prm["profile"]), lambda: the_denoiser(prm))
    im = per_process((PAPER, "set", set_name, prm), lambda: D.load_set(c["test_sets"][set_name]))[idx]
    x = im.pixels[None]
    rows, arrays = [], {"clean": x[0].numpy()}
    for task, spec in tasks(c).items():
        op, sigma_y = make_task(task, spec, x.shape[1:])
        with torch.no_grad():
            y = op(x)
            y = y + sigma_y * seeding.randn(y.shape, prm["seed"], PAPER, "inverse", set_name, idx, task)
            arrays[f"{task}/measured"] = (y if y.shape == x.shape else op.adjoint(y, like=x))[0].numpy()
        noise = make_noise("gaussian", sigma=sigma_y, scale="01")
        solvers = {  # table name -> (registered method, its settings)
            "PnP-ADMM": ("pnp_admm", {"rho": 1 / (c["pnp"]["sigma_d"] / 255) ** 2, "iters": c["pnp"]["iters"],
                                      "cg_iters": c["cg_iters"]}),
            "RED-SD": ("red_sd", {"lam": c["red"]["lam"], "sigma_d": c["red"]["sigma_d"] / 255,
                                  "iters": c["red"]["iters_sd"]}),
            "RED-FP": ("red_fp", {"lam": c["red"]["lam"], "sigma_d": c["red"]["sigma_d"] / 255,
                                  "iters": c["red"]["iters_fp"], "cg_iters": c["cg_iters"]}),
        }
        for method, (name, settings) in solvers.items():
            start = time.perf_counter()
            try:
                res = methods.run(name, den, op, noise, y, shape=x.shape, reference=x, **settings)
                out, trace, status = res.x, res.trace, "ok"
            except SolverDiverged as exc:
                out, trace, status = torch.full_like(x, float("nan")), {"psnr": [], "change": []}, f"diverged: {exc}"
            seconds = time.perf_counter() - start
            out = out.clamp(0, 1)
            arrays[f"{task}/{method}"] = out[0].detach().numpy()
            rows.append({"set": set_name, "image_index": idx, "image": im.name, "task": task, "method": method,
                         "psnr": float(psnr(out, x)[0]), "ssim": float(ssim(out, x)[0]),
                         "psnr_trace": " ".join(f"{v:.3f}" for v in trace["psnr"]),
                         "change_trace": " ".join(f"{v:.3e}" for v in trace["change"]),
                         "seconds_per_image": seconds, "status": status, "seed": prm["seed"]})
    if idx == 0:  # the first image of each set: what the report's figures show
        save_npz(runtime.arrays_dir(prm, PAPER, "inverse") / f"{set_name}_{idx}.npz", **arrays)
    return rows


def plan_inverse(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of the inverse problems' test sets."""
    return prm, _items(prm["inverse"]["test_sets"])


def red_conditions(prm: dict) -> None:
    """After the inverse problems: RED's two conditions (local homogeneity, a symmetric Jacobian) for each learned
    denoiser, at the RED sigma_d, on the clean test images -> red_conditions.csv."""
    from replicate.solvers.plug_and_play import jacobian_asymmetry, local_homogeneity_error

    c = prm["inverse"]
    dens = {prior_label(prm): the_denoiser(prm), **{k: v for k, v in learned_denoisers(prm).items()
                                                     if k != prior_label(prm)}}
    rows = []
    for set_name, spec in c["test_sets"].items():
        for idx, im in enumerate(D.load_set(spec)):
            for name, den in dens.items():
                for s in c["condition_sigmas"]:
                    x = im.pixels[None].to(runtime.device(prm))
                    y = x + s / 255 * seeding.randn(x.shape, prm["seed"], PAPER, "conditions", set_name, idx, s)
                    rows.append({"set": set_name, "image_index": idx, "image": im.name, "denoiser": name, "sigma": s,
                                 "homogeneity_error": local_homogeneity_error(den, y, s / 255),
                                 "jacobian_asymmetry": jacobian_asymmetry(den, y, s / 255, probes=c["probes"],
                                                                          seed=prm["seed"] + idx)})
    write_csv(runtime.results_dir(prm, PAPER) / "red_conditions.csv", pd.DataFrame(rows))


def _items(test_sets: dict) -> list[tuple]:
    return [(name, i) for name, spec in test_sets.items() for i in range(len(D.load_set(spec)))]


# ------------------------------------------------------------------------------------------------ synthesis
def stage_synthesis(prm: dict) -> None:
    """Samples of the prior implicit in the denoiser by both samplers, same number of samples and size."""
    from replicate.samplers.annealed_langevin import geometric_ladder

    c = prm["synthesis"]
    den = the_denoiser(prm)
    shape = (c["n"], 1, c["size"], c["size"])
    rows, arrays = [], {}
    se = c["song_ermon"]
    start = time.perf_counter()
    gen = seeding.generator(prm["seed"], PAPER, "synthesis", "song_ermon")
    sigmas = geometric_ladder(se["sigma_max"], se["sigma_min"], se["levels"])
    res = methods.run("song_ermon", den, None, None, None, generator=gen, shape=shape, sigmas=sigmas, eps=se["eps"],
                      T=se["T"], final_denoise=True, progress=True)
    rows.append({"sampler": "Song & Ermon (annealed Langevin)", "denoiser_calls": res.nfe,
                 "status": "ok", "seconds": time.perf_counter() - start})
    arrays["song_ermon"] = res.x.clamp(0, 1).cpu().numpy()
    ks = c["kadkhodaie"]
    start = time.perf_counter()
    gen = seeding.generator(prm["seed"], PAPER, "synthesis", "kadkhodaie")
    res = methods.run("ks_sample", den, None, None, None, generator=gen, shape=shape[1:], n=c["n"],
                      sigma0=ks["sigma0"], sigmaL=ks["sigmaL"], h0=ks["h0"], beta=ks["beta"])
    diverged = [res.status(k) for k in range(c["n"]) if res.status(k) != "ok"]
    rows.append({"sampler": "Kadkhodaie & Simoncelli (coarse-to-fine)", "denoiser_calls": res.nfe,
                 "status": f"{len(diverged)} of {c['n']} {diverged[0]}" if diverged else "ok",
                 "seconds": time.perf_counter() - start})
    arrays["kadkhodaie"] = res.x.clamp(0, 1).cpu().numpy()
    out = runtime.results_dir(prm, PAPER)
    for r in rows:
        r.update(n=c["n"], size=c["size"], seed=prm["seed"])
    write_csv(out / "synthesis.csv", pd.DataFrame(rows))
    save_npz(out / "synthesis.npz", **arrays)


# ------------------------------------------------------------------------------------------------ SNIPS
def snips_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """SNIPS samples of one image for every task: PSNR of each sample and of their average."""
    from replicate.metrics import psnr, ssim
    from replicate.samplers.annealed_langevin import geometric_ladder
    from replicate.scaleout import per_process

    c = prm["snips"]
    den = per_process((PAPER, "denoiser", prm["profile"]), lambda: the_denoiser(prm))
    im = per_process((PAPER, "set", set_name, prm), lambda: D.load_set(c["test_sets"][set_name]))[idx]
    x = im.pixels[None]
    sigmas = geometric_ladder(c["sigma_max"], c["sigma_min"], c["levels"])
    rows, arrays = [], {"clean": x.numpy()}
    for task, spec in tasks(c).items():
        op, sigma_0 = make_task(task, spec, x.shape[1:])
        y = op(x) + sigma_0 * seeding.randn(op(x).shape, prm["seed"], PAPER, "snips", set_name, idx, task)
        gen = seeding.generator(prm["seed"], PAPER, "snips", set_name, idx, task)
        start = time.perf_counter()
        samples = methods.run("snips", den, op, make_noise("gaussian", sigma=sigma_0, scale="01"),
                              y.expand(c["samples"], *y.shape[1:]), generator=gen, sigmas=sigmas, eps=c["eps"],
                              T=c["T"], shape=(c["samples"], *x.shape[1:])).x.clamp(0, 1)
        seconds = (time.perf_counter() - start) / c["samples"]
        mean = samples.mean(0, keepdim=True)
        lsq = op.pseudo_inverse(y).clamp(0, 1)
        arrays[f"{task}_measured"] = lsq.numpy()
        arrays[f"{task}_samples"] = samples.numpy()
        for k in range(c["samples"]):
            rows.append({"set": set_name, "image_index": idx, "image": im.name, "task": task, "estimate": f"sample {k}",
                         "psnr": float(psnr(samples[k:k + 1], x)[0]), "ssim": float(ssim(samples[k:k + 1], x)[0]),
                         "seconds_per_image": seconds, "seed": prm["seed"]})
        for name, est in (("sample mean", mean), ("pseudo-inverse", lsq)):
            rows.append({"set": set_name, "image_index": idx, "image": im.name, "task": task, "estimate": name,
                         "psnr": float(psnr(est, x)[0]), "ssim": float(ssim(est, x)[0]), "seconds_per_image": seconds,
                         "seed": prm["seed"]})
    save_npz(runtime.arrays_dir(prm, PAPER, "snips") / f"{set_name}_{idx}.npz", **arrays)
    return rows


def plan_snips(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of the SNIPS test sets."""
    return prm, _items(prm["snips"]["test_sets"])


# ------------------------------------------------------------------------------------------------ perception
def high_frequency(x: torch.Tensor) -> torch.Tensor:
    """Discrete Laplacian (periodic) of each image: the detail a blurry MMSE estimate lacks."""
    return 4 * x - sum(torch.roll(x, s, d) for s in (1, -1) for d in (-1, -2))


def estimators(prm: dict, x_shape) -> dict[str, tuple[str, dict, str]]:
    """The perception study's estimators: table name -> (registered method, its settings, what its generator is
    seeded by). All run on the same denoiser; the samplers draw ``perception.samples`` samples per image.

    DDRM and DPS see the denoiser as an x0-predictor on the 1000-step VP schedule (estimates clamped to [-1, 1] as
    the DPS code does), respaced to the stated steps. DPS's ``scale`` is a stated setting in the code's convention
    (its configs use 0.3-1.0 at 1000 steps and print none for denoising), times 1000 / steps when
    ``nfe_compensation`` (as the reduced-NFE profiles of chung2023)."""
    from replicate.samplers.annealed_langevin import geometric_ladder
    from replicate.samplers.langevin import geometric_levels

    c = prm["perception"]
    s0 = c["sigma0"] / 255
    S = c["samples"]
    kw, sn, dd, dp = c["stochastic"], c["snips"], c["ddrm"], c["dps"]
    return {
        "MMSE (one denoiser call)": ("mmse", {}, ""),
        "PnP-ADMM": ("pnp_admm", {"rho": 1 / (c["pnp_sigma_d"] / 255) ** 2, "iters": c["iters"],
                                  "shape": x_shape, "cg_iters": 5}, ""),
        "RED-FP": ("red_fp", {"lam": c["red_lam"], "sigma_d": c["red_sigma_d"] / 255, "iters": c["iters"],
                              "shape": x_shape, "cg_iters": 5}, ""),
        "stochastic denoiser (Kawar et al.)": ("kawar_denoise", {
            "sigmas": geometric_levels(s0, kw["sigma_L"], kw["rate"]), "epsilon": kw["epsilon"], "T": kw["T"],
            "n_samples": S}, "seeds"),
        "SNIPS": ("snips", {"sigmas": geometric_ladder(sn["sigma_max"], sn["sigma_min"], sn["levels"]),
                            "eps": sn["eps"], "T": sn["T"], "shape": (S, *x_shape[1:])}, "perception_snips"),
        "DDRM": ("ddrm", {"steps": dd["steps"], "spacing": "even", "eta": dd["eta"], "eta_b": dd["eta_b"]},
                 "perception_ddrm"),
        "DPS": ("dps", {"steps": dp["steps"], "scale": dp["scale"], "nfe_compensation": dp["nfe_compensation"],
                        "shape": tuple(x_shape[1:])}, "perception_dps"),
    }


def perception_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """Denoising at sigma_0 by every estimator; per output: MSE, PSNR, and the perception index (see report)."""
    from replicate.metrics import psnr
    from replicate.operators.base import make_operator
    from replicate.scaleout import per_process

    c = prm["perception"]
    den = per_process((PAPER, "denoiser", prm["profile"]), lambda: the_denoiser(prm))
    im = per_process((PAPER, "set", set_name, prm), lambda: D.load_set(c["test_sets"][set_name]))[idx]
    x = im.pixels[None]
    s0 = c["sigma0"] / 255
    y = x + s0 * seeding.randn(x.shape, prm["seed"], PAPER, "perception", set_name, idx)
    ident = make_operator("denoising", shape=tuple(x.shape[1:]))
    noise = make_noise("gaussian", sigma=s0, scale="01")
    S = c["samples"]
    outs = {}
    for label, (method, settings, seeded_by) in estimators(prm, x.shape).items():
        rows_in, gen = y, None                       # a point estimate: one row, nothing random
        if seeded_by == "seeds":                     # Kawar's sampler: one seed per sample, n_samples rows out
            base = seeding.derive_seed(prm["seed"], PAPER, "perception", set_name, idx)
            settings = {**settings, "seeds": [base + k for k in range(S)]}
        elif seeded_by:                              # a sampler with one generator: one measurement row per sample
            rows_in, gen = y.expand(S, -1, -1, -1), seeding.generator(prm["seed"], PAPER, seeded_by, set_name, idx)
        outs[label] = methods.run(method, den, ident, noise, rows_in, generator=gen, **settings).x
    rows, arrays = [], {"clean": x.numpy(), "noisy": y.numpy()}
    hf_clean = float(high_frequency(x).std())
    for method, est in outs.items():
        est = est.detach().clamp(0, 1)
        arrays[method] = est[:2].numpy()
        for k in range(est.shape[0]):
            e = est[k:k + 1]
            rows.append({"set": set_name, "image_index": idx, "image": im.name, "method": method, "sample": k,
                         "kind": "posterior sample" if est.shape[0] > 1 else "point estimate",
                         "mse": float(((e - x) ** 2).mean()), "psnr": float(psnr(e, x)[0]),
                         "hf_ratio": float(high_frequency(e).std()) / hf_clean, "seed": prm["seed"]})
    save_npz(runtime.arrays_dir(prm, PAPER, "perception") / f"{set_name}_{idx}.npz", **arrays)
    return rows


def plan_perception(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of the perception-distortion test sets."""
    return prm, _items(prm["perception"]["test_sets"])


RESULTS = "results/{profile}/elad_lecture/"
MODELS = ("data/models/{profile}/mohan2020",)   # Mohan et al.'s DnCNNs and the universal prior of mini / smoke
STAGES = [
    per_image_stage(PAPER, "classic", classic_rows, plan_classic, inputs=MODELS, also_reads=("mohan2020",),
                    about="the 'is denoising dead?' table: classic and learned denoisers at sigma 15 / 25 / 50"),
    per_image_stage(PAPER, "inverse", inverse_rows, plan_inverse, inputs=MODELS, also_reads=("mohan2020",),
                    arrays=True, run=red_conditions, extra_outs=(RESULTS + "red_conditions.csv",),
                    about="PnP-ADMM and RED with one denoiser on deblurring and super-resolution; RED's two "
                          "conditions"),
    Stage("elad_lecture_synthesis", PAPER, stage_synthesis, inputs=MODELS,
          outs=(RESULTS + "synthesis.csv", RESULTS + "synthesis.npz"),
          about="images from the prior implicit in the denoiser: annealed Langevin and coarse-to-fine ascent"),
    per_image_stage(PAPER, "snips", snips_rows, plan_snips, inputs=MODELS, arrays=True,
                    about="SNIPS posterior samples: inpainting, SR x4, deblurring, compressive sensing"),
    per_image_stage(PAPER, "perception", perception_rows, plan_perception, inputs=MODELS, arrays=True,
                    about="perception-distortion: MMSE, MAP-like and posterior samplers at a high noise level"),
]
