"""Xie, Yuan, Dong & Li 2023's solvers: denoising from the score of the *noisy* images.

Xie et al.'s Algorithm 1 is three pieces: the score network of noisy images (replicate/training_score.py), the noise
model (replicate/noise/xie2023.py) and, here, step 2: solve s(y) = f(x, y) for x given the noise model
(replicate/solvers/score_denoise.py; Algorithms 2-5). Its prior is that learned score, not a denoiser of clean
images, so these methods take the score values ``score`` (0-255 scale, evaluated at y by the experiment) as a
setting; ``denoiser`` and ``operator`` are None (Xie's problems are denoising) and ``noise`` is the Xie noise model.
"""
from __future__ import annotations

from replicate.methods.registry import register_method
from replicate.methods.result import Reconstruction
from replicate.solvers import score_denoise as S


@register_method("xie_score_equation", paper="xie2023")
def xie_score_equation(denoiser, operator, noise, y, *, generator=None, score, iters: int = S.DEFAULT_ITERS,
                       sigma_e: float = 0.0, options: dict | None = None) -> Reconstruction:
    """x_hat solving s(y) = f(x, y) for the noise model (Algorithm 1 step 2, on the 0-255 scale); ``sigma_e``: the
    training-time Gaussian that Algorithm 5 removes; diagnostics["eq_residual"]: the relative residual of the
    equation solved, per image."""
    x = S.solve(noise, y, score, iters=iters, sigma_e=sigma_e, options=options)
    residual = S.equation_residual(noise, x, y, score, sigma_e=sigma_e)
    return Reconstruction(x, nfe=1, diagnostics={"eq_residual": residual})


@register_method("noise2score", paper="xie2023")
def noise2score(denoiser, operator, noise, y, *, generator=None, score) -> Reconstruction:
    """Noise2Score (Kim & Ye 2021): Tweedie's formula for exponential-family noise on the same score."""
    return Reconstruction(S.noise2score(noise, y, score), nfe=1)
