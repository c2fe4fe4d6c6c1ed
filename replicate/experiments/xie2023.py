"""Xie, Yuan, Dong, Li 2023: unsupervised denoising by solving s(y) = f(x, y) with a learned score s.

Stages (xie2023_* in dvc.yaml), writing under results/<profile>/xie2023/:
  train        (replicate/experiments/xie2023_train.py) the score network and the baselines -> training.csv
  denoise      every test image x noise model x method: PSNR (paper convention and peak 255), SSIM, the residual of the
               solved equation, and Ours vs Noise2Score on the exponential-family models -> denoise.csv
  robustness   Fig. 2: PSNR of Ours when every noise parameter k is replaced by (1 + a) k, a ~ N(0, r^2), with the SAME
               trained score network (no retraining) -> robustness.csv
  fig3         the qualitative grid's images (one test image, every Fig. 3 model in the grid, every method) -> fig3.pt
  report       Tables 1-4, Figs. 2-3, claims (replicate/report/xie2023.py)

Scales: images are [0, 1] in the project, the noise models and solvers work on 0-255 (paper); the networks see
y / 127.5 - 1 or, for the score network of the multiplicative models No.5-16, y / 255, as the official code
(xie2023_train.net_input, params `score_input`), and the score comes back to 0-255 as s_u du/dy.

Test-time sigma_e (params `test_sigma_e`): for the models whose score network was trained with the extra Gaussian
sigma_e = 5 (No.5-10, xie2023_train.sigma_e_for) the official code also adds a fresh N(0, sigma_e^2) draw to the noisy
image before evaluating the network at test time and then removes it with z = y + sigma_e^2 s(y) before the model's
solver (models/{gamma,poisson,rayleigh}[_conv]_score_func.py: test_data_process / test_model). `code` (default) does
the same, the draw seeded per (test image, noise model) from replicate.seeding (`item_key`), so every method-independent
use of that image's score (denoise, robustness, the training precondition) sees the same input; `none` evaluates the
network on y itself (the project's earlier behaviour; Algorithm 5 still removes sigma_e).
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from replicate import data as D
from replicate import methods, runtime, seeding
from replicate.experiments.xie2023_train import (METHODS, NB2NB_NOT_REPORTED, PAPER, TRAINING,  # noqa: F401
                                                 additive_noise, checkpoint_path, load_nets, make_net, net_input,
                                                 noise_model, runs, sigma_e_for, training_images)
from replicate.io import save_torch
from replicate.methods import Reconstruction
from replicate.noise.xie2023 import XieNoiseModel as NoiseModel
from replicate.pipeline.stage import Stage, per_image_stage
from replicate.solvers import score_denoise as S

# Tables 2-4: which models each table holds
TABLE_OF = {**{n: "Table 2" for n in range(1, 5)}, **{n: "Table 3" for n in range(5, 11)},
            **{n: "Table 4" for n in range(11, 17)}}


# ----------------------------------------------------------------------------------------------- configuration
def grid(prm: dict) -> dict:
    """What runs here (params.load has already applied the paper profile's CPU subset)."""
    return {"models": list(prm["models"]), "methods": list(prm["methods"]), "test_sets": list(prm["test_sets"]),
            "subset": prm["subset"]}


def test_sets(prm: dict, names=None) -> dict[str, list[D.Image]]:
    """The test sets of this profile by name (all, or those in `names`)."""
    return {n: D.load_set(spec) for n, spec in prm["test_sets"].items() if names is None or n in names}


def applicable(model: NoiseModel) -> dict[str, str]:
    """Table 1 as this code sees it: symbol per method, derived from what the code can run.

    SL, Ours: the code trains / solves every model (Ours: `solve` has a branch for it).
    Nr2N: needs a fresh draw of ADDITIVE noise (`additive_noise` raises otherwise).
    N2S: Tweedie needs an exponential family (`noise2score` raises otherwise).
    Nb2Nb: always trainable; 'applicable' (✓) when the noise is pixel-independent and unbiased, '✓*' when A^-1 y is
    (y = A N(x) with N unbiased, no additive term), '×*' otherwise (trained anyway, assumptions violated).
    """
    out = {}
    probe = torch.full((1, 1, 8, 8), 100.0, dtype=torch.float64)
    try:
        S.solve(model, probe, torch.zeros_like(probe))
        out["Ours"] = "✓"
    except (ValueError, NotImplementedError):
        out["Ours"] = "×"
    out["SL"] = "✓"
    try:
        additive_noise(model)
        out["Nr2N"] = "✓"
    except ValueError:
        out["Nr2N"] = "×"
    try:
        z = probe if not model.correlated else model.a_op.inv(probe)
        S.noise2score(model if model.family in ("gauss", "gauss_sd") or not model.correlated
                      else _without_a(model), z, torch.zeros_like(z))
        out["N2S"] = "✓"
    except ValueError:
        out["N2S"] = "×"
    independent = not model.correlated
    if model.unbiased and independent:
        out["Nb2Nb"] = "✓"
    elif model.unbiased and model.family in ("gamma", "poisson") and not model.mixture:
        out["Nb2Nb"] = "✓*"
    else:
        out["Nb2Nb"] = "×*"
    return out


def _without_a(model: NoiseModel) -> NoiseModel:
    from dataclasses import replace

    return replace(model, correlated=False)


# ----------------------------------------------------------------------------------------------- inference
@torch.no_grad()
def net_score(net, y255: torch.Tensor, scale: str = "signed") -> torch.Tensor:
    """s(y) on the 0-255 scale from a score network trained on u = to_net(y, scale): s_255 = s_u du/dy
    (du/dy = 1/127.5 for "signed", 1/255 for "unit")."""
    from replicate.training_score import score_to_255, to_net

    return score_to_255(_apply(net, to_net(y255, scale)), scale)


def sigma_e_at_test(prm: dict, model: NoiseModel) -> float:
    """Std of the fresh Gaussian added to y before the score network at test time (module doc): the training-time
    sigma_e of `model` with ``test_sigma_e: code``, 0 with ``none``."""
    mode = prm.get("test_sigma_e", "code")
    if mode not in ("code", "none"):
        raise ValueError(f"xie2023.test_sigma_e must be 'code' or 'none', got {mode!r}")
    return sigma_e_for(prm, model) if mode == "code" else 0.0


def item_key(set_name: str, idx: int, no: int) -> tuple:
    """What the test-time sigma_e draw of one (test image, noise model) is seeded by."""
    return (set_name, int(idx), int(no))


def score_at(prm: dict, net, model: NoiseModel, y255: torch.Tensor, key: tuple | None) -> tuple:
    """(y_in, s): the image the score network is evaluated on (y, plus the seeded test-time sigma_e draw where
    `test_sigma_e` says so) and its score on the 0-255 scale. Algorithm 5 then solves from z = y_in + sigma_e^2 s."""
    se = sigma_e_at_test(prm, model)
    y_in = y255.double()
    if se > 0:
        if key is None:
            raise ValueError("the test-time sigma_e draw needs the (set, image, model) key it is seeded by")
        gen = seeding.generator(prm["seed"], PAPER, "test-sigma-e", *key)
        y_in = y_in + se * torch.randn(y255.shape, generator=gen, dtype=torch.float64)
    return y_in, net_score(net, y_in, net_input(prm, model, "Ours"))


def solve_ours(prm: dict, model: NoiseModel, y_in: torch.Tensor, s: torch.Tensor,
               solver_options: dict | None = None) -> Reconstruction:
    """Algorithm 1 step 2 on the network's input y_in and score s (0-255): the registered "xie_score_equation"
    (diagnostics["eq_residual"]: the relative residual of the equation solved)."""
    return methods.run("xie_score_equation", None, None, model, y_in, score=s, iters=prm["solver"]["iters"],
                       sigma_e=sigma_e_for(prm, model), options=solver_options or prm["solver"])


def _apply(net, u: torch.Tensor) -> torch.Tensor:
    """The network on its own device (GPU in the paper profile), result back on the CPU in float64."""
    dev = next(net.parameters()).device
    return net(u.float().to(dev)).double().cpu()


def _ours(prm, net, model, y255, gen, solver_options, key) -> torch.Tensor:
    """Ours: the score network at y (plus the test-time sigma_e draw), then the score equation."""
    return solve_ours(prm, model, *score_at(prm, net, model, y255, key), solver_options).x


def _direct(prm, net, model, y255, gen, solver_options, key) -> torch.Tensor:
    """SL and Neighbor2Neighbor: the network's output is the estimate."""
    from replicate.training_score import from_net, to_net

    scale = net_input(prm, model, "SL")
    return from_net(_apply(net, to_net(y255, scale)), scale)


def _noisier2noise(prm, net, model, y255, gen, solver_options, key) -> torch.Tensor:
    """Noisier2Noise, alpha: x = ((1 + a^2) E[y | z] - z) / a^2, averaged over `average` draws of z (App. B)."""
    from replicate.training_score import from_net, to_net

    scale = net_input(prm, model, "Nr2N")
    a, k = prm["nr2n"]["alpha"], prm["nr2n"]["average"]
    draw, acc = additive_noise(model), torch.zeros_like(y255, dtype=torch.float64)
    for _ in range(k):
        z = y255 + a * draw(y255, gen)
        acc += ((1 + a * a) * from_net(_apply(net, to_net(z, scale)), scale) - z) / (a * a)
    return acc / k


#: each method of Tables 2-4 from its trained network: Ours is the paper's, the others its baselines
ESTIMATORS = {"Ours": _ours, "SL": _direct, "Nb2Nb": _direct, "Nr2N": _noisier2noise}


@torch.no_grad()
def run_method(prm: dict, method: str, net, model: NoiseModel, y255: torch.Tensor, gen: torch.Generator,
               solver_options: dict | None = None, key: tuple | None = None) -> torch.Tensor:
    """x_hat (0-255) of one method for noisy y255 (N, C, H, W). key: item_key(set, image, model), which seeds the
    score network's test-time sigma_e draw (needed by Ours on No.5-10 with ``test_sigma_e: code``)."""
    return ESTIMATORS[method](prm, net, model, y255, gen, solver_options, key)


def _metrics(xhat255: torch.Tensor, x01: torch.Tensor) -> dict:
    from replicate.metrics import psnr, psnr_for, ssim

    out = (xhat255 / 255.0).float().clamp(0, 1)
    return {"psnr": float(psnr_for(PAPER, out, x01)[0]), "psnr_255": float(psnr(out, x01, data_range=1.0)[0]),
            "ssim": float(ssim(out, x01)[0])}


def noisy_for(prm: dict, model: NoiseModel, set_name: str, idx: int, x255: torch.Tensor) -> torch.Tensor:
    """The test noise of (image, model): depends only on (seed, set, image, model No.) -> paired comparisons."""
    return model.sample(x255, seeding.generator(prm["seed"], PAPER, "test-noise", set_name, idx, model.no))


def denoise_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """One test image through every (model, method) of the grid."""
    from replicate.scaleout import per_process

    nets = per_process((PAPER, "nets", prm), lambda: load_nets(prm))
    im = per_process((PAPER, "set", set_name, prm), lambda: test_sets(prm, [set_name])[set_name])[idx]
    x01 = im.pixels[None]
    x255 = x01.double() * 255.0
    rows = []
    by_model: dict[int, list[str]] = {}
    for no, method in runs(prm):
        by_model.setdefault(no, []).append(method)
    for no, model_methods in by_model.items():
        model = noise_model(prm, no)
        y = noisy_for(prm, model, set_name, idx, x255)
        base = {"set": set_name, "image_index": idx, "image": im.name, "no": no, "table": TABLE_OF[no],
                "model": model.name, "seed": prm["seed"], "psnr_in": _metrics(y, x01)["psnr"]}
        for method in model_methods:
            net = nets[(no, method)]
            start = time.perf_counter()
            gen = seeding.generator(prm["seed"], PAPER, "method-noise", set_name, idx, no, method)
            extra = {}
            if method == "Ours":  # also the diagnostics of the equation it solves
                y_in, s = score_at(prm, net, model, y, item_key(set_name, idx, no))
                ours = solve_ours(prm, model, y_in, s)
                xhat = ours.x
                extra["eq_residual"] = float(ours.diagnostics["eq_residual"][0])
                if model.exponential_family and not (model.correlated and model.family != "gauss"):
                    # the paper's Sec. 3.2: our closed forms = Tweedie/Noise2Score on the same score (sigma_e = 0)
                    ours0 = methods.run("xie_score_equation", None, None, model, y_in, score=s,
                                        iters=prm["solver"]["iters"]).x
                    n2s = methods.run("noise2score", None, None, model, y_in, score=s).x
                    extra["n2s_max_abs_diff"] = float((n2s - ours0).abs().max())
                if model.family == "gauss_sd" and not model.correlated:
                    root = S.quadratic_sd(model, y_in, s)
                    rows.append({**base, "method": "Ours (exact root)", **_metrics(root, x01),
                                 "eq_residual": float(S.equation_residual(model, root, y_in, s)[0]),
                                 "seconds": time.perf_counter() - start})
            else:
                xhat = run_method(prm, method, net, model, y, gen)
            rows.append({**base, "method": method, **_metrics(xhat, x01), **extra,
                         "seconds": time.perf_counter() - start})
    return rows


def robustness_rows(prm: dict, set_name: str, idx: int) -> list[dict]:
    """Fig. 2: each parameter k of No.14 / No.15 replaced by (1 + a) k, a ~ N(0, r^2); same network, same y."""
    from replicate.scaleout import per_process

    rob = prm["robustness"]
    nets = per_process((PAPER, "nets", prm), lambda: load_nets(prm))
    im = per_process((PAPER, "set", set_name, prm), lambda: test_sets(prm, [set_name])[set_name])[idx]
    x01 = im.pixels[None]
    x255 = x01.double() * 255.0
    rows = []
    for no in rob["models"]:
        if (no, "Ours") not in nets:
            continue
        model = noise_model(prm, no)
        y = noisy_for(prm, model, set_name, idx, x255)
        y_in, s = score_at(prm, nets[(no, "Ours")], model, y, item_key(set_name, idx, no))
        keys = list(model.relevant_params()) if rob.get("perturb", "all") == "all" else list(rob["perturb"])
        for r in rob["rates"]:
            for rep in range(rob["repeats"] if r > 0 else 1):
                gen = seeding.generator(prm["seed"], PAPER, "perturb", set_name, idx, no, float(r), rep)
                factors = {k: 1.0 + float(r) * float(torch.randn((), generator=gen, dtype=torch.float64)) for k in keys}
                pert = model.with_params(**{k: model.params[k] * f for k, f in factors.items()})
                xhat = solve_ours(prm, pert, y_in, s).x
                rows.append({"set": set_name, "image_index": idx, "image": im.name, "no": no, "model": model.name,
                             "rate": float(r), "repeat": rep, "seed": prm["seed"], "solver": "network score",
                             **{f"factor_{k}": f for k, f in factors.items()}, **_metrics(xhat, x01)})
    return rows


def _items(prm: dict, names) -> list[tuple]:
    return [(s, i) for s, images in test_sets(prm, names).items() for i in range(len(images))]


def plan_denoise(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of every test set."""
    return prm, _items(prm, grid(prm)["test_sets"])


def plan_robustness(prm: dict) -> tuple[dict, list[tuple]]:
    """Every image of the robustness study's test sets."""
    return prm, _items(prm, prm["robustness"].get("test_sets") or grid(prm)["test_sets"])


@torch.no_grad()
def stage_fig3(prm: dict) -> None:
    """Paper Fig. 3: one test image (CBSD68 cropped to 256x256 in the paper), rows = noise models."""
    f3 = prm["fig3"]
    nets = load_nets(prm)
    im = test_sets(prm, [f3["set"]])[f3["set"]][f3["image"]]
    x01 = D.center_crop(im.pixels, min(f3["crop"], *im.shape[-2:]))[None]
    x01 = D.crop_to_multiple(x01, 2 ** (len(prm["arch"]["channel_mult"]) - 1))
    x255 = x01.double() * 255.0
    panels = []
    for no in f3["models"]:
        if not any(k[0] == no for k in nets):
            continue
        model = noise_model(prm, no)
        y = model.sample(x255, seeding.generator(prm["seed"], PAPER, "fig3", no))
        row = {"no": no, "model": model.name, "noisy": (y / 255).float().clamp(0, 1)[0], "outputs": {}, "psnr": {}}
        for method in METHODS:
            if (no, method) in nets:
                gen = seeding.generator(prm["seed"], PAPER, "fig3-method", no, method)
                xhat = run_method(prm, method, nets[(no, method)], model, y, gen, key=("fig3", 0, no))
                row["outputs"][method] = (xhat / 255).float().clamp(0, 1)[0]
                row["psnr"][method] = _metrics(xhat, x01)["psnr"]
        panels.append(row)
    save_torch(runtime.results_dir(prm, PAPER) / "fig3.pt", {"image": im.name, "set": f3["set"], "clean": x01[0],
                                                             "rows": panels})


RESULTS = "results/{profile}/xie2023/"
MODELS = ("data/models/{profile}/xie2023",)

def stage_applicability(prm: dict) -> None:
    """Table 1 as this code sees it: for each of the 16 noise models, which method the code can run (applicable())."""
    from replicate.io import write_csv

    rows = [{"no": no, "model": noise_model(prm, no).name, **applicable(noise_model(prm, no))} for no in range(1, 17)]
    write_csv(runtime.results_dir(prm, PAPER) / "applicability.csv", pd.DataFrame(rows))


STAGES = [
    Stage("xie2023_applicability", PAPER, stage_applicability, outs=(RESULTS + "applicability.csv",),
          about="Table 1: which method the code can run on each of the 16 noise models"),
    per_image_stage(PAPER, "denoise", denoise_rows, plan_denoise, inputs=MODELS,
                    about="every test image x noise model x method: PSNR, SSIM, the solved equation's residual"),
    per_image_stage(PAPER, "robustness", robustness_rows, plan_robustness, inputs=MODELS,
                    about="Fig. 2: Ours with every noise parameter perturbed, same trained score network"),
    Stage("xie2023_fig3", PAPER, stage_fig3, outs=(RESULTS + "fig3.pt",), inputs=MODELS,
          about="Fig. 3: one test image, every noise model of the figure, every method"),
]
