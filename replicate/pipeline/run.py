"""Run one stage: its parameters (only the sections it declares), its function, then its manifest.

A stage that reads a params section it did not declare fails at once (the declaration is what DVC tracks), and the
manifest is written only after the stage finished, atomically, so a stage killed half-way leaves no manifest that
vouches for half-written outputs.
"""
from __future__ import annotations

import datetime as _dt
import os
import subprocess
import sys
import time
from pathlib import Path

from replicate import params as P
from replicate.io import write_csv, write_json, write_text
from replicate.pipeline import manifest as M
from replicate.pipeline.stage import DIAGNOSTICS, PerImage, Stage, at


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=10"], capture_output=True,
                             text=True, cwd=root, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def run_per_image(spec: PerImage, prm: dict) -> None:
    """The body of a per-image stage: plan, then every item through the scale-out runner."""
    from replicate import runtime
    from replicate.scaleout import run_per_image as run_items

    prm, items = spec.plan(prm)
    root = runtime.project_root()
    folder = runtime.run_name(prm)
    out = root / at(spec.csv, folder)
    side = root / at(spec.side, folder) if spec.side else None
    if not items:
        import pandas as pd

        write_csv(out, pd.DataFrame(columns=[*spec.key_columns, "status"]))
        if side is not None:  # a declared output: git keeps no empty folder, so it holds a note
            write_text(side / "README.txt", "Per-image arrays go here; this run had no images to compute (see the "
                                            "stage's availability file and manifest).\n")
        return
    run_items(spec.rows, prm, items, out, side_dir=side)


def peak_memory() -> dict:
    """The stage's peak memory: resident set of this process and of its finished worker processes (resource.getrusage
    ru_maxrss, the high-water mark of each process, not their sum) and, on a GPU, torch's peak allocation (the runbook
    projects GPU memory from these: replicate.report.runbook)."""
    import resource

    import torch

    out = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available():
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


AUDIT_ENV = "REPLICATE_AUDIT_READS"   # a folder: each stage run writes there the project files it opened


def _audit_reads(root: Path) -> set[str]:
    """Record every file under `root` the process opens (Python's audit hook on `open`), for the test that checks
    each stage's declared inputs are complete (tests/test_pipeline.py)."""
    opened: set[str] = set()
    base = str(root.resolve()) + "/"

    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, Path)):
            path = os.path.abspath(os.fsdecode(args[0]))
            if path.startswith(base):
                opened.add(path[len(base):])

    sys.addaudithook(hook)
    return opened


def execute(stage: Stage, root: Path | None = None) -> dict:
    """Run `stage` for the active profile in `root` (default: the working directory's checkout); returns its
    manifest."""
    from replicate import runtime
    from replicate.assets import registry

    root = root or runtime.project_root()
    audit_dir = os.environ.get(AUDIT_ENV)
    opened = _audit_reads(root) if audit_dir else None
    everything = P.read_all(root / "params.yaml")
    profile = P.active_profile(everything)
    prm = P.load(stage.section, path=root / "params.yaml", profile=profile)
    folder = runtime.run_name(prm)   # the profile, or <profile>-prior-<name> for a prior given by --prior
    runtime.setup(prm)
    deps, tracked = M.dependency_hashes(stage, profile, root), M.tracked_params(stage, profile, root)
    effective = M.effective_params(stage, profile, root)
    DIAGNOSTICS.values.clear()
    registry.REQUESTS.clear()
    started = time.perf_counter()
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with P.only_sections(stage.sections):
        if stage.per_image is not None:
            run_per_image(stage.per_image, prm)
        if stage.run is not None:   # a stage's own body; after its per-image rows when it has both
            stage.run(prm)
    seconds = time.perf_counter() - started
    missing = [at(p, folder) for p in stage.outs if not (root / at(p, folder)).exists()]
    if missing:
        raise RuntimeError(f"stage {stage.name} finished without writing {', '.join(missing)} (a bug in the stage)")
    run_info = {"commit": git_commit(root), "started": stamp, "seconds": round(seconds, 2), **peak_memory(),
                **runtime.provenance(root)}
    manifest = M.build(stage, profile, root, deps=deps, params=tracked, effective=effective,
                       assets=dict(sorted(registry.REQUESTS.items())), diagnostics=dict(DIAGNOSTICS.values),
                       run=run_info, folder=folder)
    write_json(M.manifest_path(stage, folder, root), manifest)
    if opened is not None:
        write_text(Path(audit_dir) / f"{stage.name}.txt", "\n".join(sorted(opened)) + "\n")
    return manifest


def main_for(stage: Stage) -> int:
    start = time.perf_counter()
    profile = P.active_profile()
    print(f"[replicate] {stage.name} (profile {profile})", file=sys.stderr)
    execute(stage)
    print(f"[replicate] {stage.name} done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0
