"""The bkse KernelWizard (DPS non-uniform blur): module tree as in the original code, adaptKernel path, loading."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from replicate.operators.base import make_operator
from replicate.operators.bkse import BkseCheckpointError, KernelWizard, UNetLevel, load_kernel_wizard
from replicate.operators.nonlinear import NonUniformBlur, load_bkse_blur_network


@pytest.fixture(scope="module")
def net() -> KernelWizard:
    torch.manual_seed(0)
    return KernelWizard().eval()  # the GOPRO_wVAE hyper-parameters are the defaults


def test_adapt_kernel_shape_and_determinism(net):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 128, 128, generator=g)
    z = torch.randn(1, 512, 1, 1, generator=g) * 1.2  # the code lives at 1/128 of the image: 2x2 at 256 px in DPS
    with torch.no_grad():
        y = net.adapt_kernel(x, z)
        y2 = net.adaptKernel(x, z)
        y_other = net(x, torch.randn(1, 512, 1, 1, generator=g) * 1.2)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.equal(y, y2)
    assert not torch.equal(y, y_other)  # the code reaches the output (innermost U-Net level)
    assert net.code_shape(256, 256) == (1, 512, 2, 2)
    with pytest.raises(ValueError, match="does not fit"):
        net(x, torch.randn(1, 512, 2, 2))  # DPS's 2x2 code is for 256 px images
    with pytest.raises(ValueError, match="divisible by 128"):
        net(torch.rand(1, 3, 64, 64), z)


def test_unet_skip_is_leaky_relu_of_input():
    # bkse's down path starts with an in-place LeakyReLU(0.2), so the skip it concatenates is LeakyReLU(x), not x
    torch.manual_seed(3)
    inner = UNetLevel(8, 8, kind="innermost")
    middle = UNetLevel(4, 8, submodule=inner)
    x = torch.randn(1, 4, 8, 8)
    code = torch.randn(1, 8, 2, 2)
    out = middle(x, code)
    assert out.shape == (1, 8, 8, 8)
    assert torch.equal(out[:, 4:], F.leaky_relu(x, 0.2))
    y = torch.randn(1, 8, 4, 4)
    assert torch.equal(inner(y, code)[:, 8:], F.leaky_relu(y, 0.2))
    # the code enters at the innermost level, after the down-sampled features
    assert not torch.equal(inner(y, code), inner(y, code + 1))


def test_state_dict_names_and_shapes_match_bkse(net):
    sd = net.state_dict()
    # read off bkse models/kernel_encoding/kernel_wizard.py, backbones/resnet.py and backbones/unet_parts.py with
    # options/GOPRO/wVAE.yml (nf 64, front_RBs 10, back_RBs 20, kernel_dim 512, use_vae, use_sharp, n_blocks 4,
    # norm none -> no conv biases in the extractor and adapter but the outermost transposed conv)
    expected = {
        "feature_extractor.0.weight": (64, 3, 3, 3),
        "feature_extractor.4.bias": (64,),
        "feature_extractor.15.conv2.weight": (64, 64, 3, 3),  # the 10th front residual block
        "kernel_extractor.model.1.weight": (64, 128, 7, 7),  # 7x7 conv on the sharp+blur features
        "kernel_extractor.model.13.weight": (1024, 512, 3, 3),
        "kernel_extractor.model.16.weight": (1024, 1024, 3, 3),  # width capped at 2 * kernel_dim
        "kernel_extractor.model.22.conv_block.5.weight": (1024, 1024, 3, 3),  # 4th ResnetBlock
        "adapter.model.down.0.weight": (64, 64, 4, 4),
        "adapter.model.up.1.weight": (128, 64, 4, 4),
        "adapter.model.up.1.bias": (64,),
        "adapter.model.submodule.down.1.weight": (128, 64, 4, 4),
        "adapter.model.submodule.submodule.submodule.submodule.down.1.weight": (512, 512, 4, 4),
        "adapter.model.submodule.submodule.submodule.submodule.up.1.weight": (1024, 512, 4, 4),
        "recon_trunk.19.conv1.weight": (64, 64, 3, 3),  # the 20th back residual block
        "recon_trunk.20.weight": (256, 64, 3, 3),
        "recon_trunk.23.weight": (256, 64, 3, 3),
        "recon_trunk.26.weight": (64, 64, 3, 3),
        "recon_trunk.28.weight": (3, 64, 3, 3),
        "recon_trunk.28.bias": (3,),
    }
    for key, shape in expected.items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, key
    absent = ["kernel_extractor.model.1.bias", "kernel_extractor.model.19.conv_block.1.bias",
              "adapter.model.down.0.bias", "adapter.model.submodule.up.1.bias", "feature_extractor.16.conv1.weight",
              "recon_trunk.29.weight"]
    assert not [k for k in absent if k in sd]
    assert len(sd) == 159
    assert sum(v.numel() for v in sd.values()) == 115_265_475


@pytest.fixture(scope="module")
def small_state(net) -> dict:
    # the real file is a flat state dict of ~115 M floats (461 MB); the encoder F (kernel_extractor, 92 M) is not on
    # the adaptKernel path, so the test files store it as zero-stride views of one zero to stay small and fast
    return {k: (torch.zeros((), dtype=v.dtype).expand(v.shape) if k.startswith("kernel_extractor.") else v.clone())
            for k, v in net.state_dict().items()}


def test_operator_loads_checkpoint_and_matches_adapt_kernel(net, small_state, tmp_path):
    path = tmp_path / "GOPRO_wVAE.pth"
    torch.save(small_state, path)  # flat, as bkse's save_network writes it and DPS loads it
    assert not NonUniformBlur.available  # nothing at the default path here
    op = make_operator("nonlinear_blur", weights=path, latent_shape=(1, 512, 1, 1))
    assert op.available and isinstance(op.net, KernelWizard) and not op.net.training
    assert not any(p.requires_grad for p in op.net.parameters())
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, 128, 128, generator=g, requires_grad=True)
    y = op(x)
    with torch.no_grad():
        ref = net.adapt_kernel(x, op.latent).clamp(0, 1)
    assert torch.allclose(y, ref, atol=1e-6, rtol=0)
    assert y.min() >= 0 and y.max() <= 1
    (gx,) = torch.autograd.grad(y.square().sum(), x)  # DPS differentiates A(x) in x
    assert torch.isfinite(gx).all() and gx.abs().sum() > 0


def test_nested_and_dataparallel_checkpoints_load(net, small_state, tmp_path):
    path = tmp_path / "nested.pth"
    torch.save({"params": {"module." + k: v for k, v in small_state.items()}}, path)
    loaded = load_kernel_wizard(path)
    assert torch.equal(loaded.state_dict()["recon_trunk.28.weight"], net.state_dict()["recon_trunk.28.weight"])


def test_wrong_checkpoint_says_so(small_state, tmp_path):
    path = tmp_path / "other.pth"
    state = {k: v for k, v in small_state.items() if not k.startswith("adapter.model.up")}
    state["decoder.weight"] = torch.zeros(3)
    state["recon_trunk.28.weight"] = torch.zeros(3, 32, 3, 3)
    torch.save(state, path)
    with pytest.raises(BkseCheckpointError, match="not the bkse GOPRO_wVAE checkpoint") as err:
        load_bkse_blur_network(path)
    msg = str(err.value)
    assert "adapter.model.up.1.weight" in msg and "decoder.weight" in msg and "recon_trunk.28.weight" in msg
    torch.save([1, 2], path)
    with pytest.raises(BkseCheckpointError, match="not a state dict"):
        load_kernel_wizard(path)


def test_missing_weights_still_unavailable(tmp_path):
    from replicate.operators.nonlinear import ForwardModelUnavailable

    with pytest.raises(ForwardModelUnavailable, match="GOPRO_wVAE.pth"):
        load_bkse_blur_network(tmp_path / "missing.pth")
    op = NonUniformBlur(weights=tmp_path / "missing.pth", load=False)
    assert not op.available
