"""Deterministic weight fill used by the architecture probes in shared/reference
(copied to tests/fixtures/reference).

The probes (``reference/arch_probes/*.pt``) hold the output of the ORIGINAL networks after every
floating-point tensor of their state dicts was overwritten by the recipe below (see
``reference/README.md``). The values depend only on each tensor's state-dict key and shape, so an
implementation with the same key names and shapes, filled the same way, must reproduce the probe
output to float32 rounding if and only if it computes the same function.
"""
from __future__ import annotations

import math
import zlib

import torch

# Keys (of tensors with fewer than two dimensions) that act as multiplicative scales: filled around 1.
_SCALE_SUFFIXES = ("weight", "gamma", "alpha", "running_var", "running_sd")


def reference_value(name: str, shape, dtype: torch.dtype) -> torch.Tensor:
    """The recipe's tensor for state-dict key ``name`` with ``shape``, cast to ``dtype``."""
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    r = torch.randn(tuple(shape), generator=g, dtype=torch.float64)
    if len(shape) >= 2:
        # fan-in scaling keeps activations O(1) through deep stacks
        r = r / math.sqrt(math.prod(shape[1:]))
    elif name.endswith(_SCALE_SUFFIXES):
        r = 1.0 + 0.1 * r
    else:
        r = 0.1 * r
    return r.to(dtype)


@torch.no_grad()
def fill_reference(module: torch.nn.Module) -> None:
    """Fill every floating parameter and buffer of ``module`` in place, keyed by its state-dict name.

    Integer buffers (e.g. BatchNorm's ``num_batches_tracked``) are left untouched, as in the recipe.
    """
    for name, t in module.state_dict(keep_vars=True).items():
        if t is None or not t.is_floating_point():
            continue
        t.copy_(reference_value(name, t.shape, t.dtype).to(t.device))
