"""Schema of params.yaml's `kadkhodaie2021` section (Kadkhodaie & Simoncelli 2021; see replicate/config/_schema.py)."""
from __future__ import annotations

from typing import Literal

from replicate.config._schema import Block, ImageSet, Open, validator

PriorKind = Literal["gray", "color", "mnist"]


class Sampler(Block):
    sigma0: float
    sigmaL: float
    h0: float
    max_iter: int


class Problem(Open):
    operator: str


class Fig1(Block):
    beta: float
    inits: int
    show_every: int


class Fig2(Block):
    betas: list[float]
    inits: int


class Convergence(Block):
    betas: list[float]
    patches: int


class Mnist(Block):
    prior: PriorKind
    size: int
    betas: list[float]
    samples: int


class Synthesis(Block):
    prior: PriorKind
    size: int
    fig1: Fig1
    fig2: Fig2
    convergence: Convergence
    mnist: Mnist


class Toy(Block):
    signals: int
    noise_levels: list[float]
    sigma0: float
    h0: float
    beta: float


class DCT(Block):
    lambda_ratios: list[float]
    folds: int
    iters: int


class Compressive(Block):
    prior: PriorKind
    test_set: ImageSet
    ratios: list[float]
    samples: int
    dct: DCT


class Performance(Block):
    prior: PriorKind
    image: ImageSet
    samples: int
    beta: float
    calls_256: int


class Section(Block):
    sampler: Sampler
    inverse_beta: float
    samples: int
    problems: dict[str, Problem]
    synthesis: Synthesis
    toy: Toy
    compressive: Compressive
    performance: Performance
    test_sets: dict[str, ImageSet] = {}


validate = validator(Section)
