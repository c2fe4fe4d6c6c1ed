"""Mohan et al. 2020 analysis tools: Jacobian by autograd vs finite differences, the first-order decomposition."""
from __future__ import annotations

import torch

from replicate.denoisers.base import NetworkDenoiser
from replicate.denoisers.bfcnn import DnCNN
from replicate.experiments.mohan2020 import first_order, jacobian


def net(bias):
    torch.manual_seed(1)
    model = NetworkDenoiser(DnCNN(channels=1, depth=4, features=8, bias=bias), output="clean", channels=1).double()
    for m in model.modules():  # non-trivial batch-norm statistics in eval mode
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.2, 0.2)
            if m.bias is not None:
                m.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


def test_jacobian_matches_finite_differences():
    model = net(bias=True)
    y = torch.rand(1, 6, 6, dtype=torch.float64)
    J = jacobian(model, y, 0.1)
    eps = 1e-6
    for k in (0, 17, 35):
        e = torch.zeros(36, dtype=torch.float64)
        e[k] = eps
        fd = (model((y.reshape(-1) + e).reshape(1, 1, 6, 6), 0.1) - model((y.reshape(-1) - e).reshape(1, 1, 6, 6), 0.1))
        assert torch.allclose(J[:, k], fd.reshape(-1) / (2 * eps), atol=1e-6)


def test_bias_free_net_has_no_net_bias_and_biased_one_does():
    y = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    fy, jy = first_order(net(bias=False), y, 0.1)
    assert (fy - jy).abs().max() < 1e-10  # Euler: J y = f(y) for a degree-1 homogeneous map
    fy, jy = first_order(net(bias=True), y, 0.1)
    assert (fy - jy).abs().max() > 1e-3


def test_paper_models_stage_names_every_missing_checkpoint_at_once(tmp_path, monkeypatch):
    """Offline with an empty cache and mirror, the paper profile's models stage lists all its checkpoints in one
    error (not only the first)."""
    import pytest

    from replicate import params
    from replicate.assets.registry import AssetUnavailable
    from replicate.experiments.mohan2020_models import fetch_checkpoints, model_specs

    monkeypatch.setenv("REPLICATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPLICATE_MIRROR", str(tmp_path))
    monkeypatch.setenv("REPLICATE_OFFLINE", "1")
    prm = params.load("mohan2020", profile="paper")
    with pytest.raises(AssetUnavailable) as err:
        fetch_checkpoints(prm)
    names = {m.asset.name for m in err.value.missing}
    assert len(names) == len(model_specs(prm)) > 1
    assert all(f"{s.arch}/{s.variant}/0-{s.train_max}.pt" in str(err.value) for s in model_specs(prm))
