"""Parameters: `params.yaml` holds one section per paper with a block per profile.

    profile: mini            # mini | smoke | paper (override: dvc exp run -S profile=paper)
    seed: 0
    mohan2020:
      common: {...}          # shared by every profile
      mini:   {...}          # overrides for the profile
      smoke:  {...}
      paper:  {...}

`load("mohan2020")` returns common updated (recursively) by the active profile's block,
plus the keys `profile` and `seed`.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

PROFILES = ("mini", "smoke", "paper")
REPO_ROOT = Path(__file__).resolve().parent.parent


class ParamsError(ValueError):
    pass


def params_path() -> Path:
    """params.yaml of the working directory (DVC runs stages from the repo root), else the repo's."""
    env = os.environ.get("REPLICATE_PARAMS")
    if env:
        return Path(env)
    local = Path.cwd() / "params.yaml"
    return local if local.exists() else REPO_ROOT / "params.yaml"


def read_all(path: str | os.PathLike | None = None) -> dict:
    path = Path(path) if path else params_path()
    if not path.exists():
        raise ParamsError(f"no parameter file at {path}: run from the repository root or set REPLICATE_PARAMS")
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def active_profile(all_params: dict | None = None) -> str:
    all_params = read_all() if all_params is None else all_params
    profile = os.environ.get("REPLICATE_PROFILE") or all_params.get("profile", "mini")
    if profile not in PROFILES:
        raise ParamsError(
            f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)} "
            f"(e.g. `dvc exp run -S profile=mini`)"
        )
    return profile


def load(section: str, path: str | os.PathLike | None = None, profile: str | None = None) -> dict:
    """The merged parameters of one section for the active (or given) profile."""
    everything = read_all(path)
    profile = profile or active_profile(everything)
    if profile not in PROFILES:
        raise ParamsError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if section not in everything:
        raise ParamsError(f"params.yaml has no section {section!r} (sections: {', '.join(sorted(everything))})")
    block = everything[section] or {}
    merged = _merge(block.get("common", {}), block.get(profile, {}))
    merged["profile"] = profile
    merged["seed"] = int(everything.get("seed", 0))
    return merged
