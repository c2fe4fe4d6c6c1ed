"""VP (DDPM) diffusion: schedule, forward process, posterior, parametrisations and the Denoiser bridges.

The bridges are checked against closed forms for i.i.d. scalar Gaussian data, where every conditional
expectation is linear and known exactly.
"""
import math

import pytest
import torch
from torch import nn

from replicate.denoisers.base import Denoiser
from replicate.denoisers.vp import ADMDenoiser, DenoiserX0, EpsModelX0, VPSchedule, space_timesteps

torch.set_num_threads(1)

# data prior on the [0, 1] scale: x ~ N(M01, S01^2) per pixel; on the [-1, 1] scale N(2 M01 - 1, (2 S01)^2)
M01, S01 = 0.4, 0.2
M, S = 2 * M01 - 1, 2 * S01


class GaussianMMSE(Denoiser):
    """Exact E[x | x + sigma n] for the i.i.d. scalar Gaussian prior N(M01, S01^2) on [0, 1]."""

    max_sigma = float("inf")   # analytic: exact at every level, the VP schedule's ~79 included

    def denoise(self, y, sigma):
        return M01 + S01**2 / (S01**2 + sigma**2) * (y - M01)


def exact_x0(x_t, abar):
    """E[x0 | x_t] in [-1, 1] units, x_t = sqrt(abar) x0 + sqrt(1 - abar) n, x0 ~ N(M, S^2)."""
    a = math.sqrt(abar)
    return M + S**2 * a / (abar * S**2 + 1 - abar) * (x_t - a * M)


class GaussianEpsNet(nn.Module):
    """The exact eps-predictor for that prior, conditioned on ORIGINAL timesteps of ``schedule`` like ADM.
    Returns 6 channels (eps, learned-range values) with constant variance values ``v``."""

    def __init__(self, schedule, v=0.0):
        super().__init__()
        self.schedule, self.v = schedule, v
        self.seen = []

    def forward(self, x_t, timesteps):
        self.seen.append(timesteps.clone())
        ac = self.schedule.at(self.schedule.alphas_cumprod, timesteps, x_t).double()
        x = x_t.double()
        x0 = M + S**2 * ac.sqrt() / (ac * S**2 + 1 - ac) * (x - ac.sqrt() * M)
        eps = (x - ac.sqrt() * x0) / (1 - ac).sqrt()
        return torch.cat([eps, torch.full_like(eps, self.v)], dim=1).to(x_t.dtype)


def test_schedule_values():
    s = VPSchedule()
    assert s.num_steps == 1000
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    ac = s.alphas_cumprod
    assert bool((ac[1:] < ac[:-1]).all()) and 0 < ac[-1] < ac[0] < 1
    assert ac[-1].item() == pytest.approx(4.04e-5, rel=0.01)  # the known terminal value of DDPM's schedule
    assert s.alphas_cumprod_prev[0] == 1 and torch.equal(s.alphas_cumprod_prev[1:], ac[:-1])
    # shorter linear schedules are scaled to span the same noise (guided-diffusion): endpoints x 1000/n
    s100 = VPSchedule(num_steps=100)
    assert s100.betas[0].item() == pytest.approx(1e-3) and s100.betas[-1].item() == pytest.approx(0.2)
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    lv = s.noise_level01()
    assert lv[0].item() == pytest.approx(0.005, rel=1e-3) and bool((lv[1:] > lv[:-1]).all())


def test_q_sample_statistics():
    s = VPSchedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((200_000, 1, 1, 1), 0.3)
    noise = torch.randn(x0.shape, generator=g)
    for t in (0, 250, 999):
        xt = s.q_sample(x0, t, noise)
        ac = s.alphas_cumprod[t].item()
        tol = 5 / math.sqrt(x0.numel())
        assert xt.mean().item() == pytest.approx(math.sqrt(ac) * 0.3, abs=tol)
        assert xt.std().item() == pytest.approx(math.sqrt(1 - ac), rel=tol)
    # per-image timesteps
    t = torch.tensor([0, 999])
    xt = s.q_sample(torch.zeros(2, 1, 2, 2), t, torch.ones(2, 1, 2, 2))
    assert torch.allclose(xt[:, 0, 0, 0], (1 - s.alphas_cumprod[t]).sqrt().float(), rtol=1e-6)


def test_posterior_matches_gaussian_conditioning():
    """q(x_{t-1} | x_t, x0) and E[x_{t-1} | x_t] by conditioning the joint Gaussian directly."""
    s = VPSchedule()
    x_t = torch.linspace(-2, 2, 5, dtype=torch.float64).view(5, 1, 1, 1)
    for t in (0, 1, 10, 500, 999):
        ac, acp, a = (s.alphas_cumprod[t].item(), s.alphas_cumprod_prev[t].item(), s.alphas[t].item())
        # given x0: x_{t-1} = sqrt(acp) x0 + sqrt(1-acp) n1, x_t = sqrt(a) x_{t-1} + sqrt(1-a) n2
        x0 = 0.3
        cov = math.sqrt(a) * (1 - acp)
        mean_direct = math.sqrt(acp) * x0 + cov / (1 - ac) * (x_t - math.sqrt(ac) * x0)
        var_direct = (1 - acp) - cov**2 / (1 - ac)
        mean, var, _ = s.q_posterior(torch.full_like(x_t, x0), x_t, t)
        assert torch.allclose(mean, mean_direct, atol=1e-12)
        assert var.flatten()[0].item() == pytest.approx(var_direct, abs=1e-15)
        # Gaussian data x0 ~ N(M, S^2): E[x_{t-1} | x_t] = posterior mean at x0 = E[x0 | x_t]
        var_prev, var_t = acp * S**2 + 1 - acp, ac * S**2 + 1 - ac
        cov_marg = math.sqrt(a) * var_prev
        mean_marg = math.sqrt(acp) * M + cov_marg / var_t * (x_t - math.sqrt(ac) * M)
        mean2, _, _ = s.q_posterior(exact_x0(x_t, ac), x_t, t)
        assert torch.allclose(mean2, mean_marg, atol=1e-12)


def test_learned_range_and_eps_parametrisation():
    s = VPSchedule()
    t = torch.tensor([1, 500, 999])
    ones = torch.ones(3, 1, 1, 1, dtype=torch.float64)
    assert torch.allclose(s.learned_range_log_variance(ones, t).flatten(), s.betas[t].log())
    assert torch.allclose(s.learned_range_log_variance(-ones, t).flatten(), s.posterior_log_variance_clipped[t])
    mid = 0.5 * (s.betas[t].log() + s.posterior_log_variance_clipped[t])
    assert torch.allclose(s.learned_range_log_variance(0 * ones, t).flatten(), mid)
    g = torch.Generator().manual_seed(1)
    x0, n = torch.randn(3, 3, 4, 4, generator=g), torch.randn(3, 3, 4, 4, generator=g)
    xt = s.q_sample(x0, t, n)
    assert torch.allclose(s.predict_x0_from_eps(xt, t, n), x0, atol=2e-3)  # 1/sqrt(abar_999) ~ 160 amplifies rounding
    assert torch.allclose(s.predict_eps_from_x0(xt, t, x0), n, atol=1e-5)


def test_respace():
    s = VPSchedule()
    use = space_timesteps(1000, 100)
    assert len(use) == 100 and use[0] == 0 and use[-1] == 999
    r = s.respace(use)
    assert r.num_steps == 100 and torch.equal(r.timestep_map, torch.tensor(use))
    assert torch.allclose(r.alphas_cumprod, s.alphas_cumprod[use], rtol=1e-12)  # same marginals q(x_t | x0)
    assert torch.allclose(s.respace(range(1000)).betas, s.betas, rtol=1e-10)
    rr = r.respace([0, 50, 99])  # respacing composes
    assert torch.equal(rr.timestep_map, torch.tensor([use[0], use[50], use[99]]))
    assert torch.allclose(rr.alphas_cumprod, s.alphas_cumprod[rr.timestep_map], rtol=1e-12)
    with pytest.raises(ValueError):
        s.respace([1000])


def test_denoiser_x0_is_exact_tweedie_for_gaussian_prior():
    s = VPSchedule().respace(space_timesteps(1000, 50))
    model = DenoiserX0(GaussianMMSE(), s)
    g = torch.Generator().manual_seed(2)
    x_t = torch.randn(4, 3, 5, 5, generator=g, dtype=torch.float64)
    for t in (0, 10, 49):
        ac = s.alphas_cumprod[t].item()
        assert torch.allclose(model.x0_hat(x_t, t), exact_x0(x_t, ac), atol=1e-10)
    t = torch.tensor([0, 10, 20, 49])
    out = model.predict(x_t, t)
    for i, ti in enumerate(t.tolist()):
        assert torch.allclose(out["x0"][i], exact_x0(x_t[i], s.alphas_cumprod[ti].item()), atol=1e-10)
    assert torch.allclose(out["log_variance"][:, 0, 0, 0], s.posterior_log_variance_clipped[t])


def test_eps_model_x0_uses_original_timesteps():
    base = VPSchedule()
    s = base.respace(space_timesteps(1000, 20))
    net = GaussianEpsNet(base, v=1.0)
    model = EpsModelX0(net, s)
    x_t = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    t = torch.tensor([3, 19])
    out = model.predict(x_t, t)
    assert torch.equal(net.seen[-1], s.timestep_map[t])
    for i, ti in enumerate(t.tolist()):
        assert torch.allclose(out["x0"][i], exact_x0(x_t[i], s.alphas_cumprod[ti].item()), atol=1e-9)
    # v = +1 -> variance beta_t of the respaced schedule
    assert torch.allclose(model.variance(x_t, t)[:, 0, 0, 0], s.betas[t])
    assert model.x0_hat(3 * x_t, 0).abs().max() > 1
    assert EpsModelX0(net, s, clip_denoised=True).x0_hat(3 * x_t, 0).abs().max() <= 1


def test_adm_denoiser_snaps_sigma_to_nearest_step():
    base = VPSchedule()
    d = ADMDenoiser(GaussianEpsNet(base), base, channels=3)
    levels = base.noise_level01()
    # exactly on a level: D is the exact Gaussian MMSE denoiser at that sigma
    y = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    sig = levels[[10, 300, 700]]
    assert torch.allclose(d(y, sig), GaussianMMSE()(y, sig), atol=1e-9)
    # between two levels: the nearer one; outside the range: the end steps
    lo, hi = levels[100].item(), levels[101].item()
    sig = torch.tensor([lo + 0.4 * (hi - lo), lo + 0.6 * (hi - lo), 0.0, 1e4])
    assert d.timestep_for(sig).tolist() == [100, 101, 0, 999]
    # float sigma for a batch, and channel check of the Denoiser base class
    assert d(y, levels[5].item()).shape == y.shape
    with pytest.raises(ValueError):
        d(y[:, :1], 0.1)
