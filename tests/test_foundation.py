"""Foundation pieces: params/profiles, atomic IO, seeding, data sets, the denoiser interface and its adapter."""
from __future__ import annotations

import pytest
import torch

from replicate import data as D
from replicate import io, params, seeding
from replicate.denoisers.base import Denoiser, NetworkDenoiser, sigma_like


def write_params(tmp_path, text):
    p = tmp_path / "params.yaml"
    p.write_text(text)
    return p


def test_profile_merge_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("REPLICATE_PROFILE", raising=False)
    p = write_params(tmp_path, "profile: mini\nseed: 3\nx:\n  common: {a: 1, b: {c: 2, d: 3}}\n  mini: {b: {c: 5}}\n")
    got = params.load("x", path=p)
    assert got == {"a": 1, "b": {"c": 5, "d": 3}, "profile": "mini", "seed": 3, "subset": "full"}
    assert params.load("x", path=p, profile="paper")["b"] == {"c": 2, "d": 3}
    with pytest.raises(params.ParamsError, match="no section 'y'"):
        params.load("y", path=p)
    bad = write_params(tmp_path, "profile: huge\nx: {}\n")
    with pytest.raises(params.ParamsError, match="unknown profile 'huge'"):
        params.load("x", path=bad)
    monkeypatch.setenv("REPLICATE_PROFILE", "smoke")
    assert params.load("x", path=p)["profile"] == "smoke"


def test_repository_params_have_every_profile():
    everything = params.read_all(params.REPO_ROOT / "params.yaml")
    assert everything["profile"] in params.PROFILES
    for section in ("mohan2020",):
        for profile in params.PROFILES:
            assert profile in everything[section], f"{section} has no {profile} block"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    io.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_seeds_depend_on_purpose_not_order():
    a = seeding.randn((3,), 0, "set", 1, 25)
    seeding.randn((3,), 0, "set", 2, 25)  # another draw in between changes nothing
    assert torch.equal(a, seeding.randn((3,), 0, "set", 1, 25))
    assert not torch.equal(a, seeding.randn((3,), 0, "set", 1, 50))
    assert not torch.equal(a, seeding.randn((3,), 1, "set", 1, 25))


def test_dead_leaves_deterministic_and_in_range():
    a, b = D.dead_leaves(2, 32, 3, seed=5), D.dead_leaves(2, 32, 3, seed=5)
    assert torch.equal(a, b) and a.shape == (2, 3, 32, 32)
    assert a.min() >= 0 and a.max() <= 1 and not torch.isnan(a).any()
    assert not torch.equal(a, D.dead_leaves(2, 32, 3, seed=6))
    # piecewise constant: most horizontal neighbours are equal (occluding disks)
    assert (a[..., 1:] == a[..., :-1]).float().mean() > 0.5


def test_image_helpers_and_size_errors():
    gray = D.to_gray(torch.ones(3, 4, 4) * torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1))
    assert torch.allclose(gray, torch.full((1, 4, 4), 0.299))
    assert D.crop_to_multiple(torch.zeros(1, 70, 45), 32).shape == (1, 64, 32)
    with pytest.raises(D.ImageSizeError, match="smaller than the requested crop"):
        D.center_crop(torch.zeros(1, 10, 10), 16)
    with pytest.raises(D.ImageSizeError, match="needs 3x64x64"):
        D.require_size([D.Image("a", torch.zeros(3, 32, 32))], 64, 64, 3, "NCSNv2 CelebA")
    with pytest.raises(D.ImageSizeError, match="different sizes"):
        D.batch([D.Image("a", torch.zeros(1, 4, 4)), D.Image("b", torch.zeros(1, 5, 4))])
    ims = D.skimage_set(D.SKIMAGE_COLOR_TEST, crop=64)
    assert [im.shape for im in ims] == [(3, 64, 64)] * len(D.SKIMAGE_COLOR_TEST)
    assert not set(D.SKIMAGE_GRAY_TEST) & set(D.SKIMAGE_GRAY_TRAIN)
    assert not set(D.SKIMAGE_COLOR_TEST) & set(D.SKIMAGE_COLOR_TRAIN)


def test_mirror_set_reads_and_verifies(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_CACHE", str(tmp_path))
    monkeypatch.setenv("REPLICATE_MIRROR", str(mirror))
    ims = D.mirror_set("set12", gray=True)
    assert len(ims) == 12 and ims[0].name == "01" and ims[0].shape == (1, 256, 256)
    ras = D.mirror_set("kodak23_gray")[:1]
    assert ras[0].shape[0] == 1 and min(ras[0].shape[1:]) == 512


class Shrink(Denoiser):
    """D(y) = mean + a (y - mean): a linear denoiser with an exact score."""

    def denoise(self, y, sigma):
        return 0.5 + (y - 0.5) / (1 + sigma**2)


def test_interface_score_and_shape_errors():
    d = Shrink()
    y = torch.rand(2, 1, 4, 4)
    sigma = torch.tensor([0.1, 0.5])
    assert torch.allclose(d.score(y, sigma), (d(y, sigma) - y) / sigma_like(sigma, y) ** 2)
    assert torch.allclose(d.residual(y, 0.2), d(y, 0.2) - y)
    with pytest.raises(ValueError, match="batch"):
        d(torch.rand(1, 4, 4), 0.1)
    with pytest.raises(ValueError, match="sigma must be a scalar"):
        d(y, torch.tensor([0.1, 0.2, 0.3]))


def test_network_adapter_conventions():
    y = torch.rand(2, 3, 8, 8)
    noise_net = lambda u: 0.25 * u  # noqa: E731  "residual": predicts the noise in its input units
    d01 = NetworkDenoiser(torch.nn.Identity(), output="clean")
    assert torch.equal(d01(y, 0.1), y)

    class Res(torch.nn.Module):
        def forward(self, u):
            return noise_net(u)

    assert torch.allclose(NetworkDenoiser(Res(), output="residual")(y, 0.1), y - 0.25 * y)
    # [-1, 1] network returning a residual in its units: D = y - n_hat/2
    pm = NetworkDenoiser(Res(), input_range="pm1", output="residual")
    assert torch.allclose(pm(y, 0.1), y - 0.25 * (2 * y - 1) / 2)

    class Score(torch.nn.Module):  # score of N(0, I + s^2 I) in [-1, 1] units, conditioned on sigma
        def forward(self, u, s):
            return -u / (1 + s**2)

    sc = NetworkDenoiser(Score(), input_range="pm1", output="score", condition=lambda s4: 2 * s4)
    s = 0.3
    u = 2 * y - 1
    expected = (u + (2 * s) ** 2 * (-u / (1 + (2 * s) ** 2)) + 1) / 2
    assert torch.allclose(sc(y, s), expected, atol=1e-6)
    assert not sc.blind and d01.blind
