"""Kadkhodaie & Simoncelli 2021: solving linear inverse problems with the prior implicit in a denoiser.

Stages (kadkhodaie2021_* in dvc.yaml), writing under results/<profile>/kadkhodaie2021/:
  synthesis    Algorithm 1 from the natural-image prior: Fig. 1 iterates (beta = 1), Fig. 2 samples (beta 0.5, 0.1),
               Figs. 11/12 traces (sigma_t, removed h_t sigma_t, injected gamma_t for beta 1, 0.3, 0.01), and Fig. 13
               samples from the MNIST prior -> synthesis.npz, convergence.csv, synthesis.csv
  inverse      Algorithm 2 on every test image for every problem of params `problems` (Figs. 3-7): one row per
               (image, problem, method, sample) -> inverse.csv, inverse_arrays/<set>_<index>.npz (images for figures)
  compressive  random orthogonal projections at several measurement ratios, denoiser prior vs the sparse-DCT prior
               (FISTA, threshold by cross-validation; also its oracle threshold) (Fig. 8) -> compressive.csv,
               compressive_arrays/<set>_<index>.npz
  performance  sampler overhead over its denoiser calls; per-call time of one 256x256 colour image -> performance.csv
  report       figures, tables, claims (replicate/report/kadkhodaie2021.py)

The samplers (replicate/samplers/implicit_prior.py) know nothing about data; this module only wires them to images,
operators and seeds. Every random draw is seeded from (seed, paper, what, set, image index, ...) (replicate.seeding).
Metrics follow metrics.PSNR_CONVENTIONS["kadkhodaie2021"] (skimage PSNR on [0, 1] clamped images) and skimage SSIM.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch

from replicate import data as D
from replicate import methods, runtime, seeding
from replicate.denoisers.curve import CurvePrior
from replicate.io import atomic_path, write_csv
from replicate.operators.base import make_operator
from replicate.pipeline.stage import Stage, per_image_stage
from replicate.progress import bar as progress_bar
from replicate.samplers.implicit_prior import least_squares, step_size

PAPER = "kadkhodaie2021"


# ----------------------------------------------------------------------------------------------- helpers
def grid(prm: dict) -> dict:
    """What runs here (params.load has already applied the paper profile's CPU subset)."""
    return {"test_sets": dict(prm["test_sets"]), "samples": prm["samples"], "compressive": dict(prm["compressive"]),
            "subset": prm["subset"]}


def denoiser(prm: dict, kind: str):
    """The universal prior of the profile (the authors' BF-CNN in paper; ``kind``: gray | color | mnist), or the
    top-level `prior` in its place; a network runs NHWC on CPU (same numbers, faster)."""
    from replicate.denoisers import priors

    spec = priors.resolve({"kind": "universal", "channels": kind}, prm.get("prior_override"))
    model = priors.load_prior(spec, prm).to(runtime.device(prm))
    return model.channels_last() if hasattr(model, "channels_last") else model


def sampler_kwargs(prm: dict, beta: float) -> dict:
    """The coarse-to-fine sampler's settings from params (sigma0, sigma_L, h0, max_iter) with the step parameter
    beta."""
    s = prm["sampler"]
    return dict(sigma0=s["sigma0"], sigmaL=s["sigmaL"], h0=s["h0"], beta=beta, max_iter=s["max_iter"])


def scheduled_steps(sigma0: float, sigmaL: float, h0: float, beta: float) -> int:
    """Steps the ideal recursion sigma_t = (1 - beta h_t) sigma_{t-1} needs from sigma0 to sigmaL (cost projections)."""
    s, t = sigma0, 0
    while s > sigmaL and t < 10**6:
        t += 1
        s *= 1 - beta * step_size(t, h0)
    return t


def save_arrays(path, **arrays) -> None:
    """Save images for the figures as a compressed float32 .npz, atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **{k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()})


def image_metrics(x_hat: torch.Tensor, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(PSNR, SSIM) of each estimate against the clean image, the paper's PSNR convention."""
    from replicate.metrics import psnr_for, ssim

    ref = x.expand_as(x_hat)
    return psnr_for(PAPER, x_hat.clamp(0, 1), ref).numpy(), ssim(x_hat.clamp(0, 1), ref).numpy()


def measurement_rms(op, x_hat: torch.Tensor, xc: torch.Tensor) -> np.ndarray:
    """||M^T x_hat - x_c|| / sqrt(m): per-measurement RMS misfit (compare with the final noise level sigma_L)."""
    return ((op.M_T(x_hat) - xc).norm(dim=1) / math.sqrt(op.m)).numpy()


def test_images(prm: dict, set_name: str) -> list[D.Image]:
    """The images of a test set of this profile (loaded once per process)."""
    from replicate.scaleout import per_process

    spec = grid(prm)["test_sets"][set_name]
    return per_process((PAPER, "set", set_name, spec), lambda: D.load_set(spec))


def problem_operator(prm: dict, problem: str, shape, set_name: str, idx: int):
    """The orthonormal measurement operator of an inverse problem for one image (random masks and bases are seeded
    by the image)."""
    spec = dict(prm["problems"][problem])
    name = spec.pop("operator")
    if name in ("random_pixels", "compressive_sensing"):  # random masks / bases: one per image, seeded by its index
        spec["seed"] = seeding.derive_seed(prm["seed"], PAPER, "operator", problem, set_name, idx) % 2**31
    return make_operator(name, shape=shape, **spec)


# ----------------------------------------------------------------------------------------------- synthesis
def _run_prior(model, prm, shape, n, beta, key, callback=None):
    gen = seeding.generator(prm["seed"], PAPER, "synthesis", *key)
    return methods.run("ks_sample", model, None, None, None, generator=gen, shape=shape, n=n, callback=callback,
                       **sampler_kwargs(prm, beta))


def stage_synthesis(prm: dict) -> None:
    """Algorithm 1: samples of the prior implicit in the denoiser at each beta (Figs. 1, 2, 11), their convergence
    traces (Fig. 12) -> synthesis.npz, synthesis.csv, convergence.csv."""
    syn = prm["synthesis"]
    model = denoiser(prm, syn["prior"])
    C = 3 if syn["prior"] == "color" else 1
    shape = (C, syn["size"], syn["size"])
    arrays, conv_rows, sample_rows = {}, [], []

    # Fig. 1: beta = 1 (no injected noise), the iterates y_t at t = 1, 1 + k, 1 + 2k, ... for a few initialisations
    f1 = syn["fig1"]
    snaps = {}

    def keep(t, y, info):
        if (t - 1) % f1["show_every"] == 0:
            snaps[t] = y.detach().cpu().clone()

    res = _run_prior(model, prm, shape, f1["inits"], f1["beta"], ("fig1",), keep)
    ts = sorted(snaps)
    arrays["fig1_iterates"] = torch.stack([snaps[t] for t in ts], 1)  # (inits, len(ts), C, H, W)
    arrays["fig1_t"] = np.array(ts)
    arrays["fig1_final"] = res.x

    # Fig. 2 and Figs. 11/12: samples and traces for every beta; the Fig. 2 runs double as extra traces
    runs = [("fig2", b, syn["fig2"]["inits"]) for b in syn["fig2"]["betas"]]
    runs += [("convergence", b, syn["convergence"]["patches"]) for b in syn["convergence"]["betas"]]
    for what, beta, n in progress_bar(runs, desc="synthesis (Algorithm 1)"):
        start = time.perf_counter()
        res = _run_prior(model, prm, shape, n, beta, (what, beta))
        seconds = time.perf_counter() - start
        arrays[f"{what}_beta{beta:g}"] = res.x
        N = math.prod(shape)
        for k in range(n):
            sample_rows.append({"run": what, "prior": syn["prior"], "beta": beta, "sample": k, "size": syn["size"],
                                "steps": int(res.diagnostics["steps"][k]), "status": res.status(k), "seconds": seconds / n,
                                "seed": prm["seed"]})
            sig, h, gam = (res.trace[v][:, k] for v in ("sigma", "h", "gamma"))
            for t in range(int(res.diagnostics["steps"][k])):
                conv_rows.append({"run": what, "beta": beta, "sample": k, "t": t + 1, "sigma": float(sig[t]),
                                  "h": float(h[t]), "gamma": float(gam[t]),
                                  "removed": float(res.trace["removed"][t, k]) / math.sqrt(N),
                                  "injected": float(res.trace["injected"][t, k]) / math.sqrt(N)})

    # Fig. 13: samples from the MNIST prior (16 per panel) for beta in {1, 0.3, 0.01}
    mn = syn["mnist"]
    mnist_model = denoiser(prm, mn["prior"])
    for beta in progress_bar(mn["betas"], desc="MNIST prior samples"):
        start = time.perf_counter()
        res = _run_prior(mnist_model, prm, (1, mn["size"], mn["size"]), mn["samples"], beta, ("mnist", beta))
        arrays[f"mnist_beta{beta:g}"] = res.x
        for k in range(mn["samples"]):
            sample_rows.append({"run": "mnist", "prior": mn["prior"], "beta": beta, "sample": k, "size": mn["size"],
                                "steps": int(res.diagnostics["steps"][k]), "status": res.status(k),
                                "seconds": (time.perf_counter() - start) / mn["samples"], "seed": prm["seed"]})
    out = runtime.results_dir(prm, PAPER)
    save_arrays(out / "synthesis.npz", **{k: (v.numpy() if torch.is_tensor(v) else v) for k, v in arrays.items()})
    write_csv(out / "convergence.csv", pd.DataFrame(conv_rows))
    write_csv(out / "synthesis.csv", pd.DataFrame(sample_rows))


# ----------------------------------------------------------------------------------------------- 2-D toy (Fig. 10)
def stage_toy(prm: dict) -> None:
    """Fig. 10: n signals on the curve, noisy versions at three levels, the denoiser field, sampler trajectories."""
    toy = prm["toy"]
    prior = CurvePrior.sine()
    gen = seeding.generator(prm["seed"], PAPER, "toy")
    signals = prior.points[torch.randint(len(prior.points), (toy["signals"],), generator=gen)]
    noisy = {s: signals + s * torch.randn(signals.shape, generator=gen, dtype=signals.dtype) for s in toy["noise_levels"]}
    path = []
    res = methods.run("ks_sample", prior, None, None, None, shape=(1, 1, 2), n=toy["signals"],
                      sigma0=toy["sigma0"], sigmaL=prm["sampler"]["sigmaL"], h0=toy["h0"], beta=toy["beta"],
                      max_iter=prm["sampler"]["max_iter"], dtype=torch.float64,
                      generator=seeding.generator(prm["seed"], PAPER, "toy", "sampler"),
                      callback=lambda t, y, info: path.append(y.reshape(-1, 2).clone()))
    traj = torch.stack(path)  # (T, n, 2): frozen once a trajectory has stopped
    final = res.x.reshape(-1, 2)
    # Miyasawa (paper Eq. 2): x_hat(y) = y + sigma^2 grad log p_sigma(y), on a grid, with autograd on log p
    grid_pts = torch.stack(torch.meshgrid(torch.linspace(0, 1, 21, dtype=torch.float64),
                                          torch.linspace(0, 1, 21, dtype=torch.float64), indexing="xy"), -1).reshape(-1, 2)
    miyasawa = []
    for s in toy["noise_levels"]:
        y = grid_pts.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(prior.log_density(y, s).sum(), y)
        xhat = prior(grid_pts.reshape(-1, 1, 1, 2), s).reshape(-1, 2)
        miyasawa.append({"sigma": s, "max_abs_error": float((grid_pts + s**2 * g - xhat).abs().max())})
    rows = []
    for k in range(toy["signals"]):
        steps = int(res.diagnostics["steps"][k])
        seg = traj[:steps, k]
        length = float((seg[1:] - seg[:-1]).norm(dim=1).sum())
        rows.append({"trajectory": k, "steps": steps, "distance_final": float(prior.distance(final[k])),
                     "distance_last_iterate": float(prior.distance(res.diagnostics["last_iterate"].reshape(-1, 2)[k])),
                     "path_length": length, "chord": float((seg[-1] - seg[0]).norm()),
                     "sigma_final": float(res.trace["sigma"][steps - 1, k])})
    out = runtime.results_dir(prm, PAPER)
    save_arrays(out / "toy.npz", curve=prior.points, signals=signals, trajectories=traj, final=final,
                **{f"noisy_{s:g}": v for s, v in noisy.items()})
    write_csv(out / "toy.csv", pd.DataFrame(rows))
    write_csv(out / "toy_miyasawa.csv", pd.DataFrame(miyasawa))


# ----------------------------------------------------------------------------------------------- inverse problems
def inverse_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """One test image through every inverse problem: least squares M M^T x and `samples` draws of Algorithm 2."""
    from replicate.scaleout import per_process

    g = grid(prm)
    spec = g["test_sets"][set_name]
    model = per_process((PAPER, "denoiser", spec["prior"], prm["profile"]), lambda: denoiser(prm, spec["prior"]))
    im = test_images(prm, set_name)[idx]
    x = im.pixels[None]
    rows, arrays = [], {"original": x[0]}
    for problem in prm["problems"]:
        op = problem_operator(prm, problem, im.shape, set_name, idx)
        xc = op.M_T(x)
        ls = least_squares(op, xc)
        gen = seeding.generator(prm["seed"], PAPER, "inverse", problem, set_name, idx)
        start = time.perf_counter()
        res = methods.run("ks_inverse", model, op, None, xc, generator=gen, n=g["samples"],
                          **sampler_kwargs(prm, prm["inverse_beta"]))
        seconds = time.perf_counter() - start
        arrays[f"{problem}_least_squares"] = ls[0]
        arrays[f"{problem}_samples"] = res.x
        base = {"set": set_name, "image_index": idx, "image": im.name, "problem": problem,
                "operator": prm["problems"][problem]["operator"], "m": op.m, "D": op.D, "seed": prm["seed"],
                "beta": prm["inverse_beta"]}
        for method, images, last, steps in (("least_squares", ls, ls, [0]),
                                            ("denoiser_prior", res.x, res.diagnostics["last_iterate"], res.diagnostics["steps"].tolist())):
            p, s = image_metrics(images, x)
            r, r_last = measurement_rms(op, images, xc), measurement_rms(op, last, xc)
            for k in range(images.shape[0]):
                # misfit per measurement, and in the units of sigma_t = ||d_t|| / sqrt(N) (per image pixel);
                # for the returned x_hat = y_T + f(y_T) and for the last iterate y_T
                rows.append({**base, "method": method, "sample": k, "psnr": float(p[k]), "ssim": float(s[k]),
                             "meas_rms": float(r[k]), "meas_rms_pixel": float(r[k]) * math.sqrt(op.m / op.D),
                             "meas_rms_last": float(r_last[k]),
                             "meas_rms_last_pixel": float(r_last[k]) * math.sqrt(op.m / op.D), "steps": int(steps[k]),
                             "status": res.status(k) if method == "denoiser_prior" else "ok",
                             "seconds": seconds / images.shape[0] if method == "denoiser_prior" else 0.0})
    save_arrays(runtime.arrays_dir(prm, PAPER, "inverse") / f"{set_name}_{idx}.npz", **arrays)
    return rows


def plan_inverse(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of the inverse problems' test sets."""
    return prm, [(name, i) for name in grid(prm)["test_sets"] for i in range(len(test_images(prm, name)))]


# ----------------------------------------------------------------------------------------------- compressive sensing
def compressive_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """One image, every measurement ratio: Algorithm 2 vs the sparse-DCT prior (CV threshold, and oracle threshold)."""
    from replicate.solvers import sparse_dct
    from replicate.scaleout import per_process

    cs = grid(prm)["compressive"]
    model = per_process((PAPER, "denoiser", cs["prior"], prm["profile"]), lambda: denoiser(prm, cs["prior"]))
    im = compressive_images(prm)[idx]
    x = im.pixels[None]
    rows, arrays = [], {"original": x[0]}
    for ratio in cs["ratios"]:
        seed = seeding.derive_seed(prm["seed"], PAPER, "cs_operator", ratio, set_name, idx) % 2**31
        op = make_operator("compressive_sensing", shape=im.shape, keep=ratio, seed=seed, construction="whole_image")
        xc = op.M_T(x)
        base = {"set": set_name, "image_index": idx, "image": im.name, "ratio": ratio, "m": op.m, "D": op.D,
                "seed": prm["seed"]}
        gen = seeding.generator(prm["seed"], PAPER, "cs", ratio, set_name, idx)
        start = time.perf_counter()
        res = methods.run("ks_inverse", model, op, None, xc, generator=gen, n=cs["samples"],
                          **sampler_kwargs(prm, prm["inverse_beta"]))
        t_prior = time.perf_counter() - start
        d = cs["dct"]
        start = time.perf_counter()
        # thresholds relative to lambda_max = ||Psi^T M x_c||_inf (above it the l1 solution is 0): scale-free grid
        lam_max = float(sparse_dct.DCT2(*im.shape[1:]).forward(op.M(xc.double())).abs().max())
        dct = sparse_dct.recover(op, xc, lambdas=[lam_max * r for r in d["lambda_ratios"]], folds=d["folds"],
                                 iters=d["iters"], select="per_image",
                                 seed=seeding.derive_seed(prm["seed"], PAPER, "cs_folds", ratio, set_name, idx) % 2**31)
        oracle = sparse_dct.oracle(op, xc, x.double(), lambdas=dct.lambdas, iters=d["iters"])
        t_dct = time.perf_counter() - start
        results = [("denoiser_prior", k, res.x[k:k + 1], t_prior / cs["samples"], float("nan"), res.status(k))
                   for k in range(cs["samples"])]
        results += [("sparse_dct_cv", 0, dct.images.float(), t_dct, float(dct.lam[0]) / lam_max, "ok"),
                    ("sparse_dct_oracle", 0, oracle.images.float(), float("nan"), float(oracle.lam[0]) / lam_max, "ok"),
                    ("least_squares", 0, least_squares(op, xc), 0.0, float("nan"), "ok")]
        for method, k, img, secs, lam, status in results:
            p, s = image_metrics(img, x)
            rows.append({**base, "method": method, "sample": k, "psnr": float(p[0]), "ssim": float(s[0]),
                         "meas_rms": float(measurement_rms(op, img, xc)[0]), "lambda_ratio": lam, "status": status,
                         "seconds": secs})
        arrays[f"r{ratio:g}_denoiser_prior"] = res.x[0]
        arrays[f"r{ratio:g}_sparse_dct_cv"] = dct.images[0]
        arrays[f"r{ratio:g}_least_squares"] = least_squares(op, xc)[0]
    save_arrays(runtime.arrays_dir(prm, PAPER, "compressive") / f"{set_name}_{idx}.npz", **arrays)
    return rows


def compressive_images(prm: dict) -> list[D.Image]:
    """The images of the compressive-sensing study (loaded once per process)."""
    from replicate.scaleout import per_process

    spec = grid(prm)["compressive"]["test_set"]
    return per_process((PAPER, "cs_set", spec), lambda: D.load_set(spec))


def plan_compressive(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of the compressive-sensing study."""
    name = grid(prm)["compressive"]["test_set"]["source"]
    return prm, [(name, i) for i in range(len(compressive_images(prm)))]


# ----------------------------------------------------------------------------------------------- performance
class TimedDenoiser(torch.nn.Module):
    """Wraps a denoiser and adds up the wall time of its calls (to separate sampler overhead from network time)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.seconds, self.calls = inner, 0.0, 0
        self.max_sigma = getattr(inner, "max_sigma", float("inf"))   # the samplers clamp to the wrapped one's range

    def residual(self, y, sigma):
        """The wrapped denoiser's residual, timed and counted."""
        start = time.perf_counter()
        out = self.inner.residual(y, sigma)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


@torch.no_grad()
def stage_performance(prm: dict) -> None:
    """The sampler's overhead over its denoiser calls for every operator, and one denoiser call on a 256x256 colour
    image -> performance.csv."""
    pf = prm["performance"]
    rows = []
    # 1. overhead of Algorithm 2 over the denoiser calls it makes, for every operator, at a fixed size
    model = denoiser(prm, pf["prior"])
    C = 3 if pf["prior"] == "color" else 1
    im = D.load_set(pf["image"])[0]
    x = im.pixels[None, :C]
    for problem in progress_bar(prm["problems"], desc="sampler overhead"):
        op = problem_operator(prm, problem, tuple(x.shape[1:]), "performance", 0)
        timed = TimedDenoiser(model)
        gen = seeding.generator(prm["seed"], PAPER, "performance", problem)
        start = time.perf_counter()
        res = methods.run("ks_inverse", timed, op, None, op.M_T(x), generator=gen, n=pf["samples"],
                          **sampler_kwargs(prm, pf["beta"]))
        total = time.perf_counter() - start
        rows.append({"what": "overhead", "problem": problem, "size": x.shape[-1], "channels": C, "prior": pf["prior"],
                     "samples": pf["samples"], "steps": int(res.diagnostics["steps"].max()), "denoiser_calls": timed.calls,
                     "seconds_total": total, "seconds_denoiser": timed.seconds,
                     "overhead": total / timed.seconds - 1})
    # 2. one denoiser call on a 256x256 colour image (the "one 256x256 colour inverse problem"), and the
    #    projected time of a full Algorithm 2 run at the paper's parameters (sigma0 1, sigmaL 0.01, h0 0.01, beta 0.01)
    color = denoiser(prm, "color")
    y = torch.rand(1, 3, 256, 256, generator=seeding.generator(prm["seed"], PAPER, "perf256"))
    color.residual(y, 0.1)  # warm-up
    start = time.perf_counter()
    for _ in range(pf["calls_256"]):
        color.residual(y, 0.1)
    per_call = (time.perf_counter() - start) / pf["calls_256"]
    steps = scheduled_steps(1.0, 0.01, 0.01, 0.01)
    overhead = float(np.median([r["overhead"] for r in rows]))
    rows.append({"what": "color256", "problem": "any", "size": 256, "channels": 3, "prior": "color", "samples": 1,
                 "steps": steps, "denoiser_calls": steps + 1, "seconds_total": per_call * (steps + 1) * (1 + overhead),
                 "seconds_denoiser": per_call, "overhead": overhead, "threads": torch.get_num_threads()})
    write_csv(runtime.results_dir(prm, PAPER) / "performance.csv", pd.DataFrame(rows))


RESULTS = "results/{profile}/kadkhodaie2021/"
UNIVERSAL = ("data/models/{profile}/mohan2020",)   # the universal prior of mini / smoke


STAGES = [
    Stage("kadkhodaie2021_synthesis", PAPER, stage_synthesis, inputs=UNIVERSAL,
          outs=tuple(RESULTS + f for f in ("synthesis.npz", "synthesis.csv", "convergence.csv")),
          about="Algorithm 1: samples of the prior implicit in the denoiser (Figs. 1, 2, 11, 12), convergence"),
    Stage("kadkhodaie2021_toy", PAPER, stage_toy, outs=tuple(RESULTS + f for f in ("toy.npz", "toy.csv", "toy_miyasawa.csv")),
          about="Fig. 10: the sampler on a one-dimensional manifold prior; Miyasawa's identity checked"),
    per_image_stage(PAPER, "inverse", inverse_rows, plan_inverse, inputs=UNIVERSAL, arrays=True,
                    about="Algorithm 2: inpainting, random pixels, SR, low frequencies"),
    per_image_stage(PAPER, "compressive", compressive_rows, plan_compressive, inputs=UNIVERSAL, arrays=True,
                    about="Fig. 8: compressive sensing, Algorithm 2 vs a sparse-DCT prior with cross-validated "
                          "threshold"),
    Stage("kadkhodaie2021_performance", PAPER, stage_performance, inputs=UNIVERSAL, outs=(RESULTS + "performance.csv",),
          about="sampler overhead over its denoiser calls; one 256x256 colour denoiser call"),
]
