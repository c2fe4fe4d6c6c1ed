"""The denoiser interface refuses bad input with a one-line error that says what to do (never a silent NaN or a raw
torch error), and keeps working for every valid call: floats of any precision, sigma on the [0, 1] scale."""
from __future__ import annotations

import pytest
import torch

from replicate.denoisers.base import DenoiserInputError, NetworkDenoiser
from replicate.denoisers.bfcnn import DnCNN
from replicate.denoisers.gaussian import StationaryGaussianPrior


def _net():
    torch.manual_seed(0)
    return NetworkDenoiser(DnCNN(channels=1, depth=3, features=4, bias=False), output="clean", channels=1).eval()


def test_nan_pixel_is_an_error_that_says_where():
    y = torch.rand(2, 1, 8, 8)
    y[1, 0, 3, 5] = float("nan")
    with pytest.raises(DenoiserInputError, match=r"1 non-finite value.*image 1, channel 0, row 3, column 5"):
        _net()(y, 0.1)


@pytest.mark.parametrize("sigma, message", [(-0.1, ">= 0"), (float("nan"), "finite"), (25.0, "divided by 255"),
                                            (torch.tensor([0.1, 30.0]), "divided by 255")])
def test_bad_sigma_is_refused(sigma, message):
    with pytest.raises(DenoiserInputError, match=message):
        _net()(torch.rand(2, 1, 8, 8), sigma)


def test_score_at_sigma_zero_is_an_error():
    with pytest.raises(DenoiserInputError, match="> 0"):
        _net().score(torch.rand(1, 1, 8, 8), 0.0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_integer_images_are_refused_with_the_fix(dtype):
    with pytest.raises(DenoiserInputError, match="to_float"):
        _net()((torch.rand(1, 1, 8, 8) * 255).to(dtype), 0.1)


def test_float64_input_runs_in_the_networks_precision_and_comes_back_float64():
    net, y = _net(), torch.rand(1, 1, 8, 8)
    out64 = net(y.double(), 0.1)
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), net(y, 0.1))


def test_priors_of_larger_levels_declare_them():
    prior = StationaryGaussianPrior((1, 8, 8))
    assert torch.isfinite(prior(torch.rand(1, 1, 8, 8), 25.0)).all()  # an analytic prior is exact at any level
