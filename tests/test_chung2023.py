"""Chung et al. 2023 (DPS) experiment wiring: params of every profile (paper values), determinism of the per-image
rows, the paper profile's "not available here" path, and every stage end to end on smoke through the CLI (in a
scratch directory, so the checkout's results are not touched)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from replicate import params as P
from replicate.experiments import chung2023 as C
from replicate.pipeline.availability import unavailable as availability_of
from replicate.pipeline.run import run_per_image

REPO = Path(__file__).resolve().parent.parent


def load(work, profile="smoke", gpu=None) -> dict:
    """The section as a stage sees it; the paper profile's own values (its GPU part) with gpu=True."""
    return P.load(C.PAPER, work / "params.yaml", profile=profile, gpu=gpu if gpu is not None else profile == "paper")


def stage(name: str):
    return next(s for s in C.STAGES if s.name == name)


def test_params_every_profile_and_paper_values(smoke_root):
    work = smoke_root  # scratch project root (tests/conftest.py)
    for profile in P.PROFILES:
        prm = load(work, profile)
        assert set(prm["tasks"]) == {"sr4", "inpaint_box", "inpaint_random", "deblur_gauss", "deblur_motion"}
        assert set(prm["methods"]) == set(C.LINEAR_METHODS)
    paper = load(work, "paper")
    assert paper["noise"] == {"sigma": 0.05, "scale": "pm1"} and paper["poisson"]["rate"] == 1.0
    assert paper["steps"]["dps"] == 1000 and paper["steps"]["ddrm"] == 20
    assert paper["ddrm"]["eta"] == 0.85 and paper["ddrm"]["eta_b"] == 1.0
    t = paper["tasks"]
    assert t["inpaint_box"]["box"] == 128 and t["inpaint_random"]["missing"] == 0.92 and t["sr4"]["factor"] == 4
    assert t["deblur_gauss"] == {"operator": "gaussian_blur", "kernel_size": 61, "std": 3.0}
    assert t["deblur_motion"]["kernel_size"] == 61 and t["deblur_motion"]["intensity"] == 0.5
    pr = paper["phase_retrieval"]
    assert pr["iters"] == 10000 and pr["restarts"] == 4 and pr["beta"] == 0.9 and pr["oversample"] == 2.0
    assert paper["test_sets"]["ffhq"]["limit"] == 1000 and paper["test_sets"]["ffhq"]["prior"] == "adm_ffhq"


def test_linear_rows_deterministic(smoke_root, monkeypatch):
    work = smoke_root  # scratch project root (tests/conftest.py)
    monkeypatch.chdir(work)
    prm = load(work)
    prm["tasks"] = {k: prm["tasks"][k] for k in ("sr4", "deblur_motion")}
    prm["poisson"]["tasks"] = ["sr4"]
    prm["methods"] = ["dps", "ddrm", "score_sde"]
    first = C.linear_rows(prm, "skimage_color", 0)
    again = C.linear_rows(prm, "skimage_color", 0)
    strip = lambda rows: [{k: (None if v != v else v) for k, v in r.items() if k != "seconds_per_image"}  # noqa: E731
                          for r in rows]  # NaN (LPIPS not available) compares unequal to itself
    assert strip(first) == strip(again)
    motion_ddrm = [r for r in first if r["task"] == "deblur_motion" and r["method"] == "ddrm"]
    assert motion_ddrm and "SVD" in motion_ddrm[0]["status"]  # the paper's '-' cell
    assert {r["noise"] for r in first} == {"gaussian", "poisson"}


def test_paper_profile_says_not_available(smoke_root, monkeypatch):
    work = smoke_root  # scratch project root (tests/conftest.py)
    monkeypatch.chdir(work)
    prm = load(work, "paper")
    prm["test_sets"] = {k: v for k, v in prm["test_sets"].items() if k in ("ffhq", "imagenet")}
    sets, missing = C.image_sets(prm)
    from replicate.assets.registry import availability

    if availability("datasets/ffhq")[0]:
        pytest.skip("FFHQ is available here")
    assert not sets and "ffhq" in missing and "not" in missing["ffhq"]


def test_all_stages_end_to_end_through_the_cli(smoke_root):
    work = smoke_root  # scratch project root (tests/conftest.py)
    names = [s.name for s in C.STAGES] + ["chung2023_report"]
    code = ("from replicate.cli import main\n"
            f"for s in {names!r}:\n    assert main([s]) == 0\n")
    env = dict(os.environ, REPLICATE_PROFILE="smoke", REPLICATE_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("REPLICATE_PARAMS", None)
    run = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    res = work / "results" / "smoke" / "chung2023"
    lin = (res / "linear.csv").read_text().splitlines()
    assert lin[0].startswith("set,image_index,image,noise,task,method") and len(lin) > 30
    assert len((res / "phase_retrieval.csv").read_text().splitlines()) == 1 + 4
    summary = json.loads((work / "tables" / "smoke" / "chung2023" / "summary.json").read_text())
    items = summary["items"]
    assert items["Table 1"]["status"] == "not available here" and items["Table 1"]["files"]
    assert items["Table 4"]["status"] == "not available here"
    for fid in ("Fig. 4", "Fig. 5", "Fig. 6", "Fig. 8", "Fig. 11", "Table 3", "Table 5", "Table (wall-clock)"):
        assert items[fid]["files"], fid
        for f in items[fid]["files"]:
            assert (work / f).stat().st_size > 300, f
    assert all(c["verdict"] == "not available here" for c in summary["comparisons"])
    assert not list(work.rglob("*.tmp")) and not (res / "linear.parts").exists()


def test_nonuniform_params_and_unavailable_without_bkse_weights(smoke_root, monkeypatch):
    from replicate.assets.registry import availability

    work = smoke_root
    monkeypatch.chdir(work)
    paper = load(work, "paper")
    nu = paper["nonuniform"]
    assert nu["latent_scale"] == 1.2 and nu["methods"] == ["dps", "mcg"] and "deblur_nonuniform" in paper["dps_scale"]
    assert nu["test_sets"]["ffhq"]["prior"] == "adm_ffhq"
    if availability("weights/bkse_gopro")[0]:
        pytest.skip("the bkse weights are here")
    prm = load(work)
    run_per_image(stage("chung2023_nonuniform").per_image, prm)
    res = work / "results" / "smoke" / "chung2023"
    why = availability_of(res, "nonuniform")
    assert set(why) == {"skimage_color"} and "GOPRO_wVAE.pth" in why["skimage_color"]
    assert "drive.google.com" in why["skimage_color"]  # says where to download it by hand
    assert (res / "nonuniform.csv").read_text().strip() == "set,image_index,status"


def test_nonuniform_stage_runs_with_an_injected_network(smoke_root, monkeypatch):
    """The Table 4 pipeline end to end with a small random KernelWizard standing in for the bkse weights (proves the
    wiring only: the numbers mean nothing), then the report's Table 4 layout and grid."""
    import torch

    from replicate.operators.bkse import KernelWizard
    from replicate.scaleout import launch

    work = smoke_root
    monkeypatch.chdir(work)
    monkeypatch.setattr(launch, "_CACHE", {})  # the injected network must not outlive this test
    torch.manual_seed(0)
    net = KernelWizard(nf=8, front_RBs=1, back_RBs=1, kernel_dim=64, extractor_blocks=1).eval().requires_grad_(False)
    monkeypatch.setattr(C.common, "bkse_network", lambda prm: net)
    prm = load(work)
    view = C._nonuniform_view(C.effective(prm))
    first = C.nonuniform_rows(view, "skimage_color", 0)
    again = C.nonuniform_rows(view, "skimage_color", 0)
    assert [r["psnr"] for r in first] == [r["psnr"] for r in again]
    assert {r["method"] for r in first} == {"dps", "mcg"} and all(r["status"] == "ok" for r in first)
    op = C.nonuniform_operator(view, "skimage_color", 0, (3, 128, 128))
    assert op.latent.shape == (1, 64, 1, 1) and not op.linear
    assert not torch.equal(op.latent, C.nonuniform_operator(view, "skimage_color", 1, (3, 128, 128)).latent)
    run_per_image(stage("chung2023_nonuniform").per_image, prm)
    res = work / "results" / "smoke" / "chung2023"
    import pandas as pd

    rows = pd.read_csv(res / "nonuniform.csv")
    assert set(rows.method) == {"dps", "mcg"} and rows.psnr.notna().all()
    assert list((res / "nonuniform_arrays").glob("*.pt"))
    from replicate.report import chung2023 as R

    R.build(prm)
    table = (work / "tables" / "smoke" / "chung2023" / "table4_nonuniform_deblur.md").read_text()
    assert "| DPS (ours) | 41.860 | 0.278 |" in table and "not implemented" in table
    assert (work / "figures" / "smoke" / "chung2023" / "grid_nonuniform_skimage_color_0.png").exists()
    monkeypatch.setattr(C.common, "bkse_network", lambda prm: (_ for _ in ()).throw(C.Unavailable("no bkse weights")))
    launch._CACHE.clear()
    run_per_image(stage("chung2023_nonuniform").per_image, prm)  # leave the unavailable state for the other tests


def test_jensen_gap_study_control_matches_exact_posterior(smoke_root, monkeypatch):
    """The exact-likelihood control samples the exact posterior (mean within Monte-Carlo error, spread within 25%);
    DPS's approximation matches it at high noise and is far off (here: diverges) at low noise."""
    import pandas as pd

    monkeypatch.chdir(smoke_root)
    prm = load(smoke_root)
    prm["jensen_gap"].update(sigmas=[0.03, 1.0], measurements=2, samples=128, steps=100)
    d = pd.DataFrame(C.jensen_gap_rows(prm)).set_index(["method", "sigma_y", "measurement"])
    floor = 1 / 128**0.5
    exact = d.loc["exact"]
    assert (exact.mean_err < 3 * floor).all()          # measured 0.07-0.08 (floor 0.088)
    assert exact.var_ratio.between(0.65, 1.1).all()     # measured 0.77-0.86 (respacing to 100 steps loses spread)
    approx = d.loc["dps_approx"]
    assert (approx.xs(1.0).mean_err < 3 * floor).all()  # measured 0.08: the gap is negligible at sigma_y = 1
    low = approx.xs(0.03).mean_err.fillna(float("inf"))
    assert (low > 10 * exact.xs(0.03).mean_err).all()  # measured: diverged
