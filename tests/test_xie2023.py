"""Xie et al. 2023: the U-Net, the training losses and schedules, resumable training, Table 1 derived from the code,
and one end-to-end smoke run of every stage through the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from replicate.denoisers.xie_unet import XieUNet
from replicate.noise.xie2023 import table1_model
from replicate.training_score import (FixedNoisyImages, ScoreTrainConfig, neighbor_subsample, random_crops,
                                     sigma_a_at, subsample_like, train)

REPO = Path(__file__).resolve().parent.parent


def tiny_net():
    torch.manual_seed(0)
    return XieUNet(3, width=32, num_res_blocks=1, channel_mult=(1, 2))


def test_unet_shapes_zero_output_and_size_check():
    net = tiny_net()
    u = torch.randn(2, 3, 16, 16)
    assert net(u).shape == u.shape and net(u).abs().max() == 0     # zero-initialised output convolution
    with pytest.raises(ValueError, match="divisible by 2"):
        net(torch.randn(1, 3, 15, 16))
    full = XieUNet(3, width=128)                                     # the official configuration
    assert 60e6 < sum(p.numel() for p in full.parameters()) < 75e6


def test_sigma_a_schedule_is_linear_every_50_steps_and_held_for_the_last_50():
    cfg = ScoreTrainConfig(steps=5000)
    assert sigma_a_at(0, cfg) == 0.05 and sigma_a_at(49, cfg) == 0.05
    assert sigma_a_at(50, cfg) < 0.05 and sigma_a_at(50, cfg) == sigma_a_at(99, cfg)
    assert sigma_a_at(4950, cfg) == pytest.approx(1e-6) and sigma_a_at(4999, cfg) == pytest.approx(1e-6)
    assert sigma_a_at(2470, cfg) == pytest.approx(0.05 + (1e-6 - 0.05) * 2450 / 4950, rel=1e-12)


def test_neighbor_subsampler_takes_adjacent_pixels_of_each_cell():
    y = torch.arange(2 * 3 * 8 * 8, dtype=torch.float64).reshape(2, 3, 8, 8)
    g1, g2, choice = neighbor_subsample(y, torch.Generator().manual_seed(0))
    assert g1.shape == (2, 3, 4, 4)
    # in a 2x2 cell, adjacent pixels differ by 1 (horizontal) or 8 (vertical) in this ramp, never 9 (diagonal) or 0
    d = (g1 - g2).abs()
    assert set(d.unique().tolist()) <= {1.0, 8.0}
    assert torch.equal(torch.stack(subsample_like(y, choice)), torch.stack([g1, g2]))


def _clean():
    from replicate.data import dead_leaves, to_uint8

    return [to_uint8(c) for c in dead_leaves(2, 32, 3, seed=0)]


def test_ardae_lowers_its_loss(tmp_path):
    cfg = ScoreTrainConfig(steps=25, batch=4, micro_batch=4, crop=16, lr=3e-3, lr_milestones=(100,),
                           sigma_a_start=0.2, sigma_a_end=0.2, checkpoint_every=1000)
    log = train(tiny_net(), FixedNoisyImages(_clean()), cfg, tmp_path / "ardae.pt", progress=False)
    first, last = sum(log["loss"][:5]) / 5, sum(log["loss"][-5:]) / 5
    assert last < 0.95 * first, (first, last)   # zero-initialised output: the loss starts at E|u|^2 = 1


class _Crash(torch.nn.Module):
    """Wraps a net and raises at the k-th forward: a training run killed in the middle."""

    def __init__(self, net, k):
        super().__init__()
        self.net, self.k, self.calls = net, k, 0

    def forward(self, u):
        self.calls += 1
        if self.calls == self.k:
            raise RuntimeError("killed")
        return self.net(u)

    def state_dict(self, *a, **kw):
        return self.net.state_dict(*a, **kw)

    def load_state_dict(self, *a, **kw):
        return self.net.load_state_dict(*a, **kw)


@pytest.mark.parametrize("method", ["supervised", "neighbor2neighbor"])
def test_training_resumes_to_the_same_weights(tmp_path, method):
    pairs = FixedNoisyImages(_clean(), table1_model(1), key=(0, "test"))
    cfg = ScoreTrainConfig(method=method, steps=4, batch=2, micro_batch=1, crop=16, lr=1e-3, lr_milestones=(3,),
                           checkpoint_every=2)
    straight = tiny_net()
    train(straight, pairs, cfg, tmp_path / "a.pt", progress=False)
    calls_per_step = 2 * (2 if method == "neighbor2neighbor" else 1)
    crashed = tiny_net()
    with pytest.raises(RuntimeError, match="killed"):
        train(_Crash(crashed, 3 * calls_per_step + 1), pairs, cfg, tmp_path / "b.pt", progress=False)
    assert torch.load(tmp_path / "b.pt", weights_only=False)["step"] == 2    # the atomic checkpoint of step 2
    resumed = tiny_net()
    train(resumed, pairs, cfg, tmp_path / "b.pt", progress=False)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


@pytest.mark.parametrize("no", [1, 2, 4, 6, 8, 9, 14])
def test_fixed_noisy_images_are_the_same_noise_in_every_crop_and_match_the_whole_image(no):
    """Tile-by-tile drawing (no stored noisy copy) gives one fixed noisy image: overlapping crops agree, and a crop
    equals the same pixels of the whole image, whose correlated models apply A circularly on the full image."""
    model = table1_model(no)
    clean = [(torch.rand(3, 40, 52, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)]
    pairs = FixedNoisyImages(clean, model, key=(0, "test", no), extra_sigma=5.0, tile=16)
    H, W = pairs.size(0)
    x_full, y_full = pairs.crop(0, 0, 0, 40)                       # the whole image height; crop is square
    x_a, y_a = pairs.crop(0, 3, 7, 24)
    x_b, y_b = pairs.crop(0, 10, 12, 24)
    assert torch.equal(x_a, pairs.clean[0][:, 3:27, 7:31].float())
    assert torch.allclose(y_a[:, 7:, 5:], y_b[:, :17, :19], atol=1e-4)     # the overlap of the two crops
    assert torch.allclose(y_a, y_full[:, 3:27, 7:31], atol=1e-3) and torch.equal(x_full[:, 3:27, 7:31], x_a)
    # the whole image assembled from its tiles, then A circularly: the crops are cut from it
    rows, cols = torch.arange(H), torch.arange(W)
    field, extra = pairs._mosaic(0, rows, cols)
    whole = model.from_draws(pairs.clean[0].float(), field) + extra
    assert torch.allclose(y_a, whole[:, 3:27, 7:31], atol=1e-3)
    corner = pairs.crop(0, 24, 36, 16)[1]                          # bottom-right: the halo wraps around
    assert torch.allclose(corner, whole[:, 24:40, 36:52], atol=1e-3)
    # and the noise is the model's: residual statistics of the Gaussian case
    if no == 1:
        r = (whole - pairs.clean[0].float()).flatten()
        assert abs(float(r.std()) - (25.0**2 + 5.0**2) ** 0.5) < 1.5 and abs(float(r.mean())) < 1.0


def test_random_crops_are_reproducible_and_refuse_small_images():
    pairs = FixedNoisyImages(_clean(), table1_model(9), key=(0, "t"))
    a = random_crops(pairs, 3, 16, torch.Generator().manual_seed(5))
    b = random_crops(pairs, 3, 16, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[1].shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="smaller than the crop"):
        random_crops(pairs, 1, 64, torch.Generator().manual_seed(5))
    with pytest.raises(TypeError, match="uint8"):
        FixedNoisyImages([torch.zeros(3, 8, 8)])


def test_div2k_zip_is_read_as_uint8_rgb_in_name_order_and_its_absence_is_a_note(tmp_path, monkeypatch):
    import zipfile

    import numpy as np
    from PIL import Image

    from replicate import data as D
    from replicate.experiments import xie2023

    rng = np.random.default_rng(0)
    pics = {"DIV2K_train_HR/0002.png": rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
            "DIV2K_train_HR/0001.png": rng.integers(0, 256, (24, 16), dtype=np.uint8)}     # a grey one
    archive = tmp_path / "DIV2K_train_HR.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, arr in pics.items():
            Image.fromarray(arr).save(tmp_path / "p.png")
            z.write(tmp_path / "p.png", name)
        z.writestr("DIV2K_train_HR/readme.txt", "not an image")
    first, second = D.zip_images_uint8(archive, progress=False)
    assert first.dtype == torch.uint8 and first.shape == (3, 24, 16) and torch.equal(first[1], torch.from_numpy(
        pics["DIV2K_train_HR/0001.png"]))
    assert torch.equal(second, torch.from_numpy(pics["DIV2K_train_HR/0002.png"]).permute(2, 0, 1))
    assert len(D.zip_images_uint8(archive, limit=1, progress=False)) == 1
    # not in the cache or a mirror, offline: training goes on with the other sources and says so
    monkeypatch.setenv("REPLICATE_OFFLINE", "1")
    monkeypatch.setenv("REPLICATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPLICATE_MIRROR", str(tmp_path / "no-mirror"))
    images, notes = xie2023.training_images({"seed": 0, "train_data": {"sources": ["div2k", "embedded"],
                                                                      "dead_leaves": 1, "leaves_size": 32,
                                                                      "photo_crop": 32}})
    assert images and all(im.dtype == torch.uint8 for im in images)
    assert len(notes) == 1 and notes[0].startswith("DIV2K not available here")


def test_baselines_can_start_from_the_identity_and_the_score_net_never_does():
    from replicate.experiments.xie2023 import checkpoint_path, make_net

    prm = {"arch": {"width": 32, "num_res_blocks": 1, "channel_mult": [1, 2]}, "baseline_output": "residual"}
    u = torch.randn(1, 3, 16, 16)
    assert torch.equal(make_net(prm, "SL")(u), u) and torch.equal(make_net(prm, "Nb2Nb")(u), u)
    assert make_net(prm, "Ours")(u).abs().max() == 0                       # the score starts at zero
    assert make_net({**prm, "baseline_output": "direct"}, "SL")(u).abs().max() == 0
    with pytest.raises(ValueError, match="baseline_output"):
        make_net({**prm, "baseline_output": "both"}, "SL")
    # the parameterisation is part of the training cache key: switching it retrains
    full = {**prm, "noise": {}, "kernel": [[0, 0, 0], [0, 1, 0], [0, 0, 0]], "conv_eps": 0.0,
            "poisson_score": "paper", "train": {}, "train_data": {}, "seed": 0, "profile": "smoke"}
    assert checkpoint_path(full, 1, "SL") != checkpoint_path({**full, "baseline_output": "direct"}, 1, "SL")
    assert checkpoint_path(full, 1, "Ours") == checkpoint_path({**full, "baseline_output": "direct"}, 1, "Ours")


def test_table1_derived_from_the_code_matches_the_paper(tmp_path, monkeypatch):
    from replicate.experiments.xie2023 import stage_applicability
    from replicate.report.xie2023 import table1

    prm = {"noise": {}, "kernel": [[0.05, 0.1, 0.05], [0.1, 0.4, 0.1], [0.05, 0.1, 0.05]], "conv_eps": 0.0,
           "poisson_score": "paper", "profile": "smoke"}
    (tmp_path / "params.yaml").write_text("profile: smoke\n")
    monkeypatch.chdir(tmp_path)
    stage_applicability(prm)
    _, mismatches = table1(tmp_path / "results" / "smoke" / "xie2023")
    assert mismatches == 0


def test_smoke_stages_end_to_end_through_the_cli(tmp_path, mirror):
    """train -> denoise -> robustness -> fig3 -> report on the smoke profile, in one interpreter (torch imports once)."""
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(params.read_text())
    env = dict(os.environ, REPLICATE_PARAMS=str(params), REPLICATE_PROFILE="smoke", REPLICATE_THREADS="1",
               REPLICATE_MIRROR=str(mirror), REPLICATE_OFFLINE="1", PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    code = ("import sys; from replicate.cli import main\n"
            "for st in ('train', 'applicability', 'denoise', 'robustness', 'fig3', 'report'):\n"
            "    assert main(['xie2023', st]) == 0\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    den = (work / "results/smoke/xie2023/denoise.csv").read_text().splitlines()
    assert den[0].startswith("set,image_index,image,no,table") and len(den) > 4
    summary = json.loads((work / "tables/smoke/xie2023/summary.json").read_text())
    assert summary["items"]["Table 1"]["status"] == "settings match"   # a check of the code's scope, not a result
    assert any(c["id"] == "xie-equals-noise2score" and c["status"] == "reproduced" for c in summary["claims"])
    assert (work / "figures/smoke/xie2023/fig2_robustness.png").stat().st_size > 1000
    assert not list(work.rglob("*.tmp"))


def test_checkpoints_are_keyed_by_training_parameters_only():
    """The paper's point: a new solver or a new noise parameter at inference needs no retraining."""
    import copy

    import yaml

    from replicate.experiments.xie2023 import checkpoint_path

    prm = yaml.safe_load((REPO / "params.yaml").read_text())["xie2023"]["common"]
    prm |= {"profile": "smoke", "seed": 0, "train_data": {"sources": ["embedded"]}}
    base = checkpoint_path(prm, 1, "Ours")
    other = copy.deepcopy(prm)
    other["solver"] = {"iters": 50, "sd_solver": "quadratic"}
    other["robustness"]["rates"] = [0.3]
    other["noise"]["alpha"] = 3.0                      # a parameter model No.1 does not use
    assert checkpoint_path(other, 1, "Ours") == base
    other["noise"]["sigma"] = 50.0                     # its training data change: a new network
    assert checkpoint_path(other, 1, "Ours") != base
    assert checkpoint_path(prm, 1, "SL") != base
