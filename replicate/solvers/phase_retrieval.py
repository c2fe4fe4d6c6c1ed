r"""Classical Fourier phase retrieval: error reduction (ER, Fienup 1982), hybrid input-output (HIO, Fienup 1982) and
oversampling smoothness (OSS, Rodriguez et al. 2013), for ``PhaseRetrieval`` measurements y = |F(pad(z))|.

Scales. The unknown is the padded object g (per channel) that enters the Fourier transform: with the operator's
"pm1" convention (DPS) g = pad_0(x - 1/2), with "01" g = pad_0(x), x the image on [0, 1]. S is the un-padded image
window. "Zero outside the support" is a statement about g (the padding is zero in g); "non-negative" is a statement
about the image x, i.e. g >= lo := -offset on S (offset = 1/2 for "pm1", 0 for "01"). For the "01" convention this is
the textbook constraint set; for "pm1" it is what "non-negative + support" means for an image on [0, 1].

Object constraint set C (``constraint``) and its projection P_C:
  "nonneg_support" (default, App. D.2: non-negativity and finite support):
        C = {g : g = 0 off S, g >= lo on S},        P_C(g) = max(g, lo) on S, 0 off S           (no upper bound)
  "box" (the earlier behaviour): also g <= hi := 1 - offset on S (image in [0, 1]), P_C clips to [lo, hi] on S.

Iterations (g' = F^-1( y exp(i angle(F g)) ), the Fourier-magnitude projection; "ok" = the points where g' is in C):
  ER:   g <- P_C(g')
  HIO:  g <- g' where ok, else g - beta (g' - P_C(g'))          (beta = 0.9, App. D.2)
        i.e. Fienup's g - beta g' in the scale where the violated bound is zero: off S (g' -> 0) and, on S, the image
        scale (x' -> 0). With constraint="box" the earlier update g - beta g' is kept unchanged.
  OSS:  HIO, then off S the iterate is replaced by its Gaussian low-pass F^-1( W F g ),
        W(k) = exp(-k_v^2 / (2 a_v^2) - k_h^2 / (2 a_h^2)), k in frequency pixels of the padded array (Rodriguez et al.
        2013 and their sample code OSS_samplecode.m). ``oss_schedule="stages"`` (default): 10 stages of iters / 10
        iterations; in stage s = 0..9 the k-space width is a = (2 - 0.2 s) N per axis (N = padded size along it): from
        2N (almost no smoothing) down to 0.2N (the sample code's FX). Each stage starts from the best iterate of the
        previous stage (smallest || |F P_C(g)| - y ||), and the output is the best iterate over all stages.
        ``oss_schedule="geometric"``: the earlier behaviour, a real-space Gaussian of std H (H/H)^(i/(iters-1)),
        decaying geometrically from the padded height to 1 px, no stage bests.

Initialisation (``init``), all draws from ``generator``:
  "normal" (default): the real image is drawn i.i.d. N(0, 1) on S (x0 ~ N(0, 1), g0 = x0 - offset on S, 0 off S).
        App. D.2: "we initialize a real signal by sampling from the normal distribution as the problem statement of
        (fienup1982phase)"; Fienup 1982 starts ER / HIO from an object-domain array of random numbers.
  "normal_phase": the Fourier-domain start of a DPS co-author's phase-retrieval code (jeongsol-kim/
        phase_retrieval_algorithms, not linked from the paper): phase phi = 2 pi n, n ~ N(0, 1) per frequency,
        g0 = Re F^-1( y exp(i phi) ) on the whole padded grid.
  "uniform": the earlier behaviour, U[lo, hi] on S (image U[0, 1]).

DPS (App. D.2) runs 10,000 iterations and keeps the best of 4 random restarts by measurement residual. Each restart
returns P_C of its final iterate (ER, HIO) or its best iterate (OSS, stages). The estimate is only defined up to the
trivial ambiguities of the measurement (translation and conjugate flip): we do not register it against the ground
truth, as the paper's metrics presumably did not. With the default constraint the returned image is >= 0 but not
clipped above (the metrics clip to [0, 1]).
"""
from __future__ import annotations

import math

import torch
from replicate.progress import bar as progress_bar

from replicate.operators.nonlinear import PhaseRetrieval, fft2_centred

INITS = ("normal", "normal_phase", "uniform")
CONSTRAINTS = ("nonneg_support", "box")
OSS_SCHEDULES = ("stages", "geometric")


def ifft2_centred(X: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(X, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def _smooth(g: torch.Tensor, width: float) -> torch.Tensor:
    """Gaussian low-pass of g with a frequency-domain filter for a real-space std of ``width`` pixels (the earlier
    "geometric" OSS smoothing)."""
    h, w = g.shape[-2:]
    fy = torch.fft.fftfreq(h, dtype=g.dtype, device=g.device)
    fx = torch.fft.fftfreq(w, dtype=g.dtype, device=g.device)
    filt = torch.exp(-2 * math.pi**2 * width**2 * (fy[:, None] ** 2 + fx[None, :] ** 2))
    return torch.fft.ifft2(torch.fft.fft2(g) * filt).real


def oss_filter(shape, alpha_v: float, alpha_h: float, dtype=torch.float64, device=None) -> torch.Tensor:
    """OSS k-space window W(k) = exp(-k_v^2 / (2 alpha_v^2) - k_h^2 / (2 alpha_h^2)) on the unshifted FFT grid
    (k in frequency pixels, W(0) = 1)."""
    h, w = shape
    kv = torch.fft.fftfreq(h, d=1.0 / h, dtype=dtype, device=device)
    kh = torch.fft.fftfreq(w, d=1.0 / w, dtype=dtype, device=device)
    return torch.exp(-0.5 * (kv[:, None] / alpha_v) ** 2 - 0.5 * (kh[None, :] / alpha_h) ** 2)


def oss_smooth(g: torch.Tensor, alpha_v: float, alpha_h: float, window: torch.Tensor | None = None) -> torch.Tensor:
    """Real part of F^-1( W F g ) with the OSS window ``oss_filter`` (or a precomputed ``window``)."""
    W = oss_filter(g.shape[-2:], alpha_v, alpha_h, dtype=g.dtype, device=g.device) if window is None else window
    return torch.fft.ifft2(torch.fft.fft2(g) * W).real


def oss_stage_bounds(iters: int, stages: int = 10) -> list[range]:
    """The iterations of each OSS stage: ``stages`` consecutive ranges covering range(iters), lengths differing by at
    most one (equal when stages divides iters); some are empty when iters < stages."""
    b = [(s * iters) // stages for s in range(stages + 1)]
    return [range(b[s], b[s + 1]) for s in range(stages)]


def oss_alphas(size: int, stages: int = 10, start: float = 2.0, stop: float = 0.2) -> list[float]:
    """k-space filter widths of the stages for an axis of ``size`` padded pixels: linear from start*size to
    stop*size (Rodriguez et al.'s sample code: 2N, 1.8N, ..., 0.2N)."""
    if stages == 1:
        return [start * size]
    return [size * (start + (stop - start) * s / (stages - 1)) for s in range(stages)]


def oss_schedule(iters: int, size: int, stages: int = 10, start: float = 2.0, stop: float = 0.2) -> list[float]:
    """Per-iteration k-space filter width (``oss_stage_bounds`` x ``oss_alphas``)."""
    out = []
    for rng, a in zip(oss_stage_bounds(iters, stages), oss_alphas(size, stages, start, stop)):
        out.extend([a] * len(rng))
    return out


def _offset(operator: PhaseRetrieval) -> float:
    return 0.5 if operator.input_range == "pm1" else 0.0


def padded_support(operator: PhaseRetrieval, shape, device=None):
    """(support (H', W') bool, (ph, pw)) of the padded grid for images of ``shape`` (C, H, W)."""
    _, h, w = shape
    ph, pw = operator.pad_for(h), operator.pad_for(w)
    support = torch.zeros(h + 2 * ph, w + 2 * pw, dtype=torch.bool, device=device)
    support[ph : ph + h, pw : pw + w] = True
    return support, (ph, pw)


def object_bounds(operator: PhaseRetrieval, constraint: str = "nonneg_support") -> tuple[float, float | None]:
    """(lo, hi) of the object on S, on the solver's scale: lo = -offset (image >= 0); hi = 1 - offset (image <= 1)
    for constraint="box", None (no upper bound) for "nonneg_support"."""
    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {CONSTRAINTS}, got {constraint!r}")
    offset = _offset(operator)
    return -offset, (1.0 - offset if constraint == "box" else None)


def project_object(g: torch.Tensor, support: torch.Tensor, lo: float, hi: float | None = None) -> torch.Tensor:
    """P_C: g clipped to [lo, hi] (hi None: [lo, inf)) on the support, zero off it."""
    inside = g.clamp(min=lo) if hi is None else g.clamp(lo, hi)
    return torch.where(support, inside, torch.zeros_like(g))


def feasible(g: torch.Tensor, support: torch.Tensor, lo: float, hi: float | None = None) -> torch.Tensor:
    """The points where g satisfies the object constraints (on S and within the bounds)."""
    ok = support & (g >= lo)
    return ok if hi is None else ok & (g <= hi)


def hio_update(g: torch.Tensor, gp: torch.Tensor, support: torch.Tensor, lo: float, hi: float | None = None,
               beta: float = 0.9) -> torch.Tensor:
    """One HIO object-domain step from the input g and the Fourier-projected output gp: gp where it is feasible,
    else g - beta (gp - P_C(gp)) (hi None, the default constraint) or the earlier g - beta gp (constraint="box")."""
    ok = feasible(gp, support, lo, hi)
    if hi is not None:
        return torch.where(ok, gp, g - beta * gp)
    return torch.where(ok, gp, g - beta * (gp - project_object(gp, support, lo, hi)))


def initial_guess(operator: PhaseRetrieval, y: torch.Tensor, shape, *, init: str = "normal",
                  generator: torch.Generator) -> torch.Tensor:
    """The starting padded object g0 (N, C, H', W') on the solver's scale (see the module docstring)."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    n, (c, h, w) = y.shape[0], shape
    support, (ph, pw) = padded_support(operator, shape, y.device)
    H, W = support.shape
    offset = _offset(operator)
    real = y.real.dtype if y.is_complex() else y.dtype
    if init == "uniform":  # the earlier draw, unchanged: U[lo, hi] on the whole grid, masked
        lo, hi = -offset, 1.0 - offset
        return (torch.rand((n, c, H, W), generator=generator, dtype=real) * (hi - lo) + lo).to(y.device) * support
    if init == "normal":
        x0 = torch.randn((n, c, h, w), generator=generator, dtype=real).to(y.device)
        g0 = torch.zeros((n, c, H, W), dtype=real, device=y.device)
        g0[..., ph : ph + h, pw : pw + w] = x0 - offset
        return g0
    phi = 2 * math.pi * torch.randn((n, c, H, W), generator=generator, dtype=real).to(y.device)
    return ifft2_centred(y * torch.exp(1j * phi)).real


def fienup(operator: PhaseRetrieval, y: torch.Tensor, shape, *, method: str = "hio", iters: int = 10000,
           beta: float = 0.9, generator: torch.Generator, restarts: int = 4, progress: bool = False,
           init: str = "normal", constraint: str = "nonneg_support", oss_schedule: str = "stages",
           oss_stages: int = 10, trace: list | None = None) -> dict:
    """Best-of-``restarts`` reconstruction. Returns {"x": (N, C, H, W) image estimate (>= 0; in [0, 1] with
    constraint="box"), "residual": (N,) = || A(x) - y ||, "object": (N, C, H', W') the padded object P_C(g) on the
    solver's scale, "support": (H', W') bool}. Settings: see the module docstring (the defaults are App. D.2's).
    ``trace``: a list that receives, per restart, {"residuals": (iters, N) || |F P_C(g_i)| - y || of the iterates}, and
    for staged OSS also "stage_starts": (stages run, N) the residual of the iterate each stage starts from."""
    if method not in ("er", "hio", "oss"):
        raise ValueError(f"method must be 'er', 'hio' or 'oss', got {method!r}")
    if constraint not in CONSTRAINTS:
        raise ValueError(f"constraint must be one of {CONSTRAINTS}, got {constraint!r}")
    if oss_schedule not in OSS_SCHEDULES:
        raise ValueError(f"oss_schedule must be one of {OSS_SCHEDULES}, got {oss_schedule!r}")
    _, h, w = shape
    support, (ph, pw) = padded_support(operator, shape, y.device)
    H, W = support.shape
    offset = _offset(operator)
    lo, hi = object_bounds(operator, constraint)

    def project(gp):
        return project_object(gp, support, lo, hi)

    def residual(g):  # || |F g| - y || per image
        return (fft2_centred(g).abs() - y).flatten(1).norm(dim=1)

    def step(g, i):
        gp = ifft2_centred(y * torch.exp(1j * torch.angle(fft2_centred(g)))).real
        if method == "er":
            return project(gp)
        g = hio_update(g, gp, support, lo, hi, beta)
        if method == "oss" and oss_schedule == "geometric":
            width = max(1.0, H * (1.0 / H) ** (i / max(iters - 1, 1)))
            g = torch.where(support, g, _smooth(g, width))
        return g

    def keep_best(new, new_r, old, old_r):
        """Per image, the candidate with the smaller residual (ties keep the old one); the first candidate when
        there is no old one yet."""
        if old is None:
            return new, new_r
        better = new_r < old_r
        return torch.where(better.view(-1, *([1] * (new.ndim - 1))), new, old), torch.minimum(new_r, old_r)

    best_obj, best_r = None, None
    for k in range(restarts):
        g = initial_guess(operator, y, shape, init=init, generator=generator)
        desc = f"{method.upper()} {k + 1}/{restarts}"
        if method == "oss" and oss_schedule == "stages":
            bounds = oss_stage_bounds(iters, oss_stages)
            av, ah = oss_alphas(H, oss_stages), oss_alphas(W, oss_stages)
            run_obj, run_r = project(g), residual(project(g))  # best over all stages (the start, if iters == 0)
            bar = progress_bar(total=iters, desc=desc, disable=not progress, leave=False)
            hist, starts = [], []
            for s, rng in enumerate(bounds):
                if len(rng) == 0:
                    continue
                if trace is not None:
                    starts.append(residual(project(g)))
                stage_g, stage_r = None, None
                window = oss_filter((H, W), av[s], ah[s], dtype=g.dtype, device=g.device)
                for i in rng:
                    g = step(g, i)
                    g = torch.where(support, g, oss_smooth(g, av[s], ah[s], window))
                    r = residual(project(g))
                    hist.append(r)
                    stage_g, stage_r = keep_best(g, r, stage_g, stage_r)
                    bar.update(1)
                g = stage_g  # the next stage starts from this stage's best iterate
                run_obj, run_r = keep_best(project(stage_g), stage_r, run_obj, run_r)
            bar.close()
            obj, r = run_obj, run_r
        else:
            hist, starts = [], None
            for i in progress_bar(range(iters), desc=desc, disable=not progress, leave=False):
                g = step(g, i)
                if trace is not None:
                    hist.append(residual(project(g)))
            obj = project(g)
            r = residual(obj)
        if trace is not None:
            empty = torch.zeros((0, y.shape[0]), dtype=y.dtype, device=y.device)
            entry = {"residuals": torch.stack(hist) if hist else empty}
            if starts is not None:
                entry["stage_starts"] = torch.stack(starts) if starts else empty
            trace.append(entry)
        best_obj, best_r = keep_best(obj, r, best_obj, best_r)
    x = best_obj[..., ph : ph + h, pw : pw + w] + offset
    return {"x": x, "residual": best_r, "object": best_obj, "support": support}
