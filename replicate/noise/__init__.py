"""Noise models, one base class (base.py) and one registry (registry.py, make_noise) for two families:
measurement noise of inverse problems (measurement.py: Gaussian on a stated scale, Poisson shot noise, and their DPS
data terms) and the 16 noise models of Xie et al. 2023 (xie2023.py)."""
from replicate.noise.base import NoiseModel
from replicate.noise.measurement import POISSON_LIKELIHOODS, GaussianNoise, MeasurementNoise, NoNoise, PoissonNoise
from replicate.noise.registry import MEASUREMENT_NOISES, NOISES, XIE2023_NOISES, make_noise
from replicate.noise.xie2023 import XieNoiseModel, table1_model

__all__ = ["MEASUREMENT_NOISES", "NOISES", "POISSON_LIKELIHOODS", "XIE2023_NOISES", "GaussianNoise",
           "MeasurementNoise", "NoNoise", "NoiseModel", "PoissonNoise", "XieNoiseModel", "make_noise",
           "table1_model"]
