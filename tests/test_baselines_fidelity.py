"""Fidelity of the DPS baselines to App. D.2: ADMM-TV with isotropic TV; ER / HIO / OSS with a normal initial
signal, non-negativity + support, and OSS's 10-stage smoothing schedule (Rodriguez et al. 2013)."""
import math

import pytest
import torch

from replicate.operators.base import make_operator
from replicate.operators.nonlinear import PhaseRetrieval, fft2_centred
from replicate.solvers.admm_tv import admm_tv, grad, grad_adjoint, shrink, tv_norm, tv_objective
from replicate.solvers.phase_retrieval import (fienup, hio_update, initial_guess, object_bounds, oss_alphas,
                                               oss_filter, oss_schedule, oss_stage_bounds, padded_support,
                                               project_object)

DT = torch.float64


# ------------------------------------------------------------------------------------------------------ ADMM-TV
def _hand_shrink(v, t, joint=False):
    """Group soft threshold written out with loops: v (N, 2, C, H, W)."""
    out = torch.zeros_like(v)
    N, _, C, H, W = v.shape
    for n in range(N):
        for i in range(H):
            for j in range(W):
                groups = [list(range(C))] if joint else [[c] for c in range(C)]
                for cs in groups:
                    comps = [(d, c) for d in range(2) for c in cs]
                    norm = math.sqrt(sum(float(v[n, d, c, i, j]) ** 2 for d, c in comps))
                    scale = max(0.0, 1.0 - t / norm) if norm > 0 else 0.0
                    for d, c in comps:
                        out[n, d, c, i, j] = v[n, d, c, i, j] * scale
    return out


def test_isotropic_prox_is_the_group_soft_threshold():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 2, 3, 3, 4, generator=g, dtype=DT)
    v[0, :, 1, 2, 3] = 0.0                     # a zero group stays zero
    v[1, :, 0, 0, 0] = torch.tensor([0.2, -0.1], dtype=DT)  # norm below the threshold: set to zero
    t = 0.45
    iso = shrink(v, t, "isotropic")
    assert torch.allclose(iso, _hand_shrink(v, t), atol=1e-14, rtol=0)
    assert torch.allclose(shrink(v, t, "isotropic_joint"), _hand_shrink(v, t, joint=True), atol=1e-14, rtol=0)
    assert torch.allclose(shrink(v, t, "anisotropic"), torch.sign(v) * (v.abs() - t).clamp(min=0), atol=0, rtol=0)
    # a diagonal gradient (a, a): isotropic shrinks the vector's length by t, anisotropic each component by t
    d = torch.zeros(1, 2, 1, 1, 1, dtype=DT)
    d[0, :, 0, 0, 0] = 1.0
    assert torch.allclose(shrink(d, t, "isotropic").flatten(), torch.full((2,), 1 - t / math.sqrt(2), dtype=DT))
    assert torch.allclose(shrink(d, t, "anisotropic").flatten(), torch.full((2,), 1 - t, dtype=DT))
    # the prox optimality: no perturbation lowers 1/2 ||z - v||^2 + t ||z||_{2,1}
    f = lambda z: 0.5 * ((z - v) ** 2).sum() + t * (z**2).sum(1).sqrt().sum()  # noqa: E731
    for _ in range(20):
        assert float(f(iso)) <= float(f(iso + 1e-3 * torch.randn(v.shape, generator=g, dtype=DT))) + 1e-15


def _diagonal_edge(n=12):
    i = torch.arange(n, dtype=DT)
    return (i[:, None] + i[None, :] >= n).to(DT)[None, None]


def test_isotropic_and_anisotropic_tv_differ_on_a_diagonal_edge():
    x = _diagonal_edge()
    # the staircase x[i, j] = [i + j >= 12]: 10 pixels with gradient (1, 1) and 2 border pixels with one unit step
    assert float(tv_norm(x, "isotropic")) == pytest.approx(10 * math.sqrt(2) + 2, abs=1e-12)
    assert float(tv_norm(x, "anisotropic")) == pytest.approx(10 * 2 + 2, abs=1e-12)
    # an axis-aligned edge: both are the same
    xa = torch.zeros(1, 1, 12, 12, dtype=DT)
    xa[..., 6:, :] = 1.0
    assert float(tv_norm(xa, "isotropic")) == pytest.approx(float(tv_norm(xa, "anisotropic")), abs=1e-12)
    # TV denoising of the noisy diagonal edge: the two regularisers give different minimisers, each optimal for its own
    g = torch.Generator().manual_seed(1)
    y = x + 0.1 * torch.randn(x.shape, generator=g, dtype=DT)
    den = make_operator("denoising", shape=(1, 12, 12))
    tau = 0.3
    xi = admm_tv(den, y, tau=tau, rho=1.0, iters=300, cg_iters=5, tv="isotropic")
    xn = admm_tv(den, y, tau=tau, rho=1.0, iters=300, cg_iters=5, tv="anisotropic")
    assert float((xi - xn).abs().max()) > 0.05
    assert float(tv_objective(den, y, xi, tau, "isotropic")) < float(tv_objective(den, y, xn, tau, "isotropic")) - 1e-3
    assert float(tv_objective(den, y, xn, tau, "anisotropic")) < float(tv_objective(den, y, xi, tau, "anisotropic")) - 1e-3


def _pdhg_reference(op, y, tau, tv, iters=2000):
    """Independent minimiser of 1/2 ||A x - y||^2 + tau TV(x) (Chambolle-Pock with K = [A; D])."""
    x = op.adjoint(y, like=torch.zeros((y.shape[0], *op.shape), dtype=DT))
    xbar, p, q = x.clone(), torch.zeros_like(y), torch.zeros_like(grad(x))
    s = t = 0.3  # s t ||K||^2 <= 0.09 (1 + 8) < 1
    for _ in range(iters):
        p = (p + s * op(xbar) - s * y) / (1 + s)
        q = q + s * grad(xbar)
        if tv == "anisotropic":
            q = q.clamp(-tau, tau)
        else:
            q = q / ((q * q).sum(1, keepdim=True).sqrt() / tau).clamp(min=1.0)
        x_new = x - t * (op.adjoint(p, like=x) + grad_adjoint(q))
        xbar, x = 2 * x_new - x, x_new
    return x


@pytest.mark.parametrize("tv", ["isotropic", "anisotropic"])
def test_admm_tv_converges_to_the_tv_minimiser_on_small_deblurring(tv):
    g = torch.Generator().manual_seed(2)
    shape = (1, 10, 10)
    op = make_operator("gaussian_blur", kernel_size=3, std=0.7, shape=shape)
    x = torch.zeros(1, *shape, dtype=DT)
    x[..., 2:8, 3:9] = 1.0
    x[..., 5:, :5] += 0.5
    y = op(x) + 0.05 * torch.randn(x.shape, generator=g, dtype=DT)
    tau = 0.05
    ref = _pdhg_reference(op, y, tau, tv)
    f_ref = float(tv_objective(op, y, ref, tau, tv))
    objs = []
    for iters in (3, 30, 400):  # rho != 1, so that a threshold of tau instead of tau / rho would show
        est = admm_tv(op, y, tau=tau, rho=2.0, iters=iters, cg_iters=50, tv=tv)
        objs.append(float(tv_objective(op, y, est, tau, tv)))
    assert objs[0] > objs[1] > objs[2]
    # converged (CG and ADMM tolerances: gap ~3e-7, error ~8e-5 at 400 iterations); a threshold of tau instead of
    # tau / rho lands ~0.09 higher, 13 % away
    assert objs[2] <= f_ref + 1e-5
    assert float((est - ref).norm() / ref.norm()) < 1e-3
    # and it is a TV-regularised solution, not the least-squares one
    ls = admm_tv(op, y, tau=0.0, rho=2.0, iters=50, cg_iters=50, tv=tv)
    assert float(tv_objective(op, y, ls, tau, tv)) > objs[2] + 0.05


def test_admm_tv_default_is_isotropic():
    g = torch.Generator().manual_seed(3)
    den = make_operator("denoising", shape=(1, 8, 8))
    y = _diagonal_edge(8) + 0.1 * torch.randn(1, 1, 8, 8, generator=g, dtype=DT)
    a = admm_tv(den, y, tau=0.2, rho=1.0, iters=50)
    b = admm_tv(den, y, tau=0.2, rho=1.0, iters=50, tv="isotropic")
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        admm_tv(den, y, tau=0.2, iters=1, tv="l1")


# --------------------------------------------------------------------------------------------- ER / HIO / OSS
def _blob(n=12, c=1):
    i = torch.arange(n, dtype=DT) - (n - 1) / 2
    r2 = i[:, None] ** 2 + i[None, :] ** 2
    img = 0.15 + 0.7 * torch.exp(-r2 / (2 * (n / 4) ** 2))
    img = img + 0.1 * (i[:, None] > 0).to(DT)  # an asymmetric step, so that the flip is a distinct solution
    return img.clamp(0, 1).expand(1, c, n, n).clone()


def test_normal_initial_guess():
    op = PhaseRetrieval(oversample=2.0)  # pm1: the solver works on x - 1/2
    shape = (2, 32, 32)
    y = torch.ones(3, *[s + 2 * op.pad_for(s) for s in shape[1:]], dtype=DT)[:, None].expand(3, 2, -1, -1)
    g0 = initial_guess(op, y, shape, init="normal", generator=torch.Generator().manual_seed(5))
    support, (ph, pw) = padded_support(op, shape)
    assert torch.equal(g0[..., ~support], torch.zeros_like(g0[..., ~support]))
    x0 = (g0[..., ph : ph + 32, pw : pw + 32] + 0.5).flatten()  # the image-scale draw, 6144 samples
    assert abs(float(x0.mean())) < 0.05
    assert abs(float(x0.std()) - 1.0) < 0.04
    kurt = float(((x0 - x0.mean()) ** 4).mean() / x0.var() ** 2)
    assert abs(kurt - 3.0) < 0.3                       # uniform: 1.8
    assert 0.035 < float((x0.abs() > 2).double().mean()) < 0.057  # normal: 4.55 %; uniform: none
    # deterministic for a seed, different across seeds
    assert torch.equal(g0, initial_guess(op, y, shape, init="normal", generator=torch.Generator().manual_seed(5)))
    assert not torch.equal(g0, initial_guess(op, y, shape, init="normal", generator=torch.Generator().manual_seed(6)))
    # the earlier uniform start stays available: image U[0, 1] on the support
    u = initial_guess(op, y, shape, init="uniform", generator=torch.Generator().manual_seed(5))
    xu = u[..., ph : ph + 32, pw : pw + 32] + 0.5
    assert float(xu.min()) >= 0 and float(xu.max()) <= 1 and abs(float(xu.std()) - 12 ** -0.5) < 0.02
    # the co-author code's Fourier start: g0 = Re F^-1(y exp(i phi)), whose spectrum is bounded by y
    ph0 = initial_guess(op, y, shape, init="normal_phase", generator=torch.Generator().manual_seed(5))
    assert ph0.shape == y.shape and float(fft2_centred(ph0).abs().max()) <= 1.0 + 1e-9


def test_fienup_starts_from_the_normal_guess_and_uses_only_the_generator():
    op = PhaseRetrieval(oversample=2.0)
    x = _blob()
    y = op(x)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for method in ("er", "hio", "oss"):
        out = fienup(op, y, x.shape[1:], method=method, iters=0, restarts=1, generator=torch.Generator().manual_seed(9))
        g0 = initial_guess(op, y, x.shape[1:], init="normal", generator=torch.Generator().manual_seed(9))
        support, (ph, pw) = padded_support(op, x.shape[1:])
        assert torch.equal(out["x"], (g0[..., ph : ph + 12, pw : pw + 12] + 0.5).clamp(min=0)), method
        a = fienup(op, y, x.shape[1:], method=method, iters=20, restarts=2, generator=torch.Generator().manual_seed(1))
        b = fienup(op, y, x.shape[1:], method=method, iters=20, restarts=2, generator=torch.Generator().manual_seed(1))
        assert torch.equal(a["x"], b["x"]), method
    assert torch.equal(torch.get_rng_state(), state)  # the global generator was not touched


def test_object_constraint_is_nonnegativity_and_support_on_the_image_scale():
    for input_range, offset in (("pm1", 0.5), ("01", 0.0)):
        op = PhaseRetrieval(oversample=2.0, input_range=input_range)
        lo, hi = object_bounds(op)
        assert (lo, hi) == (-offset, None)
        assert object_bounds(op, "box") == (-offset, 1.0 - offset)
    support = torch.tensor([False, True, True, True, True, False])
    g = torch.tensor([0.3, -1.0, -0.3, 0.7, 2.0, -0.2], dtype=DT)
    # pm1: image x = g + 1/2 >= 0 on S, g = 0 off S; no upper bound
    assert torch.equal(project_object(g, support, -0.5), torch.tensor([0.0, -0.5, -0.3, 0.7, 2.0, 0.0], dtype=DT))
    assert torch.equal(project_object(g, support, -0.5, 0.5), torch.tensor([0.0, -0.5, -0.3, 0.5, 0.5, 0.0], dtype=DT))
    # HIO: feasible points take g'; the others g - beta (g' - P_C g') (Fienup's g - beta g' in the image scale on S)
    g_in = torch.tensor([0.2, 0.1, 0.1, 0.1, 0.1, 0.2], dtype=DT)
    gp = torch.tensor([0.3, -0.8, -0.3, 0.7, 2.0, -0.2], dtype=DT)
    new = hio_update(g_in, gp, support, -0.5, None, beta=0.9)
    expect = torch.tensor([0.2 - 0.9 * 0.3, 0.1 - 0.9 * (-0.8 + 0.5), -0.3, 0.7, 2.0, 0.2 + 0.9 * 0.2], dtype=DT)
    assert torch.allclose(new, expect, atol=1e-15, rtol=0)


@pytest.mark.parametrize("method", ["er", "hio", "oss"])
def test_returned_object_is_nonnegative_with_support(method):
    op = PhaseRetrieval(oversample=2.0)
    x = _blob(c=2)
    y = op(x)
    out = fienup(op, y, x.shape[1:], method=method, iters=60, restarts=2, generator=torch.Generator().manual_seed(0))
    obj, support = out["object"], out["support"]
    assert torch.equal(obj[..., ~support], torch.zeros_like(obj[..., ~support]))
    assert float(obj[..., support].min()) >= -0.5          # image >= 0
    assert float(out["x"].min()) >= 0.0
    assert torch.allclose(out["residual"], (op(out["x"]) - y).flatten(1).norm(dim=1), atol=1e-10)
    assert torch.allclose(out["residual"], (fft2_centred(obj).abs() - y).flatten(1).norm(dim=1), atol=1e-10)
    # the box of the earlier version: the same run with constraint="box" stays inside [0, 1]
    box = fienup(op, y, x.shape[1:], method=method, iters=60, restarts=2, generator=torch.Generator().manual_seed(0),
                 constraint="box")
    assert float(box["x"].min()) >= 0.0 and float(box["x"].max()) <= 1.0


def test_oss_schedule_has_ten_equal_stages_of_decreasing_width():
    size = 96
    sched = oss_schedule(1000, size)
    assert len(sched) == 1000
    runs = []  # run-length encoding
    for a in sched:
        if runs and runs[-1][0] == a:
            runs[-1][1] += 1
        else:
            runs.append([a, 1])
    assert len(runs) == 10 and all(n == 100 for _, n in runs)
    widths = [a for a, _ in runs]
    assert all(b < a for a, b in zip(widths, widths[1:]))
    assert widths[0] == pytest.approx(2.0 * size) and widths[-1] == pytest.approx(0.2 * size)
    assert widths == pytest.approx(oss_alphas(size))
    assert [len(r) for r in oss_stage_bounds(10000)] == [1000] * 10
    assert sum((list(r) for r in oss_stage_bounds(7)), []) == list(range(7))  # short runs: covered exactly once
    # the k-space window: W(0) = 1, W = exp(-1/2) one width away from the origin, symmetric
    W = oss_filter((40, 40), 5.0, 5.0)
    assert float(W[0, 0]) == 1.0
    assert float(W[5, 0]) == pytest.approx(math.exp(-0.5)) and float(W[0, -5]) == pytest.approx(math.exp(-0.5))


def test_oss_restarts_each_stage_from_the_previous_best_and_returns_the_best_iterate():
    op = PhaseRetrieval(oversample=2.0)
    x = _blob()
    y = op(x)
    trace = []
    out = fienup(op, y, x.shape[1:], method="oss", iters=200, restarts=2, generator=torch.Generator().manual_seed(4),
                 trace=trace)
    assert len(trace) == 2
    for t in trace:
        res, starts = t["residuals"][:, 0], t["stage_starts"][:, 0]
        assert res.shape == (200,) and starts.shape == (10,)
        stages = res.reshape(10, 20)
        # stage s + 1 starts from the best iterate of stage s (not from its last one)
        assert torch.equal(starts[1:], stages[:-1].min(1).values)
        assert not torch.equal(stages[:-1].min(1).values, stages[:-1, -1])  # the check above is not vacuous
    best = min(float(t["residuals"].min()) for t in trace)
    assert float(out["residual"][0]) == pytest.approx(best, abs=1e-12)
    # the smoothing acts off the support only: one OSS step leaves the object on S as HIO's
    kw = dict(iters=1, restarts=1, generator=torch.Generator().manual_seed(4))
    trace = []
    oss = fienup(op, y, x.shape[1:], method="oss", trace=trace, **kw)
    start = fienup(op, y, x.shape[1:], method="oss", **{**kw, "iters": 0})
    assert float(trace[0]["residuals"][0, 0]) < float(start["residual"][0])  # the step, not the start, is returned
    kw["generator"] = torch.Generator().manual_seed(4)
    assert torch.equal(oss["object"], fienup(op, y, x.shape[1:], method="hio", **kw)["object"])


@pytest.mark.parametrize("method", ["er", "hio", "oss"])
def test_methods_reduce_the_measurement_residual_on_a_known_object(method):
    op = PhaseRetrieval(oversample=2.0)
    x = _blob(14)
    y = op(x)
    gen = lambda: torch.Generator().manual_seed(11)  # noqa: E731
    start = fienup(op, y, x.shape[1:], method=method, iters=0, restarts=1, generator=gen())
    out = fienup(op, y, x.shape[1:], method=method, iters=400, restarts=2, generator=gen())
    assert float(out["residual"][0]) < 0.2 * float(start["residual"][0])
    assert float(out["residual"][0]) < 0.1 * float(y.norm())
