"""Schema of params.yaml's `xie2023` section (Xie, Yuan, Dong, Li 2023; see replicate/config/_schema.py)."""
from __future__ import annotations

from typing import Literal

from replicate.config._schema import Block, ImageSet, validator


class Noise(Block):
    """Table 1's parameters on the 0-255 scale (Sec. 4, App. B)."""
    sigma: float
    a: float
    b: float
    alpha: float
    lam: float
    ray_sigma: float
    mix_sigma: float
    sigma_e: float


class Solver(Block):
    iters: int
    sd_solver: Literal["fixed_point", "quadratic"]


class Nr2N(Block):
    alpha: float = 1.0
    average: int


class Arch(Block):
    width: int
    num_res_blocks: int
    channel_mult: list[int]
    dropout: float = 0.0


class Train(Block):
    steps: int
    batch: int
    micro_batch: int
    crop: int
    lr: float
    lr_milestones: list[int]
    lr_gamma: float
    weight_decay: float
    sigma_a_start: float
    sigma_a_end: float
    sigma_a_every: int
    sigma_a_hold: int
    nb2nb_gamma: float
    checkpoint_every: int


class TrainData(Block):
    sources: list[str]
    noise_tile: int = 64
    dead_leaves: int | None = None
    leaves_size: int | None = None
    photo_crop: int | None = None
    limit: int | None = None


class Robustness(Block):
    models: list[int]
    rates: list[float]
    repeats: int
    perturb: str | list[str] = "all"
    test_sets: list[str] | None = None


class Fig3(Block):
    models: list[int]
    set: str
    image: int
    crop: int


class Section(Block):
    noise: Noise
    kernel: list[list[float]]
    conv_eps: float
    poisson_score: Literal["paper", "exact"]
    score_input: Literal["code", "signed"]       # score network input: per family as the official code | y/127.5-1
    test_sigma_e: Literal["code", "none"]        # fresh sigma_e draw before the score network at test time | none
    solver: Solver
    models: list[int]
    methods: list[Literal["SL", "Nr2N", "Nb2Nb", "Ours"]]
    nr2n: Nr2N
    baseline_output: Literal["direct", "residual"]
    cost_measure_crop: int
    arch: Arch
    train: Train
    train_data: TrainData
    robustness: Robustness
    fig3: Fig3
    test_sets: dict[str, ImageSet]


validate = validator(Section)
