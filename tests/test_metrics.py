import math
import sys
import types

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from replicate import metrics
from replicate.metrics import MetricUnavailable

torch.set_num_threads(1)


def _images(n=3, c=3, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g)


# ---------------------------------------------------------------- PSNR / MSE
def test_psnr_of_known_mse_is_exact():
    ref = torch.full((2, 1, 8, 8), 0.5)
    x = ref + 0.1  # MSE = 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert torch.allclose(metrics.mse(x, ref), torch.full((2,), 0.01, dtype=torch.float64))
    assert torch.allclose(metrics.psnr(x, ref), torch.full((2,), 20.0, dtype=torch.float64), atol=1e-9)
    # data_range 255 on 8-bit-scaled values gives the same number (Mohan's [0, 255] convention)
    assert torch.allclose(metrics.psnr(x * 255, ref * 255, data_range=255.0), metrics.psnr(x, ref))


def test_psnr_clipping():
    ref = torch.ones(1, 1, 4, 4)
    x = torch.full((1, 1, 4, 4), 1.5)   # overshoot by 0.5
    assert metrics.psnr(x, ref, clip=True).item() == math.inf           # clamped onto the reference
    assert metrics.psnr(x, ref, clip=False).item() == pytest.approx(10 * math.log10(1 / 0.25))


def test_psnr_max_gt_convention():
    ref = torch.full((2, 1, 4, 4), 0.25)
    ref[1] = 0.5
    x = ref + 0.05  # MSE 0.0025 for both
    out = metrics.psnr(x, ref, data_range="max_gt")
    expected = torch.tensor([10 * math.log10(0.25 ** 2 / 0.0025), 10 * math.log10(0.5 ** 2 / 0.0025)],
                            dtype=torch.float64)
    assert torch.allclose(out, expected)
    assert torch.allclose(metrics.psnr_for("xie2023", x, ref), expected)
    assert torch.allclose(metrics.psnr_for("kawar2021", x, ref), torch.full((2,), 26.0206, dtype=torch.float64),
                          atol=1e-4)


def test_psnr_of_mean_mse_is_below_mean_of_psnr():
    ref = torch.zeros(2, 1, 4, 4)
    x = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.3)])
    per_image = metrics.psnr(x, ref)
    pooled = metrics.psnr(x, ref, convention="psnr_of_mean_mse")
    assert pooled.item() == pytest.approx(10 * math.log10(1 / ((0.01 + 0.09) / 2)))
    assert pooled.item() < per_image.mean().item()


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.ssim(torch.zeros(1, 1, 8, 8), torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        metrics.mse(torch.zeros(4, 4), torch.zeros(4, 4))
    with pytest.raises(KeyError):
        metrics.psnr_for("nobody2099", torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))


# ---------------------------------------------------------------- SSIM
def test_ssim_matches_skimage_and_identity():
    ref = _images(2, 3, 20, 20, seed=1)
    x = (ref + 0.1 * _images(2, 3, 20, 20, seed=2)).clamp(0, 1)
    ours = metrics.ssim(x, ref)
    for i in range(2):
        direct = structural_similarity(ref[i].double().numpy(), x[i].double().numpy(), data_range=1.0, channel_axis=0)
        assert ours[i].item() == pytest.approx(direct, abs=1e-12)
    assert torch.allclose(metrics.ssim(ref, ref), torch.ones(2, dtype=torch.float64))
    gray = ref[:, :1]
    assert metrics.ssim(gray, gray)[0].item() == pytest.approx(1.0)


def test_ssim_constant_images_by_hand():
    # constant images: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 L)^2
    a, b, c1 = 0.3, 0.6, (0.01 * 1.0) ** 2
    x, ref = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    assert metrics.ssim(x, ref).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)


# ---------------------------------------------------------------- registry stand-in
class _AssetUnavailable(Exception):
    pass


def _fake_registry(monkeypatch, files: dict):
    """Install a stand-in for replicate.assets.registry: fetch(name) -> files[name] or AssetUnavailable."""
    mod = types.ModuleType("replicate.assets.registry")
    mod.AssetUnavailable = _AssetUnavailable

    def fetch(name, offline=None):
        if name not in files:
            raise _AssetUnavailable(f"{name} not in the offline mirror")
        return files[name]

    mod.fetch = fetch
    monkeypatch.setitem(sys.modules, "replicate.assets.registry", mod)


def test_lpips_and_fid_unavailable_without_weights(monkeypatch):
    _fake_registry(monkeypatch, {})
    with pytest.raises(MetricUnavailable, match="alexnet-owt-7be5be79.pth is not available here"):
        metrics.LPIPS("alex")
    with pytest.raises(MetricUnavailable, match="vgg16-397923af.pth"):
        metrics.LPIPS("vgg")
    x = _images(2, 3, 16, 16)
    with pytest.raises(MetricUnavailable, match="pt_inception-2015-12-05-6726825d.pth"):
        metrics.fid(x, x)
    ok, reason = metrics.lpips_available("alex")
    assert not ok and "not in the offline mirror" in reason
    ok, reason = metrics.fid_available()
    assert not ok and "not available here" in reason


@pytest.fixture(scope="module")
def random_alexnet_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None)
    path = tmp_path_factory.mktemp("lpips") / "alexnet-random.pth"
    torch.save(net.state_dict(), path)
    return path, net.state_dict()


def test_lpips_with_mapped_random_backbone(monkeypatch, random_alexnet_file):
    path, tv_state = random_alexnet_file
    _fake_registry(monkeypatch, {metrics.LPIPS_BACKBONES["alex"]: path})
    assert metrics.lpips_available("alex") == (True, str(path))
    m = metrics.LPIPS("alex")
    # the file's tensors really landed in the slices (features.N -> sliceK.N)
    net = m.model.net
    assert torch.equal(net.slice1[0].weight, tv_state["features.0.weight"])
    assert torch.equal(net.slice2._modules["3"].weight, tv_state["features.3.weight"])
    assert torch.equal(net.slice5._modules["10"].bias, tv_state["features.10.bias"])
    x, y = _images(2, 3, 64, 64, seed=3), _images(2, 3, 64, 64, seed=4)
    assert torch.allclose(m(x, x), torch.zeros(2, dtype=torch.float64), atol=1e-7)
    d_xy, d_yx = m(x, y), m(y, x)
    assert d_xy.shape == (2,) and torch.all(d_xy > 0)
    assert torch.allclose(d_xy, d_yx, rtol=1e-5)


def test_lpips_backbone_mapping_is_strict(random_alexnet_file):
    import lpips

    _, tv_state = random_alexnet_file
    net = lpips.LPIPS(pretrained=True, net="alex", pnet_rand=True, verbose=False).net
    mapped = metrics.map_backbone_state(net, tv_state)
    assert set(mapped) == set(net.state_dict())
    partial = {k: v for k, v in tv_state.items() if k != "features.8.weight"}
    with pytest.raises(ValueError, match="features.8.weight"):
        metrics.map_backbone_state(net, partial)


def test_vgg_backbone_mapping_covers_all_features():
    import lpips
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"])  # VGG16 features only (the classifier is irrelevant and large)
    tv_state = {f"features.{k}": v for k, v in features.state_dict().items()}
    net = lpips.LPIPS(pretrained=True, net="vgg", pnet_rand=True, verbose=False).net
    mapped = metrics.map_backbone_state(net, tv_state)
    net.load_state_dict(mapped, strict=True)
    assert len(mapped) == 26  # 13 convolutions x (weight, bias)


# ---------------------------------------------------------------- Frechet distance
def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    mu = rng.normal(size=5)
    assert metrics.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    assert metrics.frechet_distance([0.0], [[1.0]], [1.0], [[1.0]]) == pytest.approx(1.0)
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2 with standard deviations s
    assert metrics.frechet_distance([0.0], [[4.0]], [0.0], [[1.0]]) == pytest.approx(1.0)


def test_frechet_eigh_matches_sqrtm():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(40, 8)), rng.normal(loc=0.3, scale=1.5, size=(40, 8))
    args = (f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    assert metrics.frechet_distance(*args) == pytest.approx(metrics.frechet_distance(*args, method="sqrtm"), rel=1e-8)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


@pytest.mark.parametrize("n1,n2", [(5, 7), (40, 60)])  # rank-deficient (n < d) route and covariance route
def test_frechet_from_features_equals_covariance_formula(n1, n2):
    rng = np.random.default_rng(2)
    d = 12
    f1 = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d))
    f2 = rng.normal(loc=0.5, size=(n2, d))
    via_cov = metrics.frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    assert metrics.frechet_distance_features(f1, f2) == pytest.approx(via_cov, rel=1e-7)
    assert metrics.frechet_distance_features(f1, f1) == pytest.approx(0.0, abs=1e-7 * via_cov)


def _random_fid_state():
    """State dict of pytorch-fid's FID Inception architecture with random weights (same construction)."""
    torch.manual_seed(0)
    return metrics._FIDInceptionPool3.build_network().state_dict()


def test_fid_with_random_weights_file(monkeypatch, tmp_path):
    state = _random_fid_state()
    path = tmp_path / "inception-random.pth"
    torch.save(state, path)
    _fake_registry(monkeypatch, {metrics.FID_INCEPTION: path})
    assert metrics.fid_available() == (True, str(path))
    x, y = _images(3, 3, 32, 32, seed=5), _images(3, 3, 32, 32, seed=6) ** 3
    d_xy = metrics.fid(x, y)
    assert d_xy > 0
    # batches as an iterable give the same features as one tensor; a set against itself is at distance 0
    model = metrics._FIDInceptionPool3(state)
    f_a = metrics.fid_features(x, model, batch_size=2)
    f_b = metrics.fid_features([x[:1], x[1:]], model)
    assert f_a.shape == (3, 2048)
    assert np.allclose(f_a, f_b, rtol=1e-5, atol=1e-12)
    assert abs(metrics.frechet_distance_features(f_a, f_a)) < 1e-6 * d_xy
    # strict load: a missing tensor is an error, not a silently random layer
    del state["Mixed_7c.branch_pool.conv.weight"]
    with pytest.raises(RuntimeError, match="Mixed_7c.branch_pool.conv.weight"):
        metrics._FIDInceptionPool3(state)
