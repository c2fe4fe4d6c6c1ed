"""Run-time environment shared by all stages: device choice, threads, determinism, provenance."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

from replicate.params import REPO_ROOT

# ASSUMPTION of every cost projection: one datacenter GPU runs these conv-net evaluations this many times faster than
# the CPU run that measured them (stated wherever a projection is shown; never used for a result)
ASSUMED_CPU_TO_GPU = 100.0


def setup(prm: dict) -> None:
    """Deterministic CPU numerics; threads from REPLICATE_THREADS (default: all cores)."""
    threads = int(os.environ.get("REPLICATE_THREADS", "0") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(int(prm.get("seed", 0)))


def device(prm: dict | None = None) -> torch.device:
    """`device: auto` -> cuda if available else cpu (the `paper` profile's GPU stages say when they need one)."""
    want = (prm or {}).get("device", "auto")
    if want == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(want)


def project_root() -> Path:
    """The checkout being run: the working directory when it holds params.yaml (DVC runs stages there)."""
    cwd = Path.cwd()
    return cwd if (cwd / "params.yaml").exists() else REPO_ROOT


def run_name(prm: dict) -> str:
    """The folder name of a run: the profile; `<profile>-prior-<name>` when the prior was replaced from the
    environment (`--prior`, REPLICATE_PRIOR), so that such a run never overwrites the results params.yaml describes
    (a prior set in params.yaml is tracked by DVC and writes the usual folders)."""
    override = prm.get("prior_override")
    if override is None or prm.get("prior_source") != "environment":
        return prm["profile"]
    name = override.get("target", override.get("kind")) if isinstance(override, dict) else str(override)
    slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    return f"{prm['profile']}-prior-{slug}"


def results_dir(prm: dict, paper: str) -> Path:
    return project_root() / "results" / run_name(prm) / paper


def arrays_dir(prm: dict, paper: str, what: str) -> Path:
    """Where the per-image stage `<paper>_<what>` keeps the images its figures need (pipeline.stage.per_image_stage)."""
    return results_dir(prm, paper) / f"{what}_arrays"


def figures_dir(prm: dict, paper: str) -> Path:
    return project_root() / "figures" / run_name(prm) / paper


def tables_dir(prm: dict, paper: str) -> Path:
    return project_root() / "tables" / run_name(prm) / paper


def models_dir(prm: dict, paper: str) -> Path:
    return project_root() / "data" / "models" / prm["profile"] / paper


def provenance(root: Path | None = None) -> dict:
    """Versions and hardware, recorded with every result file."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=root or REPO_ROOT, timeout=5).stdout.strip()
    except Exception:  # not a git checkout
        commit = ""
    import numpy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": commit,
    }
