"""Kadkhodaie & Simoncelli 2021's Algorithms 1 (sampling the prior implicit in a denoiser) and 2 (linear inverse
problems with it), on any prior. The coarse-to-fine ascent is replicate.samplers.implicit_prior; its stopping rule
(the effective noise sigma_t reaches sigma_L) is per image: ``Reconstruction.status(k)`` says which did not."""
from __future__ import annotations

from replicate.methods.registry import register_method
from replicate.methods.result import Reconstruction
from replicate.samplers import implicit_prior as IP


@register_method("ks_sample", requires=("prior",), paper="kadkhodaie2021")
def ks_sample(denoiser, operator, noise, y, *, generator=None, shape, n: int, **sampler) -> Reconstruction:
    """Algorithm 1: n samples of shape (C, H, W) from the prior (no measurement: operator, noise and y are None);
    sampler settings sigma0, sigmaL, h0, beta, max_iter as the paper names them."""
    return IP.sample_prior(denoiser, shape, n, generator=generator, **sampler)


@register_method("ks_inverse", requires=("prior", "operator", "linear"), paper="kadkhodaie2021")
def ks_inverse(denoiser, operator, noise, y, *, generator=None, n: int | None = None, **sampler) -> Reconstruction:
    """Algorithm 2: samples of p(x | M^T x = x_c) for an operator with orthonormal rows (y = x_c, one row per sample,
    or one row and ``n``); the measurement is noiseless (noise is None)."""
    return IP.sample_posterior_linear(denoiser, operator, y, n=n, generator=generator, **sampler)
