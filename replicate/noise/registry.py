"""The one registry of noise models, both families (replicate/noise/base.py): name -> constructor, make_noise(name).

Written out here, not filled by decorators as modules happen to be imported, so that the list below is the whole
registry. Each name is the model's ``registered_name``; a name used twice is an error.

    clean, gaussian, poisson        measurement noise (measurement.py), e.g. make_noise("gaussian", sigma=0.05,
                                    scale="pm1") = GaussianNoise(0.05, "pm1")
    xie2023_no1 ... xie2023_no16    Xie et al. 2023, Table 1 (xie2023.py): make_noise("xie2023_no3", params={"a": 0.98},
                                    kernel=..., conv_eps=..., poisson_score=...) = table1_model(3, {"a": 0.98}, ...)
"""
from __future__ import annotations

from functools import partial
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from replicate.noise.base import NoiseModel
from replicate.noise.measurement import GaussianNoise, NoNoise, PoissonNoise
from replicate.noise.xie2023 import ALL_MODELS, table1_model, table1_name


def _table(entries: Iterable[tuple[str, Callable[..., NoiseModel]]]) -> Mapping[str, Callable[..., NoiseModel]]:
    table: dict[str, Callable[..., NoiseModel]] = {}
    for name, make in entries:
        if not name:
            raise ValueError(f"{make!r} has no registered name")
        if name in table:
            raise ValueError(f"noise model name {name!r} is registered twice ({table[name]!r} and {make!r})")
        table[name] = make
    return MappingProxyType(table)


_MEASUREMENT = (NoNoise, GaussianNoise, PoissonNoise)
MEASUREMENT_NOISES = tuple(cls.registered_name for cls in _MEASUREMENT)
XIE2023_NOISES = tuple(table1_name(no) for no in ALL_MODELS)

#: registered name -> constructor (a class, or Table 1's constructor with the model number bound)
NOISES: Mapping[str, Callable[..., NoiseModel]] = _table(
    [(cls.registered_name, cls) for cls in _MEASUREMENT]
    + [(table1_name(no), partial(table1_model, no)) for no in ALL_MODELS])


def make_noise(name: str, **kwargs) -> NoiseModel:
    """The noise model registered as ``name``, built with ``kwargs`` (its constructor's arguments)."""
    if name not in NOISES:
        raise KeyError(f"unknown noise model {name!r}; known: {', '.join(sorted(NOISES))}")
    return NOISES[name](**kwargs)
