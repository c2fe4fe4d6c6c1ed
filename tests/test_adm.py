"""The ADM UNet reproduces the original guided-diffusion architecture (names, shapes, counts, numbers).

Probe timings on this 2-core CPU machine (1 thread, batch 1, 256x256): FFHQ build+fill ~4 s, forward ~7.5 s;
ImageNet build+fill ~31 s, forward ~69 s (peak RSS ~3.5 GB) -> marked slow.
"""
import collections
import json
import pickle
from pathlib import Path

import pytest
import torch

from replicate.denoisers.adm import ADM_CONFIGS, ADMUNet, build_adm, load_adm_checkpoint, timestep_embedding
from replicate.denoisers.reference_fill import fill_reference

torch.set_num_threads(1)

REF = Path(__file__).resolve().parent / "fixtures" / "reference"   # copied from shared/reference

# a few-thousand-parameter config exercising every block type (attention at 8x8 and 4x4)
TINY = dict(image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,2,2", learn_sigma=True,
            attention_resolutions="8,4", num_head_channels=16, use_scale_shift_norm=True, resblock_updown=True)


class _Payload:
    """An arbitrary class: unpickling it would run module-level code, which weights_only refuses."""


def _reference(name):
    return json.loads((REF / "architectures.json").read_text())[f"adm_{name}"]


@pytest.mark.parametrize("name", ["ffhq256_dps", "imagenet256_uncond"])
def test_state_dict_matches_original(name):
    ref = _reference(name)
    with torch.device("meta"):  # shapes only: no memory, no init time for 550M parameters
        net = build_adm(name)
    ours = collections.OrderedDict((k, list(v.shape)) for k, v in net.state_dict().items())
    assert list(ours) == list(ref["state_dict"])  # same keys, same order
    assert ours == ref["state_dict"]
    assert sum(p.numel() for p in net.parameters()) == ref["num_params"] == ADM_CONFIGS[name]["num_params"]
    for key in ("num_channels", "num_res_blocks", "num_head_channels", "learn_sigma", "use_scale_shift_norm",
                "resblock_updown"):
        assert ADM_CONFIGS[name][key] == ref["config"][key]
    assert str(ADM_CONFIGS[name]["attention_resolutions"]) == str(ref["config"]["attention_resolutions"])


def _check_probe(name):
    probe = torch.load(REF / "probes" / f"adm_{name}.pt", weights_only=True)
    net = build_adm(name)
    fill_reference(net)
    net.eval()
    with torch.no_grad():
        out = net(probe["input"], probe["timesteps"])
    assert list(out.shape) == probe["output_shape"] == [1, 6, 256, 256]
    # observed max abs error ~6e-6 with |output| up to ~2.8: float32 rounding (4096 entries kept by the probe)
    torch.testing.assert_close(out.reshape(-1)[probe["output_index"]], probe["output_values"], rtol=1e-4, atol=1e-4)


def test_probe_ffhq256_dps():
    _check_probe("ffhq256_dps")


@pytest.mark.slow
def test_probe_imagenet256_uncond():
    _check_probe("imagenet256_uncond")


def test_timestep_embedding():
    e = timestep_embedding(torch.tensor([0, 7]), 8)
    assert e.shape == (2, 8)
    assert torch.equal(e[0], torch.tensor([1.0] * 4 + [0.0] * 4))  # cos first, then sin
    assert e[1, 0].item() == pytest.approx(torch.cos(torch.tensor(7.0)).item())
    assert timestep_embedding(torch.tensor([3]), 7).shape == (1, 7)


def test_tiny_forward_and_scalar_timestep():
    torch.manual_seed(0)
    net = ADMUNet(**TINY).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = net(x, torch.tensor([5, 5]))
        assert out.shape == (2, 6, 16, 16)
        torch.testing.assert_close(net(x, 5), out)
        torch.testing.assert_close(net(x[:1], torch.tensor([5])), out[:1], rtol=1e-4, atol=1e-5)  # batch-size-dependent rounding


def test_checkpoint_round_trip(tmp_path, monkeypatch):
    monkeypatch.setitem(ADM_CONFIGS, "tiny", TINY)
    torch.manual_seed(0)
    src = build_adm("tiny")
    path = tmp_path / "tiny.pt"
    torch.save(src.state_dict(), path)
    net = load_adm_checkpoint(path, "tiny")
    assert not net.training
    for k, v in src.state_dict().items():
        assert torch.equal(net.state_dict()[k], v)

    # strict: a missing key fails loudly
    sd = src.state_dict()
    sd.pop("out.2.bias")
    torch.save(sd, tmp_path / "missing.pt")
    with pytest.raises(RuntimeError, match="out.2.bias"):
        load_adm_checkpoint(tmp_path / "missing.pt", "tiny")

    # safe loading: a pickle holding arbitrary objects is refused
    torch.save({"state": src.state_dict(), "obj": _Payload()}, tmp_path / "pickled.pt")
    with pytest.raises(pickle.UnpicklingError):
        load_adm_checkpoint(tmp_path / "pickled.pt", "tiny")

    with pytest.raises(KeyError):
        build_adm("no_such_config")


def test_unet_plugs_into_vp_wrappers():
    """float32 ADMUNet -> EpsModelX0 (learned-range variance) and ADMDenoiser (project D on [0, 1])."""
    from replicate.denoisers.vp import ADMDenoiser, EpsModelX0, VPSchedule, space_timesteps

    torch.manual_seed(0)
    net = ADMUNet(**TINY).eval()
    sched = VPSchedule().respace(space_timesteps(1000, 10))
    x_t = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = EpsModelX0(net, sched).predict(x_t, torch.tensor([0, 9]))
        assert out["x0"].dtype == torch.float32 and out["x0"].shape == x_t.shape
        # log-variance = frac * log beta_t + (1 - frac) * log posterior_var, frac = (v + 1)/2, v = channels 3..5
        v = net(x_t, sched.timestep_map[[0, 9]])[:, 3:]
        frac = (v + 1) / 2
        t = torch.tensor([0, 9])
        expect = (frac * sched.betas[t].log().float().view(2, 1, 1, 1)
                  + (1 - frac) * sched.posterior_log_variance_clipped[t].float().view(2, 1, 1, 1))
        torch.testing.assert_close(out["log_variance"], expect)
        y = torch.rand(2, 3, 16, 16)
        d = ADMDenoiser(net)(y, torch.tensor([0.1, 0.5]))
        assert d.shape == y.shape and torch.isfinite(d).all()
