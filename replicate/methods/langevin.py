"""Annealed-Langevin methods on any prior: Kawar, Vaksman & Elad 2021's Algorithms 1 (stochastic denoising) and 2
(noisy inpainting), SNIPS (Kawar, Vaksman & Elad 2021b) and Song & Ermon's sampler of the prior.

The samplers are in replicate.samplers.langevin (Kawar's) and replicate.samplers.annealed_langevin (SNIPS, Song &
Ermon); here they take the registry's signature. Kawar's algorithms are seeded per posterior sample (``seeds``: one
integer per row of the output, so a sample does not depend on which others share its batch); the others draw from
``generator``.
"""
from __future__ import annotations

import torch

from replicate.methods.registry import register_method
from replicate.methods.result import Reconstruction
from replicate.samplers import annealed_langevin as AL
from replicate.samplers import langevin as LG


@register_method("kawar_denoise", requires=("prior", "gaussian_noise"), paper="kawar2021")
def kawar_denoise(denoiser, operator, noise, y, *, generator=None, sigmas, epsilon: float, T: int,
                  n_samples: int = 1, seeds=None, **sampler) -> Reconstruction:
    """Algorithm 1: posterior samples of x given y = x + sigma_0 n (sigma_0 from ``noise``), annealed over
    ``sigmas`` (the levels below sigma_0), T steps of size epsilon sigma_i^2 / sigma_L^2 per level. ``operator``
    is the identity (None is accepted)."""
    return LG.stochastic_denoise(denoiser, y, noise.sigma01, sigmas, epsilon=epsilon, T=T, n_samples=n_samples,
                                 seeds=seeds, **sampler)


@register_method("kawar_inpaint", requires=("prior", "operator", "gaussian_noise"), paper="kawar2021")
def kawar_inpaint(denoiser, operator, noise, y, *, generator=None, sigmas_above, sigmas_below, epsilon: float,
                  T: int, n_samples: int = 1, seeds=None, **sampler) -> Reconstruction:
    """Algorithm 2: noisy inpainting; ``operator`` is an Inpainting operator (its mask: 1 = observed), y the masked
    noisy image; the unobserved pixels are annealed from ``sigmas_above`` down to sigma_0, then all pixels over
    ``sigmas_below``."""
    mask = operator.masks.to(y.dtype)
    return LG.noisy_inpaint(denoiser, y, mask, noise.sigma01, sigmas_above, sigmas_below, epsilon=epsilon, T=T,
                            n_samples=n_samples, seeds=seeds, **sampler)


@register_method("snips", requires=("prior", "operator", "linear", "svd", "gaussian_noise"), paper="elad_lecture")
def snips(denoiser, operator, noise, y, *, generator=None, sigmas, eps: float, T: int, shape=None,
          **sampler) -> Reconstruction:
    """SNIPS: annealed Langevin in the spectral basis of A, one sample per row of y (repeat a row for several)."""
    shape = shape or (y.shape[0], *operator.shape)
    return AL.snips(denoiser, operator, y, noise.sigma01, sigmas, eps=eps, T=T, shape=shape, generator=generator,
                    **sampler)


@register_method("song_ermon", requires=("prior",), paper="elad_lecture")
def song_ermon(denoiser, operator, noise, y, *, generator=None, shape, sigmas, eps: float, T: int,
               **sampler) -> Reconstruction:
    """Song & Ermon's annealed Langevin dynamics from the prior (no measurement: operator, noise and y are None);
    ``shape`` = (N, C, H, W) of the samples."""
    return AL.song_ermon_sample(denoiser, shape, sigmas, eps=eps, T=T, generator=generator, **sampler)


@register_method("mmse", requires=("prior", "gaussian_noise"), paper="elad_lecture")
def mmse(denoiser, operator, noise, y, *, generator=None) -> Reconstruction:
    """One denoiser call at the noise level: the MMSE estimate E[x | y] for y = x + sigma n."""
    with torch.no_grad():
        return Reconstruction(denoiser(y, noise.sigma01), nfe=1)
