"""Training for Xie et al. 2023 (stage `xie2023_train`): the score network (AR-DAE) and the baselines (supervised,
Noisier2Noise, Neighbor2Neighbor) on the same U-Net, one per (noise model, method).

Checkpoints are cached by their training parameters only (`train_fingerprint`), so changing a solver setting or a
noise parameter used at inference retrains nothing (the paper's point). mini / smoke train small U-Nets on embedded
data and the mini weights are committed (data/models/mini/xie2023); the paper profile trains the paper's U-Net on
DIV2K + CBSD432 (GPU). Training runs on one thread on a CPU, so that the same seed gives the same weights on every
machine of a kind.

Precondition (recorded per run in training.csv, and in the stage's manifest through pipeline.stage.note): every
trained network must show that it learned something on held-out images. Rule: on the first PRECONDITION_IMAGES
images of each test set (params `test_sets`; images the training never sees), with that run's noise model and the
same test noise as the denoise stage (xie2023.noisy_for), the mean PSNR gain of the network's own estimator over the
noisy input, `gain_db`, and over the same estimator with the network at its initialisation, `gain_vs_init_db`, must
both be at least MIN_GAIN_DB = 3 dB (`learned`). The estimator is the one the denoise stage reports: SL / Nb2Nb the
network's output, Nr2N its alpha-corrected average, Ours the score through the paper's solver exactly as
xie2023.run_method applies it (Tweedie's Eq. 5 for No.1-2, Algorithms 2-5 otherwise, with the test-time sigma_e of
`test_sigma_e`). The untrained estimator is the noisy input itself for the residual baselines and for Ours on the
Gaussian models (s = 0 gives x = y), but not for Ours on Rayleigh, where Algorithm 3 with a zero score already
divides y by 1 + sigma (+7 dB on the mini test images without any learning), nor for the direct-output baselines (a
flat image); hence the second comparison. 3 dB is well below what a working network gains where the noise leaves
room (mini, 1000 steps: SL +7.4 dB on No.1, +9.3 on No.9; Ours +5.5 on No.1, +4.0 over s = 0 on No.9) and well above
what an untrained one does (0 by construction). A model whose clean-vs-noisy PSNR gap is small (e.g. correlated noise
at high input PSNR) may fail it honestly; the stage does not stop: training.csv and the manifest say which networks
failed, and results standing on them are not evidence about the method.

Why not the AR-DAE loss: L = E||u + sigma_a s(y + sigma_a u)||^2 = E||u||^2 + sigma_a^2 E[2 div s + ||s||^2] (Stein's
lemma), per element 1 + O(sigma_a^2). With sigma_a lowered to 1e-6 it approaches 1 for ANY network, trained or not
(the zero-initialised one gives exactly 1), and even at sigma_a = 0.05 the learnable part (~ -sigma_a^2 E||s||^2,
a few percent) is comparable to the sampling noise of E||u||^2 over one mini batch; a falling loss is not evidence
of a learned score, and a flat one is not evidence against it.
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pandas as pd
import torch
from replicate.progress import bar as progress_bar

from replicate import data as D
from replicate import runtime, seeding
from replicate.io import write_csv
from replicate.noise.xie2023 import MULTIPLICATIVE, table1_model
from replicate.noise.xie2023 import XieNoiseModel as NoiseModel
from replicate.pipeline.stage import Stage, note

PAPER = "xie2023"
METHODS = ("SL", "Nr2N", "Nb2Nb", "Ours")          # the paper's columns, in its order
TRAINING = {"SL": "supervised", "Nr2N": "noisier2noise", "Nb2Nb": "neighbor2neighbor", "Ours": "ardae"}
MIN_GAIN_DB = 3.0          # held-out PSNR gain over the noisy input (and over the untrained estimator) for `learned`
PRECONDITION_IMAGES = 4    # held-out images per test set used by the precondition
# Nb2Nb cells the paper leaves '-' (Table 3, models with A: "it can be regarded as the one without A through A^-1 y.
# Thus we do not provide the metrics")
NB2NB_NOT_REPORTED = (6, 8, 10)


def runs(prm: dict) -> list[tuple[int, str]]:
    """(noise model No., method) pairs trained here: every cell of the grid the paper reports and a method can be
    trained for. Noisier2Noise needs additive noise; the score network and the other baselines train on any model
    (whether Algorithms 1-2 solve a model is an inference matter, reported by the denoise stage)."""
    out = []
    for no in prm["models"]:
        model = noise_model(prm, no)
        for m in prm["methods"]:
            if m == "Nb2Nb" and no in NB2NB_NOT_REPORTED:
                continue
            if m == "Nr2N":
                try:
                    additive_noise(model)
                except ValueError:
                    continue
            out.append((no, m))
    return out


def noise_model(prm: dict, no: int, **overrides) -> NoiseModel:
    """Noise model No. `no` of Xie et al.'s Table 1 with this profile's parameters (and any overrides)."""
    return table1_model(no, {**prm["noise"], **overrides}, kernel=prm["kernel"], conv_eps=prm["conv_eps"],
                        poisson_score=prm["poisson_score"])



def additive_noise(model: NoiseModel):
    """Noisier2Noise's extra noise m: a fresh draw of the model's additive noise. For the signal-dependent No.3/4 the
    clean image is unknown, so Sigma(x) is evaluated at the noisy y (our choice; the paper does not say)."""
    if model.family not in ("gauss", "gauss_sd") or model.mixture:
        raise ValueError(f"Noisier2Noise needs additive noise; {model.name} is not additive")

    def draw(y255: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        plug = y255.clamp(0, 255) if model.family == "gauss_sd" else torch.zeros_like(y255)
        return model.sample(plug, gen) - plug
    return draw



def sigma_e_for(prm: dict, model: NoiseModel) -> float:
    """App. B: a Gaussian sigma_e = 5 is added to the score network's training images of No.5-10 only."""
    return float(prm["noise"]["sigma_e"]) if (model.family in MULTIPLICATIVE and not model.mixture) else 0.0


def net_input(prm: dict, model: NoiseModel, method: str) -> str:
    """The network's input scale (a key of replicate.training_score.INPUT_SCALES) for one run.

    Score network, ``score_input: code`` (default): as the official code, y / 127.5 - 1 ("signed") for the Gaussian
    models No.1-4 (models/score_func.py) and y / 255 ("unit") for Gamma, Poisson, Rayleigh and their mixtures No.5-16
    (models/{gamma,poisson,rayleigh}[_conv][_gaussian]_score_func.py); ``score_input: signed``: y / 127.5 - 1 for all
    (the project's earlier choice). The AR-DAE noise sigma_a is in these units, so it is half as large on the 0-255
    scale for "unit". The baselines (SL, Nr2N, Nb2Nb: not the authors' code) keep y / 127.5 - 1."""
    if method != "Ours":
        return "signed"
    mode = prm.get("score_input", "code")
    if mode not in ("code", "signed"):
        raise ValueError(f"xie2023.score_input must be 'code' or 'signed', got {mode!r}")
    return "unit" if mode == "code" and model.family in MULTIPLICATIVE else "signed"


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
    """What the baselines' networks output: the clean image ('direct') or the noise ('residual')."""
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
            "net_input": net_input(prm, model, method),
            "train": prm["train"], "train_data": prm["train_data"], "seed": prm["seed"],
            "output": "score" if method == "Ours" else baseline_output(prm)}


def checkpoint_path(prm: dict, no: int, method: str):
    """Where the network of (model No., method) is stored; its name carries the fingerprint of everything its
    training depends on."""
    key = hashlib.sha256(json.dumps(train_fingerprint(prm, no, method), sort_keys=True).encode()).hexdigest()[:12]
    return runtime.models_dir(prm, PAPER) / f"{TRAINING[method]}_no{no:02d}_{key}.pt"


def train_config(prm: dict, no: int, method: str):
    """The training configuration of (model No., method) from params (AR-DAE for Ours, the baselines' losses
    otherwise)."""
    from replicate.training_score import ScoreTrainConfig

    t = prm["train"]
    return ScoreTrainConfig(method=TRAINING[method], steps=t["steps"], batch=t["batch"], micro_batch=t["micro_batch"],
                            crop=t["crop"], lr=t["lr"], lr_milestones=tuple(t["lr_milestones"]),
                            lr_gamma=t["lr_gamma"], weight_decay=t["weight_decay"],
                            sigma_a_start=t["sigma_a_start"], sigma_a_end=t["sigma_a_end"],
                            sigma_a_every=t["sigma_a_every"], sigma_a_hold=t["sigma_a_hold"],
                            nb2nb_gamma=t["nb2nb_gamma"], checkpoint_every=t["checkpoint_every"],
                            seed=seeding.derive_seed(prm["seed"], PAPER, "train", no, method),
                            net_input=net_input(prm, noise_model(prm, no), method), extra={"model": f"No.{no}"})


@torch.no_grad()
def held_out_gain(prm: dict, no: int, method: str, net, init) -> dict:
    """The precondition's measurement (module doc): mean PSNR (paper convention) of the noisy input, of the trained
    network's estimator and of the same estimator with the network `init` (its initialisation), on the first
    PRECONDITION_IMAGES images of every test set, and the rule's verdict."""
    from replicate.experiments import xie2023 as X

    model = noise_model(prm, no)
    p_in, p_out, p_init = [], [], []
    for set_name, images in X.test_sets(prm).items():
        for idx, im in enumerate(images[:PRECONDITION_IMAGES]):
            x01 = im.pixels[None]
            y = X.noisy_for(prm, model, set_name, idx, x01.double() * 255.0)
            outs = []
            for network in (net, init):
                gen = seeding.generator(prm["seed"], PAPER, "method-noise", set_name, idx, no, method)
                xhat = X.run_method(prm, method, network, model, y, gen, key=X.item_key(set_name, idx, no))
                outs.append(X._metrics(xhat, x01)["psnr"])
            p_in.append(X._metrics(y, x01)["psnr"])
            p_out.append(outs[0])
            p_init.append(outs[1])
    gain, vs_init = float(np.mean(p_out) - np.mean(p_in)), float(np.mean(p_out) - np.mean(p_init))
    return {"precondition_images": len(p_in), "psnr_in": float(np.mean(p_in)), "psnr_out": float(np.mean(p_out)),
            "psnr_init": float(np.mean(p_init)), "gain_db": gain, "gain_vs_init_db": vs_init,
            "learned": bool(gain >= MIN_GAIN_DB and vs_init >= MIN_GAIN_DB)}


def stage_train(prm: dict) -> None:
    """The train stage: every (noise model, method) network of the grid, one thread on a CPU (same weights on every
    machine), resumable -> data/models/<profile>/xie2023/, training.csv."""
    clean, notes = training_images(prm)
    dev = runtime.device(prm)
    threads = torch.get_num_threads()
    if dev.type == "cpu":  # one thread: the same weights on every machine of a kind (module docstring)
        torch.set_num_threads(1)
    try:
        rows = _train_all(prm, clean, notes, dev)
    finally:
        torch.set_num_threads(threads)
    _write_training(prm, rows)


def _train_all(prm: dict, clean, notes, dev) -> list[dict]:
    import copy

    from replicate.training_score import train

    rows = []
    for no, method in progress_bar(runs(prm), desc="xie2023 training runs"):
        model = noise_model(prm, no)
        ckpt = checkpoint_path(prm, no, method)
        cached = ckpt.exists() and torch.load(ckpt, map_location="cpu", weights_only=False).get("complete", False)
        pairs = training_pairs(prm, model, clean, sigma_e_for(prm, model) if method == "Ours" else 0.0)
        torch.manual_seed(seeding.derive_seed(prm["seed"], PAPER, "init", no, method))
        net = make_net(prm, method)
        init = copy.deepcopy(net).eval().to(dev)        # the precondition's 'learned nothing' reference
        cfg = train_config(prm, no, method)
        log = train(net, pairs, cfg, ckpt, fresh_noise=additive_noise(model) if method == "Nr2N" else None,
                    device=dev, fingerprint=train_fingerprint(prm, no, method))
        net.eval()
        k = max(1, len(log["loss"]) // 10)
        rows.append({"no": no, "method": method, "checkpoint": ckpt.name, "cached": cached, "steps": len(log["loss"]),
                     "net_input": cfg.net_input,
                     "loss_first": float(np.mean(log["loss"][:k])), "loss_last": float(np.mean(log["loss"][-k:])),
                     "seconds": round(log["seconds"], 2), "train_images": len(clean),
                     "parameters": sum(p.numel() for p in net.parameters()),
                     **held_out_gain(prm, no, method, net, init), "min_gain_db": MIN_GAIN_DB,
                     "notes": "; ".join(notes)})
        del init
    return rows


def _write_training(prm: dict, rows: list[dict]) -> None:
    write_csv(runtime.results_dir(prm, PAPER) / "training.csv", pd.DataFrame(rows))
    failed = [f"No.{r['no']} {r['method']}" for r in rows if not r["learned"]]
    note("min_gain_db", MIN_GAIN_DB)
    note("precondition", "held-out PSNR gain of each network's estimator over the noisy input and over the same "
                         "estimator at initialisation, both >= min_gain_db")
    note("networks_below_min_gain", failed)
    note("held_out_gain_db", {f"No.{r['no']} {r['method']}": round(r["gain_db"], 3) for r in rows})
    write_csv(runtime.results_dir(prm, PAPER) / "training_cost.csv", pd.DataFrame([paper_training_cost(prm)]))


def paper_training_cost(prm: dict, reps: int = 2) -> dict:
    """The paper profile's training bill, from a measurement here: seconds of one forward + backward of the paper's
    U-Net (its `arch`) on one crop of ``cost_measure_crop`` px on this machine, scaled by pixels to the paper's crop
    (convolutions cost in proportion to pixels), times the crops of the full grid (runs x steps x batch; Nb2Nb
    counts twice, its loss runs the net on y and on the sub-image), in CPU-hours and in GPU-hours at the report's
    ASSUMED CPU->GPU factor (report/costs.py)."""
    from replicate import params as P
    from replicate.runtime import ASSUMED_CPU_TO_GPU as CPU_TO_GPU

    full = P.load(PAPER, profile="paper", gpu=True)        # the whole grid, as on a GPU
    paper = full
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
    """The trained networks of the grid, (model No., method) -> network in eval mode."""
    nets = {}
    for no, method in runs(prm):
        ckpt = checkpoint_path(prm, no, method)
        if not ckpt.exists():
            raise FileNotFoundError(f"{ckpt} is missing: run the train stage first (dvc repro xie2023_train)")
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if not state.get("complete"):
            raise FileNotFoundError(f"{ckpt} is an unfinished training run: rerun the train stage to resume it")
        net = make_net(prm, method)
        net.load_state_dict(state["model"])
        nets[(no, method)] = net.eval().to(runtime.device(prm))
    return nets




STAGES = [
    Stage("xie2023_train", PAPER, stage_train, outs=("data/models/{profile}/xie2023", "results/{profile}/xie2023/training.csv",
                                                      "results/{profile}/xie2023/training_cost.csv"),
          persist=("data/models/{profile}/xie2023",),
          about="train the score network and the baselines per noise model (cached by training parameters)"),
]
