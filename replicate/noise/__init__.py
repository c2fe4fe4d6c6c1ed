"""Measurement noise models (Gaussian on a stated scale, Poisson shot noise) and their DPS data terms."""
from replicate.noise.measurement import (
    NOISES, POISSON_LIKELIHOODS, GaussianNoise, NoiseModel, NoNoise, PoissonNoise, make_noise, register_noise,
)

__all__ = ["NOISES", "POISSON_LIKELIHOODS", "GaussianNoise", "NoiseModel", "NoNoise", "PoissonNoise",
           "make_noise", "register_noise"]
