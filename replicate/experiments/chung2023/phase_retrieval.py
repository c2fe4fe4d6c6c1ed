"""Chung et al. 2023, Table 3: Fourier phase retrieval, DPS (best of k samples) vs ER / HIO / OSS (best of
`restarts` random starts)."""
from __future__ import annotations

import time

import torch

from replicate import methods, seeding
from replicate.experiments.chung2023.common import (PAPER, Metrics, _image, _plan, _save_examples, make_noise, measure,
                                                    run_method)


def phase_retrieval_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """Table 3: DPS keeps the best of ``best_of`` samples by measurement residual (the paper's best of 4); ER / HIO /
    OSS keep the best of ``restarts`` random starts (App. D.2)."""
    from replicate.operators.nonlinear import PhaseRetrieval
    from replicate.scaleout import per_process

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
        if method == "dps":  # the paper's protocol: best of k posterior samples by measurement residual
            k = pr["best_of"]
            xs, nfe = run_method(prm, "dps", op, noise, y.float().expand(k, *y.shape[1:]).contiguous(),
                                 "phase_retrieval", gen, set_name)
            res = (op(xs.double().cpu()) - y).flatten(1).norm(dim=1)
            best = xs[int(res.argmin())][None].float().cpu()
            tries = k
        else:  # ER / HIO / OSS: best of `restarts` random starts inside the solver
            r = methods.run(method, None, op, noise, y, generator=gen, shape=im.shape, iters=pr["iters"],
                            beta=pr["beta"], restarts=pr["restarts"])
            best, nfe, tries = r.x.float(), r.nfe, pr["restarts"]
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


def plan_phase_retrieval(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of the phase-retrieval sets that are here (the others in phase_retrieval_availability.csv)."""
    return _plan(prm, "phase_retrieval")
