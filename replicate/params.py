"""Parameters: `params.yaml` holds one section per paper with a block per profile.

    profile: mini            # mini | smoke | paper | dryrun (override: dvc exp run -S profile=paper)
    seed: 0
    mohan2020:
      common: {...}          # shared by every profile
      mini:   {...}          # overrides for the profile (merged recursively into common)
      smoke:  {...}
      paper:  {...}

`load("mohan2020")` returns common updated (recursively) by the active profile's block, validated against the
section's schema (`replicate/config/<section>.py`, where there is one), plus the keys `profile` and `seed`.
Mistakes are one-line errors that name the file, the section and the key (`ParamsError`).

The paper profile may hold a `cpu_subset` block: on a machine without a GPU it is merged over the paper's parameters
(recursively; a mapping with an `only: [keys]` entry keeps just those keys), and the result says so: `subset` is
"cpu_subset" (else "full") and `not_run_on_cpu` lists what the subset dropped. This is resolved here, once, for
every paper, so a stage never decides it again.

The `dryrun` profile runs the paper profile's code paths and settings at a tiny size (issue 18): its parameters are
common -> paper -> dryrun, each merged recursively over the one before (the `dryrun` block holds only the reductions:
images per set, network evaluations per sampler, resolution, `device: auto`; a mapping with `only: [keys]` keeps
just those keys, as in `cpu_subset`). The paper block's `cpu_subset` never applies under dryrun (it runs the full GPU
configuration, tiny), and `code_profile()` is "paper" for it: every `profile == "paper"` decision of the code asks
`code_profile(prm) == "paper"` instead. Its outputs go to results/dryrun/ etc. (never committed).

To override one value for one run: `dvc exp run -S 'mohan2020.mini.decomposition.patches_per_sigma=40'` (a key that
params.yaml already has), or `-S '+kawar2021.mini.n_samples=4'` (DVC's `+` adds a key the file does not have yet).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import os
from pathlib import Path

import yaml

PROFILES = ("mini", "smoke", "paper", "dryrun")
#: profiles that run another profile's code paths and settings, with their own block merged on top (params.load)
BASE_PROFILE = {"dryrun": "paper"}
REPO_ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = {"profile", "seed", "launcher", "prior"}      # keys of params.yaml that are not paper sections
#: the sections whose learned prior the top-level `prior` replaces (replicate.denoisers.priors.resolve)
PRIOR_SECTIONS = ("kawar2021", "chung2023", "elad_lecture", "kadkhodaie2021")


class ParamsError(ValueError):
    pass


def params_path() -> Path:
    """params.yaml of the working directory (DVC runs stages from the repo root), else the repo's."""
    env = os.environ.get("REPLICATE_PARAMS")
    if env:
        return Path(env)
    local = Path.cwd() / "params.yaml"
    return local if local.exists() else REPO_ROOT / "params.yaml"


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> dict:
    with open(path) as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise ParamsError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must be a mapping of sections")
    return data


def read_all(path: str | os.PathLike | None = None) -> dict:
    path = Path(path) if path else params_path()
    if not path.exists():
        raise ParamsError(f"no parameter file at {path}: run from the repository root or set REPLICATE_PARAMS")
    return copy.deepcopy(_read(str(path), path.stat().st_mtime_ns))


def merge(base: dict, override: dict) -> dict:
    """`base` updated recursively by `override` (mappings merge key by key; anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
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


def code_profile(profile_or_prm) -> str:
    """The profile whose code paths a profile runs: "paper" for paper and dryrun, else the profile itself. Takes a
    profile name or a section's params (its `profile`)."""
    profile = profile_or_prm.get("profile") if isinstance(profile_or_prm, dict) else profile_or_prm
    return BASE_PROFILE.get(profile, profile)


def is_dryrun(profile_or_prm) -> bool:
    """Whether a profile (or a section's params) is the dry run of another profile's code (BASE_PROFILE)."""
    profile = profile_or_prm.get("profile") if isinstance(profile_or_prm, dict) else profile_or_prm
    return profile in BASE_PROFILE


# ------------------------------------------------------------------------------------------ declared sections
_ALLOWED: list[frozenset] = []


@contextlib.contextmanager
def only_sections(sections):
    """Inside a stage: loading a section the stage did not declare is an error (DVC tracks only the declared ones)."""
    _ALLOWED.append(frozenset(sections))
    try:
        yield
    finally:
        _ALLOWED.pop()


def _check_declared(section: str) -> None:
    if _ALLOWED and section not in _ALLOWED[-1]:
        raise ParamsError(f"this stage reads params section {section!r} but does not declare it (add it to the "
                          f"stage's also_reads); declared: {', '.join(sorted(_ALLOWED[-1]))}")


# ------------------------------------------------------------------------------------------ schemas
def schema(section: str):
    """The validator of a section (replicate/config/<section>.py: `validate(merged, where) -> dict`), or None."""
    try:
        module = importlib.import_module(f"replicate.config.{section}")
    except ModuleNotFoundError as exc:
        if exc.name == f"replicate.config.{section}":
            return None
        raise
    return module.validate


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _merge_only(base: dict, override: dict, where: str, dropped: dict) -> dict:
    """merge(), where a mapping of `override` with an `only: [...]` entry keeps just those keys of the result."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key == "only":
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_only(out[key], value, f"{where}{key}.", dropped)
        else:
            out[key] = copy.deepcopy(value)
    if "only" in override:
        keep = list(override["only"])
        lost = [k for k in keep if k not in out]
        if lost:
            raise ParamsError(f"cpu_subset: {where or '(top)'} only: {lost} name keys that are not there")
        gone = {k: v for k, v in out.items() if k not in keep}
        if gone:
            dropped[where.rstrip(".") or "(top)"] = gone
        out = {k: v for k, v in out.items() if k in keep}
    return out


def resolve_subset(merged: dict, gpu: bool) -> dict:
    """Apply a `cpu_subset` block (see the module doc); adds `subset` and, when it dropped keys, `not_run_on_cpu`."""
    sub = merged.pop("cpu_subset", None)
    if sub is None or gpu:
        return {**merged, "subset": "full"}
    dropped: dict = {}
    out = _merge_only(merged, sub, "", dropped)
    out["subset"] = "cpu_subset"
    if dropped:
        out["not_run_on_cpu"] = dropped
    return out


def load(section: str, path: str | os.PathLike | None = None, profile: str | None = None,
         gpu: bool | None = None) -> dict:
    """The merged, validated parameters of one section for the active (or given) profile; `gpu` (default: whether
    torch sees one) decides whether the paper profile's `cpu_subset` applies."""
    _check_declared(section)
    path = Path(path) if path else params_path()
    everything = read_all(path)
    profile = profile or active_profile(everything)
    if profile not in PROFILES:
        raise ParamsError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if section not in everything:
        raise ParamsError(f"{path.name} has no section {section!r} (sections: "
                          f"{', '.join(sorted(k for k in everything if k not in TOP_LEVEL))})")
    block = everything[section] or {}
    unknown = sorted(set(block) - {"common", *PROFILES})
    if unknown:
        raise ParamsError(f"{path.name}: {section}: unknown block(s) {unknown}; a section holds common and the "
                          f"profiles {', '.join(PROFILES)}")
    base = BASE_PROFILE.get(profile)
    if base is not None:   # dryrun: common -> paper (without its cpu_subset) -> dryrun; the full configuration, tiny
        merged = merge(block.get("common") or {}, block.get(base) or {})
        merged.pop("cpu_subset", None)
        merged = _merge_only(merged, block.get(profile) or {}, "", {})
        merged["subset"] = "full"
    else:
        merged = merge(block.get("common") or {}, block.get(profile) or {})
        merged = resolve_subset(merged, gpu_available() if gpu is None else gpu)
    validate = schema(section)
    if validate is not None:
        merged = validate(merged, where=f"{path.name}: {section} ({profile})")
    merged["profile"] = profile
    try:
        merged["seed"] = int(everything.get("seed", 0))
    except (TypeError, ValueError):
        raise ParamsError(f"{path.name}: seed must be an integer, got {everything.get('seed')!r}") from None
    if section in PRIOR_SECTIONS:
        merged["prior_override"], merged["prior_source"] = prior_override(everything, path)
    return merged


def prior_override(everything: dict, path: Path) -> tuple[object, str]:
    """(the user's prior or None, where it came from): REPLICATE_PRIOR (the CLI's --prior) over params.yaml's
    top-level `prior` ("default": each paper's own prior)."""
    env = os.environ.get("REPLICATE_PRIOR")
    value, source = (env, "environment") if env else (everything.get("prior", "default"), "params")
    if value in (None, "default"):
        return None, source
    if isinstance(value, dict):
        if "kind" not in value:
            raise ParamsError(f"{path.name}: prior: a mapping needs kind (a prior name or plugin), got {value}")
    elif not isinstance(value, str) or not value:
        raise ParamsError(f"{path.name}: prior must be default, a prior name, 'package.module:factory' or a mapping "
                          f"with kind, got {value!r}")
    return value, source
