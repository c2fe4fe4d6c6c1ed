"""BM3D baseline: interface, sigma scale ([0, 1]), and that it denoises (grey and colour)."""
import pytest
import torch

from replicate import data as D
from replicate.denoisers.bm3d import BM3DDenoiser
from replicate.metrics import psnr


@pytest.mark.parametrize("gray", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_bm3d_denoises_on_the_unit_scale(gray):
    x = D.skimage_set(["astronaut"], gray=gray, crop=32)[0].pixels[None]
    g = torch.Generator().manual_seed(0)
    y = x + 0.1 * torch.randn(x.shape, generator=g)
    den = BM3DDenoiser()
    out = den(y, 0.1)
    assert out.shape == x.shape and out.dtype == x.dtype
    gain = float(psnr(out, x)) - float(psnr(y, x))
    assert gain > 4.0, gain                      # sigma on the right scale: a large, real gain
    weak = float(psnr(den(y, 0.1 / 255), x))      # sigma misread as 0-255 would barely denoise
    assert float(psnr(out, x)) > weak + 2.0
    assert BM3DDenoiser.differentiable is False


def test_bm3d_batch_and_zero_sigma():
    x = D.skimage_set(["camera"], gray=True, crop=32)[0].pixels[None].repeat(2, 1, 1, 1)
    y = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    out = BM3DDenoiser()(y, torch.tensor([0.05, 0.0]))
    assert torch.equal(out[1], y[1])
    with pytest.raises(ValueError, match="channels"):
        BM3DDenoiser()(torch.rand(1, 2, 8, 8), 0.1)
