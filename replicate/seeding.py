"""Seeds derived from what a random draw is *for*, never from worker, shard or call order.

`generator(base_seed, "cbsd68", image_index, sample_index, ...)` returns a torch.Generator whose seed is a stable
hash of its arguments, so any subset of images can be run in any order, on any number of workers, with identical
numbers (the property the scale-out issue needs and the tests check).
"""
from __future__ import annotations

import hashlib

import torch


def derive_seed(base_seed: int, *keys) -> int:
    blob = "/".join([str(int(base_seed))] + [repr(k) for k in keys]).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & ((1 << 63) - 1)


def generator(base_seed: int, *keys, device: str | torch.device = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(base_seed, *keys))


def randn(shape, base_seed: int, *keys, dtype=torch.float32) -> torch.Tensor:
    """Standard normal draws on the CPU (identical on every machine), for noise realisations."""
    return torch.randn(shape, generator=generator(base_seed, *keys), dtype=dtype)
