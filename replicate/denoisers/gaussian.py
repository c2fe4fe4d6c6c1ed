"""An analytic stationary Gaussian image prior: the ground truth every sampler is tested against.

x ~ N(mean, C) on (C, H, W) images.  Each channel is independent and has the same circulant
(periodic-boundary) covariance C = F^H diag(S) F, where F is the orthonormal 2-D DFT
(``torch.fft.fft2(norm="ortho")``).  Because C is diagonalised by F, everything a sampler
needs is exact and cheap in the Fourier domain:

* the MMSE denoiser is the Wiener filter  D(y) = mean + F^-1[ S / (S + sigma^2) F(y - mean) ],
* the noisy marginal is N(mean, C + sigma^2 I), so score = (D - y) / sigma^2 exactly (Tweedie),
* the posterior under any circulant operator is diagonal in frequency.

For general linear measurements y = A vec(x) + sigma_y n the dense posterior is given by
``posterior`` (small images only).

Spectrum: S(k) = scale^2 * w(k) / mean(w), w(k) = (floor + |k|^2)^(-alpha/2), with k the signed
integer frequency (cycles per image, ``fftfreq(n) * n``) along each axis.  |k|^2 is even in k
(the Nyquist frequency -n/2 is its own negative mod n), so S(k) = S(-k) and C is real.  The
normalisation makes the mean eigenvalue, i.e. trace(C)/D, and hence the per-pixel variance
(C is circulant, all diagonal entries are equal) equal to scale^2.
"""
from __future__ import annotations

import math

import torch

from .base import Denoiser

_DENSE_LIMIT = 4096  # largest D for which dense (D, D) matrices are built


def vec(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, D), row-major flatten of each image (D = C*H*W)."""
    return x.reshape(x.shape[0], -1)


def unvec(v: torch.Tensor, shape) -> torch.Tensor:
    """(N, D) -> (N, *shape); inverse of ``vec``."""
    return v.reshape(v.shape[0], *shape)


def _fft(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fft2(x, norm="ortho")


def _ifft(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifft2(x, norm="ortho")


class StationaryGaussianPrior(Denoiser):
    """x ~ N(mean, C), C = F^H diag(S) F per channel (periodic, channels independent).

    Args:
        shape: (C, H, W) of one image.
        alpha: power-law exponent; S(k) ~ 1 / (floor + |k|^2)^(alpha/2).  alpha = 2 is a
            1/f^2 "natural image" spectrum; alpha = 0 is white noise.
        scale: per-pixel standard deviation (mean of S over frequencies is scale^2).
        mean: constant mean intensity of every pixel.
        floor: keeps the DC eigenvalue finite; |k| is in integer cycles per image.
        dtype: precision of all internal computation (float64 by default, so the tests
            can compare to dense linear algebra at ~1e-10).
    """

    max_sigma = float("inf")   # analytic: exact at every noise level

    def __init__(
        self,
        shape: tuple[int, int, int],
        alpha: float = 2.0,
        scale: float = 0.2,
        mean: float = 0.5,
        floor: float = 1.0,
        dtype=torch.float64,
    ):
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"shape must be (C, H, W), got {shape}")
        if floor <= 0 or scale <= 0:
            raise ValueError("floor and scale must be positive (C must be positive definite)")
        c, h, w = (int(s) for s in shape)
        self.shape = (c, h, w)
        self.channels = c
        self.alpha, self.scale, self.mean, self.floor = float(alpha), float(scale), float(mean), float(floor)
        self.dtype = dtype
        ky = torch.fft.fftfreq(h, d=1.0 / h, dtype=dtype)  # signed integer frequencies
        kx = torch.fft.fftfreq(w, d=1.0 / w, dtype=dtype)
        k2 = ky[:, None] ** 2 + kx[None, :] ** 2
        wk = (self.floor + k2) ** (-self.alpha / 2)
        spec = self.scale**2 * wk / wk.mean()
        self.register_buffer("spectrum", spec.expand(c, h, w).clone())

    @property
    def dim(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")

    # ---------------------------------------------------------------- sampling and density
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact samples (n, C, H, W): mean + F^-1[sqrt(S) F z], z white.

        F is unitary, so F^H diag(sqrt S) F z has covariance F^H diag(S) F = C; sqrt(S) is
        even in k, so the result is real (the imaginary part is round-off and is dropped).
        """
        S = self.spectrum
        z = torch.randn((n, *self.shape), generator=generator, dtype=self.dtype, device=S.device)
        return self.mean + _ifft(S.sqrt() * _fft(z)).real

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) exact log N(x; mean, C), using (x-mu)^T C^-1 (x-mu) = sum_k |F(x-mu)|_k^2 / S_k."""
        self._check(x)
        S = self.spectrum
        r = _fft(x.to(self.dtype) - self.mean)
        maha = (r.abs() ** 2 / S).sum(dim=(1, 2, 3))
        logdet = S.log().sum()
        return -0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))

    # ---------------------------------------------------------------- denoising
    def denoise(self, y: torch.Tensor, sigma4: torch.Tensor) -> torch.Tensor:
        """Exact MMSE (Wiener) estimate E[x | y = x + sigma n]; differentiable in y.

        Computed in the prior's dtype, returned in y's dtype.
        """
        self._check(y)
        S = self.spectrum.to(y.device)
        s2 = sigma4.to(device=y.device, dtype=self.dtype) ** 2
        gain = S / (S + s2)  # (N, C, H, W) per-frequency shrinkage
        out = self.mean + _ifft(gain * _fft(y.to(self.dtype) - self.mean)).real
        return out.to(y.dtype)

    def posterior_variance_denoising(self, sigma) -> torch.Tensor:
        """Eigenvalues of Cov[x | y = x + sigma n]: S sigma^2 / (S + sigma^2).

        sigma a float (or 0-d tensor) -> (C, H, W); a tensor of shape (N,) -> (N, C, H, W).
        Summing over (C, H, W) gives the total MMSE of the Wiener denoiser.
        """
        S = self.spectrum
        s = torch.as_tensor(sigma, dtype=self.dtype, device=S.device)
        if s.ndim == 1:
            s = s.view(-1, 1, 1, 1)
        s2 = s**2
        return S * s2 / (S + s2)

    # ---------------------------------------------------------------- dense linear algebra
    def covariance_matrix(self) -> torch.Tensor:
        """Dense (D, D) covariance in ``vec`` order (block diagonal over channels).

        Built by applying C = F^H diag(S) F to the D unit vectors; raises if D > 4096.
        """
        return self._dense(self.spectrum)

    def denoising_posterior_covariance(self, sigma) -> torch.Tensor:
        """Dense (D, D) Cov[x | x + sigma n] (eigenvalues ``posterior_variance_denoising(sigma)``); small D only."""
        return self._dense(self.posterior_variance_denoising(float(sigma)))

    def _dense(self, spectrum: torch.Tensor) -> torch.Tensor:
        """F^H diag(spectrum) F as a dense (D, D) matrix in ``vec`` order."""
        d = self.dim
        if d > _DENSE_LIMIT:
            raise ValueError(f"dense covariance: D = {d} > {_DENSE_LIMIT}; use the Fourier methods instead")
        eye = torch.eye(d, dtype=self.dtype, device=self.spectrum.device)
        cols = _ifft(spectrum * _fft(unvec(eye, self.shape))).real  # row j = C e_j = column j
        cov = vec(cols).T
        return 0.5 * (cov + cov.T)  # exact in exact arithmetic; remove ~1e-18 round-off asymmetry

    def mean_vector(self) -> torch.Tensor:
        """(D,) mean in ``vec`` order."""
        return torch.full((self.dim,), self.mean, dtype=self.dtype, device=self.spectrum.device)

    def posterior(self, A: torch.Tensor, y: torch.Tensor, sigma_y: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact posterior of x given y = A vec(x) + sigma_y n, n ~ N(0, I).

        Args:
            A: dense (M, D) operator; y: (N, M) measurements; sigma_y >= 0.
        Returns:
            mean (N, C, H, W) and covariance (D, D) (the same for every y).

        Schur-complement (covariance) form, with K = A C A^T + sigma_y^2 I:
            mean = mu + C A^T K^-1 (y - A mu),  cov = C - C A^T K^-1 A C.
        No regularisation is added: for sigma_y = 0 (a hard constraint, as in Kadkhodaie &
        Simoncelli's Algorithm 2) K is positive definite whenever A has full row rank, since C
        is; otherwise the Cholesky factorisation fails and a ValueError is raised.
        """
        if sigma_y < 0:
            raise ValueError("sigma_y must be >= 0")
        C = self.covariance_matrix()
        A = A.to(C)
        y = y.to(C)
        if A.ndim != 2 or A.shape[1] != self.dim:
            raise ValueError(f"A must have shape (M, {self.dim}), got {tuple(A.shape)}")
        if y.ndim != 2 or y.shape[1] != A.shape[0]:
            raise ValueError(f"y must have shape (N, {A.shape[0]}), got {tuple(y.shape)}")
        mu = self.mean_vector()
        G = C @ A.T  # (D, M) cross-covariance Cov[x, Ax]
        K = A @ G + sigma_y**2 * torch.eye(A.shape[0], dtype=C.dtype, device=C.device)
        L, info = torch.linalg.cholesky_ex(0.5 * (K + K.T))
        if info.item() != 0:
            raise ValueError("A C A^T + sigma_y^2 I is not positive definite (A rank deficient with sigma_y = 0?)")
        # solve K W = [ (y - A mu)^T , G^T ] with one Cholesky factorisation
        resid = (y - mu @ A.T).T  # (M, N)
        W = torch.cholesky_solve(torch.cat([resid, G.T], dim=1), L)
        n = resid.shape[1]
        post_mean = mu + (G @ W[:, :n]).T
        cov = C - G @ W[:, n:]
        cov = 0.5 * (cov + cov.T)
        return unvec(post_mean, self.shape), cov

    def posterior_fourier_diagonal(
        self, h_hat: torch.Tensor, y: torch.Tensor, sigma_y: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact posterior for a circulant operator: y = F^-1[h_hat F x] + sigma_y n.

        Args:
            h_hat: transfer function, broadcastable to (C, H, W).  For a real convolution kernel
                h placed with its centre at pixel (0, 0) (periodic wrap), h_hat =
                torch.fft.fft2(h) (default "backward" norm), since F(h (*) x) = fft2(h) * F(x)
                with F orthonormal.  Must be Hermitian, h_hat(-k) = conj(h_hat(k)), so that the
                operator is real.
            y: (N, C, H, W) measurements in image space; sigma_y >= 0.
        Returns:
            mean (N, C, H, W) and per-frequency posterior variances (C, H, W): the posterior
            covariance is F^H diag(var) F per channel.

        Per frequency: mean_k = mu_k + S h* (Y_k - h mu_k) / (|h|^2 S + sigma_y^2),
        var_k = S sigma_y^2 / (|h|^2 S + sigma_y^2).  Where h_hat = 0 and sigma_y = 0 the frequency
        is unobserved: gain 0, variance S (the limit of the formula as sigma_y -> 0 at h = 0).
        """
        if sigma_y < 0:
            raise ValueError("sigma_y must be >= 0")
        self._check(y)
        S = self.spectrum
        ctype = torch.complex128 if self.dtype == torch.float64 else torch.complex64
        h = torch.as_tensor(h_hat).to(device=S.device, dtype=ctype).expand(self.shape)
        h_neg = torch.roll(torch.flip(h, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))  # h(-k)
        if not torch.allclose(h_neg, h.conj(), rtol=1e-6, atol=1e-6 * float(h.abs().max())):
            raise ValueError("h_hat must be Hermitian (h_hat(-k) = conj h_hat(k)) for a real operator")
        s2 = float(sigma_y) ** 2
        denom = h.abs() ** 2 * S + s2
        unobserved = denom == 0  # only possible when sigma_y = 0 and h_hat(k) = 0
        safe = torch.where(unobserved, torch.ones_like(denom), denom)
        gain = torch.where(unobserved, torch.zeros_like(h), S * h.conj() / safe)
        var = torch.where(unobserved, S, S * s2 / safe)
        mu_hat = _fft(torch.full(self.shape, self.mean, dtype=self.dtype, device=S.device))
        Y = _fft(y.to(device=S.device, dtype=self.dtype))
        post = mu_hat + gain * (Y - h * mu_hat)
        return _ifft(post).real, var
