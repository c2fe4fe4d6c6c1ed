"""Xie, Yuan, Dong, Li 2023: unsupervised denoising by solving s(y) = f(x, y) with a learned score s.

Stages (xie2023_* in dvc.yaml), writing under results/<profile>/xie2023/:
  train        the score network (AR-DAE) and the baselines (supervised, Noisier2Noise, Neighbor2Neighbor) on the same
               U-Net, one per (noise model, method); checkpoints cached by their training parameters only, so changing a
               solver setting or a noise parameter used at inference retrains nothing (the paper's point) -> training.csv
  denoise      every test image x noise model x method: PSNR (paper convention and peak 255), SSIM, the residual of the
               solved equation, and Ours vs Noise2Score on the exponential-family models -> denoise.csv
  robustness   Fig. 2: PSNR of Ours when every noise parameter k is replaced by (1 + a) k, a ~ N(0, r^2), with the SAME
               trained score network (no retraining) -> robustness.csv
  fig3         the qualitative grid's images (one test image, every Fig. 3 model in the grid, every method) -> fig3.pt
  report       Tables 1-4, Figs. 2-3, claims (replicate/report/xie2023.py)

Scales: images are [0, 1] in the project, the noise models and solvers work on 0-255 (paper), the network sees
y / 127.5 - 1 (official code).
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from replicate import data as D
from replicate import runtime, seeding
from replicate.io import save_torch, write_csv
from replicate.noise.xie2023 import NoiseModel, table1_model
from replicate.solvers import score_denoise as S

PAPER = "xie2023"
METHODS = ("SL", "Nr2N", "Nb2Nb", "Ours")          # the paper's columns, in its order
TRAINING = {"SL": "supervised", "Nr2N": "noisier2noise", "Nb2Nb": "neighbor2neighbor", "Ours": "ardae"}
# Tables 2-4: which models each table holds, and Nb2Nb cells the paper leaves '-' (Table 3, models with A: "it can be
# regarded as the one without A through A^-1 y. Thus we do not provide the metrics")
TABLE_OF = {**{n: "Table 2" for n in range(1, 5)}, **{n: "Table 3" for n in range(5, 11)},
            **{n: "Table 4" for n in range(11, 17)}}
NB2NB_NOT_REPORTED = (6, 8, 10)


# ----------------------------------------------------------------------------------------------- configuration
def noise_model(prm: dict, no: int, **overrides) -> NoiseModel:
    return table1_model(no, {**prm["noise"], **overrides}, kernel=prm["kernel"], conv_eps=prm["conv_eps"],
                        poisson_score=prm["poisson_score"])


def grid(prm: dict) -> dict:
    """What runs here: the full grid, or the stated CPU subset of the paper profile (no GPU)."""
    g = {"models": list(prm["models"]), "methods": list(prm["methods"]), "test_sets": list(prm["test_sets"])}
    if prm["profile"] == "paper" and runtime.device(prm).type != "cuda" and prm.get("cpu_subset"):
        g.update(prm["cpu_subset"])
        g["subset"] = "cpu_subset"
    else:
        g["subset"] = "full"
    return g


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


def additive_noise(model: NoiseModel):
    """Noisier2Noise's extra noise m: a fresh draw of the model's additive noise. For the signal-dependent No.3/4 the
    clean image is unknown, so Sigma(x) is evaluated at the noisy y (our choice; the paper does not say)."""
    if model.family not in ("gauss", "gauss_sd") or model.mixture:
        raise ValueError(f"Noisier2Noise needs additive noise; {model.name} is not additive")

    def draw(y255: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        plug = y255.clamp(0, 255) if model.family == "gauss_sd" else torch.zeros_like(y255)
        return model.sample(plug, gen) - plug
    return draw


def runs(prm: dict) -> list[tuple[int, str]]:
    """(noise model No., method) pairs trained here: every grid cell the paper reports and the code can run."""
    g = grid(prm)
    out = []
    for no in g["models"]:
        app = applicable(noise_model(prm, no))
        for m in g["methods"]:
            if app.get(m, "×") == "×" or (m == "Nb2Nb" and no in NB2NB_NOT_REPORTED):
                continue
            out.append((no, m))
    return out


def sigma_e_for(prm: dict, model: NoiseModel) -> float:
    """App. B: a Gaussian sigma_e = 5 is added to the score network's training images of No.5-10 only."""
    return float(prm["noise"]["sigma_e"]) if (model.family in ("gamma", "poisson", "rayleigh")
                                              and not model.mixture) else 0.0


# ----------------------------------------------------------------------------------------------- data
def training_images(prm: dict) -> tuple[list[torch.Tensor], list[str]]:
    """Clean training images, (3, H, W) uint8, and notes on what was not available. `paper`: DIV2K's 800 training
    images (zip from the registry) + CBSD432; `mini` / `smoke`: embedded dead leaves and photographs."""
    td, notes = prm["train_data"], []
    images: list[torch.Tensor] = []
    for src in td["sources"]:
        if src == "embedded":
            images += [D.to_uint8(x) for x in D.dead_leaves(td.get("dead_leaves", 8), td.get("leaves_size", 96), 3,
                                                           seed=prm["seed"])]
            crop = td.get("photo_crop")
            images += [D.to_uint8(im.pixels) for im in D.skimage_set(D.SKIMAGE_COLOR_TRAIN, gray=False, crop=crop)]
        elif src == "div2k":
            from replicate.assets.registry import AssetUnavailable, fetch

            try:  # the training zip only (the set also holds the validation zip, which is not used)
                images += D.zip_images_uint8(fetch("datasets/div2k/DIV2K_train_HR.zip"), limit=td.get("limit"))
            except AssetUnavailable as err:
                notes.append(f"DIV2K not available here: {err.missing[0].reason} ({err.missing[0].asset.url})")
        elif src in D.MIRROR_SETS:
            images += [D.to_uint8(im.pixels) for im in D.mirror_set(src, gray=False, limit=td.get("limit"))]
        else:
            raise KeyError(f"unknown training source {src!r} (embedded, div2k, or one of {list(D.MIRROR_SETS)})")
    if not images:
        raise ValueError("no training images: check xie2023.train_data.sources")
    return images, notes


def training_pairs(prm: dict, model: NoiseModel, clean: list[torch.Tensor], extra_sigma: float):
    """The training set with its fixed noisy images (Sec. 4) for one noise model, drawn tile by tile on demand."""
    from replicate.training_score import FixedNoisyImages

    return FixedNoisyImages(clean, model, key=(prm["seed"], PAPER, "train-noise", model.no),
                            extra_sigma=extra_sigma, tile=prm["train_data"].get("noise_tile", 64))


def test_sets(prm: dict, names=None) -> dict[str, list[D.Image]]:
    return {n: D.load_set(spec) for n, spec in prm["test_sets"].items() if names is None or n in names}


# ----------------------------------------------------------------------------------------------- networks
def make_net(prm: dict, method: str):
    """The U-Net of every method (App. B: the same network for all); the image-to-image baselines (SL, Nr2N, Nb2Nb)
    predict their output directly, or u + net(u) with ``baseline_output: residual`` (see ResidualOutput)."""
    from replicate.denoisers.xie_unet import ResidualOutput, XieUNet

    a = prm["arch"]
    net = XieUNet(3, width=a["width"], num_res_blocks=a["num_res_blocks"], channel_mult=tuple(a["channel_mult"]),
                  dropout=a.get("dropout", 0.0))
    return ResidualOutput(net) if method != "Ours" and baseline_output(prm) == "residual" else net


def baseline_output(prm: dict) -> str:
    out = prm.get("baseline_output", "direct")
    if out not in ("direct", "residual"):
        raise ValueError(f"xie2023.baseline_output must be 'direct' or 'residual', got {out!r}")
    return out


def train_fingerprint(prm: dict, no: int, method: str) -> dict:
    """Everything training depends on, and nothing it does not (solver options, Fig. 2 rates, test sets...)."""
    model = noise_model(prm, no)
    return {"paper": PAPER, "no": no, "method": method, "noise": model.relevant_params(),
            "correlated": model.correlated, "kernel": prm["kernel"] if model.correlated else None,
            "sigma_e": sigma_e_for(prm, model) if method == "Ours" else 0.0, "arch": prm["arch"],
            "train": prm["train"], "train_data": prm["train_data"], "seed": prm["seed"],
            "output": "score" if method == "Ours" else baseline_output(prm)}


def checkpoint_path(prm: dict, no: int, method: str):
    key = hashlib.sha256(json.dumps(train_fingerprint(prm, no, method), sort_keys=True).encode()).hexdigest()[:12]
    return runtime.models_dir(prm, PAPER) / f"{TRAINING[method]}_no{no:02d}_{key}.pt"


def train_config(prm: dict, no: int, method: str):
    from replicate.training_score import ScoreTrainConfig

    t = prm["train"]
    return ScoreTrainConfig(method=TRAINING[method], steps=t["steps"], batch=t["batch"], micro_batch=t["micro_batch"],
                            crop=t["crop"], lr=t["lr"], lr_milestones=tuple(t["lr_milestones"]),
                            lr_gamma=t["lr_gamma"], weight_decay=t["weight_decay"],
                            sigma_a_start=t["sigma_a_start"], sigma_a_end=t["sigma_a_end"],
                            sigma_a_every=t["sigma_a_every"], sigma_a_hold=t["sigma_a_hold"],
                            nb2nb_gamma=t["nb2nb_gamma"], checkpoint_every=t["checkpoint_every"],
                            seed=seeding.derive_seed(prm["seed"], PAPER, "train", no, method),
                            extra={"model": f"No.{no}"})


def stage_train(prm: dict) -> None:
    from replicate.training_score import train

    clean, notes = training_images(prm)
    dev = runtime.device(prm)
    rows = []
    for no, method in tqdm(runs(prm), desc="xie2023 training runs"):
        model = noise_model(prm, no)
        ckpt = checkpoint_path(prm, no, method)
        cached = ckpt.exists() and torch.load(ckpt, map_location="cpu", weights_only=False).get("complete", False)
        pairs = training_pairs(prm, model, clean, sigma_e_for(prm, model) if method == "Ours" else 0.0)
        torch.manual_seed(seeding.derive_seed(prm["seed"], PAPER, "init", no, method))
        net = make_net(prm, method)
        cfg = train_config(prm, no, method)
        log = train(net, pairs, cfg, ckpt, fresh_noise=additive_noise(model) if method == "Nr2N" else None,
                    device=dev, fingerprint=train_fingerprint(prm, no, method))
        k = max(1, len(log["loss"]) // 10)
        rows.append({"no": no, "method": method, "checkpoint": ckpt.name, "cached": cached, "steps": len(log["loss"]),
                     "loss_first": float(np.mean(log["loss"][:k])), "loss_last": float(np.mean(log["loss"][-k:])),
                     "seconds": round(log["seconds"], 2), "train_images": len(clean),
                     "parameters": sum(p.numel() for p in net.parameters()), "notes": "; ".join(notes)})
    write_csv(runtime.results_dir(prm, PAPER) / "training.csv", pd.DataFrame(rows))
    write_csv(runtime.results_dir(prm, PAPER) / "training_cost.csv", pd.DataFrame([paper_training_cost(prm)]))


def paper_training_cost(prm: dict, reps: int = 2) -> dict:
    """The paper profile's training bill, from a measurement here: seconds of one forward + backward of the paper's
    U-Net (its `arch`) on one crop of ``cost_measure_crop`` px on this machine, scaled by pixels to the paper's crop
    (convolutions cost in proportion to pixels), times the crops of the full grid (runs x steps x batch; Nb2Nb
    counts twice, its loss runs the net on y and on the sub-image), in CPU-hours and in GPU-hours at the report's
    ASSUMED CPU->GPU factor (report/costs.py)."""
    from replicate import params as P
    from replicate.report.costs import CPU_TO_GPU

    paper = P.load(PAPER, profile="paper")
    full = {**paper, "cpu_subset": None}                    # no CPU subset: grid() gives the whole grid
    t = paper["train"]
    torch.manual_seed(0)
    net = make_net(paper, "SL")
    side = int(prm.get("cost_measure_crop", t["crop"]))
    u = torch.randn(1, 3, side, side)
    seconds = []
    for _ in range(reps + 1):                               # the first pass warms up
        t0 = time.perf_counter()
        net(u).square().mean().backward()
        seconds.append(time.perf_counter() - t0)
    per_crop = float(np.median(seconds[1:])) * (t["crop"] / side) ** 2
    grid_runs = runs(full)
    crops = sum((2 if m == "Nb2Nb" else 1) * t["steps"] * t["batch"] for _, m in grid_runs)
    cpu_hours = per_crop * crops / 3600
    return {"runs": len(grid_runs), "steps": t["steps"], "batch": t["batch"], "crop": t["crop"], "measured_crop": side,
            "parameters": sum(p.numel() for p in net.parameters()), "seconds_per_crop_cpu": per_crop,
            "threads": torch.get_num_threads(), "cpu_hours": cpu_hours, "cpu_to_gpu_assumed": CPU_TO_GPU,
            "gpu_hours_projected": cpu_hours / CPU_TO_GPU}


def load_nets(prm: dict) -> dict[tuple[int, str], torch.nn.Module]:
    nets = {}
    for no, method in runs(prm):
        ckpt = checkpoint_path(prm, no, method)
        if not ckpt.exists():
            raise FileNotFoundError(f"{ckpt} is missing: run the train stage first (python -m replicate xie2023 train)")
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if not state.get("complete"):
            raise FileNotFoundError(f"{ckpt} is an unfinished training run: rerun the train stage to resume it")
        net = make_net(prm, method)
        net.load_state_dict(state["model"])
        nets[(no, method)] = net.eval().to(runtime.device(prm))
    return nets


# ----------------------------------------------------------------------------------------------- inference
@torch.no_grad()
def net_score(net, y255: torch.Tensor) -> torch.Tensor:
    """s(y) on the 0-255 scale from a network trained on u = y / 127.5 - 1: s_255 = s_u / 127.5."""
    from replicate.training_score import SCALE, to_net

    return _apply(net, to_net(y255)) / SCALE


def _apply(net, u: torch.Tensor) -> torch.Tensor:
    """The network on its own device (GPU in the paper profile), result back on the CPU in float64."""
    dev = next(net.parameters()).device
    return net(u.float().to(dev)).double().cpu()


@torch.no_grad()
def run_method(prm: dict, method: str, net, model: NoiseModel, y255: torch.Tensor, gen: torch.Generator,
               solver_options: dict | None = None, score: torch.Tensor | None = None) -> torch.Tensor:
    """x_hat (0-255) of one method for noisy y255 (N, C, H, W)."""
    from replicate.training_score import from_net, to_net

    if method == "Ours":
        s = net_score(net, y255) if score is None else score
        return S.solve(model, y255.double(), s, iters=prm["solver"]["iters"], sigma_e=sigma_e_for(prm, model),
                       options=solver_options or prm["solver"])
    if method in ("SL", "Nb2Nb"):
        return from_net(_apply(net, to_net(y255)))
    # Noisier2Noise, alpha: x = ((1 + a^2) E[y | z] - z) / a^2, averaged over `average` draws of z (App. B)
    a, k = prm["nr2n"]["alpha"], prm["nr2n"]["average"]
    draw, acc = additive_noise(model), torch.zeros_like(y255, dtype=torch.float64)
    for _ in range(k):
        z = y255 + a * draw(y255, gen)
        acc += ((1 + a * a) * from_net(_apply(net, to_net(z))) - z) / (a * a)
    return acc / k


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
    for no, methods in by_model.items():
        model = noise_model(prm, no)
        y = noisy_for(prm, model, set_name, idx, x255)
        base = {"set": set_name, "image_index": idx, "image": im.name, "no": no, "table": TABLE_OF[no],
                "model": model.name, "seed": prm["seed"], "psnr_in": _metrics(y, x01)["psnr"]}
        for method in methods:
            net = nets[(no, method)]
            start = time.perf_counter()
            gen = seeding.generator(prm["seed"], PAPER, "method-noise", set_name, idx, no, method)
            extra = {}
            if method == "Ours":
                s = net_score(net, y)
                xhat = run_method(prm, method, net, model, y, gen, score=s)
                extra["eq_residual"] = float(S.equation_residual(model, xhat, y.double(), s,
                                                                 sigma_e=sigma_e_for(prm, model))[0])
                if model.exponential_family and not (model.correlated and model.family != "gauss"):
                    # the paper's Sec. 3.2: our closed forms = Tweedie/Noise2Score on the same score (sigma_e = 0)
                    ours0 = S.solve(model, y.double(), s, iters=prm["solver"]["iters"])
                    extra["n2s_max_abs_diff"] = float((S.noise2score(model, y.double(), s) - ours0).abs().max())
                if model.family == "gauss_sd" and not model.correlated:
                    root = S.quadratic_sd(model, y.double(), s)
                    rows.append({**base, "method": "Ours (exact root)", **_metrics(root, x01),
                                 "eq_residual": float(S.equation_residual(model, root, y.double(), s)[0]),
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
        s = net_score(nets[(no, "Ours")], y)
        keys = list(model.relevant_params()) if rob.get("perturb", "all") == "all" else list(rob["perturb"])
        for r in rob["rates"]:
            for rep in range(rob["repeats"] if r > 0 else 1):
                gen = seeding.generator(prm["seed"], PAPER, "perturb", set_name, idx, no, float(r), rep)
                factors = {k: 1.0 + float(r) * float(torch.randn((), generator=gen, dtype=torch.float64)) for k in keys}
                pert = model.with_params(**{k: model.params[k] * f for k, f in factors.items()})
                xhat = S.solve(pert, y.double(), s, iters=prm["solver"]["iters"], sigma_e=sigma_e_for(prm, pert),
                               options=prm["solver"])
                rows.append({"set": set_name, "image_index": idx, "image": im.name, "no": no, "model": model.name,
                             "rate": float(r), "repeat": rep, "seed": prm["seed"], "solver": "network score",
                             **{f"factor_{k}": f for k, f in factors.items()}, **_metrics(xhat, x01)})
    return rows


def _per_image_stage(prm: dict, fn, name: str, set_names=None) -> None:
    from replicate.scaleout import run_per_image

    names = set_names or grid(prm)["test_sets"]
    items = [(s, i) for s, images in test_sets(prm, names).items() for i in range(len(images))]
    run_per_image(fn, prm, items, runtime.results_dir(prm, PAPER) / f"{name}.csv")


def stage_denoise(prm: dict) -> None:
    _per_image_stage(prm, denoise_rows, "denoise")


def stage_robustness(prm: dict) -> None:
    _per_image_stage(prm, robustness_rows, "robustness", prm["robustness"].get("test_sets"))


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
                xhat = run_method(prm, method, nets[(no, method)], model, y, gen)
                row["outputs"][method] = (xhat / 255).float().clamp(0, 1)[0]
                row["psnr"][method] = _metrics(xhat, x01)["psnr"]
        panels.append(row)
    save_torch(runtime.results_dir(prm, PAPER) / "fig3.pt", {"image": im.name, "set": f3["set"], "clean": x01[0],
                                                             "rows": panels})


def stage_report(prm: dict) -> None:
    from replicate.report import xie2023 as report

    report.build(prm)


STAGES = {
    "train": stage_train,
    "denoise": stage_denoise,
    "robustness": stage_robustness,
    "fig3": stage_fig3,
    "report": stage_report,
}
