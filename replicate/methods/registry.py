"""The method registry: every algorithm of the papers by name, with one signature.

    method(denoiser, operator, noise, y, *, generator=None, **settings) -> Reconstruction

  denoiser  the prior, a ``Denoiser`` D(x, sigma) on [0, 1] images (replicate.denoisers; None for methods without one)
  operator  the forward model A (replicate.operators; None where there is no measurement, e.g. sampling the prior)
  noise     the measurement noise model (replicate.noise), which says its level and scale
  y         measurements, one row per reconstruction (repeat a row to draw several posterior samples)
  generator the seeded torch.Generator every random draw comes from (methods seeded per sample take ``seeds=``)
  settings  the method's own parameters, named as in its paper (documented on each function)

A method declares what it needs (``requires``): "gradient" (it backpropagates through the prior: DPS, MCG), "svd"
(a cheap SVD of A: DDRM, SNIPS), "linear", "gaussian_noise", "prior". ``applicable`` says, in words, why a method
cannot run on a (prior, operator, noise), so tables print a reason instead of crashing. Experiments look methods up
by name (``run``); nothing here knows about datasets.

To add a method: a function in a module of this package, decorated with ``@register_method("name", requires=...)``,
and the module imported in ``_load_builtin``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from replicate.methods.result import Reconstruction

REQUIREMENTS = ("prior", "gradient", "svd", "linear", "gaussian_noise", "operator")


@dataclass(frozen=True)
class Method:
    name: str
    run: Callable[..., Reconstruction]
    requires: tuple[str, ...] = ()
    paper: str = ""                      # where it comes from (the docs list it)


METHODS: dict[str, Method] = {}


def register_method(name: str, *, requires: tuple[str, ...] = (), paper: str = "") -> Callable:
    """Decorator: register ``fn(denoiser, operator, noise, y, *, generator=None, **settings) -> Reconstruction``."""
    unknown = set(requires) - set(REQUIREMENTS)
    if unknown:
        raise ValueError(f"method {name}: unknown requirement(s) {sorted(unknown)}; known: {REQUIREMENTS}")

    def deco(fn: Callable) -> Callable:
        if name in METHODS and METHODS[name].run is not fn:
            raise ValueError(f"method name {name!r} is already registered")
        METHODS[name] = Method(name, fn, tuple(requires), paper)
        return fn

    return deco


def _load_builtin() -> None:
    # the method modules register themselves on import; a static import here, so that the pipeline's dependency
    # scan (replicate.pipeline.codedeps) sees every method a registry user may run
    from replicate.methods import (classical, diffusion, implicit_prior, langevin, plug_and_play,  # noqa: F401
                                   score_equation)


def get(name: str) -> Method:
    _load_builtin()
    if name not in METHODS:
        import difflib

        close = difflib.get_close_matches(name, METHODS, n=3)
        raise KeyError(f"unknown method {name!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                                    f"; known: {', '.join(sorted(METHODS))}"))
    return METHODS[name]


def names() -> list[str]:
    _load_builtin()
    return sorted(METHODS)


def applicable(name: str, denoiser, operator, noise) -> str:
    """"" if the method can run on this prior, operator and noise; else why not (one line, for a table cell)."""
    needs = get(name).requires
    if "prior" in needs and denoiser is None:
        return f"{name} needs a prior"
    if "gradient" in needs and denoiser is not None and not getattr(denoiser, "differentiable", True):
        return f"{name} backpropagates through the prior; {type(denoiser).__name__} is not differentiable"
    if "operator" in needs and operator is None:
        return f"{name} needs a forward operator"
    if "linear" in needs and operator is not None and not operator.linear:
        return f"{name} needs a linear operator"
    if "svd" in needs and operator is not None and not operator.svd_available:
        return f"{name} needs the SVD of the operator, which {type(operator).__name__} does not provide"
    if "gaussian_noise" in needs and noise is not None and getattr(noise, "registered_name", "") != "gaussian":
        return f"{name} assumes Gaussian noise (got {getattr(noise, 'registered_name', type(noise).__name__)})"
    return ""


def run(name: str, denoiser, operator, noise, y, *, generator=None, **settings) -> Reconstruction:
    """Run the method ``name`` (see the module doc for the signature)."""
    return get(name).run(denoiser, operator, noise, y, generator=generator, **settings)
