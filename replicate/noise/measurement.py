"""Measurement noise models of DPS (Chung et al. 2023): additive Gaussian and Poisson (shot) noise.

The measurement family of the project's noise models: MeasurementNoise derives from replicate/noise/base.py's
NoiseModel and adds the DPS data terms; make_noise("clean" | "gaussian" | "poisson", ...) builds them by name
(replicate/noise/registry.py, the one registry of both families).

Measurements are in [0, 1] units (replicate/operators/base.py). The DPS code works on [-1, 1] images, where a value
v01 is 2 v01 - 1, so a noise level sigma there is sigma / 2 here, and residual norms there are twice ours. Each model
states its convention:

  GaussianNoise(sigma=0.05, scale="pm1")   y = A(x) + (sigma / 2) n   (DPS: sigma_y = 0.05 on [-1, 1])
  GaussianNoise(sigma=0.05, scale="01")    y = A(x) + sigma n
  PoissonNoise(rate=1.0)                   y = clip(Poisson(255 rate clip(A(x), 0, 1)) / (255 rate), 0, 1)
                                           (DPS: "photons proportional to the pixel value between 0 and 255",
                                           clipped to [0, 255] and rescaled; rate = 1 gives variance A(x)/255)

Pieces DPS needs, per image (shape (N,)):
  ``fidelity(y, Ax)``        the data term DPS descends: for Gaussian noise ||y - A(x)||_2, NOT squared (the DPS
                             code's step uses the plain norm), in the model's scale units (x2 for "pm1");
                             for Poisson noise the term selected by ``likelihood`` (below).
  ``log_likelihood(y, Ax)``  log p(y | A(x)) up to an additive constant independent of x.
  ``grad(y, operator, x)``   d fidelity / dx by autograd (sum over the batch; images are independent).

Poisson data terms. The default is the released code's, which is not one of the text's:
  "poisson_code"      (guided_diffusion/condition_methods.py, ConditioningMethod.grad_and_value, Poisson branch):
                      mean_j( ||y - A(x)||_2 / |y_j| ) = ||r|| * mean_j(1 / |y_j|), on the code's [-1, 1] scale:
                      r = 2 (y - A(x)) and y_j -> 2 y_j - 1 (the code's Poisson measurement is rescaled to [-1, 1];
                      for operators with A(1) = 1, e.g. SR and blur, this is exactly the code's A(x0_hat) residual).
                      One factor from the measurement scales the plain residual norm, so DPS steps along the
                      Gaussian direction with a data-dependent step; |y_j| is floored at half a photon on that scale,
                      1 / (255 rate) (never binding at rate 1, where |2 k / 255 - 1| >= 1 / 255). Not a likelihood:
                      ``log_likelihood`` refuses it; ``fidelity`` = ``dps_norm`` = this term.
The text's data terms (App. C.4 of the paper; k = 255 rate y and lam = 255 rate A(x) are photon counts):
  "poisson_shot"      (the text's choice, eqs. 19-20): the shot-noise Gaussian approximation with the variance
                      estimated by the measurement, sum_j (k_j - lam_j)^2 / (2 k_j) -- a least squares weighted by
                      Lambda = diag(1 / (2 y)). Zero counts would get infinite weight: k_j is floored at
                      ``min_count`` (1 photon) in the weight.
  "poisson_ls"        plain least squares ||y - A(x)||^2 (in counts: sum (k - lam)^2 / 2), "Poisson-LS" of the paper.
  "poisson_gaussian"  the Gaussian approximation with the variance of the model, sum (k - lam)^2 / (2 lam) +
                      1/2 log lam ("Poisson-Gaussian").
  "poisson_direct"    the exact negative Poisson log-likelihood sum lam - k log lam ("Poisson-direct").
lam is floored at ``min_rate`` inside logs and divisions (A(x) of a sampler's estimate can be <= 0).
"""
from __future__ import annotations

import abc

import torch

from replicate.noise.base import NoiseModel


def _per_image(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).sum(1)


class MeasurementNoise(NoiseModel):
    """Measurement noise y = A(x) + noise of an inverse problem (module doc): ``sample(Ax, generator)`` draws y from
    the clean measurement A(x), and the DPS data terms below compare y with A(x) of an estimate."""

    @abc.abstractmethod
    def sample(self, Ax: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A noisy measurement y of the clean measurement ``Ax`` (on [0, 1]), drawn from ``generator`` only."""

    @abc.abstractmethod
    def log_likelihood(self, y: torch.Tensor, Ax: torch.Tensor) -> torch.Tensor:
        """log p(y | A(x)) per image (N,), up to an additive constant independent of x."""

    @abc.abstractmethod
    def fidelity(self, y: torch.Tensor, Ax: torch.Tensor) -> torch.Tensor:
        """The data term per image (N,) (module doc)."""

    def dps_norm(self, y: torch.Tensor, Ax: torch.Tensor) -> torch.Tensor:
        """The non-negative per-image term whose gradient DPS steps along: x <- x - scale * grad dps_norm.

        Paper (Alg. 1/2): x <- x - zeta' grad ||r||^2 / ||r|| = x - 2 zeta' grad ||r||, i.e. the gradient of the
        (weighted) norm, not of its square, as the DPS code does (``scale`` = 2 zeta'). Default: the fidelity itself.
        """
        return self.fidelity(y, Ax)

    def grad(self, y: torch.Tensor, operator, x: torch.Tensor) -> torch.Tensor:
        """Gradient of sum_i fidelity_i with respect to x (on the [0, 1] scale), through the operator."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.fidelity(y, operator(x)).sum(), x)
        return g


class NoNoise(MeasurementNoise):
    """Noiseless measurements (y = A(x)); the data term is the plain residual norm."""

    registered_name = "clean"

    def sample(self, Ax, generator=None):
        return Ax.clone()

    def fidelity(self, y, Ax):
        return _per_image((y - Ax) ** 2).sqrt()

    def log_likelihood(self, y, Ax):
        raise ValueError("noiseless measurements have no proper likelihood")


class GaussianNoise(MeasurementNoise):
    """Additive white Gaussian noise of std ``sigma`` on the ``scale`` convention ("pm1": [-1, 1], DPS's; "01")."""

    registered_name = "gaussian"
    PARAMS = {"sigma": "std of the additive white Gaussian noise n, in the units of `scale` (DPS: sigma_y = 0.05 on "
                       "[-1, 1], i.e. y = A(x) + (sigma / 2) n on our [0, 1] measurements)",
              "scale": "which image range sigma (and the fidelity's residual norm) refers to: 'pm1' = [-1, 1] (the DPS "
                       "code's), '01' = [0, 1] (this project's measurements)"}

    def __init__(self, sigma: float = 0.05, scale: str = "pm1"):
        if scale not in ("pm1", "01"):
            raise ValueError(f"scale must be 'pm1' (images on [-1, 1]) or '01', got {scale!r}")
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.scale = scale
        #: measurement units of the convention per [0, 1] unit
        self.unit = 2.0 if scale == "pm1" else 1.0

    @property
    def sigma01(self) -> float:
        """The noise std on the [0, 1] scale of this project's measurements."""
        return self.sigma / self.unit

    def sample(self, Ax, generator):
        n = torch.randn(Ax.shape, generator=generator, dtype=Ax.dtype, device=generator.device)
        return Ax + self.sigma01 * n.to(Ax.device)

    def fidelity(self, y, Ax):
        # ||y - A(x)|| in the convention's units, so DPS step sizes (tuned on [-1, 1]) keep their meaning
        return self.unit * _per_image((y - Ax) ** 2).sqrt()

    def log_likelihood(self, y, Ax):
        return -_per_image((y - Ax) ** 2) / (2.0 * self.sigma01**2)

    def __repr__(self):
        return f"GaussianNoise(sigma={self.sigma}, scale={self.scale!r})"


POISSON_LIKELIHOODS = ("poisson_code", "poisson_shot", "poisson_ls", "poisson_gaussian", "poisson_direct")


class PoissonNoise(MeasurementNoise):
    """Poisson (shot) noise with 255 * rate photons per unit intensity, as simulated by DPS; ``likelihood`` picks the
    DPS data term (module doc): "poisson_code" (the released code's, default) or one of the text's."""

    registered_name = "poisson"
    PARAMS = {"rate": "photons per unit intensity / 255: counts k ~ Poisson(255 rate clip(A(x), 0, 1)), y = k / (255 "
                      "rate) clipped to [0, 1] (DPS: rate = 1, counts 0-255, variance A(x) / 255)",
              "likelihood": f"the DPS data term, one of {POISSON_LIKELIHOODS} (module doc; 'poisson_code' is the "
                            "released code's, the others the text's, App. C.4)",
              "min_count": "floor of the photon count k in the weight 1 / (2 k) of 'poisson_shot' (zero counts)",
              "min_rate": "floor of lam = 255 rate A(x) inside logs and divisions (A(x) of an estimate can be <= 0)"}

    def __init__(self, rate: float = 1.0, likelihood: str = "poisson_code", min_count: float = 1.0,
                 min_rate: float = 1e-3):
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if likelihood not in POISSON_LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {POISSON_LIKELIHOODS}, got {likelihood!r}")
        self.rate = float(rate)
        self.likelihood = likelihood
        self.min_count = float(min_count)
        self.min_rate = float(min_rate)

    @property
    def counts_per_unit(self) -> float:
        return 255.0 * self.rate

    def sample(self, Ax, generator):
        c = self.counts_per_unit
        # DPS clips the clean measurement to the valid range before drawing photons, and the result after
        lam = (Ax.clamp(0.0, 1.0) * c).to(device=generator.device, dtype=torch.float64)
        k = torch.poisson(lam, generator=generator)
        return (k / c).clamp(0.0, 1.0).to(dtype=Ax.dtype, device=Ax.device)

    def _counts(self, y, Ax):
        c = self.counts_per_unit
        return y * c, Ax * c

    def _code_term(self, y, Ax):
        """The released code's data term, per image: ||r_pm1|| * mean_j(1 / |y_pm1_j|) (module doc)."""
        r = 2.0 * (y - Ax)
        y_abs = (2.0 * y - 1.0).abs().clamp(min=1.0 / self.counts_per_unit)
        return _per_image(r**2).sqrt() * (1.0 / y_abs).reshape(y.shape[0], -1).mean(1)

    def fidelity(self, y, Ax):
        if self.likelihood == "poisson_code":
            return self._code_term(y, Ax)
        k, lam = self._counts(y, Ax)
        if self.likelihood == "poisson_shot":
            return _per_image((k - lam) ** 2 / (2.0 * k.clamp(min=self.min_count)))
        if self.likelihood == "poisson_ls":
            return _per_image((k - lam) ** 2) / 2.0
        lam_f = lam.clamp(min=self.min_rate)
        if self.likelihood == "poisson_gaussian":
            return _per_image((k - lam) ** 2 / (2.0 * lam_f) + 0.5 * torch.log(lam_f))
        return _per_image(lam - k * torch.log(lam_f))  # poisson_direct

    def dps_norm(self, y, Ax):
        """sqrt of the data term, shifted to be >= 0 and zero at A(x) = y: Alg. 2's weighted norm ||y - A x||_Lambda
        (in photon-count units) for "poisson_shot"; the analogous square roots for the other variants."""
        if self.likelihood == "poisson_code":
            return self._code_term(y, Ax)
        k, lam = self._counts(y, Ax)
        if self.likelihood in ("poisson_shot", "poisson_ls"):
            f = self.fidelity(y, Ax)
        elif self.likelihood == "poisson_direct":
            # Poisson deviance / 2: sum lam - k - k log(lam / k) >= 0 (k log k -> 0 at k = 0)
            lam_f = lam.clamp(min=self.min_rate)
            klog = torch.where(k > 0, k * torch.log(lam_f / k.clamp(min=self.min_rate)), torch.zeros_like(k))
            f = _per_image(lam - k - klog)
        else:  # poisson_gaussian, minus its value at lam = k
            lam_f = lam.clamp(min=self.min_rate)
            f = _per_image((k - lam) ** 2 / (2.0 * lam_f) + 0.5 * torch.log(lam_f / k.clamp(min=self.min_rate)))
        return f.clamp(min=1e-12).sqrt()

    def log_likelihood(self, y, Ax):
        """log p(y | A x) under the selected data term (the exact Poisson one, without log k!, for 'direct'); the
        released code's term ("poisson_code") is a scaled norm, not a likelihood."""
        if self.likelihood == "poisson_code":
            raise ValueError("the 'poisson_code' data term (the released DPS code's) is not a likelihood; choose one "
                             "of the text's (poisson_shot, poisson_ls, poisson_gaussian, poisson_direct)")
        return -self.fidelity(y, Ax)

    def __repr__(self):
        return f"PoissonNoise(rate={self.rate}, likelihood={self.likelihood!r})"
