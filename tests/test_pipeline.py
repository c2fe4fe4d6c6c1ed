"""End to end: `dvc repro` of the smoke profile in a scratch copy of this checkout, and the CLI's error paths."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DVC = Path(sys.executable).with_name("dvc")


def scratch_copy(dest: Path) -> Path:
    """Copy the files git would see (tracked + untracked, not ignored) into a fresh git repository."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file() and not f.startswith(("results/", "figures/", "tables/")):
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def env_for(tmp: Path, mirror: Path) -> dict:
    env = dict(os.environ, REPLICATE_MIRROR=str(mirror), REPLICATE_OFFLINE="1", REPLICATE_CACHE=str(tmp / "cache"),
               REPLICATE_THREADS="2", PYTHONPATH=str(tmp),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("REPLICATE_PROFILE", None)
    return env


@pytest.mark.slow
def test_dvc_repro_smoke(tmp_path, mirror):
    work = scratch_copy(tmp_path / "repo")
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["profile"] = "smoke"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = subprocess.run([str(DVC), "repro"], cwd=work, env=env_for(tmp_path, mirror), capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = (work / "tables" / "REPORT.md").read_text()
    assert "Robust and interpretable blind image denoising" in report
    summary = json.loads((work / "tables" / "smoke" / "mohan2020" / "summary.json").read_text())
    assert summary["profile"] == "smoke" and summary["items"]["Fig. 1"]["files"]
    for f in summary["items"]["Fig. 2"]["files"]:
        assert (work / f).stat().st_size > 1000
    gen = (work / "results" / "smoke" / "mohan2020" / "generalization.csv").read_text().splitlines()
    assert gen[0].startswith("set,image_index,image,model") and len(gen) > 1
    # nothing half-written left behind
    assert not list(work.rglob("*.tmp"))
    # a second repro has nothing to do (the pipeline is deterministic and complete)
    again = subprocess.run([str(DVC), "status"], cwd=work, env=env_for(tmp_path, mirror), capture_output=True, text=True)
    assert "changed" not in again.stdout, again.stdout


def run_cli(args, cwd, env):
    return subprocess.run([sys.executable, "-m", "replicate", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_unknown_profile_is_a_clear_error(tmp_path, mirror):
    env = env_for(tmp_path, mirror) | {"REPLICATE_PROFILE": "huge", "PYTHONPATH": str(REPO)}
    run = run_cli(["mohan2020", "models"], REPO, env)
    assert run.returncode != 0
    assert "unknown profile 'huge'" in run.stderr and "mini, smoke, paper" in run.stderr


def test_unknown_stage_lists_the_stages(tmp_path, mirror):
    run = run_cli(["mohan2020", "nope"], REPO, env_for(tmp_path, mirror) | {"PYTHONPATH": str(REPO)})
    assert run.returncode != 0 and "generalization" in run.stderr


def test_missing_models_says_which_stage_to_run(tmp_path, mirror):
    work = scratch_copy(tmp_path / "repo")
    env = env_for(tmp_path, mirror) | {"REPLICATE_PROFILE": "smoke"}
    run = run_cli(["mohan2020", "generalization"], work, env)
    assert run.returncode != 0 and "run the models stage first" in run.stderr
    assert not (work / "results" / "smoke" / "mohan2020" / "generalization.csv").exists()
