"""Chung et al. 2023, the wall-clock table: seconds per step of the x0-predictor forward vs forward + backward
(DPS's overhead); the per-method times come from the linear stage."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from replicate import runtime, seeding
from replicate.experiments.chung2023.common import (PAPER, effective, image_sets, prior_cached, prior_of)
from replicate.io import write_csv
from replicate.pipeline import availability


def stage_benchmark(prm: dict) -> None:
    """DPS overhead: seconds per step of the x0-predictor forward only vs forward + backward (what DPS needs), and
    seconds per image of a full DPS run at the profile's NFE; the per-method times come from the linear stage."""
    prm = effective(prm)
    out = runtime.results_dir(prm, PAPER) / "benchmark.csv"
    sets, missing = image_sets(prm)
    availability.write_missing(prm, PAPER, "benchmark", prm["test_sets"], missing)
    if not sets:
        write_csv(out, pd.DataFrame(columns=["what", "seconds"]))
        return
    from replicate.denoisers.vp import x0_predictor

    set_name = next(iter(sets))
    model = x0_predictor(prior_cached(prm, prior_of(prm, set_name)), clip_denoised=True)
    dev = runtime.device(prm)
    im = sets[set_name][0]
    x = torch.randn(1, *im.shape, generator=seeding.generator(prm["seed"], PAPER, "benchmark")).to(dev)
    reps = prm["benchmark"]["reps"]
    t = 500

    def forward() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            model.predict(x, t)
        return time.perf_counter() - t0

    def forward_backward() -> float:
        t0 = time.perf_counter()
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(model.predict(xi, t)["x0"].square().sum(), xi)
        return time.perf_counter() - t0

    # both warmed up, then interleaved and summarised by the median: a load change on a shared machine hits both
    # alike (timed one block after the other, a busy spell once made forward+backward look faster than a forward)
    forward(), forward_backward()
    times = [(forward(), forward_backward()) for _ in range(reps)]
    fwd = float(np.median([f for f, _ in times]))
    fb = float(np.median([b for _, b in times]))
    nfe = prm["steps"]["dps"]
    rows = [{"what": "forward per step", "seconds": fwd, "pixels": x[0].numel(), "device": str(dev)},
            {"what": "forward+backward per step", "seconds": fb, "pixels": x[0].numel(), "device": str(dev)},
            {"what": "DPS overhead factor", "seconds": fb / fwd, "pixels": x[0].numel(), "device": str(dev)},
            {"what": f"DPS projected per image at {nfe} NFE", "seconds": fb * nfe, "pixels": x[0].numel(),
             "device": str(dev)},
            {"what": "DPS projected per image at 1000 NFE", "seconds": fb * 1000, "pixels": x[0].numel(),
             "device": str(dev)}]
    write_csv(out, pd.DataFrame(rows))
