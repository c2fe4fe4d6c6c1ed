"""Chung et al. 2023, Remark 2 measured: on an analytic Gaussian prior (exact posterior known), the error of DPS's
approximation p(y | x_t) ~ p(y | x0_hat) against the same sampler with the exact p(y | x_t), over a range of
measurement noise levels."""
from __future__ import annotations

import time

import pandas as pd
import torch

from replicate import runtime, seeding
from replicate.experiments.chung2023.common import (PAPER, compensation, effective)
from replicate.io import write_csv


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
                xs = Dm.to01(r.diagnostics["x_pm1"]).reshape(jg["samples"], -1)  # unclamped: the Gaussian has no bounds
                mean_err = float((xs.mean(0) - vec(pm)[0]).norm()) / tr**0.5
                var_ratio = float(xs.var(0).sum()) / tr
                rows.append({"sigma_y": sigma, "measurement": m, "method": method, "mean_err": mean_err,
                             "var_ratio": var_ratio, "posterior_std": (tr / prior.dim) ** 0.5,
                             "neglected_cov_ratio": neglected,
                             "samples": jg["samples"], "steps": jg["steps"],
                             "seconds": time.perf_counter() - t0, "seed": prm["seed"]})
    return rows


def stage_jensen_gap(prm: dict) -> None:
    """The jensen_gap stage -> jensen_gap.csv (every profile: the prior is analytic)."""
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
