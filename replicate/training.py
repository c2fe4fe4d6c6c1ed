"""Blind denoiser training with the recipe of Mohan et al. 2020 (their `train.py`), reusable by every paper.

Recipe (paper + original code): noise level drawn per image, sigma ~ U[min, max] (0-255 scale, divided by 255);
loss = sum of squared errors / (2 * batch); Adam, lr 1e-3, MultiStepLR milestones (50, 60, 70) epochs, gamma 0.5;
50x50 patches of BSD400 at scales (1, .9, .8, .7), stride 10, random flips / rotations; batch 128; 70 epochs.

Training is resumable: a checkpoint (model, optimiser, scheduler, step, RNG state) is written atomically every
`checkpoint_every` steps, and a rerun with the same configuration continues from it; the finished network is saved
with its weights and log only (complete: True), and a rerun with the same configuration just loads it.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from replicate.denoisers.base import Denoiser
from replicate.io import save_torch
from replicate.progress import bar as progress_bar


@dataclass
class TrainConfig:
    noise_min: float = 0.0        # 0-255 scale
    noise_max: float = 55.0       # 0-255 scale
    patch: int = 50
    stride: int = 10
    scales: tuple = (1.0, 0.9, 0.8, 0.7)
    batch: int = 128
    epochs: float = 70           # may be fractional for the reduced profiles
    lr: float = 1e-3
    milestones: tuple = (50, 60, 70)
    gamma: float = 0.5
    seed: int = 0
    max_patches: int | None = None  # cap on the patch pool (mini / smoke profiles)
    checkpoint_every: int = 200
    extra: dict = field(default_factory=dict)  # architecture description, recorded in the config hash

    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def extract_patches(images: list[torch.Tensor], patch: int, stride: int, scales=(1.0,)) -> torch.Tensor:
    """All `patch` x `patch` patches (stride `stride`) of every image at every scale -> (P, C, patch, patch)."""
    out = []
    for img in images:
        for s in scales:
            x = img[None]
            if s != 1.0:
                h, w = int(round(img.shape[-2] * s)), int(round(img.shape[-1] * s))
                x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
            if min(x.shape[-2:]) < patch:
                continue
            cols = F.unfold(x, kernel_size=patch, stride=stride)  # (1, C*p*p, L)
            out.append(cols[0].T.reshape(-1, img.shape[0], patch, patch))
    if not out:
        raise ValueError(f"no image is at least {patch}x{patch}: nothing to train on")
    return torch.cat(out)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random element of the dihedral group (flips x rotations) per batch (as the original's x2 augmentation)."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    flip = bool(torch.randint(0, 2, (1,), generator=generator))
    batch = torch.rot90(batch, k, dims=(-2, -1))
    return batch.flip(-1) if flip else batch


def blind_noisy(x: torch.Tensor, cfg: TrainConfig, generator: torch.Generator):
    sigma = (cfg.noise_min + (cfg.noise_max - cfg.noise_min) * torch.rand(x.shape[0], generator=generator)) / 255.0
    noise = torch.randn(x.shape, generator=generator) * sigma.view(-1, 1, 1, 1)
    return x + noise, sigma


def train_denoiser(denoiser: Denoiser, patches: torch.Tensor, cfg: TrainConfig, checkpoint: str | Path,
                   *, validation: torch.Tensor | None = None, progress: bool = True) -> dict:
    """Train `denoiser` (a project Denoiser wrapping a network) in place; return a log dict.

    `checkpoint` is both the resume file and the final result (state dict + config + log).
    """
    checkpoint = Path(checkpoint)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.max_patches and patches.shape[0] > cfg.max_patches:
        patches = patches[torch.randperm(patches.shape[0], generator=gen)[: cfg.max_patches]]
    steps_per_epoch = max(1, math.ceil(patches.shape[0] / cfg.batch))
    total_steps = max(1, int(round(cfg.epochs * steps_per_epoch)))
    opt = torch.optim.Adam(denoiser.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=[int(round(m * steps_per_epoch)) for m in cfg.milestones], gamma=cfg.gamma
    )
    log = {"config": asdict(cfg), "config_key": cfg.key(), "loss": [], "steps": total_steps,
           "patches": int(patches.shape[0]), "seconds": 0.0}
    step = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("config_key") == cfg.key() and state.get("complete"):  # trained already: nothing to do
            denoiser.load_state_dict(state["model"])
            denoiser.eval()
            return state["log"]
        if state.get("config_key") == cfg.key():
            denoiser.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            gen.set_state(state["rng"])
            step, log = state["step"], state["log"]
    denoiser.train()
    start = time.perf_counter() - log["seconds"]
    order = torch.randperm(patches.shape[0], generator=gen)
    bar = progress_bar(total=total_steps, initial=step, desc=f"train {cfg.extra.get('model', '')}".strip(),
                       disable=not progress, unit="step")
    while step < total_steps:
        pos = (step % steps_per_epoch) * cfg.batch
        if pos == 0 and step > 0:
            order = torch.randperm(patches.shape[0], generator=gen)
        x = augment(patches[order[pos : pos + cfg.batch]], gen)
        y, sigma = blind_noisy(x, cfg, gen)
        loss = F.mse_loss(denoiser(y, sigma), x, reduction="sum") / (2 * x.shape[0])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"training diverged at step {step} (loss {loss.item()}); lower the learning rate")
        step += 1
        log["loss"].append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3g}", refresh=False)
        if step == total_steps:  # the finished network: weights and log only (what is kept, e.g. committed)
            log["seconds"] = time.perf_counter() - start
            if validation is not None:
                log["validation_psnr"] = validation_psnr(denoiser, validation, cfg)
            save_torch(checkpoint, {"model": denoiser.state_dict(), "step": step, "log": log,
                                    "config_key": cfg.key(), "complete": True})
        elif step % cfg.checkpoint_every == 0:  # resumable: optimiser, schedule and random state too
            log["seconds"] = time.perf_counter() - start
            save_torch(checkpoint, {"model": denoiser.state_dict(), "optimizer": opt.state_dict(),
                                    "scheduler": sched.state_dict(), "rng": gen.get_state(), "step": step,
                                    "log": log, "config_key": cfg.key()})
    bar.close()
    denoiser.eval()
    return log


@torch.no_grad()
def validation_psnr(denoiser: Denoiser, clean: torch.Tensor, cfg: TrainConfig) -> float:
    """Mean PSNR on the validation images at the middle of the training range (as the original code)."""
    was_training = denoiser.training
    denoiser.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    sigma = (cfg.noise_min + cfg.noise_max) / 2 / 255.0
    y = clean + sigma * torch.randn(clean.shape, generator=gen)
    mse = ((denoiser(y, sigma).clamp(0, 1) - clean) ** 2).flatten(1).mean(1)
    denoiser.train(was_training)
    return float((10 * torch.log10(1 / mse)).mean())
