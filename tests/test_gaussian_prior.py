"""Tests of the analytic stationary Gaussian prior against independent dense / numpy / Monte Carlo formulas."""
import math

import numpy as np
import pytest
import torch

from replicate.denoisers.gaussian import StationaryGaussianPrior, unvec, vec

torch.set_num_threads(1)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def numpy_dft_cov(spectrum):
    """Block-diagonal F^H diag(S) F built from an explicit DFT matrix (np.fft applied to unit vectors)."""
    c, h, w = spectrum.shape
    eye = np.eye(h * w).reshape(h * w, h, w)
    F = np.fft.fft2(eye, norm="ortho").reshape(h * w, h * w).T  # column j = F e_j
    blocks = [F.conj().T @ np.diag(spectrum[i].reshape(-1)) @ F for i in range(c)]
    out = np.zeros((c * h * w, c * h * w), dtype=complex)
    for i, b in enumerate(blocks):
        out[i * h * w:(i + 1) * h * w, i * h * w:(i + 1) * h * w] = b
    return out


def circulant_matrix(kernel, h, w):
    """Dense matrix of periodic convolution with kernel (k x k, centre at index k//2), by loops."""
    k = kernel.shape[0]
    H = np.zeros((h * w, h * w))
    for i in range(h):
        for j in range(w):
            for a in range(k):
                for b in range(k):
                    # out[i, j] += kernel[a, b] * x[i - (a - k//2), j - (b - k//2)]
                    H[i * w + j, ((i - a + k // 2) % h) * w + (j - b + k // 2) % w] += kernel[a, b]
    return H


# 1 ------------------------------------------------------------------------------------------
def test_spectrum_and_covariance():
    p = StationaryGaussianPrior((2, 6, 8), alpha=1.5, scale=0.3)
    S = p.spectrum
    assert S.shape == (2, 6, 8) and S.dtype == torch.float64 and (S > 0).all()
    S_neg = torch.roll(torch.flip(S, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))  # S(-k)
    assert torch.equal(S, S_neg)
    assert torch.allclose(S.mean(dim=(1, 2)), torch.full((2,), 0.09, dtype=torch.float64), rtol=1e-12)
    Cm = p.covariance_matrix()
    assert torch.equal(Cm, Cm.T)
    # eigenvalues of C are exactly the spectrum (so C is PD), per-pixel variance scale^2
    assert torch.allclose(torch.linalg.eigvalsh(Cm), S.flatten().sort().values, atol=1e-13)
    assert torch.allclose(Cm.diagonal(), torch.full((96,), 0.09, dtype=torch.float64), atol=1e-13)
    ref = numpy_dft_cov(S.numpy())
    assert np.abs(ref.imag).max() < 1e-12
    assert np.abs(Cm.numpy() - ref.real).max() < 1e-13
    with pytest.raises(ValueError):
        StationaryGaussianPrior((1, 65, 64)).covariance_matrix()


def test_covariance_matches_empirical():
    p = StationaryGaussianPrior((1, 8, 8))
    n = 20000
    x = vec(p.sample(n, gen(0))) - p.mean  # known mean: unbiased second moments
    Cm = p.covariance_matrix()
    emp = x.T @ x / n
    # Var of an empirical second moment of a Gaussian: (C_ii C_jj + C_ij^2) / n
    for i, j in [(0, 0), (0, 1), (0, 9), (5, 40), (63, 62), (17, 17)]:
        sd = math.sqrt((Cm[i, i] * Cm[j, j] + Cm[i, j] ** 2) / n)
        assert abs(emp[i, j] - Cm[i, j]) < 5 * sd, (i, j)
    # trace estimate (1/n) sum ||x||^2 has variance 2 tr(C^2) / n
    sd = math.sqrt(2 * (Cm @ Cm).trace() / n)
    assert abs(emp.trace() - Cm.trace()) < 5 * sd
    # and cross-check that the tolerance is meaningful: a wrong scale (10%) would be detected
    assert abs(1.1 * emp.trace() - Cm.trace()) > 5 * sd


# 2 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("per_image", [False, True])
def test_wiener_equals_dense(per_image):
    p = StationaryGaussianPrior((2, 4, 6), alpha=2.5)
    Cm, mu = p.covariance_matrix(), p.mean_vector()
    y = p.sample(3, gen(1)) + 0.2 * torch.randn(3, 2, 4, 6, generator=gen(2), dtype=torch.float64)
    sig = torch.tensor([0.05, 0.2, 0.7], dtype=torch.float64) if per_image else torch.full((3,), 0.15, dtype=torch.float64)
    out = p(y, sig if per_image else 0.15)
    eye = torch.eye(48, dtype=torch.float64)
    for i in range(3):
        ref = mu + Cm @ torch.linalg.solve(Cm + sig[i] ** 2 * eye, vec(y)[i] - mu)
        assert (vec(out)[i] - ref).abs().max() < 1e-10
    # posterior variance eigenvalues: their sum is the trace of C - C (C + s^2 I)^-1 C
    tr = (Cm - Cm @ torch.linalg.solve(Cm + sig[0] ** 2 * eye, Cm)).trace()
    assert abs(p.posterior_variance_denoising(float(sig[0])).sum() - tr) < 1e-12
    assert p.posterior_variance_denoising(sig).shape == (3, 2, 4, 6)
    # float32 in -> float32 out, agreeing with the float64 result
    out32 = p(y.float(), sig.float() if per_image else 0.15)
    assert out32.dtype == torch.float32
    assert (out32.double() - out).abs().max() < 1e-5


# 3 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tweedie_score_equals_autograd(dtype):
    p = StationaryGaussianPrior((2, 4, 4), alpha=2.0, scale=0.25, mean=0.4)
    sigma = 0.3
    y0 = p.sample(2, gen(3)) + sigma * torch.randn(2, 2, 4, 4, generator=gen(4), dtype=torch.float64)
    Cm = p.covariance_matrix()
    marg = torch.distributions.MultivariateNormal(p.mean_vector(), Cm + sigma**2 * torch.eye(32, dtype=torch.float64))
    y = y0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(marg.log_prob(vec(y)).sum(), y)
    score = p.score(y0.to(dtype), sigma)
    assert score.dtype == dtype
    tol = 1e-9 if dtype == torch.float64 else 1e-2 * g.abs().max().item()
    assert (score.double() - g).abs().max() < tol
    # the Wiener denoiser is itself differentiable: its Jacobian is C (C + s^2 I)^-1
    yr = y0.to(dtype).requires_grad_(True)
    (jrow,) = torch.autograd.grad(p(yr, sigma)[0, 0, 1, 2], yr)
    J = Cm @ torch.linalg.inv(Cm + sigma**2 * torch.eye(32, dtype=torch.float64))
    assert (vec(jrow)[0].double() - J[6]).abs().max() < (1e-10 if dtype == torch.float64 else 1e-5)


# 4 ------------------------------------------------------------------------------------------
def test_posterior_dense_information_form():
    p = StationaryGaussianPrior((1, 8, 8))
    Cm, mu = p.covariance_matrix(), p.mean_vector()
    A = torch.randn(20, 64, generator=gen(5), dtype=torch.float64) / 8
    y = torch.randn(3, 20, generator=gen(6), dtype=torch.float64)
    s = 0.1
    mean, cov = p.posterior(A, y, s)
    Ci = torch.linalg.inv(Cm)
    P = torch.linalg.inv(Ci + A.T @ A / s**2)
    ref_mean = (P @ (Ci @ mu[:, None] + A.T @ y.T / s**2)).T
    assert mean.shape == (3, 1, 8, 8) and cov.shape == (64, 64)
    assert (vec(mean) - ref_mean).abs().max() < 1e-9
    assert (cov - P).abs().max() < 1e-11


def test_posterior_noiseless_inpainting():
    p = StationaryGaussianPrior((2, 4, 4))
    D = 32
    keep = torch.randperm(D, generator=gen(7))[:12].sort().values
    A = torch.eye(D, dtype=torch.float64)[keep]
    x = p.sample(2, gen(8))
    y = vec(x)[:, keep]
    mean, cov = p.posterior(A, y, 0.0)
    assert (vec(mean)[:, keep] - y).abs().max() < 1e-12
    assert cov[keep].abs().max() < 1e-12 and cov[:, keep].abs().max() < 1e-12
    free = torch.tensor([i for i in range(D) if i not in set(keep.tolist())])
    assert torch.linalg.eigvalsh(cov[free][:, free]).min() > 0  # unobserved pixels keep uncertainty
    # a rank-deficient A with sigma_y = 0 has no Cholesky: must refuse, not regularise silently
    with pytest.raises(ValueError):
        p.posterior(torch.cat([A, A[:1]]), torch.cat([y, y[:, :1]], dim=1), 0.0)


def test_posterior_monte_carlo_regression():
    p = StationaryGaussianPrior((1, 4, 4), alpha=1.0)
    n, M, s = 20000, 6, 0.05
    A = torch.randn(M, 16, generator=gen(9), dtype=torch.float64) / 4
    x = vec(p.sample(n, gen(10)))
    y = x @ A.T + s * torch.randn(n, M, generator=gen(11), dtype=torch.float64)
    # least-squares regression of x on [1, y] estimates E[x | y] (linear for Gaussians)
    X1 = torch.cat([torch.ones(n, 1, dtype=torch.float64), y], dim=1)
    coef = torch.linalg.lstsq(X1, x).solution
    resid = x - X1 @ coef
    y_test = y[:1] + 0.0  # a typical measurement
    mean, cov = p.posterior(A, y_test, s)
    pred = (torch.cat([torch.ones(1, 1, dtype=torch.float64), y_test], dim=1) @ coef)[0]
    # regression prediction error ~ sqrt(post_var * (1 + Mahalanobis^2(y)) / n); Mahalanobis^2 ~ chi2_M, bound it by 3M
    sd = (cov.diagonal() * (1 + 3 * M) / n).sqrt()
    assert ((vec(mean)[0] - pred).abs() < 5 * sd).all()
    # residual covariance trace estimates trace of the posterior covariance; sd ~ sqrt(2 tr(P^2) / n)
    emp_tr = (resid**2).sum() / (n - M - 1)
    sd_tr = math.sqrt(2 * (cov @ cov).trace() / n)
    assert abs(emp_tr - cov.trace()) < 5 * sd_tr


# 5 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma_y", [0.05, 0.0])
def test_fourier_diagonal_matches_dense_circulant(sigma_y):
    p = StationaryGaussianPrior((1, 8, 8), alpha=2.0)
    kernel = np.array([[0.02, 0.1, 0.03], [0.12, 0.4, 0.05], [0.04, 0.15, 0.09]])  # asymmetric, invertible
    Hm = torch.from_numpy(circulant_matrix(kernel, 8, 8))
    h = torch.zeros(8, 8, dtype=torch.float64)
    for a in range(3):
        for b in range(3):
            h[(a - 1) % 8, (b - 1) % 8] = kernel[a, b]  # kernel centre at pixel (0, 0)
    h_hat = torch.fft.fft2(h)
    x = p.sample(2, gen(12))
    y = unvec(vec(x) @ Hm.T, (1, 8, 8)) + sigma_y * torch.randn(2, 1, 8, 8, generator=gen(13), dtype=torch.float64)
    mean_f, var_f = p.posterior_fourier_diagonal(h_hat, y, sigma_y)
    mean_d, cov_d = p.posterior(Hm, vec(y), sigma_y)
    assert (mean_f - mean_d).abs().max() < 1e-8
    cov_f = numpy_dft_cov(var_f.numpy()).real
    assert np.abs(cov_f - cov_d.numpy()).max() < 1e-10
    if sigma_y == 0:
        assert (vec(mean_f) @ Hm.T - vec(y)).abs().max() < 1e-10  # exact deconvolution


def test_fourier_diagonal_unobserved_frequency():
    p = StationaryGaussianPrior((1, 4, 4))
    h_hat = torch.ones(1, 4, 4, dtype=torch.complex128)
    h_hat[0, 0, 0] = 0  # DC not observed
    y = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    mean, var = p.posterior_fourier_diagonal(h_hat, y, 0.0)
    assert var[0, 0, 0] == p.spectrum[0, 0, 0] and (var.flatten()[1:] == 0).all()
    assert torch.allclose(mean.mean(), torch.tensor(p.mean, dtype=torch.float64))  # DC from the prior
    bad = torch.ones(1, 4, 4, dtype=torch.complex128)
    bad[0, 0, 1] = 1j
    with pytest.raises(ValueError):
        p.posterior_fourier_diagonal(bad, y, 0.1)


# 6 ------------------------------------------------------------------------------------------
def test_log_prob_matches_dense():
    p = StationaryGaussianPrior((2, 4, 4), alpha=3.0, scale=0.1, mean=0.3)
    mvn = torch.distributions.MultivariateNormal(p.mean_vector(), p.covariance_matrix())
    x = torch.cat([p.sample(3, gen(14)), torch.rand(2, 2, 4, 4, generator=gen(15), dtype=torch.float64)])
    lp = p.log_prob(x)
    assert lp.shape == (5,)
    assert (lp - mvn.log_prob(vec(x))).abs().max() < 1e-9


# 7 ------------------------------------------------------------------------------------------
def test_sample_determinism_and_spectrum():
    p = StationaryGaussianPrior((1, 8, 8))
    a, b, c = p.sample(4000, gen(16)), p.sample(4000, gen(16)), p.sample(4000, gen(17))
    assert a.shape == (4000, 1, 8, 8) and a.dtype == torch.float64
    assert torch.equal(a, b) and not torch.equal(a, c)
    n = a.shape[0]
    power = (torch.fft.fft2(a - p.mean, norm="ortho").abs() ** 2).mean(0) / p.spectrum
    # |X_k|^2 / S_k ~ chi2_1 at self-conjugate k (DC, Nyquist), chi2_2 / 2 elsewhere: var 2/n or 1/n
    kh = torch.arange(8)
    self_conj = ((2 * kh[:, None]) % 8 == 0) & ((2 * kh[None, :]) % 8 == 0)
    sd = torch.where(self_conj, math.sqrt(2 / n), math.sqrt(1 / n))
    assert ((power - 1).abs() < 5 * sd).all()
    # a spectrum off by 10% would be detected
    assert not ((1.1 * power - 1).abs() < 5 * sd).all()
    assert p.sample(2).shape == (2, 1, 8, 8)
