"""External files (test sets, weights, metric networks, data sets): registry and verified fetcher.

    from replicate.assets import fetch, fetch_set, availability
    path = fetch("weights/kair/dncnn_25.pth")          # verified local copy
    images = fetch_set("testsets/set12")                # all files of a set, or one error listing all missing

See ``registry.py`` for the search order (cache -> REPLICATE_MIRROR -> network) and hash handling, and
``build_registry.py`` for where the rows of ``registry.tsv`` come from.
"""
from __future__ import annotations

import importlib

__all__ = [
    "Asset", "AssetError", "AssetUnavailable", "ChecksumError", "SizeError", "VerificationError",
    "assets_in", "availability", "cache_dir", "cache_path", "fetch", "fetch_set", "get", "load_registry",
    "mirror_dirs", "set_names", "verify",
]


def __getattr__(name: str):
    # Imported lazily so that `python -m replicate.assets.registry` does not find the module pre-imported.
    if name in __all__:
        return getattr(importlib.import_module(".registry", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
