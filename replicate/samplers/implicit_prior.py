"""Coarse-to-fine stochastic ascent samplers of Kadkhodaie & Simoncelli 2021 ("Solving linear inverse problems
using the prior implicit in a denoiser"), Algorithms 1 (prior) and 2 (prior constrained to M^T x = x_c).

Both use only the denoiser residual f(y) = D(y) - y (the project's ``Denoiser.residual``, which is -1 times the
original code's network output, a noise estimate: hence the original's ``y - h d`` is our ``y + h d``).

Batching: each image in the batch carries its own sigma_t, gamma_t and stopping time; finished images are frozen
while the others keep stepping. The noise z_t is drawn for the whole batch at every step (finished images just
ignore theirs), so an image's trajectory does not depend on when its neighbours stop.

Conventions fixed here (the paper leaves them open):
  * N in sigma_t^2 = ||d_t||^2 / N is the image dimensionality C*H*W (as the original code: numel).
  * The denoiser's sigma argument at step t is sigma_{t-1} = ||d_{t-1}|| / sqrt(N), the previous step's
    effective-noise estimate (sigma0 at t = 1). Blind denoisers (BF-CNN, the paper's) ignore it. For a
    non-blind denoiser this is a plug-in estimate: it is only good where the residual norm tracks the true
    noise level, i.e. where most dimensions are noise-dominated (the paper's low-dimensional-prior regime).
    Measured with the exact Wiener filter of a 1/f^2 Gaussian prior (tests/test_implicit_prior.py): once
    sigma^2 is below most of the spectrum, sigma_t collapses faster than (1 - beta h_t) and the samples keep
    up to ~2x the prior power at the highest frequencies.
  * Stopping follows the original code: step t is always completed, and an image stops after the first step
    whose sigma_t <= sigma_L (paper: "while sigma_{t-1} >= sigma_L").
  * The returned sample is the denoised last iterate y_T + f(y_T) (original: ``y - model(y)``); the last
    iterate itself is kept too.
  * An image whose sigma_t is still above sigma_L after max_iter steps stops there and is reported as not
    converged (``diagnostics["converged"]`` False, ``status(k)`` says its last sigma_t): a result of the run,
    recorded per image, not a crash of the batch. ``raise_if_diverged()`` turns it into MethodDiverged where a
    caller wants that.

Both samplers return a replicate.methods.result.Reconstruction:
  x      (n, C, H, W) y_T + f(y_T): the sample the paper shows;
  nfe    batched calls to the denoiser, including the final denoising (image k took steps[k] + 1 of them);
  trace  (steps, n) tensors, NaN once an image has stopped: sigma ||d_t||/sqrt(N); h h_t; gamma gamma_t;
         removed ||h_t d_t||; injected ||gamma_t z_t|| (divide removed/injected by sqrt(N) for the paper's Fig. 12
         units h_t sigma_t and ~gamma_t);
  diagnostics: "last_iterate" (n, C, H, W) y_T; "steps" (n,) long, steps each image took; "converged" (n,) bool,
         sigma_t reached sigma_L within max_iter steps; "final_sigma" (n,) the last sigma_t of each image;
         "why" per image, "" or "sigma_t <last> still above sigma_L after <steps> steps" or, for a chain whose
         iterate overflowed (stopped there, its sample NaN), "the iterate became non-finite at step <t> ...";
         "message" why some images did not converge, with advice ("" when all did).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from replicate.denoisers.base import Denoiser
from replicate.methods.result import Reconstruction


def step_size(t, h0: float):
    """h_t = h0 t / (1 + h0 (t - 1)) (Algorithm 1 line 1): h_1 = h0, increasing towards 1."""
    return h0 * t / (1.0 + h0 * (t - 1))


def _coarse_to_fine(denoiser: Denoiser, y0: torch.Tensor, direction: Callable, *, sigma0, sigmaL, h0, beta,
                    max_iter, generator, callback) -> Reconstruction:
    """The loop shared by Algorithms 1 and 2; ``direction(y, f, idx)`` maps the residual to d_t."""
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if not 0 < h0 <= 1:
        raise ValueError(f"h0 must be in (0, 1], got {h0}")
    y = y0.clone()
    n, dim = y.shape[0], y[0].numel()
    max_sigma = getattr(denoiser, "max_sigma", float("inf"))
    sigma_prev = torch.full((n,), float(sigma0), dtype=y.dtype, device=y.device)
    active = torch.ones(n, dtype=torch.bool, device=y.device)
    steps = torch.zeros(n, dtype=torch.long)
    blew_up = torch.zeros(n, dtype=torch.long)   # the step at which a chain's iterate became non-finite (0: never)
    all_idx = torch.arange(n, device=y.device)
    names = ("sigma", "h", "gamma", "removed", "injected")
    trace = {k: [] for k in names}
    calls, t, message = 0, 0, ""
    while bool(active.any()):
        t += 1
        if t > max_iter:
            message = (f"sigma_t still above sigma_L={sigmaL} for {int(active.sum())}/{n} images after "
                       f"max_iter={max_iter} steps (current sigma: {sigma_prev[active].max().item():.4g}); the injected "
                       f"noise outweighs the step: raise beta (now {beta}) or h0 (now {h0}), raise max_iter, or check "
                       f"the denoiser")
            break
        everyone = bool(active.all())  # the common case: no gather/scatter copies of the batch
        idx = all_idx if everyone else active.nonzero().flatten()
        h = step_size(t, h0)
        ya = y if everyone else y[idx]
        with torch.no_grad():  # sigma_t may overshoot sigma0 slightly at t = 1: keep it in the denoiser's range
            f = denoiser.residual(ya, (sigma_prev if everyone else sigma_prev[idx]).clamp(max=max_sigma))
        calls += 1
        d = direction(ya, f, idx)
        sigma = d.flatten(1).norm(dim=1) / math.sqrt(dim)  # sigma_t^2 = ||d_t||^2 / N
        # gamma_t^2 = ((1 - beta h_t)^2 - (1 - h_t)^2) sigma_t^2: chosen so the effective noise shrinks
        # as sigma_t = (1 - beta h_t) sigma_{t-1}; clamp guards round-off at beta = 1
        gamma = math.sqrt(max((1 - beta * h) ** 2 - (1 - h) ** 2, 0.0)) * sigma
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        step, noise = h * d, gamma.view(-1, 1, 1, 1) * (z if everyone else z[idx])
        if everyone:
            y += step + noise  # y_t = y_{t-1} + h_t d_t + gamma_t z_t (y is our own copy of y0)
        else:
            y[idx] = ya + step + noise

        idx_cpu = idx.cpu()
        for k, v in zip(names, (sigma, torch.full_like(sigma, h), gamma,
                                step.flatten(1).norm(dim=1), noise.flatten(1).norm(dim=1))):
            row = torch.full((n,), float("nan"), dtype=y.dtype)
            row[idx_cpu] = v.detach().cpu()
            trace[k].append(row)
        steps[idx_cpu] += 1
        sigma_prev[idx] = sigma
        active[idx[sigma <= sigmaL]] = False
        # a chain whose iterate overflowed has diverged: stop it (the others go on), and say so for that row
        finite = torch.isfinite((y if everyone else y[idx]).flatten(1)).all(dim=1) & torch.isfinite(sigma)
        if not bool(finite.all()):
            active[idx[~finite]] = False
            blew_up[idx_cpu[~finite.cpu()]] = t
        if callback is not None:
            callback(t, y, {"sigma": sigma, "h": h, "gamma": gamma, "index": idx})

    ok = blew_up == 0
    with torch.no_grad():
        if bool(ok.all()):
            denoised = y + denoiser.residual(y, sigma_prev.clamp(max=max_sigma))
        else:   # a diverged chain has no sample (NaN): the denoiser is not asked to denoise an overflowed iterate
            denoised = torch.full_like(y, float("nan"))
            keep = ok.nonzero().flatten().to(y.device)
            if len(keep):
                denoised[keep] = y[keep] + denoiser.residual(y[keep], sigma_prev[keep].clamp(max=max_sigma))
            message = (f"{int((~ok).sum())}/{n} chains diverged (their iterate overflowed: sigma_t grew instead of "
                       f"shrinking); lower h0 (now {h0}) or check the denoiser" + (f"; {message}" if message else ""))
    calls += 1
    trace_t = {k: (torch.stack(v) if v else torch.empty(0, n)) for k, v in trace.items()}
    converged, final_sigma = ~active.cpu() & ok, sigma_prev.detach().cpu()
    why = ["" if bool(converged[k]) else
           f"the iterate became non-finite at step {int(blew_up[k])} (sigma_t grew instead of shrinking)"
           if not bool(ok[k]) else
           f"sigma_t {float(final_sigma[k]):.4g} still above sigma_L after {int(steps[k])} steps" for k in range(n)]
    return Reconstruction(denoised, nfe=calls, trace=trace_t, diagnostics={
        "last_iterate": y, "steps": steps, "converged": converged, "final_sigma": final_sigma, "why": why,
        "message": message})


def sample_prior(denoiser: Denoiser, shape, n: int, *, sigma0: float = 1.0, sigmaL: float = 0.01,
                 h0: float = 0.01, beta: float = 0.5, max_iter: int = 5000,
                 generator: torch.Generator | None = None, callback=None,
                 dtype=torch.float32, device=None) -> Reconstruction:
    """Algorithm 1: n samples of shape (C, H, W) from the prior implicit in ``denoiser``.

    Paper defaults for synthesis: sigma0 = 1, sigmaL = 0.01, h0 = 0.01, beta = 0.5.
    y0 ~ N(0.5, sigma0^2 I); then d_t = f(y_{t-1}) and the shared coarse-to-fine step.
    """
    g = generator if generator is not None else torch.Generator(device=device or "cpu").manual_seed(0)
    y0 = 0.5 + sigma0 * torch.randn((n, *shape), generator=g, dtype=dtype, device=device)
    return _coarse_to_fine(denoiser, y0, lambda y, f, idx: f, sigma0=sigma0, sigmaL=sigmaL, h0=h0,
                           beta=beta, max_iter=max_iter, generator=g, callback=callback)


def sample_posterior_linear(denoiser: Denoiser, operator, measurements: torch.Tensor, *, n: int | None = None,
                            sigma0: float = 1.0, sigmaL: float = 0.01, h0: float = 0.01, beta: float = 0.01,
                            max_iter: int = 5000, generator: torch.Generator | None = None,
                            callback=None) -> Reconstruction:
    """Algorithm 2: samples of p(x | M^T x = x_c) for an operator with orthonormal columns (operators.orthonormal).

    measurements: (N, m) x_c, one sample per row; or give n with a single row (m,) / (1, m) to draw n samples
    for the same measurements. Paper defaults for inverse problems: beta = 0.01 (others as Algorithm 1).
    """
    xc = measurements if measurements.ndim == 2 else measurements.reshape(1, -1)
    if n is not None:
        if xc.shape[0] != 1:
            raise ValueError(f"n={n} needs a single measurement row, got {tuple(xc.shape)}")
        xc = xc.expand(n, -1)
    if xc.shape[1] != operator.m:
        raise ValueError(f"measurements have {xc.shape[1]} entries, operator has m={operator.m}")
    g = generator if generator is not None else torch.Generator(device=xc.device).manual_seed(0)
    Mxc = operator.M(xc)
    e = torch.ones_like(Mxc)
    # y0 ~ N(0.5 (I - M M^T) e + M x_c, sigma0^2 I): measured part at the data, the rest at mid-grey
    mean0 = 0.5 * (e - operator.project(e)) + Mxc
    y0 = mean0 + sigma0 * torch.randn(mean0.shape, generator=g, dtype=mean0.dtype, device=mean0.device)

    def direction(y, f, idx):
        # Eq. (8): d_t = (I - M M^T) f(y) + (M x_c - M M^T y): prior ascent in the unmeasured subspace plus a
        # pull onto the constraint set (the original's f - MM^T f + MM^T y - M x_c with f = -residual)
        return f - operator.project(f) + Mxc[idx] - operator.project(y)

    return _coarse_to_fine(denoiser, y0, direction, sigma0=sigma0, sigmaL=sigmaL, h0=h0, beta=beta,
                           max_iter=max_iter, generator=g, callback=callback)


def least_squares(operator, measurements: torch.Tensor) -> torch.Tensor:
    """M x_c (= M M^T x): the minimum-norm image consistent with the measurements (the figures' middle row)."""
    return operator.M(measurements)
