"""Denoising by solving s(y) = f(x, y) for x (Xie, Yuan, Dong, Li 2023, Sec. 3.1), given the score s(y) of the
noisy-image density and the noise model's likelihood score f (replicate/noise/xie2023.py). 0-255 scale throughout.
Xie et al. 2023 (Algorithm 1) = training the score of noisy images (replicate/training_score.py) + the noise model
(replicate/noise/xie2023.py) + solving the score equation per noise model (this module, `solve`).

    gauss, constant Sigma      x = Sigma s + y                                  Eq. 5
    gauss_sd (Sigma(x))        x <- Sigma(x) s + y, n iterations from y         Algorithm 2
    gamma                      x = alpha y / (alpha - 1 - y s)                   Eq. 9
    poisson                    x = (y + 1/(2 lambda)) exp(s / lambda)            Eq. 13
    rayleigh                   t = (-b + sqrt(b^2 + 4 sigma^2)) / 2, b = sigma^2 s x;  x <- y / (t + 1)   Algorithm 3
    multiplicative with A      s~ = A^T s, z = A^-1 y, solve s~ = f~(x, z)       Algorithm 4 (A^-1 by FFT)
    + Gaussian N(0, sg^2 I)    z_bar = y + sg^2 s, solve s = f(x, z_bar)          Algorithm 5 (also used with the
                                                                                  training-only sigma_e = 5, App. B)
The solvers know nothing about networks or data: `s` is any tensor (a network's estimate, or an exact score).

`noise2score` is Tweedie's formula written generically for an exponential family p(y|x) = b(y) exp(H(x)^T T(y) -
a(x)) (Eq. 27): E[H(x) | y] = (s - grad log b) / T'(y), x = H^-1(E[H(x) | y]); the paper's Sec. 3.2 says our
closed forms coincide with it, and the tests check that they do.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from replicate.noise.xie2023 import XieNoiseModel

DEFAULT_ITERS = 10   # "When an iterative algorithm is needed to solve Eq. (2), we set the number of iterations as 10"
_TINY = 1e-6         # keeps the Gamma denominator and Rayleigh's x away from 0 (guards, not part of the method)


def gaussian_closed_form(model: XieNoiseModel, y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Eq. 5: x = Sigma s + y for Sigma = sigma^2 I or sigma^2 A^T A."""
    sig2 = model.params["sigma"] ** 2
    return y + sig2 * (model.a_op.gram(s) if model.correlated else s)


def fixed_point_sd(model: XieNoiseModel, y: torch.Tensor, s: torch.Tensor, iters: int = DEFAULT_ITERS,
                   trace: list | None = None) -> torch.Tensor:
    """Algorithm 2: x <- Sigma(x) s + y from x = y, Sigma(x) = diag(ax+b)^2 or A^T diag(ax+b)^2 A.

    Note (ours): the map's derivative is 2 a (a x + b) s ~ 2 a (x - y)/(a x + b), i.e. 2a times the noise in units of
    its standard deviation. At the official code's a = 25/255 (the default) that is a contraction with factor ~0.2,
    and 10 iterations reach the root to ~1e-7 of the starting distance; at the printed a = 0.98 it exceeds 1 wherever
    the noise is larger than half its standard deviation, and the 10 iterations end far from the root.
    `quadratic_sd` gives the exact root of the pixelwise (no-A) case for comparison, and `trace` records the step sizes.
    """
    a, b = model.params["a"], model.params["b"]
    A = model.a_op
    x = y.clone()
    for _ in range(iters):
        d2 = (a * x + b) ** 2
        new = y + (A.T(d2 * A(s)) if model.correlated else d2 * s)
        if trace is not None:
            trace.append(float((new - x).abs().max()))
        x = new
    return x


def quadratic_sd(model: XieNoiseModel, y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Exact root of x = (a x + b)^2 s + y (model No.3, pixelwise): a^2 s x^2 + (2 a b s - 1) x + b^2 s + y = 0.

    Of the two roots we take the one that tends to y as s -> 0 (the branch Algorithm 2 starts on). Not in the paper:
    a setting (solver option `sd_solver: quadratic`) to show what the fixed-point iteration would converge to.
    """
    if model.correlated:
        raise ValueError("quadratic_sd solves the pixelwise model No.3 only; use fixed_point_sd with A")
    a, b = model.params["a"], model.params["b"]
    qa, qb, qc = a * a * s, 2 * a * b * s - 1.0, b * b * s + y
    disc = (qb * qb - 4 * qa * qc).clamp_min(0)
    # numerically stable form of the root near y: x = 2c / (-qb + sqrt(disc))  (qb ~ -1 < 0)
    return 2 * qc / (-qb + torch.sqrt(disc))


def gamma_closed_form(model: XieNoiseModel, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Eq. 9: x = alpha z / (alpha - 1 - z s)."""
    al = model.params["alpha"]
    return al * z / (al - 1 - z * s).clamp_min(_TINY)


def poisson_closed_form(model: XieNoiseModel, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Eq. 13: x = (z + 1/(2 lambda)) exp(s / lambda); with poisson_score='exact', the digamma inverse instead."""
    lam = model.params["lam"]
    if model.poisson_score == "exact":
        return torch.exp(s / lam + torch.digamma(lam * z + 1)) / lam
    return (z + 0.5 / lam) * torch.exp(s / lam)


def rayleigh_iteration(model: XieNoiseModel, z: torch.Tensor, s: torch.Tensor, iters: int = DEFAULT_ITERS,
                       trace: list | None = None) -> torch.Tensor:
    """Algorithm 3 (t = (z - x)/x > 0 solves t^2 + sigma^2 s x t - sigma^2 = 0 for fixed x; then x = z / (t + 1))."""
    sig2 = model.params["ray_sigma"] ** 2
    x = z.clone()
    for _ in range(iters):
        bb = sig2 * s * x
        t = 0.5 * (-bb + torch.sqrt(bb * bb + 4 * sig2))
        new = z / (t + 1)
        if trace is not None:
            trace.append(float((new - x).abs().max()))
        x = new
    return x


def _solve_independent(model: XieNoiseModel, z: torch.Tensor, s: torch.Tensor, iters: int,
                       options: dict) -> torch.Tensor:
    if model.family == "gamma":
        return gamma_closed_form(model, z, s)
    if model.family == "poisson":
        return poisson_closed_form(model, z, s)
    if model.family == "rayleigh":
        return rayleigh_iteration(model, z, s, iters)
    raise ValueError(f"{model.family} is not a multiplicative family")


def extra_gaussian_sigma(model: XieNoiseModel, sigma_e: float = 0.0) -> float:
    """Std of the additive Gaussian that Algorithm 5 removes: mix_sigma for No.11-16, else the training-only sigma_e
    (Appendix B: No.5-10 are trained with sigma_e = 5 and it is removed at inference "as in mixture noise models")."""
    if model.mixture:
        return model.mix_sigma
    return float(sigma_e) if model.family in ("gamma", "poisson", "rayleigh") else 0.0


def solve(model: XieNoiseModel, y: torch.Tensor, s: torch.Tensor, *, iters: int = DEFAULT_ITERS, sigma_e: float = 0.0,
          options: dict | None = None) -> torch.Tensor:
    """x_hat solving s(y) = f(x, y) for `model` (Algorithm 1 step 2), on the 0-255 scale.

    sigma_e: std of a Gaussian added to the training images of the score network for the non-Gaussian models
        (App. B); removed here by Algorithm 5. options: {"sd_solver": "fixed_point" (paper) | "quadratic"}.
    """
    options = options or {}
    if model.family == "gauss":
        return gaussian_closed_form(model, y, s)
    if model.family == "gauss_sd":
        if options.get("sd_solver", "fixed_point") == "quadratic" and not model.correlated:
            return quadratic_sd(model, y, s)
        return fixed_point_sd(model, y, s, iters)
    sg = extra_gaussian_sigma(model, sigma_e)
    z = y + sg**2 * s if sg > 0 else y          # Algorithm 5 step 1 (Eq. 5 for the Gaussian part)
    if model.correlated:                         # Algorithm 4
        A = model.a_op
        return _solve_independent(model, A.inv(z), A.T(s), iters, options)
    return _solve_independent(model, z, s, iters, options)


def equation_residual(model: XieNoiseModel, x: torch.Tensor, y: torch.Tensor, s: torch.Tensor, *,
                      sigma_e: float = 0.0) -> torch.Tensor:
    """Per-image relative residual ||f(x, y_eff) - s|| / ||s|| of the equation actually solved (Eq. 2, or Eq. 23 with
    z_bar for the mixtures / sigma_e), on pixels where f is defined (x > 0, and z > x for Rayleigh)."""
    sg = extra_gaussian_sigma(model, sigma_e) if model.family not in ("gauss", "gauss_sd") else 0.0
    z = y + sg**2 * s if sg > 0 else y
    base = replace(model, mixture=False)  # Eq. 22: the mixture's score is approximated by f(x, z_bar)
    f = base.score(x, z)
    r = f - s
    ok = torch.isfinite(r)
    r, ref = torch.where(ok, r, 0), torch.where(ok, s, 0)
    return r.flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1).clamp_min(1e-12)


# ---------------------------------------------------------------------- Noise2Score (Tweedie), for comparison
def noise2score(model: XieNoiseModel, y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Tweedie's formula for the exponential-family models (Noise2Score, Kim & Ye 2021), written generically:
    E[H(x) | y] = (s - grad log b(y)) / T'(y), x_hat = H^-1(E[H(x) | y]).

        Gaussian  b = exp(-y^T Sigma^-1 y / 2), T = y, H(x) = Sigma^-1 x
        Gamma     b = y^(alpha-1), T = y, H(x) = -alpha / x
        Poisson   b = 1 / Gamma(lambda y + 1), T = lambda y, H(x) = log(lambda x)
                  (grad log b = -lambda psi(lambda y + 1), ~ -lambda log(lambda y + 1/2) as Noise2Score)
    """
    if not model.exponential_family:
        raise ValueError(f"{model.name} is not an exponential-family noise model: Noise2Score does not apply")
    p = model.params
    if model.family == "gauss":
        A = model.a_op
        sig_inv = (lambda v: A.gram_inv(v) / p["sigma"] ** 2) if model.correlated else (lambda v: v / p["sigma"] ** 2)
        grad_log_b = -sig_inv(y)
        EH = s - grad_log_b                                  # = Sigma^-1 E[x | y]
        sigma_apply = (lambda v: p["sigma"] ** 2 * A.gram(v)) if model.correlated else (lambda v: p["sigma"] ** 2 * v)
        return sigma_apply(EH)                               # H^-1
    if model.correlated:
        raise ValueError("noise2score: multiplicative models with A are handled through Algorithm 4 (z = A^-1 y)")
    if model.family == "gamma":
        EH = s - (p["alpha"] - 1) / y                         # T' = 1
        return -p["alpha"] / EH.clamp_max(-_TINY)
    lam = p["lam"]
    tail = torch.digamma(lam * y + 1) if model.poisson_score == "exact" else torch.log(lam * y + 0.5)
    EH = (s + lam * tail) / lam                              # T' = lambda
    return torch.exp(EH) / lam
