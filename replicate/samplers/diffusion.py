"""Diffusion samplers for inverse problems that share one score function: DPS (Chung et al. 2023, Algorithms 1
and 2), DDRM (Kawar et al. 2022), MCG (Chung et al. 2022) and Score-SDE / ILVR-style projection.

Interfaces (nothing here knows about datasets):
  * ``model``: an x0-predictor on a VP schedule, ``model.predict(x_t, t) -> {"x0", "log_variance", ...}`` with
    images in [-1, 1] (replicate.denoisers.vp.EpsModelX0 for ADM checkpoints, DenoiserX0 for any project denoiser,
    including the analytic StationaryGaussianPrior the tests use); ``model.schedule`` is the (respaced) VPSchedule
    whose steps the sampler walks (1000 steps: the paper; fewer: respace it, e.g. mini);
  * ``operator``: A on [0, 1] images (replicate.operators), ``noise``: the measurement noise model
    (replicate.noise), ``y``: measurements on the [0, 1] scale of the operator;
  * every sampler returns a ``replicate.methods.result.Reconstruction``: ``x`` the [0, 1] images (clamped),
    ``nfe`` the network evaluations per image, ``diagnostics["x_pm1"]`` the unclamped [-1, 1] estimate.
Randomness comes only from the explicit ``generator`` (drawn on the CPU, then moved), so a seed gives the same
numbers on any device layout.

DPS step (paper Alg. 1; the released code's form): after the ancestral step x'_{t-1} ~ p(x_{t-1} | x_t),
    x_{t-1} = x'_{t-1} - scale_t * grad_{x_t} ||y - A(x0_hat(x_t))||
with the norm in [-1, 1] units (noise.dps_norm). ``dps`` takes ``scale`` in the released code's convention (its
configs' ``conditioning.params.scale``). The paper writes zeta_t grad ||r||^2 with zeta_t = zeta' / ||r|| (Sec. 3
footnote), i.e. 2 zeta' grad ||r||: the same step with scale = 2 zeta' (``zeta_to_scale``). params.yaml states
every DPS step size as the paper's zeta' and the stages convert with ``zeta_to_scale``. Table 5's schedules are
``step_schedule``:
  "constant"     scale_t = scale (the paper's choice)
  "linear"       scale * (remaining steps / total): decays linearly to 0 at the end
  "exponential"  scale * decay ** (steps taken): the decay constant was lost in the extraction (setting)
  "likelihood"   zeta_t = 1 on the gradient of -log p(y | x0_hat) = ||y - A x0_hat||^2 / (2 sigma_y^2) (eq. 16
                 taken literally: "step size proportional to 1/sigma_y^2"; Gaussian noise only)
  "posterior"    zeta_t = scale * beta_t / sqrt(alpha_t) on the gradient of -log p(y | x0_hat): DPS's approximation
                 of grad log p(y | x_t) given the weight that the ancestral step gives a score (x0_hat is Tweedie's
                 estimate, so the step's mean is (x_t + beta_t score) / sqrt(alpha_t)). With scale 1 and an exact
                 p(y | x_t) this samples the exact posterior up to discretisation: not in the paper, it is the
                 sampler of the Jensen-gap study (``data_term`` swaps in the exact likelihood as its control).
"""
from __future__ import annotations

import copy
import math

import torch
from replicate.progress import bar as progress_bar

from replicate.denoisers.vp import VPSchedule, space_timesteps
from replicate.methods.result import Reconstruction
from replicate.solvers._linalg import cg

STEP_SCHEDULES = ("constant", "linear", "exponential", "likelihood", "posterior")
#: schedules whose step multiplies the gradient of the residual norm (the ones a zeta' describes)
NORM_SCHEDULES = ("constant", "linear", "exponential")
#: timestep spacings of ``respaced``: "even" = improved-DDPM's evenly spaced steps, first and last included
#: (0, 53, ..., 999 for 20 of 1000); "skip" = the DDRM / DDIM code's uniform skip, range(0, T, T // n)
#: (0, 50, ..., 950 for 20 of 1000)
SPACINGS = ("even", "skip")


def zeta_to_scale(zeta: float, step_schedule: str = "constant") -> float:
    """The released DPS code's ``scale`` for the paper's step size zeta': scale = 2 zeta'.

    The paper steps by zeta_i grad ||y - A x0_hat||^2 with zeta_i = zeta' / ||y - A x0_hat|| (Sec. 3 footnote 5), and
    grad ||r||^2 = 2 ||r|| grad ||r||, so its step is 2 zeta' grad ||r||; the code steps by scale * grad ||r||
    (guided_diffusion/condition_methods.py, PosteriorSampling). E.g. the Gaussian-deblurring config's scale 0.3 is
    zeta' = 0.15. For the "likelihood" and "posterior" schedules the value is a plain multiplier of the gradient of
    -log p(y | x0_hat) (1 = eq. 16 literally), not a zeta', and is returned unchanged."""
    if step_schedule not in STEP_SCHEDULES:
        raise ValueError(f"step_schedule must be one of {STEP_SCHEDULES}, got {step_schedule!r}")
    return 2.0 * float(zeta) if step_schedule in NORM_SCHEDULES else float(zeta)


def _result(x_pm1: torch.Tensor, nfe: int, trace: dict | None = None) -> Reconstruction:
    """x on [0, 1] (clamped), the unclamped [-1, 1] estimate in diagnostics["x_pm1"]."""
    return Reconstruction(to01(x_pm1).clamp(0, 1), nfe=nfe, trace=trace or {}, diagnostics={"x_pm1": x_pm1})


def skip_timesteps(num_steps: int, count: int) -> list[int]:
    """The DDRM code's uniform schedule (runners/diffusion.py, sample_image): skip = num_steps // count,
    range(0, num_steps, skip); for 20 of 1000: 0, 50, ..., 950 (ascending; the sampler walks them from 950 down to
    0, then to the clean estimate). Where count does not divide num_steps this gives more than count steps, as the
    DDRM code does (e.g. 3 of 1000: 0, 333, 666, 999)."""
    if not 1 <= count <= num_steps:
        raise ValueError(f"cannot pick {count} timesteps out of {num_steps}")
    return list(range(0, num_steps, num_steps // count))


def respaced(model, steps: int, spacing: str = "even"):
    """The same x0-predictor on ``steps`` timesteps of its schedule (improved-DDPM respacing: the kept steps keep
    their marginals): ``spacing`` "even" = evenly spaced, first and last included (``space_timesteps``); "skip" =
    the DDRM code's uniform skip (``skip_timesteps``)."""
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    base = model.schedule
    keep = space_timesteps(base.num_steps, steps) if spacing == "even" else skip_timesteps(base.num_steps, steps)
    if len(keep) == base.num_steps:
        return model
    new = copy.copy(model)  # shares the network, not the schedule
    new.schedule = base.respace(keep)
    return new


def nfe_compensation(steps: int, enabled: bool, paper_steps: int = 1000) -> float:
    """Step-size factor for DPS / MCG runs with fewer than the paper's 1000 steps. The pull towards the measurement
    adds up over the steps (measured in chung2023: steps x scale is what matters, 200 steps at 0.3 ~ 50 steps at
    1.0), so when ``enabled`` the paper's per-step size is multiplied by paper_steps / steps to keep its total.
    1 at the paper's NFE; a stated setting of the reduced-NFE profiles, not a value from the paper."""
    return paper_steps / steps if enabled else 1.0


def _randn(shape, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def to01(x_pm1: torch.Tensor) -> torch.Tensor:
    return (x_pm1 + 1.0) / 2.0


def measurement_pm1(operator, y01: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """y on the [-1, 1] scale of the operator: for a linear one A(2x - 1) = 2 A x - A 1, so y_pm1 = 2 y - A(1); a
    nonlinear one (image-valued, as the non-uniform blur) maps [0, 1] images to [0, 1], so y_pm1 = 2 y - 1."""
    if not operator.linear:
        return 2.0 * y01 - 1.0
    return 2.0 * y01 - operator(torch.ones_like(like))


def forward_pm1(operator, x_pm1: torch.Tensor) -> torch.Tensor:
    """A on the [-1, 1] scale, consistent with ``measurement_pm1``."""
    if not operator.linear:
        return 2.0 * operator(to01(x_pm1)) - 1.0
    return operator(x_pm1)


def _ancestral(schedule: VPSchedule, out: dict, x_t: torch.Tensor, t: int, gen: torch.Generator) -> torch.Tensor:
    """x'_{t-1} = posterior mean (x0_hat, x_t) + exp(log_var / 2) z, no noise at the last step (as DDPM)."""
    mean, _, _ = schedule.q_posterior(out["x0"], x_t, t)
    if t == 0:
        return mean
    return mean + (0.5 * out["log_variance"]).exp() * _randn(x_t.shape, gen, x_t)


def _step_size(kind: str, scale: float, i: int, n: int, decay: float, schedule: VPSchedule | None = None,
               t: int = 0) -> float:
    if kind in ("constant", "likelihood"):
        return scale
    if kind == "posterior":
        return scale * float(schedule.betas[t]) / math.sqrt(float(schedule.alphas[t]))
    if kind == "linear":
        return scale * (n - i) / n
    if kind == "exponential":
        return scale * decay**i
    raise ValueError(f"step_schedule must be one of {STEP_SCHEDULES}, got {kind!r}")


def dps(model, operator, noise, y: torch.Tensor, *, scale: float, generator: torch.Generator,
        step_schedule: str = "constant", decay: float = 0.99, x_T: torch.Tensor | None = None,
        shape=None, progress: bool = False, trace_every: int = 0, data_term=None) -> Reconstruction:
    """Diffusion posterior sampling (Alg. 1 for Gaussian noise, Alg. 2 for Poisson: the data term is the noise
    model's ``dps_norm``). One sample per row of ``y``; batch several samples per measurement by repeating y.

    ``data_term(y, Ax0_hat, t) -> (N,)``, if given, replaces the data term whose gradient is taken (e.g. an exact
    -log p(y | x_t) where one is known); by default ``dps_norm``, or -log p(y | x0_hat) for the "likelihood" and
    "posterior" schedules.

    Backpropagation runs through the x0-predictor once per step (the DPS overhead over plain sampling).
    """
    s = model.schedule
    n = s.num_steps
    if x_T is None:
        shape = shape or getattr(operator, "shape", None)
        if shape is None:
            raise ValueError("pass shape=(C, H, W) of the images (the operator does not know its input size)")
        x_T = _randn((y.shape[0], *shape), generator, y)
    x = x_T
    if step_schedule not in STEP_SCHEDULES:
        raise ValueError(f"step_schedule must be one of {STEP_SCHEDULES}, got {step_schedule!r}")
    trace = {"residual": []}
    for i, t in enumerate(progress_bar(range(n - 1, -1, -1), desc="DPS", disable=not progress, leave=False)):
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            out = model.predict(x_in, t)
            Ax = operator(to01(out["x0"]))
            if data_term is not None:
                data = data_term(y, Ax, t)
            elif step_schedule in ("likelihood", "posterior"):
                data = -noise.log_likelihood(y, Ax)
            else:
                data = noise.dps_norm(y, Ax)
            (grad,) = torch.autograd.grad(data.sum(), x_in)
        with torch.no_grad():
            out = {k: v.detach() for k, v in out.items()}
            step = _step_size(step_schedule, scale, i, n, decay, s, t)
            x = _ancestral(s, out, x_in.detach(), t, generator) - step * grad
        if trace_every and (i % trace_every == 0 or t == 0):
            trace["residual"].append(noise.dps_norm(y, Ax.detach()).cpu())
    x = x.detach()
    return _result(x, n, trace)


# ============================================================================================ projections
def pinv_apply(operator, r: torch.Tensor, like: torch.Tensor, cg_iters: int = 100,
               rcond: float = 1e-10) -> torch.Tensor:
    """A^+ r: through the SVD where the operator has one (singular values below rcond * max treated as zero),
    else A^T (A A^T)^-1 r by at most ``cg_iters`` conjugate-gradient steps (which also regularises)."""
    if operator.svd_available:
        return operator.pseudo_inverse(r, rcond=rcond).to(like.dtype)
    w = cg(lambda v: operator(operator.adjoint(v, like=like)), r, iters=cg_iters, tol=1e-10)
    return operator.adjoint(w, like=like)


def project_measurement(operator, x_pm1: torch.Tensor, y_pm1: torch.Tensor, rcond: float = 1e-10,
                        mode: str = "pinv", cg_iters: int = 100) -> torch.Tensor:
    """mode "pinv": x + A^+(y - A x), the closest point (in l2) of {A x = y} (the paper: projection methods make
    the estimate measurement-consistent); mode "transpose": x + A^T (y - A x), the DPS code's ProjectionOperator
    (equal to "pinv" for masks); mode "residual": x + (y - A(x)), the DPS code's NonLinearOperator.project, for
    operators whose measurement is an image of x's shape (the only mode for nonlinear ones)."""
    if mode == "residual":
        return x_pm1 + (y_pm1 - forward_pm1(operator, x_pm1))
    if not operator.linear:
        raise TypeError(f"projection mode {mode!r} needs a linear operator; nonlinear ones project with 'residual'")
    if mode == "transpose":
        return x_pm1 + operator.adjoint(y_pm1 - operator(x_pm1), like=x_pm1)
    if mode != "pinv":
        raise ValueError(f"projection mode must be 'pinv', 'transpose' or 'residual', got {mode!r}")
    return x_pm1 + pinv_apply(operator, y_pm1 - operator(x_pm1), x_pm1, rcond=rcond, cg_iters=cg_iters)


def projection_sampler(model, operator, noise, y: torch.Tensor, *, generator: torch.Generator,
                       mcg_scale: float = 0.0, rcond: float = 1e-10, mode: str = "pinv", cg_iters: int = 100,
                       progress: bool = False) -> Reconstruction:
    """Score-SDE / ILVR-style sampling by projection onto the noised measurement (mcg_scale = 0), and MCG
    (mcg_scale > 0: a DPS-like manifold-constrained gradient step before the projection, as in the DPS code's
    MCG baseline).

    At every step: x'_{t-1} ~ p(x_{t-1} | x_t) [- mcg_scale grad ||y - A x0_hat||], then
    x_{t-1} = x'_{t-1} + A^+(y_{t-1} - A x'_{t-1}) with y_{t-1} = sqrt(abar_{t-1}) y + sqrt(1 - abar_{t-1}) A z,
    the measurement diffused to the same level (Song et al. 2021's conditional sampler). The measurement noise is
    not modelled: projections copy it into the estimate (the paper's Fig. 7 argument, checked by our claims).

    Nonlinear operators (Table 4's MCG on non-uniform blur) take mode "residual" and, as the DPS code, diffuse the
    measurement with noise drawn in measurement space: y_{t-1} = sqrt(abar) y + sqrt(1 - abar) z_y.
    """
    if not operator.linear and mode != "residual":
        raise TypeError("a nonlinear operator has no A^+: projection methods run on it only with mode='residual' "
                        "(x + y - A(x), image-valued operators), else use DPS")
    s = model.schedule
    n = s.num_steps
    x = _randn((y.shape[0], *operator.shape), generator, y)
    y_pm1 = measurement_pm1(operator, y, x)
    for t in progress_bar(range(n - 1, -1, -1), desc="MCG" if mcg_scale else "Score-SDE", disable=not progress, leave=False):
        with torch.enable_grad() if mcg_scale else torch.no_grad():
            x_in = x.detach().requires_grad_(bool(mcg_scale))
            out = model.predict(x_in, t)
            grad = 0.0
            if mcg_scale:
                data = noise.dps_norm(y, operator(to01(out["x0"])))
                (grad,) = torch.autograd.grad(data.sum(), x_in)
        with torch.no_grad():
            out = {k: v.detach() for k, v in out.items()}
            x = _ancestral(s, out, x_in.detach(), t, generator) - mcg_scale * grad
            abar_prev = float(s.alphas_cumprod_prev[t])
            if operator.linear:
                z = _randn(x.shape, generator, x)
                y_t = math.sqrt(abar_prev) * y_pm1 + math.sqrt(1.0 - abar_prev) * operator(z)
            else:
                y_t = math.sqrt(abar_prev) * y_pm1 + math.sqrt(1.0 - abar_prev) * _randn(y_pm1.shape, generator, x)
            x = project_measurement(operator, x, y_t, rcond=rcond, mode=mode, cg_iters=cg_iters)
    return _result(x, n)


# ================================================================================================== DDRM
SVD_CUTS = ("factors", "product")


def _separable_factors(operator):
    """(1-D singular values of R_h, of R_w, channels) of a separable operator A = R_h (x) R_w per channel (bicubic
    SR, the reflect-boundary Gaussian blur), or None. Checked against ``operator.singulars()``, whose layout is
    outer(s_h, s_w) per channel (replicate/operators/linear.py, SeparableOperator)."""
    from replicate.operators.linear import SeparableOperator

    sep = operator if isinstance(operator, SeparableOperator) else getattr(operator, "_sep", None)
    if not isinstance(sep, SeparableOperator):
        return None
    sh = torch.linalg.svdvals(sep.Rh.double())
    sw = torch.linalg.svdvals(sep.Rw.double())
    c = sep.shape[0]
    full = operator.singulars().double()
    if full.numel() != c * sh.numel() * sw.numel() or not torch.allclose(
            torch.outer(sh, sw).expand(c, -1, -1).reshape(-1), full, rtol=1e-8, atol=1e-12):
        return None
    return sh, sw, c


def cut_singulars(operator, s_min: float, cut: str = "factors") -> torch.Tensor:
    """The operator's singular values (its ``singulars()`` layout, float64) with the small ones set to zero
    (= unobserved for DDRM).

    cut "factors" (the DDRM code, functions/svd_replacement.py ``Deblurring``: ``singulars_small[singulars_small <
    ZERO] = 0`` with ZERO = 3e-2 on the 1-D convolution's SVD, before forming the products): on a separable operator
    the 1-D singular values below ``s_min`` (absolute, as the code's ZERO; the 1-D factors of a normalised blur
    have largest singular value ~1) are zeroed, and with them every product they enter. Operators without 1-D
    factors fall back to "product".
    cut "product" (the project's former rule): the products below ``s_min`` * max are zeroed; that zeroes more
    coefficients (e.g. 61429 vs 60352 per channel for the 61 x 61, std 3 blur at 256 px).
    s_min = 0 keeps every singular value."""
    if cut not in SVD_CUTS:
        raise ValueError(f"cut must be one of {SVD_CUTS}, got {cut!r}")
    sing = operator.singulars().double()
    if s_min <= 0:
        return sing
    factors = _separable_factors(operator) if cut == "factors" else None
    if factors is None:
        return torch.where(sing < s_min * sing.max(), torch.zeros_like(sing), sing)
    sh, sw, c = factors
    keep = torch.outer(sh >= s_min, sw >= s_min).expand(c, -1, -1).reshape(-1).to(sing.device)
    return torch.where(keep, sing, torch.zeros_like(sing))


def ddrm(model, operator, noise, y: torch.Tensor, *, generator: torch.Generator, eta: float = 0.85,
         eta_b: float = 1.0, s_min: float = 0.0, cut: str = "factors", progress: bool = False) -> Reconstruction:
    """Denoising diffusion restoration models (Kawar et al. 2022), the efficient_generalized_steps of the DDRM code,
    in the spectral basis of A = U diag(s) V^T. ``model.schedule`` gives the (DDIM-respaced) steps: DPS compares
    with 20 NFE, eta = 0.85, eta_b = 1; the DDRM code's 20 steps are timesteps 0, 50, ..., 950
    (``respaced(model, 20, spacing="skip")``), walked from 950 down.

    With x_t / sqrt(abar_t) = x0 + sigma_t n (sigma_t = sqrt((1 - abar_t) / abar_t)), per spectral coefficient:
      s_i = 0 (unobserved):        DDIM step on the prior, noise share eta
      s_i sigma_next < sigma_y:    the measurement is noisier than the diffusion: pull x0_hat towards y/s_i by the
                                   share sqrt(1 - eta^2) of sigma_next
      s_i sigma_next > sigma_y:    the measurement is less noisy: sample around y/s_i (eta_b = 1) with the missing
                                   variance sigma_next^2 - sigma_y^2 / s_i^2
    Gaussian noise only (sigma_y on the [-1, 1] scale of the model = 2 sigma01).
    ``s_min``, ``cut``: small singular values are treated as zero (unobserved), see ``cut_singulars``: by default
    the 1-D singular values of a separable operator below s_min, as the DDRM code's deblurring (ZERO = 3e-2; not
    stated in either paper); 0 = use every singular value.
    """
    if not operator.svd_available:
        raise TypeError(f"DDRM needs the SVD of A; {type(operator).__name__} has none (DPS reports '-' here)")
    if not hasattr(noise, "sigma01"):
        raise TypeError("DDRM models Gaussian measurement noise only")
    sigma_0 = 2.0 * noise.sigma01
    s = model.schedule
    n = s.num_steps
    x = _randn((y.shape[0], *operator.shape), generator, y)
    y_pm1 = measurement_pm1(operator, y, x)
    sing = cut_singulars(operator, s_min, cut).to(device=x.device, dtype=x.dtype)
    r = sing.numel()
    observed = sing > 0
    safe = torch.where(observed, sing, torch.ones_like(sing))
    Uy = operator.U_T(y_pm1)[:, :r]
    Sinv_Uy = Uy / safe
    for t in progress_bar(range(n - 1, -1, -1), desc="DDRM", disable=not progress, leave=False):
        with torch.no_grad():
            ab = float(s.alphas_cumprod[t])
            ab_next = float(s.alphas_cumprod_prev[t])
            sigma_t = math.sqrt((1 - ab) / ab)
            sigma_next = math.sqrt((1 - ab_next) / ab_next)
            x0 = model.predict(x, t)["x0"]
            Vx0 = operator.V_T(x0)
            Vxt = operator.V_T(x / math.sqrt(ab))
            Veps = (Vxt - Vx0) / sigma_t
            std_c = sigma_next * eta
            tilde_c = math.sqrt(max(sigma_next**2 - std_c**2, 0.0))
            nxt = Vx0 + tilde_c * Veps + std_c * _randn(Vx0.shape, generator, Vx0)
            head = nxt[:, :r]
            v0 = Vx0[:, :r]
            after = observed & (sing * sigma_next < sigma_0)
            # ">=" (the DDRM code: ">") only matters for sigma_0 = 0 at the last step: noiseless measurements are
            # then copied exactly (the sigma_0 -> 0 limit), where ">" would return the unconstrained x0_hat
            before = observed & (sing * sigma_next >= sigma_0)
            z_a = _randn(head.shape, generator, head)
            z_b = _randn(head.shape, generator, head)
            if sigma_0 > 0:
                pull = v0 + tilde_c * (Uy - sing * v0) / sigma_0 + std_c * z_a
                head = torch.where(after, pull, head)
            diff_b = torch.sqrt((sigma_next**2 - (sigma_0 / safe) ** 2 * eta_b**2).clamp(min=0.0))
            fill = Sinv_Uy * eta_b + (1 - eta_b) * v0 + diff_b * z_b
            head = torch.where(before, fill, head)
            nxt = torch.cat([head, nxt[:, r:]], dim=1)
            x = math.sqrt(ab_next) * operator.V(nxt)
    # the last step (ab_next = 1, sigma_next = 0) returns the spectral estimate itself
    return _result(x, n)


def unconditional(model, shape, *, generator: torch.Generator, n: int = 1) -> Reconstruction:
    """Plain ancestral sampling of the prior (the reference 'prior alone' the tests compare with)."""
    s = model.schedule
    x = _randn((n, *shape), generator, torch.zeros((), dtype=torch.float64))
    with torch.no_grad():
        for t in range(s.num_steps - 1, -1, -1):
            out = model.predict(x, t)
            x = _ancestral(s, out, x, t, generator)
    return _result(x, s.num_steps)
