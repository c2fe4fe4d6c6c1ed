"""Schema of params.yaml's `chung2023` section (DPS, Chung et al. 2023; see replicate/config/_schema.py)."""
from __future__ import annotations

from typing import Literal

from replicate.config._schema import Block, ImageSet, Open, validator

Method = Literal["dps", "ddrm", "mcg", "score_sde", "pnp_admm", "admm_tv"]
# DPS Poisson data terms (replicate/noise/measurement.py): the released code's, then the text's (App. C.4)
Likelihood = Literal["poisson_code", "poisson_shot", "poisson_ls", "poisson_gaussian", "poisson_direct"]


class Task(Open):
    """An operator by its registry name and its keyword arguments (checked where the operator is built)."""
    operator: str


class Noise(Block):
    sigma: float
    scale: Literal["pm1", "01"]


class Poisson(Block):
    rate: float
    likelihood: Likelihood
    text_scale: float      # zeta' for the text's data terms (every likelihood but poisson_code), all tasks
    tasks: list[str]


class Steps(Block):
    dps: int
    mcg: int
    score_sde: int
    ddrm: int


class DDRM(Block):
    eta: float
    eta_b: float
    s_min: dict[str, float] = {}
    cut: Literal["factors", "product"]        # where s_min cuts: 1-D factors (DDRM code) or their 2-D products
    timesteps: Literal["skip", "even"]        # DDRM code's range(0, T, T // n), or evenly spaced incl. T - 1


class Projection(Block):
    mode: Literal["pinv", "transpose"]
    rcond: float
    cg_iters: int


class PnPADMM(Block):
    denoiser_sigma: float
    iters: int
    cg_iters: int


class ADMMTV(Block):
    tau: float
    rho: float
    iters: int
    cg_iters: int


class PhaseRetrieval(Block):
    oversample: float
    methods: list[Literal["dps", "er", "hio", "oss"]]
    iters: int
    restarts: int
    beta: float
    best_of: int


class Schedule(Block):
    schedule: Literal["constant", "linear", "exponential", "likelihood", "posterior"]
    scale: float           # zeta' (initial) for constant / linear / exponential; a multiplier for the others
    decay: float | None = None


class Ablations(Block):
    task: str
    schedules: list[Schedule]
    step_sizes: list[float]
    nfe_task: str
    nfe: list[int]
    poisson_task: str
    poisson_likelihoods: list[Likelihood]
    noiseless_task: str | None = None
    noiseless_methods: list[Literal["dps", "mcg", "score_sde"]] = []


class Nonuniform(Block):
    weights: str
    methods: list[Literal["dps", "mcg"]]
    latent_scale: float
    resample_latent: bool
    test_sets: dict[str, ImageSet]


class GaussianPrior(Block):
    alpha: float
    scale: float
    mean: float


class JensenGap(Block):
    shape: list[int]
    prior: GaussianPrior
    operator: Task
    sigmas: list[float]
    measurements: int
    samples: int
    steps: int
    paper_scale: float    # zeta' of the tables' constant step (the code's scale = 2 zeta')


class Benchmark(Block):
    reps: int


class Section(Block):
    prior: Literal["universal", "adm_ffhq", "adm_imagenet"]
    noise: Noise
    poisson: Poisson
    tasks: dict[str, Task]
    methods: list[Method]
    dps_scale: dict[str, float]            # zeta' per task (the code's scale = 2 zeta')
    dps_scale_poisson: dict[str, float]    # zeta' per task for the default Poisson data term (poisson_code)
    steps: Steps
    dps_nfe_compensation: bool
    ddrm: DDRM
    projection: Projection
    pnp_admm: PnPADMM
    admm_tv: ADMMTV
    phase_retrieval: PhaseRetrieval
    ablations: Ablations
    nonuniform: Nonuniform
    jensen_gap: JensenGap
    samples: int
    grid_samples: int
    examples: int
    lpips_net: Literal["vgg", "alex"]
    benchmark: Benchmark
    test_sets: dict[str, ImageSet]


validate = validator(Section)
