"""NCSNv2 score networks: architecture identity with the originals, checkpoints, denoiser adapter."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from replicate.denoisers.ncsnv2 import (
    NCSNV2_CONFIGS,
    NCSNv2Denoiser,
    build_ncsnv2,
    geometric_sigmas,
    load_ncsnv2_checkpoint,
)
from replicate.denoisers.reference_fill import fill_reference, reference_value

REFERENCE = Path(__file__).resolve().parent / "fixtures" / "reference"   # copied from shared/reference

# A tiny network with the real block structure, for tests that do not need the real sizes.
TINY = {"class": "NCSNv2", "ngf": 8, "channels": 3, "num_classes": 12, "sigma_begin": 1.0, "sigma_end": 0.01,
        "image_size": 16}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def architectures():
    return json.loads((REFERENCE / "architectures.json").read_text())


def _tiny_net(seed: int = 0):
    torch.manual_seed(seed)
    return build_ncsnv2(TINY).eval()


# ----------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("name", ["celeba", "bedroom", "tower", "ffhq"])
def test_state_dict_matches_reference(name, architectures):
    ref = architectures[f"ncsnv2_{name}"]
    with torch.device("meta"):  # shapes only: no memory, no init cost
        net = build_ncsnv2(name)
    ours = [(k, list(v.shape)) for k, v in net.state_dict().items()]
    assert ours == [(k, list(s)) for k, s in ref["state_dict"].items()]  # same keys, shapes and order
    assert sum(p.numel() for p in net.parameters()) == ref["num_params"]
    assert type(net).__name__ == ref["class"]
    cfg, rc = NCSNV2_CONFIGS[name], ref["config"]
    for key in ("sigma_begin", "sigma_end", "num_classes", "ngf", "image_size", "channels"):
        assert cfg[key] == rc[key], key


def test_sigma_ladder_is_the_original_geometric_one():
    s = build_ncsnv2("celeba").sigmas
    assert s.dtype == torch.float32 and s.shape == (500,)
    expected = np.exp(np.linspace(np.log(90.0), np.log(0.01), 500)).astype(np.float32)
    assert torch.equal(s, torch.from_numpy(expected))
    assert torch.all(s[1:] < s[:-1])


def test_reference_fill_recipe():
    net = _tiny_net()
    fill_reference(net)
    sd = net.state_dict()
    w = sd["begin_conv.weight"]
    assert torch.equal(w, reference_value("begin_conv.weight", w.shape, w.dtype))
    # 1-d scales sit around 1, other 1-d tensors around 0, matrices are fan-in scaled
    assert abs(sd["normalizer.gamma"].mean().item() - 1.0) < 0.1
    assert abs(sd["normalizer.beta"].mean().item()) < 0.1
    assert abs(w.double().std().item() * math.sqrt(27) - 1.0) < 0.2
    again = _tiny_net(seed=1)
    fill_reference(again)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in sd.items())  # init-independent


def _probe_agreement(name: str):
    probe = torch.load(REFERENCE / "probes" / f"ncsnv2_{name}.pt", weights_only=True)
    assert probe["config"]["data"]["rescaled"] is False
    net = build_ncsnv2(name)
    fill_reference(net)
    net.eval()
    with torch.no_grad():
        out = net(probe["input"], probe["labels"])
    assert out.dtype == torch.float32 and list(out.shape) == probe["output_shape"]
    out, ref = out.reshape(-1)[probe["output_index"]], probe["output_values"]  # the probe keeps 4096 entries
    err = (out - ref).abs().max().item()
    scale = ref.abs().max().item()
    # measured: 8e-6 (celeba), 1.1e-5 (bedroom, ffhq) of max|output|, the same distance that separates
    # either float32 run from a float64 evaluation; any architectural mistake gives O(1) differences
    assert err <= 5e-5 * scale, f"{name}: max abs err {err:.3g} vs output scale {scale:.3g}"


def test_probe_celeba():
    _probe_agreement("celeba")


def test_probe_bedroom():
    _probe_agreement("bedroom")


@pytest.mark.slow  # ~90 s on one CPU core
def test_probe_ffhq():
    _probe_agreement("ffhq")


def test_rescaled_flag_skips_the_affine_map():
    net = _tiny_net()
    x = torch.rand(2, 3, 16, 16)
    labels = torch.tensor([0, 5])
    with torch.no_grad():
        a = net(x, labels)
        net.rescaled = True
        b = net(2 * x - 1, labels)
    torch.testing.assert_close(a, b)


# ----------------------------------------------------------------------------- checkpoints


def _official_checkpoint(net: torch.nn.Module, ema_net: torch.nn.Module, optim_state=None) -> list:
    """The list the original training loop saves: DataParallel keys in states[0], EMA params in states[-1]."""
    model_state = {f"module.{k}": v.clone() for k, v in net.state_dict().items()}
    ema_state = {k: p.detach().clone() for k, p in ema_net.named_parameters()}  # EMAHelper.shadow
    optim_state = optim_state or {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999)}]}
    return [model_state, optim_state, 7, 1234, ema_state]


def test_checkpoint_round_trip_tiny(tmp_path):
    raw, ema = _tiny_net(0), _tiny_net(1)
    opt = torch.optim.Adam(raw.parameters(), lr=1e-4)
    raw(torch.rand(1, 3, 16, 16), torch.tensor([3])).pow(2).mean().backward()
    opt.step()  # a real Adam state must also pass the weights_only loader
    path = tmp_path / "checkpoint_5.pth"
    torch.save(_official_checkpoint(raw, ema, opt.state_dict()), path)

    x, labels = torch.rand(2, 3, 16, 16), torch.tensor([0, 11])
    with torch.no_grad():
        got_ema = load_ncsnv2_checkpoint(path, TINY)
        got_raw = load_ncsnv2_checkpoint(path, TINY, ema=False)
        assert not got_ema.training
        torch.testing.assert_close(got_ema(x, labels), ema(x, labels), rtol=0, atol=0)
        torch.testing.assert_close(got_raw(x, labels), raw(x, labels), rtol=0, atol=0)
    assert torch.equal(got_ema.sigmas, raw.sigmas)  # buffers come from states[0]


def test_checkpoint_round_trip_celeba(tmp_path):
    net = build_ncsnv2("celeba")
    fill_reference(net)
    path = tmp_path / "checkpoint_210000.pth"
    torch.save(_official_checkpoint(net, net), path)
    loaded = load_ncsnv2_checkpoint(path, "celeba")
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_checkpoint_errors(tmp_path):
    net = _tiny_net()
    # strict: a missing key is an error
    states = _official_checkpoint(net, net)
    del states[0]["module.end_conv.bias"]
    torch.save(states, tmp_path / "missing.pth")
    with pytest.raises(RuntimeError, match="end_conv.bias"):
        load_ncsnv2_checkpoint(tmp_path / "missing.pth", TINY)
    # EMA with an unexpected parameter name
    states = _official_checkpoint(net, net)
    states[-1]["extra.weight"] = torch.zeros(1)
    torch.save(states, tmp_path / "ema.pth")
    with pytest.raises(KeyError, match="extra.weight"):
        load_ncsnv2_checkpoint(tmp_path / "ema.pth", TINY)
    load_ncsnv2_checkpoint(tmp_path / "ema.pth", TINY, ema=False)  # raw weights still fine
    # arbitrary pickles are refused unless explicitly trusted
    states = _official_checkpoint(net, net)
    states[1] = {"args": argparse.Namespace(lr=1e-4)}
    torch.save(states, tmp_path / "pickle.pth")
    with pytest.raises(RuntimeError, match="weights_only=True"):
        load_ncsnv2_checkpoint(tmp_path / "pickle.pth", TINY)
    load_ncsnv2_checkpoint(tmp_path / "pickle.pth", TINY, trusted_pickle=True)
    with pytest.raises(KeyError, match="unknown NCSNv2 config"):
        build_ncsnv2("cifar")


# ----------------------------------------------------------------------------- denoiser adapter


def test_denoiser_is_tweedie_on_the_ladder():
    den = NCSNv2Denoiser(_tiny_net())
    y = torch.rand(3, 3, 16, 16)
    idx = torch.tensor([0, 4, 11])
    sig = den.sigmas[idx]
    with torch.no_grad():
        s = den.score_at_level(y, idx)
        d = den(y, sig)
        torch.testing.assert_close(d, y + sig.view(-1, 1, 1, 1) ** 2 * s)
        torch.testing.assert_close(den.score(y, sig), s)
        torch.testing.assert_close(den.residual(y, sig), d - y)
        # an int level broadcasts over the batch
        torch.testing.assert_close(den.score_at_level(y, 4), den.net(y, torch.full((3,), 4)))
    assert den.channels == 3 and not den.blind and den.differentiable


def test_level_index_and_snapping():
    den = NCSNv2Denoiser(_tiny_net())
    ladder = den.sigmas
    assert torch.equal(den.level_index(ladder), torch.arange(len(ladder)))
    # within 1 % of a level: that level, for floats and per-image tensors alike
    assert den.level_index(float(ladder[3]) * 1.009).item() == 3
    assert den.level_index(torch.tensor([float(ladder[2]) * 0.992, float(ladder[7])])).tolist() == [2, 7]
    # nearest in log: the geometric midpoint splits two levels
    mid = math.sqrt(float(ladder[5]) * float(ladder[6]))
    snap = NCSNv2Denoiser(den.net, snap=True)
    assert snap.level_index(mid * 1.001).item() == 5 and snap.level_index(mid * 0.999).item() == 6
    # farther than 1 % from every level: error unless snap=True
    y = torch.rand(1, 3, 16, 16)
    for bad in (mid, 2.0, 0.001):
        with pytest.raises(ValueError, match="snap=True"):
            den(y, bad)
    assert snap.level_index(2.0).item() == 0 and snap.level_index(1e-3).item() == len(ladder) - 1
    with torch.no_grad():
        torch.testing.assert_close(snap(y, 2.0), snap(y, float(ladder[0])))
    with pytest.raises(ValueError, match="positive"):
        den.level_index(0.0)
    with pytest.raises(ValueError, match="channel"):
        den(torch.rand(1, 1, 16, 16), float(ladder[0]))


def test_real_ladders_refuse_only_out_of_range_sigmas():
    with torch.device("meta"):
        net = build_ncsnv2("celeba")
    den = NCSNv2Denoiser(net)
    den.net.sigmas = geometric_sigmas(90.0, 0.01, 500)  # real values on CPU
    inside = torch.exp(torch.linspace(math.log(0.01), math.log(90.0), 2001))
    assert den.level_index(inside).min() >= 0  # no error anywhere inside the ladder
    with pytest.raises(ValueError):
        den.level_index(0.0098)
