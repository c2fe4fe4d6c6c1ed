"""Chung et al. 2023, Tables 1/2/6/7, the Poisson runs (Fig. 5) and the ablations (Table 5, Figs. 8 and 11,
App. C.4): every method on every noisy linear task, per image and sample."""
from __future__ import annotations

import time

from replicate import methods, seeding
from replicate.experiments.chung2023.common import (PAPER, Metrics, _fit, _image, _plan, _save_examples, make_noise,
                                                    make_task, measure, method_prior, run_method)


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
        why = methods.applicable(method, method_prior(prm, method, set_name), op, noise)  # the paper's '-' cells
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


def plan_linear(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of every test set whose data and prior are here (the others in linear_availability.csv)."""
    return _plan(prm, "linear")


def plan_ablations(prm: dict) -> tuple[dict, list[tuple]]:
    """The images of the ablation set (the others in ablations_availability.csv)."""
    return _plan(prm, "ablations")
