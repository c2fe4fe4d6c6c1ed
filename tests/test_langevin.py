"""Kawar et al. 2021 samplers (replicate/samplers/langevin.py) against an analytic Gaussian prior.

With the stationary Gaussian prior every quantity is exact: the MMSE denoiser is the Wiener filter, the
posterior p(x | y) is Gaussian and diagonal in frequency, and the output law of Algorithm 1 (a linear
recursion) is known in closed form (`gaussian_algorithm1_moments`).  Three layers are checked:
  1. the code samples what Algorithm 1 defines (Monte-Carlo moments vs the closed form);
  2. the algorithm, run long enough, samples the exact posterior (closed form vs posterior) and its MSE
     ratio to the MMSE tends to 2; Monte-Carlo samples match the posterior within a stated tolerance;
  3. Algorithm 2 (noisy inpainting) samples the exact Gaussian posterior given the observed pixels.
"""
from __future__ import annotations

import math

import pytest
import torch

from replicate.denoisers.gaussian import StationaryGaussianPrior, vec
from replicate.samplers.langevin import (gaussian_algorithm1_moments, geometric_levels, mmse_denoise, noisy_inpaint,
                                         split_network_ladder, stochastic_denoise)

SIGMA0 = 0.3
N_MC = 400          # Monte-Carlo samples per test
Z_TOL = 4.5         # per-pixel z-score bound for a sample mean (64 pixels: false alarm ~ 1e-4)
# settings under which the closed form is within 2 % (variance) / 0.05 std (mean) of the posterior (checked below)
FINE = dict(rate=0.8, epsilon=3e-5, T=40)


def _problem(shape=(1, 8, 8), seed=0):
    prior = StationaryGaussianPrior(shape, alpha=2.0, scale=0.2, mean=0.5)
    g = torch.Generator().manual_seed(seed)
    x = prior.sample(1, g)
    y = x + SIGMA0 * torch.randn(x.shape, generator=g, dtype=x.dtype)
    return prior, x, y


def _posterior_at_level(prior, sigma_l):
    """Per-frequency variance of p(x_L | y), x_L = x + sigma_L n: (S + s_L^2)(s0^2 - s_L^2) / (S + s0^2)."""
    S = prior.spectrum
    return (S + sigma_l**2) * (SIGMA0**2 - sigma_l**2) / (S + SIGMA0**2)


def _freq_var(samples, mean):
    return ((torch.fft.fft2(samples - mean, norm="ortho")).abs() ** 2).mean(0)


def test_mmse_baseline_is_the_wiener_filter():
    prior, x, y = _problem()
    S = prior.spectrum
    wiener = 0.5 + torch.fft.ifft2(S / (S + SIGMA0**2) * torch.fft.fft2(y - 0.5, norm="ortho"), norm="ortho").real
    torch.testing.assert_close(mmse_denoise(prior, y, SIGMA0), wiener, rtol=0, atol=1e-12)


def test_closed_form_tends_to_the_posterior_and_mse_ratio_to_two():
    prior, x, y = _problem()
    S = prior.spectrum
    post_mean, post_var0 = prior(y, SIGMA0), prior.posterior_variance_denoising(SIGMA0)
    ratios = []
    for T in (5, 40, 100):
        lv = geometric_levels(SIGMA0, 0.01, FINE["rate"])
        m, v = gaussian_algorithm1_moments(S, 0.5, y, SIGMA0, lv, epsilon=FINE["epsilon"], T=T)
        vpost = _posterior_at_level(prior, float(lv[-1]))
        # expected MSE of a sample over the posterior of x: |E x_T - E[x|y]|^2 + tr V_alg + tr V_post
        ratios.append(float((((m - post_mean) ** 2).sum() + v.sum() + post_var0.sum()) / post_var0.sum()))
        if T == FINE["T"]:
            assert float((v / vpost - 1).abs().max()) < 0.02
            assert float(((m - post_mean).abs() / vpost.mean().sqrt()).max()) < 0.05
    assert abs(ratios[-1] - 2) < abs(ratios[0] - 2)       # tends to 2 ...
    assert abs(ratios[-1] - 2) < 0.01                      # ... and gets there (exact sampler: exactly 2)


def test_algorithm1_samples_match_closed_form_and_posterior():
    prior, x, y = _problem()
    lv = geometric_levels(SIGMA0, 0.01, FINE["rate"])
    res = stochastic_denoise(prior, y, SIGMA0, lv, epsilon=FINE["epsilon"], T=FINE["T"], n_samples=N_MC,
                             seeds=range(N_MC))
    s = res.x
    assert s.shape == (N_MC, 1, 8, 8) and res.nfe == len(lv) * FINE["T"]
    m, v = gaussian_algorithm1_moments(prior.spectrum, 0.5, y, SIGMA0, lv, epsilon=FINE["epsilon"], T=FINE["T"])
    pix_sd = v.mean().sqrt()  # circulant: every pixel has variance mean_k v_k
    # (1) the code implements the recursion: sample mean / per-frequency variance vs the closed form
    assert float(((s.mean(0) - m[0]).abs() / (pix_sd / math.sqrt(N_MC))).max()) < Z_TOL
    ratio = _freq_var(s, s.mean(0)) / v
    assert abs(float(ratio.mean()) - 1) < 0.05 and float((ratio - 1).abs().max()) < 0.4
    # (2) ... and the samples are posterior samples: Monte-Carlo tolerance + the 2 % / 0.05 std closed-form bias
    vpost = _posterior_at_level(prior, float(lv[-1]))
    z = (s.mean(0) - prior(y, SIGMA0)[0]).abs() / (vpost.mean().sqrt() / math.sqrt(N_MC))
    assert float(z.max()) < Z_TOL + 0.05 * math.sqrt(N_MC)
    assert abs(float((_freq_var(s, s.mean(0)) / vpost).mean()) - 1) < 0.07
    # the MSE ratio ours / MMSE on this image is ~2 (one image: posterior-sampling noise allows +-0.5)
    mse_ours = float(((s - x) ** 2).mean())
    mse_mmse = float(((prior(y, SIGMA0) - x) ** 2).mean())
    assert 1.3 < mse_ours / mse_mmse < 3.0
    # residual y - x_hat of a posterior sample is distributed like the noise: std ~ sigma0
    assert abs(float((y - s).std()) / SIGMA0 - 1) < 0.05


def test_algorithm1_is_deterministic_and_batch_invariant():
    prior, x, y = _problem()
    y2 = torch.cat([y, y + 0.01])
    lv = geometric_levels(SIGMA0, 0.01, 0.7)
    a = stochastic_denoise(prior, y2, SIGMA0, lv, epsilon=1e-5, T=2, n_samples=2, seeds=[1, 2, 3, 4]).x
    b = stochastic_denoise(prior, y2, SIGMA0, lv, epsilon=1e-5, T=2, n_samples=2, seeds=[1, 2, 3, 4]).x
    c = stochastic_denoise(prior, y2[1:], SIGMA0, lv, epsilon=1e-5, T=2, n_samples=2, seeds=[3, 4]).x
    assert torch.equal(a, b)
    torch.testing.assert_close(a[2:], c, rtol=0, atol=1e-12)   # a row depends only on its seed, not its batch
    assert not torch.equal(a[0], a[1])                          # two samples of one image differ


def test_algorithm1_callback_and_input_checks():
    prior, x, y = _problem()
    seen = []
    lv = geometric_levels(SIGMA0, 0.01, 0.5)
    stochastic_denoise(prior, y, SIGMA0, lv, epsilon=1e-5, T=1, callback=lambda i, s, xx: seen.append((i, s)))
    assert [i for i, _ in seen] == list(range(len(lv))) and seen[-1][1] == pytest.approx(0.01)
    with pytest.raises(ValueError, match="strictly below sigma0"):
        stochastic_denoise(prior, y, SIGMA0, [0.3, 0.1], epsilon=1e-5, T=1)
    with pytest.raises(ValueError, match="decreasing"):
        stochastic_denoise(prior, y, SIGMA0, [0.1, 0.2], epsilon=1e-5, T=1)
    with pytest.raises(ValueError, match="one seed per"):
        stochastic_denoise(prior, y, SIGMA0, [0.1], epsilon=1e-5, T=1, n_samples=2, seeds=[0])


def test_network_ladder_split_reproduces_the_papers_L():
    """NOTES.md section 4: on NCSNv2's ladder sigma0 is a grid point and the printed L counts it."""
    from replicate.denoisers.ncsnv2 import geometric_sigmas

    celeba = geometric_sigmas(90.0, 0.01, 500)
    for sigma0, L in ((0.100, 127), (0.203, 166), (0.406, 204), (0.607, 226), (0.702, 234)):
        above, s0, below = split_network_ladder(celeba, sigma0)
        assert len(below) == L - 1 and abs(s0 / sigma0 - 1) < 0.01 and float(below[-1]) == pytest.approx(0.01)
        assert len(above) + 1 + len(below) == 500
    lsun = geometric_sigmas(190.0, 0.01, 1086)
    for sigma0, L in ((0.198, 330), (0.403, 408), (0.606, 453)):
        assert len(split_network_ladder(lsun, sigma0)[2]) == L - 1
    ffhq = geometric_sigmas(348.0, 0.01, 2311)
    for sigma0, L in ((0.200, 663), (0.400, 816), (0.602, 906)):
        assert len(split_network_ladder(ffhq, sigma0)[2]) == L - 1
    with pytest.raises(ValueError, match="not a point"):
        split_network_ladder(celeba, 0.1005, rtol=0.005)  # halfway between two levels 1.8 % apart


def test_geometric_levels_ends_and_rate():
    lv = geometric_levels(0.203, 0.01, 0.982)
    assert float(lv[-1]) == pytest.approx(0.01) and float(lv[0]) < 0.203
    r = (lv[1:] / lv[:-1]).numpy()
    assert abs(r.mean() - 0.982) < 1e-3 and r.std() < 1e-9
    assert len(lv) == round(math.log(20.3) / -math.log(0.982))


def test_one_geometric_ladder_behind_the_three_callers():
    """replicate.denoisers.ladders.geometric_ladder makes NCSNv2's ladder, Song & Ermon's / SNIPS's and Kawar et al.'s
    levels below sigma0, with the numbers each had before (NCSNv2's: numpy's float64 ladder cast to float32)."""
    import numpy as np

    from replicate.denoisers.ladders import geometric_ladder
    from replicate.denoisers.ncsnv2 import NCSNV2_CONFIGS, geometric_sigmas
    from replicate.samplers.annealed_langevin import geometric_ladder as song_ermon_ladder

    for c in NCSNV2_CONFIGS.values():
        a, b, n = c["sigma_begin"], c["sigma_end"], c["num_classes"]
        ref = torch.tensor(np.exp(np.linspace(np.log(a), np.log(b), n))).float()
        assert torch.equal(geometric_sigmas(a, b, n), ref)
    assert song_ermon_ladder(1.0, 0.01, 40) == [
        float(s) for s in torch.exp(torch.linspace(math.log(1.0), math.log(0.01), 40))]
    lv = geometric_levels(0.203, 0.01, 0.982)
    n = round(math.log(0.203 / 0.01) / -math.log(0.982))
    assert torch.equal(lv, torch.exp(torch.linspace(math.log(0.203), math.log(0.01), n + 1, dtype=torch.float64))[1:])
    assert torch.equal(geometric_ladder(0.203, 0.01, rate=0.982)[1:], lv)
    with pytest.raises(ValueError, match="exactly one"):
        geometric_ladder(1.0, 0.1)
    with pytest.raises(ValueError, match="rate"):
        geometric_ladder(1.0, 0.1, rate=1.5)


def test_algorithm2_samples_the_gaussian_inpainting_posterior():
    """Below sigma0 Algorithm 2 uses the exact posterior score of x_i given y^M; after a long chain its samples
    follow the dense Gaussian posterior of x given the observed noisy pixels."""
    prior = StationaryGaussianPrior((1, 6, 6), alpha=2.0, scale=0.2, mean=0.5)
    g = torch.Generator().manual_seed(3)
    x = prior.sample(1, g)
    y = x + SIGMA0 * torch.randn(x.shape, generator=g, dtype=x.dtype)
    mask = torch.ones(1, 1, 6, 6, dtype=x.dtype)
    mask[..., 2:4, 1:5] = 0  # 8 missing pixels
    above = geometric_levels(1.0, SIGMA0, 0.8)[:-1]   # strictly above sigma0
    below = geometric_levels(SIGMA0, 0.01, 0.8)
    res = noisy_inpaint(prior, y, mask, SIGMA0, above, below, epsilon=3e-5, T=40, n_samples=N_MC,
                        seeds=range(N_MC), init_mean=0.5)
    keep = mask.flatten().bool()
    A = torch.eye(36, dtype=x.dtype)[keep]
    mean, cov = prior.posterior(A, vec(y)[:, keep], SIGMA0)
    sd = cov.diagonal().sqrt()
    s = vec(res.x)
    z = (s.mean(0) - mean.flatten()).abs() / (sd / math.sqrt(N_MC))
    assert float(z.max()) < Z_TOL + 0.05 * math.sqrt(N_MC)
    var_ratio = s.var(0) / cov.diagonal()
    assert abs(float(var_ratio.mean()) - 1) < 0.1
    assert res.nfe == (len(above) + len(below)) * 40


def test_algorithm2_misprint_corrections():
    """Eq. 12: above sigma0 the observed pixels follow y^M only (no prior score); R pixels only the prior."""
    class Constant(StationaryGaussianPrior):
        def score(self, y, sigma):  # a score that is 7 everywhere: visible wherever the prior term enters
            return torch.full_like(y, 7.0)

    prior = Constant((1, 4, 4))
    y = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    mask[..., :2, :] = 1
    steps = []
    res = noisy_inpaint(prior, y, mask, 0.1, [0.5], [], epsilon=1e-4, T=1, seeds=[0], init="gaussian",
                        callback=lambda i, s, xx: steps.append(xx))
    # regenerate exactly as the sampler does: one generator per row, init draw first, then the step's noise
    gen = torch.Generator().manual_seed(0)
    x0 = 0.5 * torch.randn((1, 4, 4), generator=gen, dtype=torch.float64)
    z = torch.randn((1, 4, 4), generator=gen, dtype=torch.float64)
    alpha = 1e-4 * 0.5**2 / 0.5**2  # sigma_L defaults to the last level (0.5 here)
    m = mask[0]
    delta = m * (0 - x0) / (0.5**2 - 0.1**2) + (1 - m) * 7.0
    expect = x0 + alpha * delta + math.sqrt(2 * alpha) * z
    torch.testing.assert_close(res.x[0], expect, rtol=0, atol=1e-12)
    # without seeds, row k is seeded k (the same numbers as seeds=[0])
    default = noisy_inpaint(prior, y, mask, 0.1, [0.5], [], epsilon=1e-4, T=1, init="gaussian")
    torch.testing.assert_close(default.x, res.x, rtol=0, atol=0)
