"""Manifests: what a stage ran on, written next to its outputs, and whether that still holds (staleness).

A manifest (`results/<profile>/manifests/<stage>.json`) records
  deps         sha256 of every file the stage depends on: the source files of its import closure, its params
               schema, and the inputs it reads (other stages' outputs, committed files)
  params       what DVC tracks of params.yaml for it (profile, seed, its whole sections): staleness compares these
  effective    the parameters it saw: each section merged for its profile, validated, CPU subset resolved
  outs         sha256 of every output
  assets       every external file set it asked the registry for, with its registered sha256 or why it is missing
  diagnostics  what the stage recorded about its own run (replicate.pipeline.stage.note)
  run          commit, seconds, threads, device, versions (informational: never compared)
A stage is **stale** when a dependency's hash, the set of its dependencies or its effective parameters differ from
the manifest, and **tampered** when an output no longer has the recorded hash. This is what `dvc status` says for the
active profile, for every committed profile, and without the model weights or the datasets (their hashes are in the
manifests and in the asset registry).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from replicate.pipeline.codedeps import REPO_ROOT, closure_files
from replicate.pipeline.stage import Stage, at

FORMAT = 1
# fields of a manifest that say how a run went, not what it computed: never part of a comparison
VOLATILE = ("run",)


def _skip(path: Path) -> bool:
    return any(part.startswith(".") or part.endswith(".parts") or part == "__pycache__" for part in path.parts)


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def path_hash(path: Path) -> str | None:
    """sha256 of a file; of a folder, the hash of its sorted (relative path, file hash) listing; None if absent."""
    if path.is_file():
        return file_hash(path)
    if path.is_dir():
        lines = []
        for f in sorted(p for p in path.rglob("*") if p.is_file() and not _skip(p.relative_to(path))):
            lines.append(f"{f.relative_to(path).as_posix()}\0{file_hash(f)}\n")
        return hashlib.sha256("".join(lines).encode()).hexdigest()
    return None


def locate(path: str, root: Path) -> Path:
    """Source files belong to the code that runs (the package's checkout); everything else to the project root."""
    return (REPO_ROOT if path.startswith("replicate/") else root) / path


def config_module(section: str) -> str:
    return f"replicate/config/{section}.py"


def dependency_paths(stage: Stage, profile: str) -> list[str]:
    """Every file / folder the stage depends on, repository-relative, sorted (what dvc.yaml's deps list too)."""
    schemas = [f"replicate.config.{s}" for s in stage.sections if (REPO_ROOT / config_module(s)).is_file()]
    code = closure_files([stage.module, *schemas])   # params.load imports a section's schema by name
    inputs = [at(p, profile) for p in stage.inputs]
    return sorted(set(code) | set(inputs))


def tracked_params(stage: Stage, profile: str, root: Path | None = None) -> dict:
    """What DVC tracks of params.yaml for the stage: its top-level keys (`profile`, `seed`, `prior`) and its whole sections (every profile's
    block: a stage may read another profile's block, as the training-cost projection reads the paper's)."""
    from replicate import params as P

    everything = P.read_all((root or REPO_ROOT) / "params.yaml")
    out = {s: everything.get(s) for s in stage.sections}
    defaults = {"profile": profile, "seed": 0, "prior": "default"}
    out.update({k: profile if k == "profile" else everything.get(k, defaults[k]) for k in stage.top_level_params})
    return out


def effective_params(stage: Stage, profile: str, root: Path | None = None) -> dict:
    """The parameters the stage saw: each declared section merged and validated for the profile."""
    from replicate import params as P

    path = (root or REPO_ROOT) / "params.yaml"
    return {s: P.load(s, path=path, profile=profile) for s in stage.sections}


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def dependency_hashes(stage: Stage, profile: str, root: Path) -> dict:
    """Hashes of the stage's dependencies now (taken before it runs: what it ran on, even if a file changes while a
    long stage is running)."""
    return {p: path_hash(locate(p, root)) for p in dependency_paths(stage, profile)}


def build(stage: Stage, profile: str, root: Path, *, deps: dict, params: dict, effective: dict, assets: dict,
          diagnostics: dict, run: dict, folder: str | None = None) -> dict:
    """The manifest; `folder`: where the outputs went when not the profile's folders (a run with --prior)."""
    folder = folder or profile
    outs = {at(p, folder): path_hash(root / at(p, folder)) for p in stage.outs}
    out = {"format": FORMAT, "stage": stage.name, "profile": profile, "deps": deps,
           "params": params, "effective": effective, "outs": outs, "assets": assets,
           "diagnostics": diagnostics, "run": run}
    if folder != profile:
        out["folder"] = folder
    return out


def manifest_path(stage: Stage, profile: str, root: Path | None = None) -> Path:
    return (root or REPO_ROOT) / at(stage.manifest, profile)


def read(stage: Stage, profile: str, root: Path | None = None) -> dict | None:
    path = manifest_path(stage, profile, root)
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass
class Staleness:
    stage: str
    profile: str
    missing: bool = False                                  # no manifest: never run for this profile...
    orphans: list[str] = field(default_factory=list)       # ...or run by code older than the manifests: its outputs
    changed: list[str] = field(default_factory=list)       # deps whose hash changed
    added: list[str] = field(default_factory=list)         # deps the stage has now, not when it ran
    removed: list[str] = field(default_factory=list)       # deps it had then, not now
    params: list[str] = field(default_factory=list)        # params sections whose effective values changed
    tampered: list[str] = field(default_factory=list)      # outputs whose hash is not the recorded one
    since: str = ""                                        # the commit the manifest was written on

    @property
    def stale(self) -> bool:
        return bool(self.missing or self.changed or self.added or self.removed or self.params)

    @property
    def ok(self) -> bool:
        return not (self.stale or self.tampered)

    def reasons(self, limit: int = 6) -> str:
        if self.missing and self.orphans:
            return (f"results from code older than the manifests ({', '.join(self.orphans[:2])}"
                    f"{' ...' if len(self.orphans) > 2 else ''}), not rerun since")
        if self.missing:
            return "never run for this profile (no manifest)"
        parts = []
        for label, items in (("changed", self.changed), ("new deps", self.added), ("dropped deps", self.removed),
                             ("params", self.params), ("outputs edited after the run", self.tampered)):
            if items:
                shown = ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")
                parts.append(f"{label}: {shown}")
        return "; ".join(parts)


def staleness(stage: Stage, profile: str, root: Path | None = None, *, check_outs: bool = True) -> Staleness:
    """Compare the stage's manifest for `profile` with the current tree (code, inputs, params.yaml, outputs)."""
    root = root or REPO_ROOT
    result = Staleness(stage.name, profile)
    m = read(stage, profile, root)
    if m is None:
        result.missing = True
        result.orphans = [out for out in (at(t, profile) for t in stage.all_outs) if (root / out).exists()]
        return result
    result.since = (m.get("run") or {}).get("commit", "")
    now = dependency_paths(stage, profile)
    recorded = m.get("deps", {})
    result.added = sorted(set(now) - set(recorded))
    result.removed = sorted(set(recorded) - set(now))
    result.changed = sorted(p for p in set(now) & set(recorded) if path_hash(locate(p, root)) != recorded[p])
    current = tracked_params(stage, profile, root)
    for key, value in current.items():
        if canonical(value) != canonical(m.get("params", {}).get(key)):
            result.params.append(key)
    if check_outs:
        result.tampered = sorted(p for p, h in m.get("outs", {}).items() if path_hash(root / p) != h)
    return result
