"""Variance-preserving (DDPM) diffusion as used by guided-diffusion and DPS, and its bridges to ``Denoiser``.

Diffusion convention (as DPS): images live in [-1, 1] pixel units, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) n,
t an integer index into the (possibly respaced) schedule. Schedule quantities are kept in float64 and
cast to the image dtype when indexed, as guided-diffusion does.

Bridges between the two noise conventions. With u = x_t / sqrt(abar) = x0 + sqrt((1-abar)/abar) n in
[-1, 1] units, the [0, 1]-scale image y = (u + 1)/2 carries noise of std

    sigma01(t) = sqrt((1 - abar_t) / abar_t) / 2,

so a project denoiser D(y, sigma01) is an x0-predictor (``DenoiserX0``), and an eps-network evaluated at
x_t = sqrt(abar_t)(2y - 1) is a project denoiser (``ADMDenoiser``).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Denoiser, sigma_like


def linear_betas(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """guided-diffusion's "linear" schedule: endpoints scaled by 1000/num_steps so any length spans the
    same total noise as the 1000-step DDPM schedule."""
    scale = 1000.0 / num_steps
    return torch.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=torch.float64)


def space_timesteps(num_steps: int, count: int) -> list[int]:
    """``count`` evenly spaced timesteps of ``0..num_steps-1``, first and last included (improved-DDPM's
    single-section spacing, e.g. "100" steps out of 1000)."""
    if not 1 <= count <= num_steps:
        raise ValueError(f"cannot pick {count} timesteps out of {num_steps}")
    if count == 1:
        return [num_steps - 1]
    stride = (num_steps - 1) / (count - 1)
    return [round(i * stride) for i in range(count)]


class VPSchedule:
    """Discrete VP diffusion: betas, cumulative alphas, forward process, posterior and parametrisations.

    Args:
        num_steps, beta_start, beta_end: the linear schedule (see ``linear_betas``).
        betas: explicit betas instead (used by ``respace``).
        timestep_map: original timestep of each step, what the network is conditioned on (identity
            for an unrespaced schedule).
    """

    def __init__(self, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, *,
                 betas: torch.Tensor | None = None, timestep_map: torch.Tensor | None = None):
        if betas is None:
            b = linear_betas(num_steps, beta_start, beta_end)
        else:
            b = torch.as_tensor(betas, dtype=torch.float64)
        if b.ndim != 1 or not bool(((b > 0) & (b <= 1)).all()):
            raise ValueError("betas must be a 1-d tensor with values in (0, 1]")
        self.betas = b
        self.num_steps = len(b)
        self.timestep_map = torch.arange(len(b)) if timestep_map is None else torch.as_tensor(timestep_map).long()
        self.alphas = 1.0 - b
        self.alphas_cumprod = torch.cumprod(self.alphas, 0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        ac, acp = self.alphas_cumprod, self.alphas_cumprod_prev
        # derived factors precomputed in float64: forming 1 - abar in float32 loses ~3 digits near t = 0
        self.sqrt_alphas_cumprod = ac.sqrt()
        self.sqrt_one_minus_alphas_cumprod = (1.0 - ac).sqrt()
        self.sqrt_recip_alphas_cumprod = (1.0 / ac).sqrt()
        self.sqrt_recipm1_alphas_cumprod = (1.0 / ac - 1.0).sqrt()
        # q(x_{t-1} | x_t, x0) = N(coef1 x0 + coef2 x_t, posterior_variance)
        self.posterior_variance = b * (1.0 - acp) / (1.0 - ac)
        # the variance is 0 at t = 0; its log is clipped to the t = 1 value (as guided-diffusion)
        self.posterior_log_variance_clipped = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]])
        )
        self.posterior_mean_coef1 = b * acp.sqrt() / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - acp) * self.alphas.sqrt() / (1.0 - ac)

    # -- indexing ------------------------------------------------------------------------------------
    def at(self, arr: torch.Tensor, t, x: torch.Tensor) -> torch.Tensor:
        """arr[t] as an (N, 1, ..., 1) tensor in x's dtype/device; t an int or a (N,) integer tensor."""
        t = torch.as_tensor(t, device=arr.device).long()
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        return arr[t].to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.ndim - 1)))

    def noise_level01(self) -> torch.Tensor:
        """Noise std of y = (x_t / sqrt(abar) + 1)/2 on the [0, 1] scale, per step (float64, increasing)."""
        ac = self.alphas_cumprod
        return torch.sqrt((1.0 - ac) / ac) / 2.0

    # -- forward process and posterior ---------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        a, b = self.at(self.sqrt_alphas_cumprod, t, x0), self.at(self.sqrt_one_minus_alphas_cumprod, t, x0)
        return a * x0 + b * noise

    def q_posterior(self, x0: torch.Tensor, x_t: torch.Tensor, t):
        """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x0)."""
        mean = self.at(self.posterior_mean_coef1, t, x_t) * x0 + self.at(self.posterior_mean_coef2, t, x_t) * x_t
        return mean, self.at(self.posterior_variance, t, x_t), self.at(self.posterior_log_variance_clipped, t, x_t)

    def learned_range_log_variance(self, model_var_values: torch.Tensor, t) -> torch.Tensor:
        """Improved-DDPM "learned_range": v in [-1, 1] interpolates the log variance between the posterior
        variance (v = -1) and beta_t (v = +1)."""
        min_log = self.at(self.posterior_log_variance_clipped, t, model_var_values)
        max_log = self.at(torch.log(self.betas), t, model_var_values)
        frac = (model_var_values + 1.0) / 2.0
        return frac * max_log + (1.0 - frac) * min_log

    def predict_x0_from_eps(self, x_t: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """Tweedie: x0_hat = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar)."""
        a, b = self.at(self.sqrt_recip_alphas_cumprod, t, x_t), self.at(self.sqrt_recipm1_alphas_cumprod, t, x_t)
        return a * x_t - b * eps

    def predict_eps_from_x0(self, x_t: torch.Tensor, t, x0: torch.Tensor) -> torch.Tensor:
        a, b = self.at(self.sqrt_alphas_cumprod, t, x_t), self.at(self.sqrt_one_minus_alphas_cumprod, t, x_t)
        return (x_t - a * x0) / b

    # -- fewer steps ---------------------------------------------------------------------------------
    def respace(self, use_timesteps) -> "VPSchedule":
        """The schedule restricted to ``use_timesteps`` (improved-DDPM respacing).

        The new betas are 1 - abar_{t_k} / abar_{t_{k-1}}, so the kept steps have exactly the original
        marginals q(x_t | x0); ``timestep_map`` tells the network which original timestep each step is.
        """
        keep = sorted({int(i) for i in use_timesteps})
        if not keep or keep[0] < 0 or keep[-1] >= self.num_steps:
            raise ValueError(f"use_timesteps must be a non-empty subset of 0..{self.num_steps - 1}")
        ac = self.alphas_cumprod[keep]
        prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
        return VPSchedule(betas=1.0 - ac / prev, timestep_map=self.timestep_map[keep])


def _as_steps(t, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, device=x.device).long()
    return t.expand(x.shape[0]) if t.ndim == 0 else t


class X0Predictor(nn.Module):
    """What the diffusion samplers call: ``predict(x_t, t) -> {"x0", "eps", "log_variance"}`` on a VP ``schedule``
    (images in [-1, 1]); ``x0_hat``, ``variance`` and ``forward`` (= x0_hat) follow from it."""

    schedule: VPSchedule

    def predict(self, x_t: torch.Tensor, t) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def x0_hat(self, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.predict(x_t, t)["x0"]

    def variance(self, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.predict(x_t, t)["log_variance"].exp()

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.x0_hat(x_t, t)


class EpsModelX0(X0Predictor):
    """An eps-predicting network (ADM: ``net(x_t, timesteps)``) seen as an x0-predictor on a VP schedule.

    If the net returns 2C channels (learned sigma), the second half are the learned-range variance
    values; otherwise the fixed "small" variance (the posterior variance) is reported.

    Args:
        net: the eps network, called with the ORIGINAL timesteps (``schedule.timestep_map[t]``;
            DPS/guided-diffusion configs use rescale_timesteps=False).
        schedule: the VP schedule ``t`` indexes (default: 1000 linear steps).
        clip_denoised: clamp x0_hat to [-1, 1] (DPS does; the Tweedie estimate itself is unclipped).
    """

    def __init__(self, net: nn.Module, schedule: VPSchedule | None = None, *, clip_denoised: bool = False):
        super().__init__()
        self.net = net
        self.schedule = schedule or VPSchedule()
        self.clip_denoised = clip_denoised

    def predict(self, x_t: torch.Tensor, t) -> dict[str, torch.Tensor]:
        """One network call: ``{"x0", "eps", "log_variance"}`` (log-variance of p(x_{t-1} | x_t))."""
        t = _as_steps(t, x_t)
        s = self.schedule
        out = self.net(x_t, s.timestep_map.to(x_t.device)[t])
        c = x_t.shape[1]
        if out.shape[1] == 2 * c:
            eps, var_values = out[:, :c], out[:, c:]
            log_var = s.learned_range_log_variance(var_values, t)
        elif out.shape[1] == c:
            eps = out
            log_var = s.at(s.posterior_log_variance_clipped, t, x_t).expand_as(x_t)
        else:
            raise ValueError(f"net returned {out.shape[1]} channels for a {c}-channel input")
        x0 = s.predict_x0_from_eps(x_t, t, eps)
        if self.clip_denoised:
            x0 = x0.clamp(-1.0, 1.0)
        return {"x0": x0, "eps": eps, "log_variance": log_var}


class DenoiserX0(X0Predictor):
    """Any project ``Denoiser`` D (images in [0, 1]) as an x0-predictor for VP diffusion in [-1, 1].

    u = x_t / sqrt(abar) = x0 + sqrt((1-abar)/abar) n; y01 = (u + 1)/2 has noise std
    sigma01 = sqrt((1-abar)/abar)/2; x0_hat = 2 D(y01, sigma01) - 1. A denoiser carries no variance
    estimate, so ``variance`` is the fixed posterior ("small") variance.
    Same interface as ``EpsModelX0``: ``predict``, ``x0_hat``, ``variance``, ``forward = x0_hat``.
    """

    def __init__(self, denoiser: Denoiser, schedule: VPSchedule | None = None, *, clip_denoised: bool = False):
        super().__init__()
        self.denoiser = denoiser
        self.schedule = schedule or VPSchedule()
        self.clip_denoised = clip_denoised

    def predict(self, x_t: torch.Tensor, t) -> dict[str, torch.Tensor]:
        t = _as_steps(t, x_t)
        s = self.schedule
        y01 = (s.at(s.sqrt_recip_alphas_cumprod, t, x_t) * x_t + 1.0) / 2.0
        sigma01 = s.noise_level01().to(device=x_t.device, dtype=x_t.dtype)[t]
        # the VP levels reach ~79 (pure noise) on the [0, 1] scale: above the range D(y, sigma)'s public check allows
        # for a [0, 1]-image prior, and legitimate here, so the wrapped denoiser is called past that check
        x0 = 2.0 * self.denoiser.denoise(y01, sigma_like(sigma01, y01)) - 1.0
        if self.clip_denoised:
            x0 = x0.clamp(-1.0, 1.0)
        log_var = s.at(s.posterior_log_variance_clipped, t, x_t).expand_as(x_t)
        return {"x0": x0, "eps": s.predict_eps_from_x0(x_t, t, x0), "log_variance": log_var}


class ADMDenoiser(Denoiser):
    """An eps-predicting diffusion network as a project denoiser D(y, sigma) on [0, 1].

    Each image's sigma is snapped to the timestep whose level sigma01(t) = sqrt((1-abar_t)/abar_t)/2 is
    nearest (absolute difference); no interpolation, so the net only sees the integer timesteps it was
    trained on. Neighbouring levels differ by < 3.2% above sigma = 0.05, < 8.3% above 0.02, < 16% above
    0.01 (the snapped level is within half of that of sigma); the first steps are coarse
    (0.0050, 0.0074, 0.0095, ...).
    sigma above the largest level (~79) or below the smallest (~0.005) is clamped to the end steps.
    The input is then put on the net's scale: x_t = sqrt(abar_t) (2y - 1), and D = (x0_hat + 1)/2.

    Args:
        net: eps network ``net(x_t, timesteps)`` (e.g. ``adm.load_adm_checkpoint(...)``).
        schedule: its training schedule (default 1000 linear steps).
        clip_denoised: clamp the estimate to [0, 1].
        channels: image channels the net models.
    """

    max_sigma = float("inf")   # levels beyond the schedule's are clamped to its end steps

    def __init__(self, net: nn.Module, schedule: VPSchedule | None = None, *,
                 clip_denoised: bool = False, channels: int = 3):
        super().__init__()
        self.model = EpsModelX0(net, schedule, clip_denoised=clip_denoised)
        self.channels = channels

    @property
    def schedule(self) -> VPSchedule:
        return self.model.schedule

    def timestep_for(self, sigma: torch.Tensor) -> torch.Tensor:
        """Index of the schedule step whose [0, 1]-scale noise level is nearest to each sigma."""
        levels = self.schedule.noise_level01().to(sigma.device)
        return (levels[None, :] - sigma.reshape(-1, 1).double()).abs().argmin(dim=1)

    def denoise(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        t = self.timestep_for(sigma)
        sqrt_ac = self.schedule.at(self.schedule.sqrt_alphas_cumprod, t, y)
        x0 = self.model.x0_hat(sqrt_ac * (2.0 * y - 1.0), t)
        return (x0 + 1.0) / 2.0


def x0_predictor(denoiser: Denoiser, *, clip_denoised: bool = False, schedule: VPSchedule | None = None):
    """The x0-predictor of the diffusion samplers for any project denoiser: an ``ADMDenoiser``'s own eps-network
    (``EpsModelX0``: exactly the network call the DPS code makes), any other denoiser through ``DenoiserX0``."""
    if isinstance(denoiser, ADMDenoiser):
        return EpsModelX0(denoiser.model.net, schedule or denoiser.schedule, clip_denoised=clip_denoised)
    return DenoiserX0(denoiser, schedule, clip_denoised=clip_denoised)
