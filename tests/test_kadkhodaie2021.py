"""Kadkhodaie & Simoncelli 2021 experiment wiring: operators per problem, seeds, determinism, and every stage end to
end on the smoke profile through the CLI (in a scratch directory, so the checkout's results are not touched)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

from replicate import params as P
from replicate.denoisers.curve import CurvePrior
from replicate.experiments import kadkhodaie2021 as K

REPO = Path(__file__).resolve().parent.parent


def load(tmp_path, profile="smoke") -> dict:
    return P.load(K.PAPER, tmp_path / "params.yaml", profile=profile)


def test_params_every_profile_and_paper_values(smoke_root):
    work = smoke_root  # scratch project root (tests/conftest.py)
    for profile in P.PROFILES:
        prm = load(work, profile)
        assert set(prm["problems"]) == {"inpaint_block", "pixels_30", "pixels_10", "superres_4x4", "lowfreq_30",
                                        "lowfreq_10"}
    paper = load(work, "paper")
    # paper Sec. 3.2: sigma0 = 1, sigmaL = 0.01, h0 = 0.01, beta = 0.01; 30x30 hole; 10 / 30 %; 4x4 blocks
    assert paper["sampler"]["sigma0"] == 1 and paper["sampler"]["sigmaL"] == 0.01 and paper["sampler"]["h0"] == 0.01
    assert paper["inverse_beta"] == 0.01 and paper["problems"]["inpaint_block"]["hole"] == 30
    assert paper["synthesis"]["mnist"] == {"prior": "mnist", "size": 28, "betas": [1.0, 0.3, 0.01], "samples": 16}
    assert K.grid({**paper, "device": "cpu"})["subset"] == "cpu_subset"


def test_scheduled_steps_follow_the_recursion():
    # sigma_t = (1 - beta h_t) sigma_{t-1} from 1 to 0.01 (paper parameters): 661 steps at beta 0.01, 32 at beta 1
    assert K.scheduled_steps(1.0, 0.01, 0.01, 0.01) == 661
    assert K.scheduled_steps(1.0, 0.01, 0.01, 1.0) == 32
    s, t = 1.0, 0
    for t in range(1, 33):
        s *= 1 - K.step_size(t, 0.01)
    assert s <= 0.01 < s / (1 - K.step_size(32, 0.01))


def test_problem_operators_are_orthonormal_and_seeded_per_image(smoke_root):
    prm = load(smoke_root, "mini")
    shape = (1, 24, 24)
    for problem in prm["problems"]:
        op = K.problem_operator(prm, problem, shape, "set", 0)
        M = op.as_matrix()
        torch.testing.assert_close(M.T @ M, torch.eye(op.m, dtype=M.dtype), atol=1e-10, rtol=0)
    a = K.problem_operator(prm, "pixels_10", shape, "set", 0)
    b = K.problem_operator(prm, "pixels_10", shape, "set", 0)
    c = K.problem_operator(prm, "pixels_10", shape, "set", 1)
    assert torch.equal(a.index, b.index) and not torch.equal(a.index, c.index)
    assert a.m == round(0.1 * 24 * 24)
    assert K.problem_operator(prm, "superres_4x4", shape, "set", 0).m == 24 * 24 // 16


def test_inverse_rows_deterministic_and_consistent(smoke_root, monkeypatch):
    work = smoke_root  # scratch project root (tests/conftest.py)
    monkeypatch.chdir(work)
    prm = load(work)
    first = K.inverse_rows(prm, "skimage_gray", 0)
    again = K.inverse_rows(prm, "skimage_gray", 0)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(first) == strip(again)
    ls = [r for r in first if r["method"] == "least_squares"]
    assert len(ls) == len(prm["problems"]) and all(r["meas_rms"] < 1e-6 for r in ls)  # M M^T x meets M^T exactly
    assert sum(r["method"] == "denoiser_prior" for r in first) == len(prm["problems"]) * prm["samples"]


def test_all_stages_end_to_end_through_the_cli(smoke_root):
    work = smoke_root  # scratch project root (tests/conftest.py)
    stages = ["synthesis", "toy", "inverse", "compressive", "performance", "report"]
    code = ("import sys; from replicate.cli import main\n"
            f"for s in {stages!r}:\n    assert main(['kadkhodaie2021', s]) == 0\n")
    env = dict(os.environ, REPLICATE_PROFILE="smoke", REPLICATE_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("REPLICATE_PARAMS", None)
    run = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    res = work / "results" / "smoke" / "kadkhodaie2021"
    inv = (res / "inverse.csv").read_text().splitlines()
    assert inv[0].startswith("set,image_index,image,problem") and len(inv) > 1
    assert (res / "compressive.csv").exists() and (res / "convergence.csv").exists()
    summary = json.loads((work / "tables" / "smoke" / "kadkhodaie2021" / "summary.json").read_text())
    for fid in ("Fig. 1", "Fig. 2", "Fig. 3", "Fig. 5", "Fig. 6", "Fig. 7", "Fig. 8", "Fig. 11", "Fig. 13"):
        assert summary["items"][fid]["files"], fid
        for f in summary["items"][fid]["files"]:
            assert (work / f).stat().st_size > 500, f
    ids = {c["id"] for c in summary["claims"]}
    assert {"sigma-recursion", "measurements-satisfied", "cs-psnr-vs-sparse_dct_cv", "smaller-beta-slower"} <= ids
    assert not list(work.rglob("*.tmp")) and not (res / "inverse.parts").exists()
    assert all(math.isfinite(c["estimate"]) for c in summary["claims"] if c["estimate"] is not None)


def test_curve_prior_denoiser_is_the_exact_mmse_of_the_toy():
    prior = CurvePrior.sine(k=2000)
    gaps = (prior.points[1:] - prior.points[:-1]).norm(dim=1)
    assert gaps.max() / gaps.min() < 1.05  # arc-length uniform
    # Miyasawa: x_hat(y) = y + sigma^2 grad log p_sigma(y)
    y = torch.rand(30, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    (g,) = torch.autograd.grad(prior.log_density(y, 0.1).sum(), y)
    xhat = prior(y.detach().reshape(-1, 1, 1, 2), 0.1).reshape(-1, 2)
    torch.testing.assert_close(xhat, y.detach() + 0.01 * g, atol=1e-10, rtol=0)
    # at a small noise level a point near the curve is denoised onto it (its nearest point, up to O(sigma^2))
    p = prior.points[700] + torch.tensor([0.0, 0.004], dtype=torch.float64)
    out = prior(p.reshape(1, 1, 1, 2), 0.002).reshape(2)
    assert prior.distance(out).item() < 1e-3 and (out - p).norm() < 0.006
