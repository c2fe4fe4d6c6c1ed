"""Song & Ermon synthesis and SNIPS against the analytic Gaussian prior, whose prior and posterior are exact."""
import torch

from replicate.denoisers.gaussian import StationaryGaussianPrior
from replicate.samplers.annealed_langevin import geometric_ladder, snips, song_ermon_sample

SHAPE = (1, 6, 6)
D = 36


class DenseSVDOperator:
    """y = H vec(x) with the SVD interface of replicate.operators.base.Operator (V_T, V, U_T, singulars)."""

    def __init__(self, H):
        self.H = H
        U, s, Vh = torch.linalg.svd(H, full_matrices=True)
        self.Um, self.s, self.Vm = U, s, Vh.T

    def __call__(self, x):
        return x.flatten(1) @ self.H.T

    def V_T(self, x):
        return x.flatten(1) @ self.Vm

    def V(self, z):
        return (z @ self.Vm.T).reshape(z.shape[0], *SHAPE)

    def U_T(self, y):
        return y @ self.Um

    def singulars(self):
        return self.s


def test_song_ermon_samples_have_the_prior_moments():
    prior = StationaryGaussianPrior(SHAPE, alpha=2.0, scale=0.2, mean=0.5)
    gen = torch.Generator().manual_seed(0)
    sigmas = geometric_ladder(1.0, 0.005, 30)
    x = song_ermon_sample(prior, (2000, *SHAPE), sigmas, eps=2e-5, T=20, generator=gen, dtype=torch.float64).x
    # per-frequency power of the samples vs the prior spectrum S (+ sigma_L^2: the chain targets the sigma_L-noisy prior)
    power = torch.fft.fft2(x - 0.5, norm="ortho").abs().pow(2).mean(0)
    target = prior.spectrum + sigmas[-1] ** 2
    rel = (power / target - 1).abs()
    assert float(rel.max()) < 0.15, float(rel.max())          # Monte-Carlo error of 2000 samples ~ 4.5% per frequency
    assert abs(float(x.mean()) - 0.5) < 0.02


def test_snips_samples_match_the_exact_gaussian_posterior():
    prior = StationaryGaussianPrior(SHAPE, alpha=2.0, scale=0.2, mean=0.5)
    gen = torch.Generator().manual_seed(1)
    H = torch.randn(18, D, generator=gen, dtype=torch.float64) / D**0.5
    H[:, :4] *= 0.01  # some singular values fall below sigma_0 at high levels: all three SNIPS branches are used
    op = DenseSVDOperator(H)
    x_true = prior.sample(1, generator=gen)
    sigma_0 = 0.05
    y = op(x_true) + sigma_0 * torch.randn(1, 18, generator=gen, dtype=torch.float64)
    mean, cov = prior.posterior(H, y, sigma_0)
    n = 2000
    sigmas = geometric_ladder(1.0, 0.01, 40)
    # eps / sigma_L^2 = 0.5: the "cleaner" coefficients move half-way to y_j / s_j per step (>= 2 would oscillate)
    x = snips(prior, op, y.expand(n, -1), sigma_0, sigmas, eps=5e-5, T=20, shape=(n, *SHAPE), generator=gen).x
    err = (x.mean(0) - mean[0]).abs().max()
    post_sd = cov.diagonal().sqrt().max()
    assert float(err) < 5 * float(post_sd) / n**0.5 + 5e-3, (float(err), float(post_sd))
    emp_var = x.flatten(1).var(0)
    rel = (emp_var / (cov.diagonal() + sigmas[-1] ** 2) - 1).abs()
    assert float(rel.max()) < 0.2, float(rel.max())
    # the test can fail: the prior alone has a very different mean
    assert float((mean[0] - 0.5).abs().max()) > 10 * float(err)
