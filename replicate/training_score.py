"""Training for Xie et al. 2023: the score network by AR-DAE (Eq. 29) and the baselines on the same U-Net.
Xie et al. 2023 (Algorithm 1) = training the score of noisy images (this module) + the noise model
(replicate/noise/xie2023.py) + solving the score equation per noise model (replicate/solvers/score_denoise.py).

    ardae            L = E ||u + sigma_a s(y + sigma_a u)||^2 (Eq. 29), sigma_a linear 0.05 -> 1e-6, lowered every 50
                     steps and held at 1e-6 for the last 50 (App. B); sigma_a and the score are in the units of the
                     network input u (`net_input`, see INPUT_SCALES), and s_255 = s_u du/dy (`score_to_255`).
    supervised       MSE(net(y), x)
    noisier2noise    z = y + m, m a fresh draw of the same noise (alpha = 1); MSE(net(z), y); at test time
                     x = ((1 + alpha^2) net(z) - z) / alpha^2 averaged over 50 draws of z (App. B)
    neighbor2neighbor  random neighbour sub-sampler g1, g2 (one of the 8 ordered adjacent pairs of every 2x2 cell);
                     L = |f(g1 y) - g2 y|^2 + gamma_t |f(g1 y) - g2 y - (g1 f(y) - g2 f(y))|^2, f(y) without gradient,
                     gamma_t = gamma * t / T with gamma = 2 (the official code's increase_ratio, ramped per epoch there,
                     per step here)
Network input (`ScoreTrainConfig.net_input`): "signed" u = y / 127.5 - 1, "unit" u = y / 255. The official code
feeds its score networks y / 127.5 - 1 for the Gaussian models (models/score_func.py) and y / 255 for Gamma, Poisson
and Rayleigh and their mixtures (models/{gamma,poisson,rayleigh}*_score_func.py); which one a run uses is the
experiment's choice (replicate.experiments.xie2023_train.net_input).
Common: AdamW, lr 1e-4 then 1e-5 after step 4000 of 5000, random crops (128x128 in the paper), batch 32 with gradient
accumulation over micro-batches; the noisy training images are fixed ("generated and fixed through the training
process"), including the training-only Gaussian sigma_e = 5 of the non-Gaussian models, and drawn tile by tile on
demand from seeded generators (FixedNoisyImages) so that no noisy copy of the training set is stored.
Every random draw of step t comes from a generator seeded by (seed, t), so a run resumed from a checkpoint gives the
same weights as an uninterrupted one. Checkpoints are written atomically.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from replicate import seeding
from replicate.io import save_torch
from replicate.progress import bar as progress_bar

METHODS = ("ardae", "supervised", "noisier2noise", "neighbor2neighbor")
# network input u = y / divisor + offset (y on 0-255): du/dy = 1 / divisor
INPUT_SCALES = {"signed": (127.5, -1.0),   # [-1, 1]: official code, Gaussian models (models/score_func.py)
                "unit": (255.0, 0.0)}      # [0, 1]: official code, Gamma / Poisson / Rayleigh (+ mixtures)
SCALE = INPUT_SCALES["signed"][0]          # the default ("signed") divisor


@dataclass
class ScoreTrainConfig:
    method: str = "ardae"
    steps: int = 5000
    batch: int = 32
    micro_batch: int = 32
    crop: int = 128
    lr: float = 1e-4
    lr_milestones: tuple = (4000,)
    lr_gamma: float = 0.1
    weight_decay: float = 0.01          # torch's AdamW default (the paper does not state one)
    sigma_a_start: float = 0.05
    sigma_a_end: float = 1e-6
    sigma_a_every: int = 50
    sigma_a_hold: int = 50
    nb2nb_gamma: float = 2.0
    checkpoint_every: int = 500
    seed: int = 0
    net_input: str = "signed"           # a key of INPUT_SCALES
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown training method {self.method!r}; choose from {METHODS}")
        if self.net_input not in INPUT_SCALES:
            raise ValueError(f"unknown network input scale {self.net_input!r}; choose from {tuple(INPUT_SCALES)}")
        if self.batch % self.micro_batch:
            raise ValueError(f"batch {self.batch} must be a multiple of micro_batch {self.micro_batch}")


def sigma_a_at(step: int, cfg: ScoreTrainConfig) -> float:
    """App. B: linear from sigma_a_start to sigma_a_end, lowered every `sigma_a_every` steps, reached at
    steps - sigma_a_hold and held there (official code: over 4950 of 5000 steps)."""
    ramp = max(cfg.steps - cfg.sigma_a_hold, 1)
    t = min((step // cfg.sigma_a_every) * cfg.sigma_a_every, ramp)
    return cfg.sigma_a_start + (cfg.sigma_a_end - cfg.sigma_a_start) * t / ramp


def _scale(net_input: str) -> tuple[float, float]:
    try:
        return INPUT_SCALES[net_input]
    except KeyError:
        raise ValueError(f"unknown network input scale {net_input!r}; choose from {tuple(INPUT_SCALES)}") from None


def to_net(y255: torch.Tensor, net_input: str = "signed") -> torch.Tensor:
    """u = y / divisor + offset: the network's input for y on 0-255."""
    div, off = _scale(net_input)
    return y255 / div + off


def from_net(u: torch.Tensor, net_input: str = "signed") -> torch.Tensor:
    """The inverse of to_net: back to 0-255."""
    div, off = _scale(net_input)
    return (u - off) * div


def score_to_255(s_u: torch.Tensor, net_input: str = "signed") -> torch.Tensor:
    """A score of the density of u = to_net(y) as the score of y on 0-255 (chain rule): s_255(y) = s_u(u) du/dy,
    du/dy = 1 / divisor (127.5 or 255). The density's Jacobian factor is constant and drops out of the gradient."""
    return s_u / _scale(net_input)[0]


class FixedNoisyImages:
    """Clean training images with their noisy versions, "generated and fixed through the training process" (Sec. 4),
    without storing the noisy set: image i is cut into ``tile`` x ``tile`` tiles and tile (r, c) always takes its draws
    (the noise model's pixel_draws, then the training-only Gaussian ``extra_sigma``) from the generator seeded by
    (``key``, i, r, c). Any crop therefore sees the same fixed noise, and memory is the clean images as uint8 only
    (a float32 noisy copy of DIV2K's 800 2K images would be ~27 GB per noise model). A correlated model's convolution
    A is applied to the crop with a halo of wrapped neighbours, which gives exactly the full image's circular A there.

    clean: (C, H, W) uint8 images (8-bit like every dataset used; data.to_uint8 converts [0, 1] floats).
    noise: a replicate.noise.xie2023.XieNoiseModel, or None for noise-free pairs.
    """

    def __init__(self, clean: list[torch.Tensor], noise=None, *, key: tuple = (), extra_sigma: float = 0.0,
                 tile: int = 64):
        if any(c.dtype != torch.uint8 for c in clean):
            raise TypeError("FixedNoisyImages takes uint8 images: convert [0, 1] floats with replicate.data.to_uint8")
        self.clean = list(clean)
        self.noise, self.key, self.extra_sigma, self.tile = noise, tuple(key), float(extra_sigma), int(tile)
        self.halo = (noise.a_op.kernel.shape[0] // 2) if noise is not None and noise.correlated else 0

    def __len__(self) -> int:
        return len(self.clean)

    def size(self, i: int) -> tuple[int, int]:
        return tuple(self.clean[i].shape[-2:])

    def _tile_draws(self, i: int, r: int, c: int):
        t = self.tile
        x = self.clean[i][:, r * t:(r + 1) * t, c * t:(c + 1) * t].float()
        gen = seeding.generator(*self.key, i, r, c)
        field, mix = self.noise.pixel_draws(x, gen)
        extra = torch.zeros_like(x) if mix is None else mix
        if self.extra_sigma:
            extra = extra + self.extra_sigma * torch.randn(x.shape, generator=gen)
        return field, extra

    def _mosaic(self, i: int, rows: torch.Tensor, cols: torch.Tensor):
        """(field, extra) at the pixels rows x cols (absolute, already wrapped) of image i."""
        t = self.tile
        tr, tc = torch.unique(rows // t).tolist(), torch.unique(cols // t).tolist()
        draws = {(r, c): self._tile_draws(i, r, c) for r in tr for c in tc}
        # position of every wanted pixel in the mosaic of its tiles (sorted; only the image's last tile can be
        # smaller than `tile`, and it comes last, so full-tile offsets hold)
        row_pos = torch.searchsorted(torch.tensor(tr), rows // t) * t + rows % t
        col_pos = torch.searchsorted(torch.tensor(tc), cols // t) * t + cols % t
        out = []
        for part in (0, 1):
            mosaic = torch.cat([torch.cat([draws[r, c][part] for c in tc], dim=-1) for r in tr], dim=-2)
            out.append(mosaic[:, row_pos][:, :, col_pos])
        return out

    def crop(self, i: int, top: int, left: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) on 0-255, (C, size, size) float32: the clean crop and its fixed noisy version."""
        x = self.clean[i][:, top:top + size, left:left + size].float()
        if self.noise is None:
            return x, x.clone()
        h, (H, W) = self.halo, self.size(i)
        rows = torch.arange(top - h, top + size + h) % H
        cols = torch.arange(left - h, left + size + h) % W
        field, extra = self._mosaic(i, rows, cols)
        xh = self.clean[i][:, rows][:, :, cols].float()
        y = self.noise.from_draws(xh, field)[:, h:h + size, h:h + size]
        return x, y + extra[:, h:h + size, h:h + size]


def random_crops(pairs: FixedNoisyImages, n: int, crop: int, gen: torch.Generator):
    """n aligned random crops (x, y) of the training pairs, each drawn from `gen`."""
    xs, ys = [], []
    for _ in range(n):
        i = int(torch.randint(len(pairs), (1,), generator=gen))
        h, w = pairs.size(i)
        if h < crop or w < crop:
            raise ValueError(f"training image {i} is {h}x{w}, smaller than the crop {crop}; lower `crop`")
        top = int(torch.randint(h - crop + 1, (1,), generator=gen))
        left = int(torch.randint(w - crop + 1, (1,), generator=gen))
        x, y = pairs.crop(i, top, left, crop)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


# ------------------------------------------------------------------------------------------- Neighbor2Neighbor
_PAIRS = torch.tensor([[0, 1], [0, 2], [1, 0], [1, 3], [2, 0], [2, 3], [3, 1], [3, 2]])  # adjacent cells of 2x2


def neighbor_subsample(y: torch.Tensor, gen: torch.Generator):
    """Neighbor2Neighbor's random neighbour sub-sampler: (g1(y), g2(y), choice), two (N, C, H/2, W/2) images taking
    for every 2x2 cell a random ordered pair of adjacent pixels (the same choice for all channels)."""
    n, c, h, w = y.shape
    if h % 2 or w % 2:
        raise ValueError(f"neighbour sub-sampling needs even sizes, got {h}x{w}")
    choice = torch.randint(len(_PAIRS), (n, 1, h // 2, w // 2), generator=gen)
    return (*subsample_like(y, choice), choice)


def subsample_like(y: torch.Tensor, choice: torch.Tensor):
    """g1(y), g2(y) for a given per-cell choice of adjacent pair (so f(y) is sub-sampled like y)."""
    n, c, h, w = y.shape
    cells = y.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    idx = _PAIRS[choice.to("cpu")].to(y.device)                    # (n, 1, h/2, w/2, 2)
    g1 = torch.gather(cells, -1, idx[..., :1].expand(n, c, h // 2, w // 2, 1))[..., 0]
    g2 = torch.gather(cells, -1, idx[..., 1:].expand(n, c, h // 2, w // 2, 1))[..., 0]
    return g1, g2


# ------------------------------------------------------------------------------------------- losses
def loss_for(net, cfg: ScoreTrainConfig, step: int, x255, y255, gen: torch.Generator, fresh_noise=None):
    """The loss of one micro-batch (x255, y255 on 0-255)."""
    scale = cfg.net_input
    if cfg.method == "ardae":
        sa = sigma_a_at(step, cfg)
        u = torch.randn(y255.shape, generator=gen).to(y255.device)   # drawn on the CPU: same numbers everywhere
        out = net(to_net(y255, scale) + sa * u)
        return ((u + sa * out) ** 2).mean()
    if cfg.method == "supervised":
        return ((net(to_net(y255, scale)) - to_net(x255, scale)) ** 2).mean()
    if cfg.method == "noisier2noise":
        if fresh_noise is None:
            raise ValueError("noisier2noise needs fresh_noise(y255, gen) -> a new draw of the noise")
        z = y255 + fresh_noise(y255.cpu(), gen).to(y255.device)
        return ((net(to_net(z, scale)) - to_net(y255, scale)) ** 2).mean()
    # neighbor2neighbor
    g1, g2, choice = neighbor_subsample(to_net(y255, scale), gen)
    with torch.no_grad():
        f1, f2 = subsample_like(net(to_net(y255, scale)), choice)
    out = net(g1)
    diff = out - g2
    gamma_t = cfg.nb2nb_gamma * step / cfg.steps
    return (diff**2).mean() + gamma_t * ((diff - (f1 - f2)) ** 2).mean()


# ------------------------------------------------------------------------------------------- loop
def train(net: torch.nn.Module, pairs: FixedNoisyImages, cfg: ScoreTrainConfig, checkpoint: str | Path, *,
          fresh_noise=None, device="cpu", fingerprint=None, progress: bool = True) -> dict:
    """Train `net` in place; resume from / skip with `checkpoint` when its fingerprint matches. Returns the log."""
    checkpoint = Path(checkpoint)
    fp = {"config": asdict(cfg), "fingerprint": fingerprint}
    net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma)
    start, log = 0, {"loss": [], "sigma_a": [], "seconds": 0.0}
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        if state.get("fp") == fp:
            net.load_state_dict(state["model"])
            if not state.get("complete"):  # a finished network keeps its weights and log only
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
            start, log = state["step"], state["log"]
    if start >= cfg.steps:
        return log
    net.train()
    t0 = time.perf_counter()
    accum = cfg.batch // cfg.micro_batch

    def save(step):
        done = step >= cfg.steps  # the finished network: weights and log only (what is kept, e.g. committed)
        resume = {} if done else {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
        save_torch(checkpoint, {"fp": fp, "model": net.state_dict(), **resume, "step": step,
                                "log": {**log, "seconds": log["seconds"] + time.perf_counter() - t0},
                                "complete": done})

    bar = progress_bar(range(start, cfg.steps), desc=f"{cfg.method} {cfg.extra.get('model', '')}",
                       disable=not progress, leave=False)
    for step in bar:
        gen = seeding.generator(cfg.seed, "step", step)
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(accum):
            x, y = random_crops(pairs, cfg.micro_batch, cfg.crop, gen)
            loss = loss_for(net, cfg, step, x.to(device), y.to(device), gen, fresh_noise) / accum
            loss.backward()
            total += float(loss.detach())
        opt.step()
        sched.step()
        log["loss"].append(total)
        log["sigma_a"].append(sigma_a_at(step, cfg) if cfg.method == "ardae" else None)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            save(step + 1)
        bar.set_postfix(loss=f"{total:.4g}", refresh=False)
    save(cfg.steps)
    log["seconds"] += time.perf_counter() - t0
    net.eval()
    return log
