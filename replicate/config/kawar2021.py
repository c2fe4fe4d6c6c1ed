"""Schema of params.yaml's `kawar2021` section (Kawar, Vaksman & Elad 2021; see replicate/config/_schema.py)."""
from __future__ import annotations

from typing import Literal

from replicate.config._schema import Block, ImageSet, validator


class Prior(Block):
    kind: Literal["universal", "ncsnv2", "gaussian"]
    channels: Literal["gray", "color"] | None = None      # universal
    config: str | None = None                             # ncsnv2: celeba | bedroom | tower | ffhq
    checkpoint: str | None = None                         # ncsnv2: the registry set of its weights
    alpha: float | None = None                            # gaussian: 1/f^alpha spectrum


class Denoise(Block):
    epsilon: float
    T: int
    rate: float
    # other step sizes the exactness stage also evaluates, with where each comes from (e.g. FFHQ: Table 2 prints
    # 1.8e-6, the text says NCSNv2's settings are kept: 9e-7)
    also_epsilon: dict[str, float] = {}
    levels: int | None = None     # dryrun: walk only this many levels of the ladder (evenly spaced, ends kept)


class Inpaint(Block):
    sigma0: float
    masks: list[Literal["rows", "eye", "text"]]
    epsilon: float
    T: int
    cycle_masks: bool = False
    sigma_top: float | None = None
    rate: float | None = None
    levels: int | None = None     # dryrun: walk only this many levels above and below sigma0 (evenly spaced, ends kept)


class RunImages(ImageSet):
    lsun_order: str | None = None


class Run(Block):
    dataset: str
    prior: Prior
    images: RunImages
    sigma0s: list[float]
    denoise: Denoise
    inpaint: Inpaint
    gpu: bool = False
    needs: list[str] = []
    L: dict[float, int] | None = None       # the paper's number of levels per sigma0 (checked against the ladder)
    noise_key: str | None = None
    bm3d: bool | None = None


class Exactness(Block):
    size: int
    images: int


class Section(Block):
    sigma_L: float
    n_samples: int
    final_denoise: bool
    inpaint_init: Literal["gaussian", "uniform"]
    inpaint_init_mean: float
    bm3d: bool
    lpips_net: Literal["alex", "vgg"]
    intermediate_steps: int
    figure_images: int
    exactness: Exactness
    runs: dict[str, Run]


validate = validator(Section)
