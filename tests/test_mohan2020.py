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
    every = model_specs(prm, extra=True)   # the CPU subset's extra grid included
    assert len(names) == len(every) > len(model_specs(prm)) > 1
    assert all(f"{s.arch}/{s.variant}/0-{s.train_max}.pt" in str(err.value) for s in every)


def test_extra_grid_runs_its_checkpoints_at_its_levels_on_the_first_images_only(monkeypatch):
    """The paper profile's CPU subset: the extra grid's checkpoints run at its levels on the first `images` of each
    set; the main grid's rows are unchanged by it (same noise realisation per image and sigma, paired)."""
    import pandas as pd

    import replicate.experiments.mohan2020 as M
    from replicate import data as D

    images = [D.Image(f"im{k}", torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(k))) for k in range(3)]
    nets = {}

    def fake_models(prm, extra=False):
        from replicate.experiments.mohan2020_models import model_specs

        for spec in model_specs(prm, extra):
            nets.setdefault(spec.name, net(bias=spec.variant == "bias").float())
        return {spec.name: nets[spec.name] for spec in model_specs(prm, extra)}

    monkeypatch.setattr(M, "load_models", fake_models)
    monkeypatch.setattr(M, "test_sets", lambda prm, names=None: {"s": images})
    base = {"profile": "paper", "seed": 0, "device": "cpu", "archs": ["dncnn"], "variants": ["bias", "bias_free"],
            "ranges": [10], "test_sigmas": [10, 50, 90], "test_sets": {"s": {}}, "subset": "cpu_subset"}
    extra = {**base, "extra_grid": {"archs": ["dncnn", "unet"], "ranges": [10, 55], "test_sigmas": [10, 30],
                                    "images": 2}}
    plain = pd.DataFrame([r for i in range(3) for r in M.generalization_rows(base, "s", i)])
    both = pd.DataFrame([r for i in range(3) for r in M.generalization_rows(extra, "s", i)])
    cols = ["image_index", "model", "sigma", "psnr_in", "psnr_out", "ssim_out"]
    main = both[both.model.isin(plain.model.unique()) & both.sigma.isin([10, 50, 90])]
    pd.testing.assert_frame_equal(main[cols].reset_index(drop=True), plain[cols].reset_index(drop=True))
    others = both[~both.index.isin(main.index)]
    assert set(others.image_index) == {0, 1}                      # the first `images` only
    assert set(others.model) == {f"{a}/{v}/0-{r}" for a in ("dncnn", "unet") for v in ("bias", "bias_free")
                                 for r in (10, 55)}
    # a main-grid model gains only the extra levels it lacked (30); an extra-only model runs at the extra levels
    assert set(others[others.model == "dncnn/bias/0-10"].sigma) == {30}
    assert set(others[others.model == "unet/bias/0-55"].sigma) == {10, 30}
    assert len(others) == 2 * (2 * 1 + 6 * 2)                     # 2 images x (2 main models x {30} + 6 others x 2)
    # the same noise realisation per (image, sigma) for every model: input PSNRs agree across models
    assert both.groupby(["image_index", "sigma"]).psnr_in.nunique().max() == 1
