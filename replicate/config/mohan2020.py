"""Schema of params.yaml's `mohan2020` section (Mohan et al. 2020; see replicate/config/_schema.py)."""
from __future__ import annotations

from typing import Literal

from replicate.config._schema import Block, ImageSet, validator


class Train(Block):
    """replicate.training.TrainConfig: the paper's recipe at a stated reduced scale."""
    patch: int
    stride: int
    scales: list[float]
    batch: int
    epochs: float
    milestones: list[float]
    max_patches: int | None = None
    dead_leaves: int = 16
    lr: float = 1e-3


class Arch(Block):
    depth: int
    features: int


class Universal(Block):
    noise_max: int
    arch: Arch
    train: Train


class Fig2(Block):
    train_range: int
    sigma: int


class Decomposition(Block):
    train_range: int
    sigmas: list[int]
    patch: int
    patches_per_sigma: int


class Jacobian(Block):
    train_range: int
    variants: list[Literal["bias", "bias_free"]]
    sigmas: list[int]
    crop: int
    image: int
    top: int
    left: int
    svd_sigmas: list[int]


class ExtraGrid(Block):
    """The paper profile's CPU subset: a second, smaller grid of the authors' checkpoints (other architectures and
    training ranges) on the first `images` of each test set at `test_sigmas` (a subset of the main grid's levels)."""
    archs: list[Literal["dncnn", "unet", "rcnn"]]
    ranges: list[int]
    test_sigmas: list[int]
    images: int


class Section(Block):
    source: Literal["train", "checkpoints"]
    variants: list[Literal["bias", "bias_free"]]
    archs: list[Literal["dncnn", "unet", "rcnn"]]
    ranges: list[int]
    test_sigmas: list[int]
    test_sets: dict[str, ImageSet]
    fig2: Fig2
    decomposition: Decomposition
    jacobian: Jacobian
    homogeneity_scales: list[float]
    arch: Arch | None = None          # the small DnCNN trained in mini / smoke
    train: Train | None = None
    universal: Universal | None = None
    images: int | None = None         # CPU subset: the first images of each set
    extra_grid: ExtraGrid | None = None   # CPU subset: other checkpoints on a few images (paper profile only)


validate = validator(Section)
