"""Methods registered by name, one signature: ``method(denoiser, operator, noise, y, *, generator, **settings)``.

    from replicate import methods
    r = methods.run("dps", denoiser, operator, noise, y, generator=g, zeta=0.5, steps=1000)   # -> Reconstruction

See replicate/methods/registry.py. Nothing here imports the samplers or solvers at import time (the method modules
load when a method is first looked up), so that they can import ``replicate.methods.result`` without a cycle."""
from replicate.methods.registry import applicable, get, names, register_method, run
from replicate.methods.result import MethodDiverged, Reconstruction

__all__ = ["MethodDiverged", "Reconstruction", "applicable", "get", "names", "register_method", "run"]
