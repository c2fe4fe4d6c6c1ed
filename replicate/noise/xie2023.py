"""The 16 noise models of Xie, Yuan, Dong, Li 2023 (Table 1): sampling, log-likelihood and likelihood score.
Xie et al. 2023 (Algorithm 1) = training the score of noisy images (replicate/training_score.py) + the noise model
(this module) + solving the score equation per noise model (replicate/solvers/score_denoise.py).

XieNoiseModel is the Xie family of replicate/noise/base.py's NoiseModel; model No.n is table1_model(n), registered
as "xie2023_no<n>" (make_noise("xie2023_no3", params={"a": 0.98}) = table1_model(3, {"a": 0.98}),
replicate/noise/registry.py).

Everything here lives on the paper's 0-255 scale ("the pixel value range of all clean images is [0, 255] and the
parameters of noise models are built on it"): x and y are float tensors (N, C, H, W) on that scale.

    No.  family     A    + N(0, mix_sigma^2 I)
    1    gauss      -        y = x + sigma n
    2    gauss      A        y = x + sigma A n                    (Sigma = sigma^2 A^T A; A is symmetric here)
    3    gauss_sd   -        y = x + diag(a x + b) n              (a = 25/255 as the official code; printed: 0.98)
    4    gauss_sd   A        y = x + A^T diag(a x + b) n          (Sigma = A^T diag(a x + b)^2 A)
    5/6  gamma      -/A      z = eta * x, eta ~ G(alpha, alpha);   y = A z   (Eq. 17: y = A N(x))
    7/8  poisson    -/A      z = eta / lambda, eta ~ P(lambda x);   y = A z
    9/10 rayleigh   -/A      z = (eta + 1) x, eta ~ R(sigma_r);     y = A z
    11-16  = 5-10 + eps, eps ~ N(0, 100 I)  (std mix_sigma = 10)

A is the 3x3 convolution of Eq. 30 with periodic boundaries (our choice: the paper does not state the boundary; with
periodic boundaries A is diagonalised by the FFT, so A^-1, A^T and (A^T A)^-1 are exact. Its transfer function is
0.2 + 0.2 (1 + cos u)(1 + cos v) >= 0.2, so A is invertible with condition number 5; `CircularConv(eps=...)` adds a
Tikhonov floor for kernels that are not).

`score(model, x, y)` is f(x, y) = grad_y log p(y | x) as the paper writes it (Eqs. 4, 8, 12, 16, 18). The Poisson
score uses the paper's approximation d/dy log((lambda y)!) = lambda log(lambda y + 1/2) unless
`poisson_score="exact"` (digamma, the derivative of the lgamma continuation). Mixture models have no closed-form
likelihood; the paper approximates their score by f(x, z_bar) (Eq. 22), which the solvers use; `score` refuses them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from replicate.noise.base import NoiseModel

KERNEL_EQ30 = ((0.05, 0.1, 0.05), (0.1, 0.4, 0.1), (0.05, 0.1, 0.05))

# the paper's parameters, 0-255 scale (Sec. 4 "Parameters of Noise Models", Tables 2-4, Appendix B), with the
# official code's a for No.3/4: its playgrounds/gaussian_map/config.py draws std = 25 + (25/255) x (its own naming:
# "a = 25, b = 25/255", utils_dsf/noise.py: image + (a + b * image) * n), i.e. the paper's a x + b with a = 25/255 =
# 0.098 and b = 25. The paper prints a = 0.98 (std 123 at x = 100 instead of 35); it stays a parameter value
# (params xie2023.noise.a; see replicate/report/deviations/xie2023_signal_dependent.yaml).
A_CODE = 25.0 / 255.0
A_PRINTED = 0.98
DEFAULT_PARAMS = {"sigma": 25.0, "a": A_CODE, "b": 25.0, "alpha": 26.0, "lam": 0.2, "ray_sigma": 0.3,
                  "mix_sigma": 10.0, "sigma_e": 5.0}

FAMILIES = ("gauss", "gauss_sd", "gamma", "poisson", "rayleigh")
MULTIPLICATIVE = ("gamma", "poisson", "rayleigh")
# which parameters each family uses (Fig. 2 perturbs these; mix_sigma too for mixtures)
FAMILY_PARAMS = {"gauss": ("sigma",), "gauss_sd": ("a", "b"), "gamma": ("alpha",), "poisson": ("lam",),
                 "rayleigh": ("ray_sigma",)}
# what each parameter means (XieNoiseModel.PARAMS; all on the 0-255 scale)
PARAM_MEANINGS = {
    "sigma": "std of the Gaussian noise of No.1-2: y = x + sigma n (with A: x + sigma A n)",
    "a": "slope of the signal-dependent std a x + b of No.3-4 (official code 25/255; the paper prints 0.98)",
    "b": "offset of the signal-dependent std a x + b of No.3-4",
    "alpha": "Gamma shape = rate of No.5/6/11/12: z = eta x, eta ~ G(alpha, alpha) (mean 1, variance 1/alpha)",
    "lam": "Poisson photon rate lambda of No.7/8/13/14: z = eta / lambda, eta ~ P(lambda x) (variance x / lambda)",
    "ray_sigma": "Rayleigh scale sigma_r of No.9/10/15/16: z = (eta + 1) x, eta ~ R(sigma_r)",
    "mix_sigma": "std of the Gaussian N(0, mix_sigma^2 I) added by the mixtures No.11-16 (paper: 10, i.e. N(0, 100 I))",
    "sigma_e": "std of the training-only Gaussian added to the score network's training images of No.5-10 (App. B), "
               "removed at inference by Algorithm 5; not part of the noise that sample() draws",
    "poisson_score": "Poisson score: 'paper' (Eq. 12's approximation log(lambda y + 1/2)) or 'exact' (digamma)",
}


def table1_name(no: int) -> str:
    """The registered name of Table 1's model No.`no` (replicate/noise/registry.py)."""
    return f"xie2023_no{int(no)}"


class CircularConv:
    """y = k * x with periodic boundaries, per channel; transpose, inverse and Gram inverse by the FFT.

    eps: Tikhonov floor of the inverse, A^-1 ~ conj(K) / (|K|^2 + eps). With eps = 0 an ill-conditioned kernel
    (min |K| < min_gain) is an error, not a silent blow-up of the noise.
    """

    def __init__(self, kernel=KERNEL_EQ30, eps: float = 0.0, min_gain: float = 1e-3):
        self.kernel = torch.as_tensor(kernel, dtype=torch.float64)
        if self.kernel.ndim != 2 or self.kernel.shape[0] % 2 == 0 or self.kernel.shape[1] % 2 == 0:
            raise ValueError(f"kernel must be an odd-sized 2-D array, got shape {tuple(self.kernel.shape)}")
        self.eps, self.min_gain = float(eps), float(min_gain)
        self._cache: dict = {}

    def transfer(self, h: int, w: int, device=None) -> torch.Tensor:
        """K(u, v): FFT of the kernel centred at pixel (0, 0)."""
        key = (h, w, str(device))
        if key not in self._cache:
            kh, kw = self.kernel.shape
            if kh > h or kw > w:
                raise ValueError(f"kernel {kh}x{kw} is larger than the image {h}x{w}")
            pad = torch.zeros(h, w, dtype=torch.float64)
            pad[:kh, :kw] = self.kernel
            pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
            K = torch.fft.fft2(pad)
            if self.eps == 0 and K.abs().min() < self.min_gain:
                raise ValueError(f"the convolution A is ill-conditioned (min |K| = {float(K.abs().min()):.2e} < "
                                 f"{self.min_gain}); set a Tikhonov floor CircularConv(eps=...) to invert it")
            self._cache[key] = K.to(device) if device is not None else K
        return self._cache[key]

    def _apply(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        out = torch.fft.ifft2(torch.fft.fft2(x.to(torch.float64)) * gain).real
        return out.to(x.dtype)

    def _K(self, x):
        return self.transfer(x.shape[-2], x.shape[-1], x.device)

    def __call__(self, x):
        return self._apply(x, self._K(x))

    def T(self, x):
        return self._apply(x, self._K(x).conj())

    def _inv_gain(self, K):
        return K.conj() / (K.abs() ** 2 + self.eps)

    def inv(self, x):
        return self._apply(x, self._inv_gain(self._K(x)))

    def inv_T(self, x):
        return self._apply(x, self._inv_gain(self._K(x)).conj())

    def gram(self, x):
        """A^T A x."""
        return self._apply(x, self._K(x).abs() ** 2)

    def gram_inv(self, x):
        """(A^T A)^-1 x (with the Tikhonov floor)."""
        return self._apply(x, 1.0 / (self._K(x).abs() ** 2 + self.eps))

    def log_abs_det(self, h: int, w: int) -> float:
        """log |det A| for one (h, w) channel (real part of sum log K)."""
        return float(self.transfer(h, w).abs().log().sum())

    def sum_sq(self) -> float:
        return float((self.kernel**2).sum())


@dataclass(frozen=True)
class XieNoiseModel(NoiseModel):
    """One row of Table 1. `params` on the 0-255 scale (see DEFAULT_PARAMS; their meanings in PARAMS)."""

    PARAMS = PARAM_MEANINGS

    no: int
    family: str
    correlated: bool
    mixture: bool
    params: dict = field(default_factory=lambda: dict(DEFAULT_PARAMS), hash=False, compare=False)
    poisson_score: str = "paper"   # "paper" (Eq. 12 approximation) | "exact" (digamma)
    a_op: CircularConv = field(default_factory=CircularConv, hash=False, compare=False, repr=False)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"unknown noise family {self.family!r}; choose from {FAMILIES}")
        if self.poisson_score not in ("paper", "exact"):
            raise ValueError("poisson_score must be 'paper' or 'exact'")

    @property
    def name(self) -> str:
        base = {"gauss": "Gaussian", "gauss_sd": "Gaussian diag(ax+b)", "gamma": "Gamma", "poisson": "Poisson",
                "rayleigh": "Rayleigh"}[self.family]
        return f"No.{self.no} {base}{' w/ A' if self.correlated else ' w/o A'}{' + N(0,100I)' if self.mixture else ''}"

    @property
    def registered_name(self) -> str:
        return table1_name(self.no)

    @property
    def mix_sigma(self) -> float:
        return float(self.params["mix_sigma"]) if self.mixture else 0.0

    @property
    def exponential_family(self) -> bool:
        """Noise2Score applies (Table 1, N2S column): Gaussian with constant Sigma, Gamma, Poisson, without mixture."""
        return not self.mixture and self.family in ("gauss", "gamma", "poisson")

    @property
    def unbiased(self) -> bool:
        return self.family != "rayleigh"

    def with_params(self, **updates) -> "XieNoiseModel":
        return replace(self, params={**self.params, **updates})

    def relevant_params(self) -> dict:
        keys = FAMILY_PARAMS[self.family] + (("mix_sigma",) if self.mixture else ())
        return {k: float(self.params[k]) for k in keys}

    def param_values(self) -> dict:
        """The parameters this model uses (relevant_params), and the Poisson score's form for the Poisson models."""
        extra = {"poisson_score": self.poisson_score} if self.family == "poisson" else {}
        return {**self.relevant_params(), **extra}

    # ------------------------------------------------------------------ sampling
    def sample(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One noisy realisation y of clean x (0-255), drawn from `generator` only (deterministic)."""
        field, mix = self.pixel_draws(x, generator)
        y = self.from_draws(x, field)
        return y + mix if mix is not None else y

    def pixel_draws(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The random part of `sample`, pixel by pixel: (the field that A acts on, the mixture's Gaussian or None).
        Each pixel's draws depend on its own x only, so a large image's noise can be drawn tile by tile
        (training.FixedNoisyImages) and A applied afterwards (from_draws)."""
        p = self.params
        n = lambda: torch.randn(x.shape, generator=generator, dtype=x.dtype)  # noqa: E731
        if self.family == "gauss":
            field = p["sigma"] * n()
        elif self.family == "gauss_sd":
            field = (p["a"] * x + p["b"]) * n()
        elif self.family == "gamma":
            # torch's gamma sampler takes no generator: draw a numpy seed from it (still deterministic)
            rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
            eta = torch.from_numpy(rng.gamma(p["alpha"], 1.0 / p["alpha"], size=tuple(x.shape))).to(x.dtype)
            field = eta * x
        elif self.family == "poisson":
            field = torch.poisson((p["lam"] * x).clamp_min(0).double(), generator=generator).to(x.dtype) / p["lam"]
        else:  # rayleigh by inversion: sigma sqrt(-2 log U), U in (0, 1]
            u = 1.0 - torch.rand(x.shape, generator=generator, dtype=torch.float64)
            eta = (p["ray_sigma"] * torch.sqrt(-2.0 * torch.log(u))).to(x.dtype)
            field = (eta + 1.0) * x
        return field, (p["mix_sigma"] * n() if self.mixture else None)

    def from_draws(self, x: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
        """y before the mixture's Gaussian: x + A e, x + A^T e, or A z (A the circular 3x3 convolution of Eq. 30,
        or the identity without A)."""
        A = self.a_op
        if self.family == "gauss":
            return x + (A(field) if self.correlated else field)
        if self.family == "gauss_sd":
            return x + (A.T(field) if self.correlated else field)
        return A(field) if self.correlated else field

    def moments(self, c: float) -> tuple[float, float]:
        """Stated per-pixel mean and variance of y for a constant clean image x = c (0-255)."""
        p = self.params
        if self.family == "gauss":
            m, v = c, p["sigma"] ** 2
        elif self.family == "gauss_sd":
            m, v = c, (p["a"] * c + p["b"]) ** 2
        elif self.family == "gamma":
            m, v = c, c**2 / p["alpha"]
        elif self.family == "poisson":
            m, v = c, c / p["lam"]
        else:
            s = p["ray_sigma"]
            m, v = c * (1 + s * math.sqrt(math.pi / 2)), c**2 * s**2 * (4 - math.pi) / 2
        if self.correlated:  # A is a convolution with unit DC gain; independent noise -> variance * sum k^2
            m, v = m * float(self.a_op.kernel.sum()), v * self.a_op.sum_sq()
        return m, v + self.mix_sigma**2

    # ------------------------------------------------------------------ likelihood
    def _base_score(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """grad_z log p(z | x) of the independent (no A, no mixture) model."""
        p = self.params
        if self.family == "gauss":
            return -(z - x) / p["sigma"] ** 2
        if self.family == "gauss_sd":
            return -(z - x) / (p["a"] * x + p["b"]) ** 2
        if self.family == "gamma":  # Eq. 8
            return (p["alpha"] - 1) / z - p["alpha"] / x
        if self.family == "poisson":  # Eq. 12 (paper) or the exact lgamma derivative
            lam = p["lam"]
            tail = torch.log(lam * z + 0.5) if self.poisson_score == "paper" else torch.digamma(lam * z + 1)
            return lam * torch.log(lam * x) - lam * tail
        return 1.0 / (z - x) - (z - x) / (p["ray_sigma"] ** 2 * x**2)  # Eq. 16

    def score(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """f(x, y) = grad_y log p(y | x) (Eqs. 4, 8, 12, 16, 18)."""
        if self.mixture:
            raise ValueError(f"{self.name}: the mixture likelihood has no closed form; the paper uses f(x, z_bar) "
                             "(Eq. 22), see replicate.solvers.score_denoise.solve")
        A, p = self.a_op, self.params
        if self.family == "gauss":
            return -A.gram_inv(y - x) / p["sigma"] ** 2 if self.correlated else self._base_score(x, y)
        if self.family == "gauss_sd":
            if not self.correlated:
                return self._base_score(x, y)
            # Sigma^-1 = A^-1 diag(ax+b)^-2 A^-T
            return -A.inv(A.inv_T(y - x) / (p["a"] * x + p["b"]) ** 2)
        if self.correlated:  # Eq. 18: A^-T f~(x, A^-1 y)
            return A.inv_T(self._base_score(x, A.inv(y)))
        return self._base_score(x, y)

    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log p(y | x) per image (N,), for the autograd checks of `score` (continuous lgamma for Poisson)."""
        if self.mixture:
            raise ValueError(f"{self.name}: no closed-form likelihood for a mixture")
        A, p = self.a_op, self.params
        sum_ = lambda t: t.flatten(1).sum(1)  # noqa: E731
        h, w = x.shape[-2:]
        chans = x.shape[1]
        if self.family == "gauss":
            r = y - x
            quad = sum_(r * A.gram_inv(r)) if self.correlated else sum_(r * r)
            logdet = 2 * chans * A.log_abs_det(h, w) if self.correlated else 0.0
            return -0.5 * quad / p["sigma"] ** 2 - 0.5 * logdet - x[0].numel() * math.log(p["sigma"])
        if self.family == "gauss_sd":
            d = p["a"] * x + p["b"]
            r = A.inv_T(y - x) if self.correlated else y - x
            logdet = chans * A.log_abs_det(h, w) if self.correlated else 0.0
            return -0.5 * sum_((r / d) ** 2) - sum_(torch.log(d)) - logdet
        z = A.inv(y) if self.correlated else y
        jac = -chans * A.log_abs_det(h, w) if self.correlated else 0.0
        if self.family == "gamma":
            al = p["alpha"]
            lp = al * math.log(al) - math.lgamma(al) + (al - 1) * torch.log(z / x) - al * z / x - torch.log(x)
        elif self.family == "poisson":
            lam = p["lam"]
            lp = lam * z * torch.log(lam * x) - torch.lgamma(lam * z + 1) - lam * x + math.log(lam)
        else:
            s2 = p["ray_sigma"] ** 2
            d = z - x
            inside = d > 0   # the density is 0 for z <= x (log = -inf); keep the gradient finite elsewhere
            d = torch.where(inside, d, torch.ones_like(d))
            lp = torch.log(d) - torch.log(s2 * x**2) - d**2 / (2 * s2 * x**2)
            lp = torch.where(inside, lp, torch.full_like(lp, -math.inf))
        return sum_(lp) + jac


def table1_model(no: int, params: dict | None = None, *, kernel=KERNEL_EQ30, conv_eps: float = 0.0,
                 poisson_score: str = "paper") -> XieNoiseModel:
    """Noise model No.`no` (1-16) of Table 1 with the paper's parameters, updated by `params`."""
    if not 1 <= int(no) <= 16:
        raise ValueError(f"Table 1 has noise models No.1-16, got {no}")
    no = int(no)
    prm = {**DEFAULT_PARAMS, **{k: float(v) for k, v in (params or {}).items()}}
    if no <= 4:
        family, correlated, mixture = ("gauss", "gauss", "gauss_sd", "gauss_sd")[no - 1], no % 2 == 0, False
    else:
        k = (no - 5) % 6
        family, correlated, mixture = MULTIPLICATIVE[k // 2], k % 2 == 1, no >= 11
    return XieNoiseModel(no, family, correlated, mixture, prm, poisson_score, CircularConv(kernel, eps=conv_eps))


ALL_MODELS = tuple(range(1, 17))
