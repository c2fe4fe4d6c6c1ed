"""Bias-free denoiser architectures and safe checkpoint loading.

Checkpoint tests need the offline mirror of public files (found as the README says: REPLICATE_MIRROR, else
../shared/mirror beside the checkout; laid out as <host>/<url path> with a MANIFEST.tsv); they skip without it
(and a skip fails the run in CI).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from replicate.assets.registry import mirror_dirs
from replicate.denoisers.bfcnn import BFCNN, RCNN, DnCNN, KAIRDnCNN, UNet
from replicate.denoisers.checkpoints import (
    MOHAN_ARCHS,
    MOHAN_RANGES,
    MOHAN_VARIANTS,
    kair_denoiser,
    load_kair_dncnn,
    load_mohan_checkpoint,
    load_universal_bfcnn,
    mohan_denoiser,
    safe_load,
    universal_denoiser,
)

torch.set_num_threads(1)

MIRROR = (mirror_dirs() or [Path("no-mirror")])[0]
SCALES = (0.5, 2.0, 7.0)


def mirror_file(url_suffix: str) -> Path:
    """Local copy of the manifest entry whose URL ends with url_suffix (skip if unavailable)."""
    manifest = MIRROR / "MANIFEST.tsv"
    if not manifest.exists():
        pytest.skip(f"offline mirror not found at {MIRROR} (set REPLICATE_MIRROR)")
    for line in manifest.read_text().splitlines()[1:]:
        url = line.split("\t")[1]
        if url.endswith(url_suffix):
            path = MIRROR / url.split("://", 1)[1]
            if not path.exists():
                pytest.skip(f"{path} listed in the manifest but missing from the mirror")
            return path
    pytest.skip(f"no manifest entry ends with {url_suffix}")


def mohan_path(arch, variant, rng):
    return mirror_file(f"bias_free_denoising/64930f028aec88b0ebc1fc13f79932f5b7aa744d/pretrained/{arch}/{variant}/{rng}.pt")


def universal_path(which):
    return mirror_file(f"denoisers/BF_CNN/{which}/noise_range_0to100/model.pt")


def kair_path():
    return mirror_file("KAIR/fc1732f4a4514e42ce15e5b3a1e18c828af47a1e/model_zoo/dncnn_25.pth")


def read_image(url_suffix: str) -> torch.Tensor:
    from skimage import io

    img = io.imread(mirror_file(url_suffix)).astype(np.float32) / 255.0
    x = torch.from_numpy(img)
    return x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]


def noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x + sigma * torch.randn(x.shape, generator=g)


def psnr(est: torch.Tensor, ref: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((est.clamp(0, 1) - ref) ** 2).mean()))


def homogeneity_errors(net, channels=1, shape=(33, 31)) -> list[float]:
    """max |f(a y) - a f(y)| / max |a f(y)| for each a in SCALES (odd sizes exercise UNet padding)."""
    y = torch.rand(1, channels, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fy = net(y)
        return [float((net(a * y) - a * fy).abs().max() / (a * fy).abs().max()) for a in SCALES]


# ---------------------------------------------------------------- no mirror needed


@pytest.mark.parametrize(
    "make,n_keys",
    [
        (lambda: DnCNN(bias=True), 130),  # 20 conv (w+b) + 18 BN x 5 entries
        (lambda: DnCNN(bias=False), 110),  # 20 conv weights + 18 BN x 5 (bias/running_mean kept)
        (lambda: UNet(bias=True), 17),
        (lambda: UNet(bias=False), 9),
        (lambda: RCNN(bias=True), 13),
        (lambda: RCNN(bias=False), 7),
        (lambda: BFCNN(channels=3), 56),
        (lambda: KAIRDnCNN(), 34),
    ],
)
def test_state_dict_layout_matches_checkpoint_counts(make, n_keys):
    assert len(make().state_dict()) == n_keys


def test_random_bias_free_nets_are_homogeneous():
    torch.manual_seed(0)
    for net in (DnCNN(bias=False, depth=6), UNet(bias=False), RCNN(bias=False, hidden=2), BFCNN(depth=6)):
        net.eval()
        for bn in net.modules():  # non-trivial running statistics
            if hasattr(bn, "running_var"):
                bn.running_var.uniform_(0.5, 2.0)
        assert max(homogeneity_errors(net)) < 1e-5, type(net).__name__


def test_safe_load_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": [{}], "payload": _NotAllowed()}, path)
    with pytest.raises(pickle.UnpicklingError):
        safe_load(path)


class _NotAllowed:
    """Stand-in for any pickled object outside the allow-list."""


# ---------------------------------------------------------------- the published checkpoints


@pytest.mark.parametrize("rng", MOHAN_RANGES)
@pytest.mark.parametrize("variant", MOHAN_VARIANTS)
@pytest.mark.parametrize("arch", MOHAN_ARCHS)
def test_mohan_checkpoint_loads_strictly_and_homogeneity(arch, variant, rng):
    net, meta = load_mohan_checkpoint(arch, variant, rng, mohan_path(arch, variant, rng))
    assert not net.training
    lo, hi = (float(v) for v in rng.split("-"))
    assert (meta["noise_min"], meta["noise_max"]) == (lo, hi)
    # the DnCNN pickles store min_noise/max_noise swapped; the others do not
    assert meta["noise_range_swapped"] == (arch == "dncnn")
    errs = homogeneity_errors(net)
    if variant == "bias_free":
        assert max(errs) < 5e-5, errs  # exact up to float32 rounding
    else:
        assert max(errs) > 2e-2, errs  # biases break scaling: the check can fail


def test_mohan_loader_rejects_wrong_range():
    with pytest.raises(ValueError, match="trained on sigma 0-55"):
        load_mohan_checkpoint("dncnn", "bias_free", "0-10", mohan_path("dncnn", "bias_free", "0-55"))


@pytest.mark.parametrize("which,channels", [("BSD300_color", 3), ("BSD400_gray", 1), ("mnist_gray", 1)])
def test_universal_bfcnn_loads_strictly_and_is_homogeneous(which, channels):
    net = load_universal_bfcnn(which, universal_path(which))
    assert not net.training
    assert max(homogeneity_errors(net, channels=channels)) < 5e-5


def test_kair_dncnn_loads_strictly_and_is_not_homogeneous():
    net = load_kair_dncnn(kair_path())
    assert max(homogeneity_errors(net)) > 2e-2


SET12_01 = "testsets/Set12/01.png"


def test_bf_dncnn_denoises_set12():
    x = read_image(SET12_01)
    y = noisy(x, 25 / 255)
    den = mohan_denoiser("dncnn", "bias_free", "0-55", mohan_path("dncnn", "bias_free", "0-55"))
    with torch.no_grad():
        out = psnr(den(y, 25 / 255), x)
    assert out > 28.0, out  # paper: ~29-30 dB; measured 29.8 dB


def test_kair_dncnn_denoises_set12():
    x = read_image(SET12_01)
    y = noisy(x, 25 / 255)
    with torch.no_grad():
        out = psnr(kair_denoiser(kair_path())(y, 25 / 255), x)
    assert out > 29.0, out  # DnCNN paper: 30.18 dB on this image; measured 30.2 dB


def test_universal_color_denoises_cbsd68():
    x = read_image("testsets/CBSD68/108005.png")
    h, w = x.shape[-2:]
    x = x[..., h // 2 - 80 : h // 2 + 80, w // 2 - 80 : w // 2 + 80]  # 160x160 centre keeps the test fast
    y = noisy(x, 25 / 255)
    den = universal_denoiser("BSD300_color", universal_path("BSD300_color"))
    with torch.no_grad():
        out = psnr(den(y, 25 / 255), x)
    assert out > 28.0, out  # measured 30.1 dB


# forward-mode AD loads torch's jvp decompositions once (~5 s), which warns about torch.jit.script
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_bf_dncnn_jacobian_jvp_matches_finite_difference():
    net, _ = load_mohan_checkpoint("dncnn", "bias_free", "0-55", mohan_path("dncnn", "bias_free", "0-55"))
    net = net.double()
    x = read_image(SET12_01)[..., 100:120, 100:120].double()
    y = noisy(x, 25 / 255)
    v = torch.randn(y.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fy, jv = torch.func.jvp(net, (y,), (v,))
    eps = 1e-6  # small enough that no ReLU flips: the net is piecewise linear
    with torch.no_grad():
        fd = (net(y + eps * v) - net(y - eps * v)) / (2 * eps)
        assert torch.allclose(jv, fd, rtol=1e-5, atol=1e-7 * jv.abs().max())
        # Euler's identity for a degree-1 homogeneous map: J(y) y = f(y)
        _, jy = torch.func.jvp(net, (y,), (y,))
        assert torch.allclose(jy, fy, rtol=1e-9, atol=1e-10)
