"""Schema of params.yaml's `elad_lecture` section (Elad's lecture; see replicate/config/_schema.py)."""
from __future__ import annotations

from replicate.config._schema import Block, ImageSet, Open, validator


class Task(Open):
    """A registered operator with its keyword arguments, and the measurement noise sigma_y (0-255)."""
    operator: str
    sigma_y: float


class Reference(Block):
    set: str
    method: str
    psnr: dict[int, float]


class Classic(Block):
    sigmas: list[int]
    learned_range: int
    nlm_h_factor: float
    wavelet: str
    tv_factors: list[float]
    reference: list[Reference]
    test_sets: dict[str, ImageSet]
    tv_tuning_set: ImageSet
    noise_repeats: int = 1          # noise realisations per image and sigma
    kair_dncnn_s: bool = False      # add Zhang et al.'s DnCNN-S (sigma 25, KAIR weights) to the table


class RED(Block):
    lam: float
    sigma_d: float
    iters_sd: int
    iters_fp: int


class PnP(Block):
    sigma_d: float
    iters: int


class Inverse(Block):
    red: RED
    pnp: PnP
    cg_iters: int
    tasks: dict[str, Task]
    condition_sigmas: list[float]
    probes: int
    test_sets: dict[str, ImageSet]
    task_subset: list[str] | None = None


class AnnealedLadder(Block):
    """Song & Ermon's geometric noise ladder and step rule (sigma_max .. sigma_min over `levels`, T steps each,
    step eps * sigma^2 / sigma_min^2), shared by their sampler and SNIPS."""
    sigma_max: float
    sigma_min: float
    levels: int
    T: int
    eps: float


class SongErmon(AnnealedLadder):
    pass


class KadkhodaieSettings(Block):
    sigma0: float
    sigmaL: float
    h0: float
    beta: float


class Synthesis(Block):
    n: int
    size: int
    song_ermon: SongErmon
    kadkhodaie: KadkhodaieSettings


class Snips(AnnealedLadder):
    samples: int
    tasks: dict[str, Task]
    test_sets: dict[str, ImageSet]
    task_subset: list[str] | None = None


class Stochastic(Block):
    epsilon: float
    T: int
    rate: float
    sigma_L: float


class SnipsSettings(AnnealedLadder):
    pass


class DDRMSettings(Block):
    steps: int
    eta: float
    eta_b: float


class DPSSettings(Block):
    steps: int
    scale: float
    nfe_compensation: bool


class Perception(Block):
    sigma0: float
    samples: int
    iters: int
    pnp_sigma_d: float
    red_lam: float
    red_sigma_d: float
    stochastic: Stochastic
    snips: SnipsSettings
    ddrm: DDRMSettings
    dps: DPSSettings
    test_sets: dict[str, ImageSet]


class Section(Block):
    classic: Classic
    inverse: Inverse
    synthesis: Synthesis
    snips: Snips
    perception: Perception


validate = validator(Section)
