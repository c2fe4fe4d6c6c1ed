"""Kawar et al. 2021 pipeline: NCSNv2 preprocessing (synthetic images), residual statistics, masks, ladders,
the paper profile's "not available here" path, and one smoke run of every stage through the CLI."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from replicate.pipeline.run import run_per_image
import torch

from replicate import datasets_ncsn as N
from replicate.experiments import kawar2021 as K

REPO = Path(__file__).resolve().parent.parent


def _private_params(tmp: Path) -> Path:
    p = tmp / "params.yaml"
    p.write_text((REPO / "params.yaml").read_text())
    return p


# ------------------------------------------------------------------------------------------------ preprocessing
def _framed(h, w, inner_h, inner_w):
    """uint8 image: value 200 inside the centred inner_h x inner_w box, 30 outside."""
    a = np.full((h, w, 3), 30, np.uint8)
    t, l = (h - inner_h) // 2, (w - inner_w) // 2
    a[t:t + inner_h, l:l + inner_w] = 200
    return a


def test_celeba_center_crop_140_then_resize_64():
    out = N.celeba_transform(_framed(218, 178, 140, 140))   # aligned CelebA is 178 x 218
    assert out.shape == (3, 64, 64)
    assert torch.allclose(out, torch.full_like(out, 200 / 255), atol=1e-6)  # only the central 140 x 140 survives
    wider = N.celeba_transform(_framed(218, 178, 130, 130))
    assert float(wider[:, 0, 0].max()) < 0.5                                  # ... and all of it (border visible)


def test_lsun_resize_then_center_crop_128_and_paper_order():
    img = _framed(256, 384, 256, 256)        # landscape: the central square is the bright part
    a = N.lsun_transform(img)
    b = N.lsun_transform(img, order="crop_resize")
    assert a.shape == b.shape == (3, 128, 128)
    # both keep the central square; they differ only where resizing first blends the frame into the edge columns
    assert torch.allclose(b, torch.full_like(b, 200 / 255), atol=1e-6)
    assert torch.allclose(a[..., 2:-2], b[..., 2:-2], atol=1e-6) and float((a - b).abs().max()) < 0.15
    with pytest.raises(ValueError, match="order"):
        N.lsun_transform(img, order="nope")


def test_lsun_reads_the_published_lmdb_zip_layout(tmp_path):
    """LSUN's *_val_lmdb.zip holds a folder with data.mdb / lock.mdb, keys = image ids, values = encoded images."""
    import io
    import zipfile

    import lmdb
    from PIL import Image as PILImage

    db = tmp_path / "tower_val_lmdb"
    env = lmdb.open(str(db), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for k, inner in enumerate((200, 100, 150)):
            buf = io.BytesIO()
            PILImage.fromarray(_framed(256, 384, inner, inner)).save(buf, format="PNG")  # lossless for the check
            txn.put(f"img{k:02d}".encode(), buf.getvalue())
    env.close()
    zpath = tmp_path / "tower_val_lmdb.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in db.iterdir():
            z.write(f, f"tower_val_lmdb/{f.name}")
    ims = N.load_lsun(zpath, 2)
    assert [im.name for im in ims] == ["img00", "img01"]          # the first n in key order
    assert all(im.pixels.shape == (3, 128, 128) for im in ims)
    assert torch.allclose(ims[0].pixels, N.lsun_transform(_framed(256, 384, 200, 200)))


def test_ffhq_256_and_test_split():
    assert N.ffhq_transform(np.zeros((1024, 1024, 3), np.uint8)).shape == (3, 256, 256)
    np.random.seed(5)
    before = np.random.rand()
    np.random.seed(5)
    idx = N.ffhq_test_indices()
    assert np.random.rand() == before                       # the global RNG is left as it was
    assert len(idx) == 7000 and len(set(idx)) == 7000 and idx == N.ffhq_test_indices()
    rng = np.random.RandomState(2019)                        # np.random.seed(2019); shuffle == RandomState(2019)
    ref = list(range(70000))
    rng.shuffle(ref)
    assert idx == ref[63000:]


def test_load_celeba_from_a_synthetic_zip(tmp_path):
    from PIL import Image

    part = tmp_path / "list_eval_partition.txt"
    part.write_text("000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n000004.jpg 2\n")
    zp = tmp_path / "img_align_celeba.zip"
    with zipfile.ZipFile(zp, "w") as z:
        for k in range(1, 5):
            buf = io.BytesIO()
            Image.fromarray(_framed(218, 178, 140, 140)).save(buf, format="JPEG", quality=100)
            z.writestr(f"img_align_celeba/{k:06d}.jpg", buf.getvalue())
    assert N.celeba_test_names(part) == ["000002.jpg", "000004.jpg"]
    ims = N.load_celeba(zp, part, 2)
    assert [im.name for im in ims] == ["000002.jpg", "000004.jpg"] and ims[0].pixels.shape == (3, 64, 64)


# ------------------------------------------------------------------------------------------------ analysis pieces
def test_residual_stats_white_vs_correlated():
    g = torch.Generator().manual_seed(0)
    white = 0.3 * torch.randn(3, 64, 64, generator=g)
    s = K.residual_stats(white)
    assert abs(s["res_std"] - 0.3) < 0.01 and s["res_abs_rho"] < 0.05 and s["res_p"] > 1e-3
    smooth = white + torch.roll(white, 1, dims=2)             # correlated along the horizontal direction
    c = K.residual_stats(smooth)
    assert c["res_abs_rho"] == pytest.approx(0.5, abs=0.05) and c["res_rho_dir"] in ("0,1", "0,-1")
    heavy = torch.distributions.StudentT(2.0).sample((3, 64, 64))
    assert K.residual_stats(heavy)["res_p"] < 1e-6              # normality test rejects heavy tails


def test_masks():
    rows = K.make_mask("rows", (3, 64, 64))
    assert rows.shape == (1, 1, 64, 64) and int((rows[0, 0].sum(1) == 0).sum()) == 20   # 20 missing rows
    eye = K.make_mask("eye", (3, 64, 64))
    assert int((eye == 0).sum()) == 12 * 16
    text = K.make_mask("text", (3, 64, 64))
    assert 0.05 < float(1 - text.mean()) < 0.6
    with pytest.raises(KeyError):
        K.make_mask("circle", (3, 8, 8))


def test_ncsnv2_ladder_levels_and_L_check():
    from replicate.denoisers.ncsnv2 import geometric_sigmas

    class Fake:
        sigmas = geometric_sigmas(90.0, 0.01, 500)

    run = {"prior": {"kind": "ncsnv2"}, "L": {0.203: 166}, "denoise": {}}
    above, below = K.sigma_levels(Fake, run, 0.203, {"sigma_L": 0.01})
    assert len(below) == 165 and len(above) + len(below) == 499 and above[0] == pytest.approx(90.0)
    with pytest.raises(ValueError, match="L=150"):
        K.sigma_levels(Fake, {**run, "L": {0.203: 150}}, 0.203, {"sigma_L": 0.01})


# ------------------------------------------------------------------------------------------------ paper profile
def test_paper_runs_report_not_available(tmp_path, monkeypatch):
    """Without NCSNv2 checkpoints / CelebA the stages record the reason and the report says "not available here"."""
    from replicate import params as P
    from replicate.assets.registry import availability

    if availability("weights/ncsnv2_celeba")[0] and availability("datasets/celeba")[0]:
        pytest.skip("the NCSNv2 CelebA files are present: the paper run would really run")
    params = _private_params(tmp_path)
    monkeypatch.setenv("REPLICATE_PARAMS", str(params))
    monkeypatch.chdir(tmp_path)
    prm = P.load("kawar2021", params, profile="paper")
    prm["runs"] = {"celeba": prm["runs"]["celeba"]}      # only the GPU run (the CPU runs would really run)
    for name in ("kawar2021_denoise", "kawar2021_inpaint"):
        run_per_image(next(s for s in K.STAGES if s.name == name).per_image, prm)
    av = pd.read_csv(tmp_path / "results/paper/kawar2021/denoise_availability.csv")
    assert not av.available.any() and "weights/ncsnv2_celeba" in av.reason.iloc[0]
    from replicate.report.kawar2021 import build

    build(prm)
    s = json.loads((tmp_path / "tables/paper/kawar2021/summary.json").read_text())
    assert s["items"]["Table 1"]["status"] == "not available here"
    assert "ncsnv2_celeba" in s["items"]["Table 1"]["note"]
    assert s["items"]["Fig. 9"]["status"] == "not available here"
    assert s["items"]["Table 2"]["status"] == "settings match"      # the paper profile carries Tables 2/3 and L


# ------------------------------------------------------------------------------------------------ smoke, CLI
def test_smoke_stages_through_cli(smoke_root):
    tmp_path = smoke_root  # scratch project root with every paper's params and the smoke models (conftest.py)
    env = dict(os.environ, REPLICATE_PROFILE="smoke", REPLICATE_THREADS="1", PYTHONPATH=str(REPO),
               REPLICATE_OFFLINE="1")
    env.pop("REPLICATE_PARAMS", None)
    cmd = [sys.executable, "-c", "from replicate.cli import main\nfor s in ('denoise','inpaint','exactness','report'):"
                                 " assert main(['kawar2021', s]) == 0"]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    res = tmp_path / "results" / "smoke" / "kawar2021"
    den = pd.read_csv(res / "denoise.csv")
    assert len(den) == 2 * 1 * 2 and den.psnr_ours.notna().all() and (den.denoiser_calls > 0).all()
    assert len(pd.read_csv(res / "inpaint.csv")) == 2 * 2
    s = json.loads((tmp_path / "tables" / "smoke" / "kawar2021" / "summary.json").read_text())
    assert s["setting"] == "analogue"      # the report's own setting (a figure loop once overwrote it with "eye")
    ids = {c["id"] for c in s["claims"]}
    assert {f"{c}/skimage_color" for c in ("residual-std-matches-sigma0", "mse-ratio-below-2", "residual-normal")} <= ids
    assert all(c["catalog"] for c in s["claims"] if "/" in c["id"])       # linked to the catalogue items
    assert (tmp_path / "figures" / "smoke" / "kawar2021" / "diff_skimage_color_s0.200.png").exists()


@pytest.mark.slow
def test_denoise_rows_deterministic_and_order_free(tmp_path, monkeypatch, smoke_root):
    """Same seed -> same numbers, whichever image is computed first (seeds come from (run, image, sigma0, sample))."""
    from replicate import params as P

    monkeypatch.chdir(smoke_root)  # the smoke models live there (tests/conftest.py)
    prm = P.load("kawar2021", _private_params(tmp_path), profile="smoke")
    prm["figure_images"] = 0
    a = pd.DataFrame(K.denoise_rows(prm, "skimage_color", 0) + K.denoise_rows(prm, "skimage_color", 1))
    b = pd.DataFrame(K.denoise_rows(prm, "skimage_color", 1) + K.denoise_rows(prm, "skimage_color", 0))
    b = b.sort_values(["image_index", "sample"]).reset_index(drop=True)
    cols = ["psnr_ours", "mse_ours", "res_std", "res_p", "res_rho", "psnr_mmse"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
