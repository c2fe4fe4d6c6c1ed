"""The lecture's stages end to end on the smoke profile, and the pieces they add (classic denoisers, compressive
sensing operator)."""
import json
import subprocess
import sys

import pandas as pd
import torch

from conftest import smoke_env
from replicate.denoisers.classical import NonLocalMeans, TotalVariation, WaveletShrinkage, tune_weight_factor
from replicate.metrics import psnr
from replicate.operators.base import make_operator


def test_compressive_sensing_operator_adjoint_svd_and_pseudo_inverse():
    op = make_operator("compressive_sensing", ratio=0.125, seed=3, shape=(2, 8, 8))   # the lecture's cs_12.5
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 8, 8, generator=gen)
    y = torch.randn(3, 2, 8, generator=gen)
    assert op(x).shape == (3, 2, 8)
    assert torch.allclose((op(x) * y).sum(), (x * op.adjoint(y)).sum(), atol=1e-4)         # <Ax, y> = <x, A^T y>
    assert torch.allclose(op.V(op.V_T(x)), x, atol=1e-5)                                  # V V^T = I on images
    assert torch.allclose(op(op.pseudo_inverse(y)), y, atol=1e-5)                          # A A^+ = I
    assert torch.allclose(op.U(op.U_T(y)), y)
    assert op.singulars().shape == (op.measurement_dim,) and bool((op.singulars() == 1).all())
    # the null-space part of V_T is orthogonal to the measured directions
    null = op.V_T(x)[:, op.measurement_dim:].reshape(x.shape)
    assert float(op(null).abs().max()) < 1e-5
    # same seed, same matrix; another seed, another one
    assert torch.equal(make_operator("compressive_sensing", ratio=0.125, seed=3, shape=(2, 8, 8)).Q, op.Q)
    assert not torch.equal(make_operator("compressive_sensing", ratio=0.125, seed=4, shape=(2, 8, 8)).Q, op.Q)


def test_classic_denoisers_denoise_and_keep_shape():
    from replicate.data import skimage_set

    x = skimage_set(["camera"], gray=True, crop=64)[0].pixels[None]
    gen = torch.Generator().manual_seed(0)
    y = x + 25 / 255 * torch.randn(x.shape, generator=gen)
    noisy = float(psnr(y.clamp(0, 1), x)[0])
    for den in (NonLocalMeans(), TotalVariation(1.0), WaveletShrinkage()):
        out = den(y.repeat(2, 1, 1, 1), 25 / 255)
        assert out.shape == (2, 1, 64, 64) and torch.allclose(out[0], out[1])  # per image, batch-independent
        assert float(psnr(out[:1].clamp(0, 1), x)[0]) > noisy + 3, type(den).__name__
    assert tune_weight_factor(x, 25 / 255, [0.01, 1.0, 100.0], gen) == 1.0  # extremes lose to a sensible weight


def test_lecture_stages_end_to_end_on_smoke(smoke_root):
    env = smoke_env(smoke_root)
    for stage in ("classic", "inverse", "synthesis", "snips", "perception", "report"):
        run = subprocess.run([sys.executable, "-m", "replicate", "elad_lecture", stage], cwd=smoke_root, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, (stage, run.stderr[-3000:])
    summary = json.loads((smoke_root / "tables" / "smoke" / "elad_lecture" / "summary.json").read_text())
    for item in ("Demo: classic-era denoising table", "Demo: PnP and RED", "Demo: synthesis",
                 "Demo: perception-distortion", "Demo: four discoveries", "Slides: SNIPS demos"):
        assert summary["items"][item]["files"], item
        for f in summary["items"][item]["files"]:
            assert (smoke_root / f).stat().st_size > 100, f
    assert {c["id"] for c in summary["claims"]} >= {"learned beats classic", "SNIPS beats least squares"}
    res = smoke_root / "results" / "smoke" / "elad_lecture"
    per = pd.read_csv(res / "perception.csv")
    samplers = set(per[per.kind == "posterior sample"].method)
    assert {"SNIPS", "DDRM", "DPS", "stochastic denoiser (Kawar et al.)"} <= samplers, samplers
    assert per.mse.notna().all() and (per.mse < 1).all()
    assert not list(res.glob("*.parts")) and not list(smoke_root.rglob("*.tmp"))


def test_classic_table_compares_with_published_rows_only_on_full_sets():
    from replicate import params as P
    from replicate.report.elad_lecture import classic_comparisons

    prm = P.load("elad_lecture", profile="paper")
    # the full Set12 with two noise realisations: the uncertainty about the published number is over the realisations
    rows = [{"set": "set12", "image_index": i, "noise_repeat": r, "denoiser": d, "sigma": s,
             "psnr": p + (0.1 if i % 2 else -0.1) + 0.01 * r}
            for r in range(2) for i in range(12) for d in ("BM3D", "DnCNN [0,55]", "DnCNN-S σ=25 (KAIR)")
            for s, p in ((15, 32.37), (25, 29.97), (50, 26.72))]
    rows += [{"set": "bsd68", "image_index": i, "noise_repeat": 0, "denoiser": "BM3D", "sigma": 25, "psnr": 20.0}
             for i in range(5)]
    comps = {c.cell: c for c in classic_comparisons(prm, pd.DataFrame(rows))}
    got = {k: c.verdict for k, c in comps.items()}
    assert got["Set12 BM3D sigma=25"] == "reproduced" and comps["Set12 BM3D sigma=25"].uncertainty == "seeds"
    assert "Set12 DnCNN [0,55] sigma=25" not in got               # a different model than Zhang et al.'s DnCNN-S
    assert got["Set12 DnCNN-S σ=25 (KAIR) sigma=25"] == "differs"  # Zhang et al.'s network; 29.97 here vs 30.44
    assert got["BSD68 BM3D sigma=25"] == "not run at this scale"   # 5 of 68 images
    assert "BSD68 BM3D sigma=15" not in got                         # nothing run there
    far = pd.DataFrame(rows).assign(psnr=lambda d: d.psnr - 2.0)
    assert {c.cell: c.verdict for c in classic_comparisons(prm, far)}["Set12 BM3D sigma=15"] == "differs"
    one = pd.DataFrame([r for r in rows if r["noise_repeat"] == 0])
    assert {c.cell: c.verdict for c in classic_comparisons(prm, one)}["Set12 BM3D sigma=15"] == "inconclusive"
