"""The base class of every noise model in the project: one contract for the two families that derive from it.

    measurement noise   replicate/noise/measurement.py (MeasurementNoise: NoNoise, GaussianNoise, PoissonNoise):
                        y = A(x) + noise for the inverse problems of DPS (Chung et al. 2023), on the [0, 1] scale;
                        adds the DPS data terms (fidelity, dps_norm, grad, log_likelihood(y, Ax)).
    Xie et al. 2023     replicate/noise/xie2023.py (XieNoiseModel, Table 1's 16 models), on the 0-255 scale;
                        adds the pieces of the score equation s(y) = f(x, y) (score, log_likelihood(x, y), moments,
                        pixel_draws / from_draws) that replicate/solvers/score_denoise.py solves.

What every noise model has (and nothing more; family-specific methods live in the family's class):
    sample(clean, generator) -> noisy   one noisy realisation of the noise-free signal (A(x) for measurement noise,
                                        the clean image x for Xie's models), drawn from ``generator`` only: the same
                                        generator state gives the same output (no global RNG).
    registered_name                     the name it is built under by make_noise (replicate/noise/registry.py).
    PARAMS, param_values(), describe()  what each noise parameter means (symbol, scale, units) and its value.
"""
from __future__ import annotations

import abc
from typing import ClassVar

import torch


class NoiseModel(abc.ABC):
    """A noise model: ``sample(clean, generator)``, a ``registered_name``, and the meaning of its parameters."""

    #: the name make_noise builds the model under (replicate/noise/registry.py); unique across both families
    registered_name: ClassVar[str] = ""
    #: parameter name -> what it means (paper symbol, scale, units), for every parameter param_values() can report
    PARAMS: ClassVar[dict[str, str]] = {}

    @abc.abstractmethod
    def sample(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One noisy realisation of the noise-free signal ``clean``, drawn from ``generator`` only (deterministic)."""

    def param_values(self) -> dict:
        """The values of this model's noise parameters, keyed as in PARAMS (default: the attributes of those names)."""
        return {k: getattr(self, k) for k in self.PARAMS}

    def describe(self) -> str:
        """One line per parameter: name = value: meaning (PARAMS)."""
        lines = [f"{self.registered_name} ({type(self).__name__})"]
        lines += [f"  {k} = {v!r}: {self.PARAMS[k]}" for k, v in self.param_values().items()]
        return "\n".join(lines)
