"""End to end: `dvc repro` of the smoke profile in a scratch copy of this checkout (every stage through DVC, with the
files each stage opens recorded), the smoke pipeline rerun and compared, and the CLI's error paths."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from replicate.stages import all_stages

REPO = Path(__file__).resolve().parent.parent
DVC = Path(sys.executable).with_name("dvc")
IGNORED_READS = (".git/", ".dvc/", "data/downloads/", "params.yaml")  # VCS, DVC, verified assets, the params file
# what runs every stage: the command line, the stage table and the runner (it records, it computes nothing)
RUNNER = ("replicate/__main__.py", "replicate/cli.py", "replicate/stages.py", "replicate/pipeline/run.py",
          "replicate/pipeline/manifest.py", "replicate/pipeline/codedeps.py")


def ignorable(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (path.startswith(IGNORED_READS) or path in RUNNER or "__pycache__" in path or "__path_hook__" in path
            or (name.startswith(".") and name.endswith(".tmp"))    # atomic writes of its outputs
            or ".parts/" in path or path.endswith(".parts"))       # a per-image stage's own finished items


def scratch_copy(dest: Path, with_results: bool = True) -> Path:
    """Copy the files git would see (tracked + untracked, not ignored) into a fresh git repository: what a fresh
    clone holds (the committed results of mini / paper included, unless with_results is False)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file() and (with_results or not f.startswith(("results/", "figures/", "tables/", "data/models/"))):
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def env_for(tmp: Path, mirror: Path) -> dict:
    env = dict(os.environ, REPLICATE_MIRROR=str(mirror), REPLICATE_OFFLINE="1", REPLICATE_CACHE=str(tmp / "cache"),
               REPLICATE_THREADS="2", PYTHONPATH=str(tmp), CI="",
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("REPLICATE_PROFILE", None)
    return env


def declared(stage: dict, profile: str) -> list[str]:
    paths = list(stage.get("deps", []))
    paths += [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
    return [p.replace("${profile}", profile) for p in paths]


def covered(path: str, allowed: list[str]) -> bool:
    return any(path == a or path.startswith(a.rstrip("/") + "/") for a in allowed)


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    """`dvc repro` of the smoke profile in a scratch copy of the checkout (a fresh clone's files), once per module,
    with the files each stage opens recorded."""
    from replicate.assets.registry import mirror_dirs

    mirrors = [d for d in mirror_dirs() if d.is_dir()]
    if not mirrors:
        pytest.skip("no offline mirror (set REPLICATE_MIRROR, or put shared/mirror beside the checkout)")
    tmp = tmp_path_factory.mktemp("smoke")
    work = scratch_copy(tmp / "repo")
    env = env_for(tmp / "repo", mirrors[0]) | {"REPLICATE_AUDIT_READS": str(tmp / "reads")}
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["profile"] = "smoke"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run = subprocess.run([str(DVC), "repro"], cwd=work, env=env, capture_output=True, text=True, timeout=3000)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return work, env, tmp / "reads"


PER_PROFILE = {s.name: s.per_profile for s in all_stages()}


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_dvc_repro_smoke_runs_every_stage_with_complete_declarations(smoke_repo):
    work, env, reads = smoke_repo
    summary = json.loads((work / "tables" / "smoke" / "mohan2020" / "summary.json").read_text())
    assert summary["profile"] == "smoke" and summary["items"]["Fig. 1"]["files"]
    gen = (work / "results" / "smoke" / "mohan2020" / "generalization.csv").read_text().splitlines()
    assert gen[0].startswith("set,image_index,image,model") and len(gen) > 1
    assert not list(work.rglob("*.tmp"))  # nothing half-written left behind
    # each paper's headline numbers are DVC metrics and its key curves DVC plots
    metrics = subprocess.run([str(DVC), "metrics", "show", "--json"], cwd=work, env=env, capture_output=True, text=True)
    shown = json.loads(metrics.stdout)
    files = {f for rev in shown.values() for f in rev.get("data", {})}
    assert {f"tables/smoke/metrics/{p}.json" for p in ("mohan2020", "chung2023", "xie2023")} <= files, files
    curve = (work / "tables" / "smoke" / "plots" / "mohan2020" / "generalization.csv").read_text().splitlines()
    assert curve[0] == "sigma,dncnn_bias,dncnn_bias_free" and len(curve) > 1

    # every stage wrote a manifest, and read only what its dvc.yaml entry declares (deps, its own outputs)
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        if PER_PROFILE[name]:   # the global stages (report, readme, runbook) are not per profile
            manifest = json.loads((work / "results" / "smoke" / "manifests" / f"{name}.json").read_text())
            assert manifest["stage"] == name and manifest["profile"] == "smoke"
            assert all(h is not None for h in manifest["deps"].values()), name
        log = reads / f"{name}.txt"
        if not log.exists():
            continue  # DVC found it up to date (the global report over the committed profiles)
        allowed = declared(stage, "smoke")
        undeclared = [p for p in log.read_text().split() if not ignorable(p) and not covered(p, allowed)]
        assert not undeclared, f"{name} read files its dvc.yaml entry does not declare: {undeclared[:5]}"
    # the pipeline is complete: DVC has nothing left to do
    status = subprocess.run([str(DVC), "status"], cwd=work, env=env, capture_output=True, text=True)
    assert "changed" not in status.stdout, status.stdout


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_smoke_pipeline_run_twice_gives_the_same_numbers(smoke_repo):
    # every item of every per-image stage recomputed and every other stage rerun on its committed inputs (the smoke
    # models retrained too): identical outputs, timing columns aside
    work, env, _ = smoke_repo
    again = subprocess.run([sys.executable, "-m", "replicate", "check-repro", "--profile", "smoke", "--items", "0",
                            "--rtol", "0", "--include-training"], cwd=work, env=env, capture_output=True, text=True, timeout=3000)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert " FAIL " not in again.stdout


PLUGIN = """
import torch


def shrink(strength=0.9):
    # a user's denoiser: pull each pixel towards a 3x3 local mean, more at higher noise (any D(x, sigma) on [0, 1])
    def D(x, sigma):
        w = (strength * sigma ** 2 / (sigma ** 2 + 0.01)).reshape(-1, 1, 1, 1)
        local = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
        return (1 - w) * x + w * local
    return D
"""


@pytest.mark.timeout(1800)
def test_a_users_denoiser_reruns_a_paper_as_an_analogue(smoke_repo):
    """The lecture's thesis as a tool: one plugin denoiser ('module:factory') reruns a paper's stages and report; its
    results go to their own folders, never over the DVC-tracked ones, and nothing it produces counts as reproduced."""
    work, env, _ = smoke_repo
    (work / "my_priors.py").write_text(PLUGIN)
    tracked = (work / "results" / "smoke" / "kadkhodaie2021" / "inverse.csv").read_bytes()
    run = run_cli(["kadkhodaie2021", "--prior", "my_priors:shrink", "--profile", "smoke"], work,
                  env | {"REPLICATE_AUDIT_READS": ""}, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = "smoke-prior-my-priors-shrink"
    inverse = (work / "results" / folder / "kadkhodaie2021" / "inverse.csv").read_text().splitlines()
    assert len(inverse) > 1
    manifest = json.loads((work / "results" / folder / "manifests" / "kadkhodaie2021_inverse.json").read_text())
    assert manifest["effective"]["kadkhodaie2021"]["prior_override"] == "my_priors:shrink"
    assert manifest["folder"] == folder and manifest["profile"] == "smoke"
    summary = json.loads((work / "tables" / folder / "kadkhodaie2021" / "summary.json").read_text())
    assert "prior: my_priors:shrink" in summary["setting"]
    verdicts = [c["verdict"] for c in summary["comparisons"]] + [c["status"] for c in summary["claims"]]
    assert verdicts and not any(v.startswith(("reproduced", "differs")) for v in verdicts)
    # the DVC-tracked results are untouched, and DVC still has nothing to do
    assert (work / "results" / "smoke" / "kadkhodaie2021" / "inverse.csv").read_bytes() == tracked
    status = subprocess.run([str(DVC), "status"], cwd=work, env=env, capture_output=True, text=True)
    assert "changed" not in status.stdout, status.stdout


def run_cli(args, cwd, env, timeout: int = 300):
    return subprocess.run([sys.executable, "-m", "replicate", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_unknown_profile_is_a_clear_error(tmp_path, mirror):
    env = env_for(tmp_path, mirror) | {"REPLICATE_PROFILE": "huge", "PYTHONPATH": str(REPO)}
    run = run_cli(["mohan2020_models"], REPO, env)
    assert run.returncode == 2
    assert "unknown profile 'huge'" in run.stderr and "mini, smoke, paper" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) <= 2


def test_unknown_stage_names_the_close_ones(tmp_path, mirror):
    run = run_cli(["mohan2020_generalisation"], REPO, env_for(tmp_path, mirror) | {"PYTHONPATH": str(REPO)})
    assert run.returncode == 2 and "mohan2020_generalization" in run.stderr and "Traceback" not in run.stderr


def test_cli_stage_names_are_the_dvc_stage_names(tmp_path, mirror):
    run = run_cli(["list"], REPO, env_for(tmp_path, mirror) | {"PYTHONPATH": str(REPO)})
    listed = [line.split()[0] for line in run.stdout.splitlines()]
    assert listed == list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    assert {f"{p}_report" for p in ("mohan2020", "kawar2021", "chung2023", "xie2023", "kadkhodaie2021",
                                    "elad_lecture")} <= set(listed)


def test_missing_models_says_which_stage_to_run(tmp_path, mirror):
    work = scratch_copy(tmp_path / "repo", with_results=False)
    env = env_for(tmp_path / "repo", mirror) | {"REPLICATE_PROFILE": "smoke"}
    run = run_cli(["mohan2020_generalization"], work, env)
    assert run.returncode == 2 and "dvc repro mohan2020_models" in run.stderr
    assert not (work / "results" / "smoke" / "mohan2020" / "generalization.csv").exists()
