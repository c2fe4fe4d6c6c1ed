"""Noise models: the base class and registry of both families; measurement noise: scales, statistics, DPS terms."""
import pytest
import torch

from replicate.noise import (MEASUREMENT_NOISES, NOISES, XIE2023_NOISES, GaussianNoise, MeasurementNoise, NoiseModel,
                             PoissonNoise, XieNoiseModel, make_noise)
from replicate.noise.registry import _table
from replicate.noise.residual import NEIGHBOURS, residual_stats
from replicate.noise.xie2023 import ALL_MODELS, DEFAULT_PARAMS, table1_model, table1_name
from replicate.operators.base import make_operator


def test_gaussian_scale_convention():
    # DPS: sigma_y = 0.05 on [-1, 1] images = 0.025 on our [0, 1] scale
    n = GaussianNoise(0.05, scale="pm1")
    assert n.sigma01 == pytest.approx(0.025)
    Ax = torch.full((4, 3, 64, 64), 0.3, dtype=torch.float64)
    y = n.sample(Ax, torch.Generator().manual_seed(0))
    assert (y - Ax).std().item() == pytest.approx(0.025, rel=0.02)
    # the DPS residual norm is measured in [-1, 1] units: twice ours
    assert torch.allclose(n.fidelity(y, Ax), 2 * (y - Ax).flatten(1).norm(dim=1))
    assert GaussianNoise(0.05, scale="01").sigma01 == 0.05
    y2 = n.sample(Ax, torch.Generator().manual_seed(0))
    assert torch.equal(y, y2)  # seeded


def test_gaussian_loglik_gradient():
    n = GaussianNoise(0.1, scale="01")
    op = make_operator("denoising", shape=(1, 4, 4))
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    y = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    assert torch.allclose(n.log_likelihood(y, x), -((y - x) ** 2).flatten(1).sum(1) / (2 * 0.01))
    gr = n.grad(y, op, x)
    r = (x - y).flatten(1)
    assert torch.allclose(gr.flatten(1), r / r.norm(dim=1, keepdim=True))


def test_poisson_statistics():
    n = PoissonNoise(rate=1.0)
    Ax = torch.full((1, 3, 200, 200), 0.4, dtype=torch.float64)
    y = n.sample(Ax, torch.Generator().manual_seed(1))
    # photon counts 255 * 0.4 = 102 per pixel: mean 0.4, variance 0.4 / 255 on the [0, 1] scale
    assert y.mean().item() == pytest.approx(0.4, abs=1e-3)
    assert y.var().item() == pytest.approx(0.4 / 255, rel=0.03)
    assert torch.allclose(y * 255, (y * 255).round())  # integer counts


@pytest.mark.parametrize("lik", ["poisson_shot", "poisson_ls", "poisson_gaussian", "poisson_direct"])
def test_poisson_dps_norms_vanish_at_truth(lik):
    n = PoissonNoise(rate=1.0, likelihood=lik)
    y = (torch.randint(1, 255, (2, 3, 8, 8)) / 255.0).double()
    assert n.dps_norm(y, y).max() < 1e-5
    assert torch.all(n.dps_norm(y, y + 0.1) > 0.1)
    x = (y + 0.05).requires_grad_(True)
    (gr,) = torch.autograd.grad(n.dps_norm(y, x).sum(), x)
    assert torch.isfinite(gr).all()


def test_poisson_shot_is_weighted_ls():
    n = PoissonNoise(rate=1.0, likelihood="poisson_shot")
    y = torch.tensor([[[[0.2, 0.6]]]], dtype=torch.float64)
    Ax = torch.tensor([[[[0.3, 0.5]]]], dtype=torch.float64)
    k, lam = y * 255, Ax * 255
    assert torch.allclose(n.fidelity(y, Ax), ((k - lam) ** 2 / (2 * k)).sum().view(1))


def test_poisson_dps_norms_are_the_square_roots_of_their_data_terms():
    """dps_norm^2 written out per variant, in photon counts k = 255 y, lam = 255 A x: shot (k - lam)^2 / (2k); least
    squares (k - lam)^2 / 2; Gaussian approximation (k - lam)^2 / (2 lam) + log(lam / k) / 2; Poisson deviance / 2
    lam - k - k log(lam / k)."""
    y = torch.tensor([[[[0.2, 0.6, 0.45]]]], dtype=torch.float64)
    Ax = torch.tensor([[[[0.3, 0.5, 0.45]]]], dtype=torch.float64)
    k, lam = y * 255, Ax * 255
    terms = {"poisson_shot": (k - lam) ** 2 / (2 * k), "poisson_ls": (k - lam) ** 2 / 2,
             "poisson_gaussian": (k - lam) ** 2 / (2 * lam) + 0.5 * torch.log(lam / k),
             "poisson_direct": lam - k - k * torch.log(lam / k)}
    for lik, term in terms.items():
        got = PoissonNoise(rate=1.0, likelihood=lik).dps_norm(y, Ax)
        assert torch.allclose(got, term.sum().sqrt().view(1), rtol=1e-12), lik
    # the data terms themselves (fidelity: what the likelihood step sizes and the reports use), unshifted
    fid = {"poisson_ls": (k - lam) ** 2 / 2, "poisson_gaussian": (k - lam) ** 2 / (2 * lam) + 0.5 * torch.log(lam),
           "poisson_direct": lam - k * torch.log(lam)}
    for lik, term in fid.items():
        got = PoissonNoise(rate=1.0, likelihood=lik).fidelity(y, Ax)
        assert torch.allclose(got, term.sum().view(1), rtol=1e-12), lik


def test_measurement_defaults_are_dps_settings_and_draws_are_the_stated_formulas():
    # DPS: sigma_y = 0.05 on [-1, 1]; Poisson with counts 0-255 (rate 1); the floors of the data terms
    assert repr(GaussianNoise()) == "GaussianNoise(sigma=0.05, scale='pm1')"
    p = PoissonNoise()
    assert (p.rate, p.likelihood, p.min_count, p.min_rate) == (1.0, "poisson_code", 1.0, 1e-3)
    with pytest.raises(ValueError, match="rate"):
        PoissonNoise(rate=0.0)
    with pytest.raises(ValueError, match="sigma"):
        GaussianNoise(sigma=-0.1)
    # y = A x + sigma01 n with n the generator's standard normal draw, exactly
    Ax = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    n = torch.randn(Ax.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert torch.equal(GaussianNoise(0.1, "pm1").sample(Ax, torch.Generator().manual_seed(7)), Ax + 0.05 * n)
    # Poisson: 255 rate photons per unit; values of A x outside [0, 1] are clipped before the draw and y after it
    p2 = PoissonNoise(rate=2.0)
    assert p2.counts_per_unit == 510.0
    flat = torch.full((1, 1, 200, 200), 0.4, dtype=torch.float64)
    y = p2.sample(flat, torch.Generator().manual_seed(1))
    assert y.var().item() == pytest.approx(0.4 / 510, rel=0.03)
    assert torch.allclose(y * 510, (y * 510).round())
    bright = p2.sample(torch.full((1, 1, 50, 50), 1.6, dtype=torch.float64), torch.Generator().manual_seed(1))
    # E min(k / 510, 1) for k ~ Poisson(510) is ~ 1 - sqrt(510) / (sqrt(2 pi) 510) = 0.9823 (510 when not clipped)
    assert bright.max().item() == 1.0 and bright.mean().item() == pytest.approx(0.9823, abs=0.002)
    assert p2.sample(torch.full((1, 1, 4, 4), -0.5), torch.Generator().manual_seed(1)).abs().max().item() == 0.0


def test_noiseless_and_poisson_terms_by_name():
    clean = make_noise("clean")
    y = torch.tensor([[[[0.2, 0.6]]]], dtype=torch.float64)
    Ax = torch.tensor([[[[0.5, 0.2]]]], dtype=torch.float64)
    assert clean.fidelity(y, Ax).item() == pytest.approx(0.5)          # ||(-0.3, 0.4)|| = 0.5
    assert torch.equal(clean.sample(Ax), Ax)
    with pytest.raises(ValueError, match="likelihood"):
        clean.log_likelihood(y, Ax)
    # the released code's term is what both fidelity and dps_norm give, and it is not a likelihood
    code = PoissonNoise()
    expected = 2 * 0.5 * (1 / (2 * y - 1).abs()).mean()                  # ||r_pm1|| * mean_j 1 / |y_pm1_j|
    assert code.fidelity(y, Ax).item() == pytest.approx(expected.item()) == code.dps_norm(y, Ax).item()
    with pytest.raises(ValueError, match="not a likelihood"):
        code.log_likelihood(y, Ax)
    direct = PoissonNoise(likelihood="poisson_direct")
    assert torch.allclose(direct.log_likelihood(y, Ax), -direct.fidelity(y, Ax))
    # the Poisson deviance at counts of 0 and 1 photon (k log(lam / k) is 0 at k = 0, log(lam) at k = 1)
    k = torch.tensor([[[[0.0, 1.0]]]], dtype=torch.float64)
    lam = torch.tensor([[[[2.0, 3.0]]]], dtype=torch.float64)
    want = (lam - k).sum() - torch.log(torch.tensor(3.0, dtype=torch.float64))
    assert direct.dps_norm(k / 255, lam / 255).item() == pytest.approx(want.sqrt().item(), rel=1e-12)


def test_registry_errors():
    assert isinstance(make_noise("gaussian", sigma=0.05), GaussianNoise)
    with pytest.raises(KeyError, match="known"):
        make_noise("laplace")
    with pytest.raises(ValueError):
        PoissonNoise(likelihood="bogus")


# ------------------------------------------------------------------ one base class, one registry (both families)
def _clean_for(model):
    """A seeded clean signal on the model's scale: [0, 1] measurements, or a 0-255 image for Xie's models."""
    x = torch.rand((2, 3, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return 10 + 235 * x if isinstance(model, XieNoiseModel) else x


def test_every_registered_model_has_the_common_contract():
    assert set(NOISES) == set(MEASUREMENT_NOISES) | set(XIE2023_NOISES)
    assert not set(MEASUREMENT_NOISES) & set(XIE2023_NOISES)
    for name in NOISES:
        model = make_noise(name)
        assert isinstance(model, NoiseModel)
        assert isinstance(model, MeasurementNoise if name in MEASUREMENT_NOISES else XieNoiseModel)
        assert model.registered_name == name
        # every parameter it reports is described
        values = model.param_values()
        assert set(values) <= set(model.PARAMS) and all(model.PARAMS[k] for k in values)
        assert name in model.describe() and all(k in model.describe() for k in values)
        # seeded: the same generator state gives the same draw, another state another one
        x = _clean_for(model)
        y1 = model.sample(x, torch.Generator().manual_seed(3))
        assert y1.shape == x.shape
        assert torch.equal(y1, model.sample(x, torch.Generator().manual_seed(3)))
        if name != "clean":
            assert not torch.equal(y1, model.sample(x, torch.Generator().manual_seed(4)))
    assert set(XieNoiseModel.PARAMS) >= set(DEFAULT_PARAMS)


def test_registry_builds_xie_models_like_table1_model():
    for no in ALL_MODELS:
        assert make_noise(table1_name(no)) == table1_model(no)
    a, b = make_noise("xie2023_no3", params={"a": 0.98}), table1_model(3, {"a": 0.98})
    assert a.params == b.params and a.params["a"] == 0.98
    x = _clean_for(a)
    assert torch.equal(a.sample(x, torch.Generator().manual_seed(1)), b.sample(x, torch.Generator().manual_seed(1)))
    assert make_noise("xie2023_no7", poisson_score="exact").poisson_score == "exact"
    assert make_noise("gaussian", sigma=0.05, scale="01").sigma01 == GaussianNoise(0.05, "01").sigma01


def test_registry_is_fixed_and_refuses_clashes():
    with pytest.raises(TypeError):
        NOISES["laplace"] = GaussianNoise   # read-only: the registry is the table in registry.py
    with pytest.raises(ValueError, match="twice"):
        _table([("gaussian", GaussianNoise), ("gaussian", PoissonNoise)])
    with pytest.raises(TypeError):
        NoiseModel()   # abstract: sample() is the contract


def test_residual_stats_take_the_strongest_of_the_eight_neighbour_correlations():
    # the paper's 8 neighbour directions (Kawar et al. Sec. 4.2), each once
    unit_offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    assert sorted(NEIGHBOURS) == unit_offsets
    # reference written out with numpy: Pearson rho of r[c, i, j] with r[c, i + dy, j + dx] over the valid pairs
    import numpy as np
    from scipy import stats as sps

    r = torch.randn(2, 7, 9, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    r[:, :, 1:] += 0.8 * r[:, :, :-1].clone()          # correlated along rows: the (0, +-1) directions win
    a = r.numpy()
    H, W = a.shape[1:]
    rhos = {}
    for dy, dx in unit_offsets:
        p = [(a[c, i, j], a[c, i + dy, j + dx]) for c in range(2) for i in range(H) for j in range(W)
             if 0 <= i + dy < H and 0 <= j + dx < W]
        rhos[(dy, dx)] = np.corrcoef(np.array(p).T)[0, 1]
    best = max(rhos, key=lambda d: abs(rhos[d]))
    s = residual_stats(r)
    assert best in ((0, -1), (0, 1)) and s["res_rho_dir"] in ("0,-1", "0,1")
    assert s["res_rho"] == pytest.approx(rhos[best], abs=1e-12) and s["res_abs_rho"] == pytest.approx(abs(rhos[best]))
    assert s["res_std"] == pytest.approx(float(np.std(a, ddof=1)))
    assert s["res_p"] == pytest.approx(float(sps.normaltest(a.ravel()).pvalue))
    # the diagonals: a residual correlated only along (1, 1), or only along (1, -1), is found there, whatever the sign
    d = torch.randn(1, 30, 30, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    d[:, 1:, 1:] += d[:, :-1, :-1].clone()
    assert residual_stats(d)["res_rho_dir"] in ("1,1", "-1,-1")
    e = torch.randn(1, 30, 30, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    e[:, 1:, :-1] -= e[:, :-1, 1:].clone()             # anti-correlated: the largest |rho| is a negative rho
    s = residual_stats(e)
    assert s["res_rho_dir"] in ("1,-1", "-1,1") and s["res_rho"] < -0.3 and s["res_abs_rho"] == -s["res_rho"]
    # neighbours only: a residual correlated at distance 2 in every direction (and not at distance 1) stays near 0
    w = torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    far = w[:, 2:-2, 2:-2].clone()
    for dy, dx in [(0, 2), (2, 0), (2, 2), (2, -2), (0, -2), (-2, 0), (-2, -2), (-2, 2)]:
        far += 0.5 * w[:, 2 + dy:62 + dy, 2 + dx:62 + dx]
    assert residual_stats(far)["res_abs_rho"] < 0.1
