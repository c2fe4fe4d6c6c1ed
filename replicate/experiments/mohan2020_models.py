"""The denoisers of Mohan et al. 2020 and the universal bias-free prior, per profile (stage `mohan2020_models`).

  * `paper`: the authors' checkpoints (DnCNN / UNet / RCNN, with and without bias, four training ranges), fetched
    through the asset registry; data/models/paper/mohan2020 holds only the manifest naming them.
  * `mini` / `smoke`: small DnCNNs and BF-DnCNNs trained here on embedded data (dead leaves + scikit-image
    photographs disjoint from the test photographs) with the paper's recipe (replicate.training), and the universal
    bias-free priors (grey, colour; sigma in [0, 100]) that the other papers use in these profiles. The weights are
    committed (data/models/mini, a few hundred kB each), so any stage runs on a fresh clone without training;
    `dvc repro -f mohan2020_models` trains them again.

Training runs on one thread: CPU convolutions sum in an order that depends on the thread count, so one thread is
what makes "same seed, same weights" hold on every machine of the same kind, whatever REPLICATE_THREADS says.

Precondition (recorded in models.csv and in the stage's manifest): each trained denoiser must gain at least
MIN_GAIN_DB of PSNR at the top of its training range on held-out images; a profile whose denoisers do not denoise
tests nothing, and the report calls what stands on them inconclusive.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from replicate import data as D
from replicate import runtime, seeding
from replicate.denoisers.base import Denoiser, NetworkDenoiser
from replicate.io import write_csv, write_json
from replicate.pipeline.stage import Stage, note

PAPER = "mohan2020"
MIN_GAIN_DB = 3.0   # held-out PSNR gain at the top of the training range; a working DnCNN gains 5-20 dB there


@dataclass(frozen=True)
class ModelSpec:
    """One denoiser of the grid: architecture, with or without bias, training noise range."""
    arch: str        # dncnn | unet | rcnn
    variant: str     # bias | bias_free
    train_max: int   # training noise range [0, train_max] on the 0-255 scale

    @property
    def name(self) -> str:
        """'<arch>/<variant>/0-<range>', the model's name in tables and files."""
        return f"{self.arch}/{self.variant}/0-{self.train_max}"

    @property
    def file_stem(self) -> str:
        """The file name (without suffix) its weights are stored under."""
        return self.name.replace("/", "_")


def model_specs(prm: dict, extra: bool = False) -> list[ModelSpec]:
    """Every model of the profile's grid (architectures x variants x training ranges); with `extra`, also those of
    the CPU subset's `extra_grid` (other architectures and ranges, run on a few images only)."""
    specs = [ModelSpec(a, v, int(r)) for a in prm["archs"] for v in prm["variants"] for r in prm["ranges"]]
    e = prm.get("extra_grid") if extra else None
    if e:
        more = (ModelSpec(a, v, int(r)) for a in e["archs"] for v in prm["variants"] for r in e["ranges"])
        specs += [spec for spec in more if spec not in specs]
    return specs


def small_dncnn(channels: int, depth: int, features: int, bias: bool) -> NetworkDenoiser:
    """The small DnCNN (with or without bias) that the mini and smoke profiles train."""
    from replicate.denoisers.bfcnn import DnCNN

    return NetworkDenoiser(DnCNN(channels=channels, depth=depth, features=features, bias=bias), output="clean",
                           channels=channels)


# ----------------------------------------------------------------------------------------------- training
def training_images(prm: dict, channels: int, leaves: int, seed_offset: int = 0) -> list[torch.Tensor]:
    """Embedded training data: dead leaves + scikit-image photographs disjoint from the test photographs."""
    dead = D.dead_leaves(leaves, 96, channels, seed=prm["seed"] + seed_offset)
    names = D.SKIMAGE_GRAY_TRAIN if channels == 1 else D.SKIMAGE_COLOR_TRAIN
    return list(dead) + [im.pixels for im in D.skimage_set(names, gray=channels == 1)]


def held_out_images(channels: int) -> torch.Tensor:
    """The held-out photographs the precondition is measured on (central 128 px of the test photographs)."""
    names = D.SKIMAGE_GRAY_TEST if channels == 1 else D.SKIMAGE_COLOR_TEST
    return torch.stack([im.pixels for im in D.skimage_set(names, gray=channels == 1, crop=128)])


@torch.no_grad()
def held_out_gain(model: Denoiser, clean: torch.Tensor, sigma255: float, seed: int, name: str) -> tuple[float, float]:
    """(mean input PSNR, mean output PSNR) on `clean` at noise level sigma255 (0-255 scale), fixed noise."""
    from replicate.metrics import psnr

    y = clean + sigma255 / 255.0 * seeding.randn(clean.shape, seed, PAPER, "precondition", name, float(sigma255))
    out = model.eval()(y, sigma255 / 255.0).clamp(0, 1)
    return float(psnr(y.clamp(0, 1), clean).mean()), float(psnr(out, clean).mean())


def _train_one(prm: dict, model: Denoiser, name: str, images: list[torch.Tensor], t: dict, noise_max: float,
               arch: dict, path) -> dict:
    from replicate.training import TrainConfig, extract_patches, train_denoiser

    patches = extract_patches(images, t["patch"], t["stride"], tuple(t["scales"]))
    cfg = TrainConfig(noise_min=0.0, noise_max=float(noise_max), patch=t["patch"], stride=t["stride"],
                      scales=tuple(t["scales"]), batch=t["batch"], epochs=t["epochs"], lr=t.get("lr", 1e-3),
                      milestones=tuple(t["milestones"]), seed=seeding.derive_seed(prm["seed"], "train", name),
                      max_patches=t.get("max_patches"), extra={"arch": arch, "model": name})
    log = train_denoiser(model, patches, cfg, path)
    k = max(1, len(log["loss"]) // 10)
    return {"model": name, "parameters": sum(p.numel() for p in model.parameters()), "steps": log["steps"],
            "patches": log["patches"], "loss_first": float(np.mean(log["loss"][:k])),
            "loss_last": float(np.mean(log["loss"][-k:])), "seconds": round(log["seconds"], 2)}


def _precondition(prm: dict, row: dict, model: Denoiser, channels: int, sigmas: list[float]) -> dict:
    clean = held_out_images(channels)
    out = dict(row)
    for s in sigmas:
        p_in, p_out = held_out_gain(model, clean, s, prm["seed"], row["model"])
        out[f"psnr_in_s{s:g}"], out[f"psnr_out_s{s:g}"] = p_in, p_out
    top = sigmas[0]
    out["gain_db_at_max"] = out[f"psnr_out_s{top:g}"] - out[f"psnr_in_s{top:g}"]
    out["denoises"] = bool(out["gain_db_at_max"] >= MIN_GAIN_DB)
    return out


def _jobs(prm: dict) -> list[dict]:
    """One training job per denoiser: (name, channels, bias, noise max, arch, recipe, file, precondition sigmas)."""
    out_dir, t, a = runtime.models_dir(prm, PAPER), prm["train"], prm["arch"]
    jobs = [{"name": spec.name, "channels": 1, "bias": spec.variant == "bias", "noise_max": spec.train_max,
             "arch": {"channels": 1, **a}, "train": t, "leaves": t.get("dead_leaves", 16), "offset": 0,
             "path": str(out_dir / f"{spec.file_stem}.pt"), "init": [spec.name], "sigmas": [float(spec.train_max)]}
            for spec in model_specs(prm)]
    u = prm.get("universal")
    for kind, channels in (("gray", 1), ("color", 3)) if u else ():
        jobs.append({"name": f"universal/{kind}/0-{u['noise_max']}", "channels": channels, "bias": False,
                     "noise_max": u["noise_max"], "arch": {"channels": channels, **u["arch"]}, "train": u["train"],
                     "leaves": u["train"].get("dead_leaves", 16), "offset": channels,
                     "path": str(out_dir / f"universal_{kind}.pt"), "init": ["universal", kind],
                     "sigmas": [float(u["noise_max"]), 25.0]})
    return jobs


def _train_job(prm: dict, job: dict) -> dict:
    """Train one denoiser on one thread and measure its precondition (a process-pool worker runs this too)."""
    torch.set_num_threads(1)  # one thread: the same weights on every machine (module docstring)
    torch.manual_seed(seeding.derive_seed(prm["seed"], "init", *job["init"]))
    model = small_dncnn(job["channels"], job["arch"]["depth"], job["arch"]["features"], bias=job["bias"])
    images = training_images(prm, job["channels"], job["leaves"], seed_offset=job["offset"])
    row = _train_one(prm, model, job["name"], images, job["train"], job["noise_max"], job["arch"], job["path"])
    return _precondition(prm, row, model, job["channels"], job["sigmas"])


def train_models(prm: dict) -> pd.DataFrame:
    """Every denoiser of the profile; REPLICATE_TRAIN_WORKERS > 1 trains that many at once (one thread each, so the
    weights are the same as one after the other)."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial
    from multiprocessing import get_context

    jobs = _jobs(prm)
    workers = min(len(jobs), max(1, int(os.environ.get("REPLICATE_TRAIN_WORKERS", "1") or 1)))
    threads = torch.get_num_threads()
    try:
        if workers == 1:
            rows = [_train_job(prm, job) for job in jobs]
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                rows = list(pool.map(partial(_train_job, prm), jobs))
    finally:
        torch.set_num_threads(threads)
    note("denoisers_below_min_gain", [r["model"] for r in rows if not r["denoises"]])
    note("min_gain_db", MIN_GAIN_DB)
    note("precondition", f"a PSNR gain of at least {MIN_GAIN_DB:g} dB at the top of the training range on held-out "
                         "photographs")
    note("held_out_gain_db", {r["model"]: round(r["gain_db_at_max"], 3) for r in rows})
    return pd.DataFrame(rows)


def fetch_checkpoints(prm: dict) -> pd.DataFrame:
    """The paper profile: the authors' checkpoints of the grid through the asset registry, one row per model.
    Every checkpoint is asked for before any is loaded, so one error names all the missing files at once."""
    from replicate.assets.registry import AssetUnavailable, fetch
    from replicate.denoisers.checkpoints import mohan_denoiser

    paths, missing = {}, []
    for spec in model_specs(prm, extra=True):
        asset = f"weights/bias_free_denoising/{spec.arch}/{spec.variant}/0-{spec.train_max}.pt"
        try:
            paths[spec.name] = (asset, fetch(asset))
        except AssetUnavailable as err:
            missing.extend(err.missing)
    if missing:
        raise AssetUnavailable(missing)
    rows = []
    for spec in model_specs(prm, extra=True):
        asset, path = paths[spec.name]
        model = mohan_denoiser(spec.arch, spec.variant, f"0-{spec.train_max}", path)
        rows.append({"model": spec.name, "asset": asset, "parameters": sum(p.numel() for p in model.parameters())})
    return pd.DataFrame(rows)


def stage_models(prm: dict) -> None:
    """The models stage: train the profile's denoisers (mini, smoke) or fetch the authors' (paper) ->
    data/models/<profile>/mohan2020/, models.csv."""
    out_dir = runtime.models_dir(prm, PAPER)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = train_models(prm) if prm["source"] == "train" else fetch_checkpoints(prm)
    write_csv(runtime.results_dir(prm, PAPER) / "models.csv", table)
    write_json(out_dir / "manifest.json", {"source": prm["source"], "models": table.to_dict("records")})


# ----------------------------------------------------------------------------------------------- loading
def models_manifest(prm: dict) -> dict:
    """The models stage's record of what it trained or fetched; FileNotFoundError naming the stage to run."""
    path = runtime.models_dir(prm, PAPER) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path.relative_to(runtime.project_root())} is missing: run `dvc repro "
                                f"mohan2020_models` (profile {prm['profile']}) first")
    return json.loads(path.read_text())


def load_models(prm: dict, extra: bool = False) -> dict[str, Denoiser]:
    """Every model of the grid (with `extra`, also the CPU subset's extra grid) as a project Denoiser (eval mode),
    keyed by ModelSpec.name."""
    out_dir = runtime.models_dir(prm, PAPER)
    manifest = models_manifest(prm)
    models = {}
    for spec in model_specs(prm, extra):
        if manifest["source"] == "train":
            model = small_dncnn(1, prm["arch"]["depth"], prm["arch"]["features"], bias=spec.variant == "bias")
            state = torch.load(out_dir / f"{spec.file_stem}.pt", map_location="cpu", weights_only=False)
            model.load_state_dict(state["model"])
        else:
            from replicate.assets.registry import fetch
            from replicate.denoisers.checkpoints import mohan_denoiser

            asset = next(r["asset"] for r in manifest["models"] if r["model"] == spec.name)
            model = mohan_denoiser(spec.arch, spec.variant, f"0-{spec.train_max}", fetch(asset))
        models[spec.name] = model.eval().to(runtime.device(prm)).channels_last()
    return models


STAGES = [
    Stage("mohan2020_models", PAPER, stage_models, outs=("data/models/{profile}/mohan2020",
                                                          "results/{profile}/mohan2020/models.csv"),
          persist=("data/models/{profile}/mohan2020",),
          about="train (mini, smoke) or fetch (paper) the denoisers; checks each one denoises held-out images"),
]
