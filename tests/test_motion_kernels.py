"""DPS motion-blur kernels: the default family must be LeviBorodenko/motionblur's (the code behind DPS's numbers).

Reference statistics of the original (``motionblur.Kernel(size=(61, 61), intensity=0.5).kernelMatrix``) were
measured with a throwaway transcription of the original code (numpy global RNG, Pillow 13 drawing), run outside the
repository and not committed:

* seeds ``np.random.seed(0..39)``: median radius of gyration 12.32 px (the 12.3 px of the task statement, which this
  reproduces), median sum k^2 0.01150;
* seeds ``np.random.seed(0..19999)``: median radius of gyration 11.05 px, median sum k^2 0.01238.

A median over 40 kernels scatters by about 12% (relative s.d., bootstrapped from the 20000), so the 40-seed
comparison requested for this check cannot tell a 10% error from chance; the decisive family test therefore uses 400
seeds (s.d. of the median about 4%) against the 20000-seed reference. The 40-seed comparison is kept as well,
against the task's reference values: 12.3 px, and sum k^2 = (old generator's 40-seed median) / 0.65.

Path- and draw-level references (one-line mistakes) are exact laws of the original's rules, cross-checked with the
transcription (numpy, 100000 paths at intensity 0.5, 20000 at 1.0).
"""
from __future__ import annotations

import math
import statistics

import pytest
import torch

from replicate.operators.kernels import (
    MOTION_KERNEL_FAMILIES,
    _levi_angles,
    _levi_canvas,
    _levi_path,
    _levi_steps,
    motion_blur_kernel,
)

# the original, 20000 numpy seeds (see module docstring)
ORIG_MEDIAN_RG = 11.05
ORIG_MEDIAN_SUMK2 = 0.01238
# the original, numpy seeds 0..39 (the task statement's value)
ORIG_MEDIAN_RG_40 = 12.3
OLD_TO_ORIG_SUMK2_40 = 0.65  # task statement: old median sum k^2 = 0.65 x the original's (seeds 0..39)


def radius_of_gyration(k: torch.Tensor) -> float:
    k = k / k.sum()
    r = torch.arange(k.shape[0], dtype=torch.float64)[:, None]
    c = torch.arange(k.shape[1], dtype=torch.float64)[None, :]
    mr, mc = (k * r).sum(), (k * c).sum()
    return float(((k * ((r - mr) ** 2 + (c - mc) ** 2)).sum()).sqrt())


def sum_k2(k: torch.Tensor) -> float:
    return float((k**2).sum())


def minor_width(k: torch.Tensor) -> float:
    """s.d. (px) of the kernel across its principal axis: about the line's half-width for a straight line."""
    k = k / k.sum()
    r = torch.arange(k.shape[0], dtype=torch.float64)[:, None].expand_as(k)
    c = torch.arange(k.shape[1], dtype=torch.float64)[None, :].expand_as(k)
    mr, mc = (k * r).sum(), (k * c).sum()
    crr, ccc, crc = (k * (r - mr) ** 2).sum(), (k * (c - mc) ** 2).sum(), (k * (r - mr) * (c - mc)).sum()
    ev = torch.linalg.eigvalsh(torch.stack([torch.stack([crr, crc]), torch.stack([crc, ccc])]))
    return float(ev[0].clamp(min=0).sqrt())


def medians(seeds, **kw):
    ks = [motion_blur_kernel(61, 0.5, seed=s, **kw) for s in seeds]
    return statistics.median(map(radius_of_gyration, ks)), statistics.median(map(sum_k2, ks))


def directions(path):
    z = [complex(x, y) for x, y in path]
    return [math.atan2((b - a).imag, (b - a).real) for a, b in zip(z[:-1], z[1:])]


def wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def mean_turn(path) -> float:
    d = directions(path)
    return sum(abs(wrap(b - a)) for a, b in zip(d[:-1], d[1:])) / max(1, len(d) - 1)


def polyline_length(path) -> float:
    return sum(math.dist(a, b) for a, b in zip(path[:-1], path[1:]))


# ---------------------------------------------------------------- the family


def test_family_matches_original_400_seeds():
    rg, s2 = medians(range(400))
    assert abs(rg / ORIG_MEDIAN_RG - 1) < 0.10, rg
    assert abs(s2 / ORIG_MEDIAN_SUMK2 - 1) < 0.10, s2


def test_family_matches_original_40_seeds_and_old_family_does_not():
    old_rg, old_s2 = medians(range(40), family="described")
    assert abs(old_rg / 7.2 - 1) < 0.03  # the old generator is still reachable, unchanged (7.2 px in the task)
    ref_s2 = old_s2 / OLD_TO_ORIG_SUMK2_40  # = 0.01152; the transcription measured 0.01150 on numpy seeds 0..39
    rg, s2 = medians(range(40))
    assert abs(rg / ORIG_MEDIAN_RG_40 - 1) < 0.10, rg
    assert abs(s2 / ref_s2 - 1) < 0.10, s2
    # the old family is the easier one the task describes: far outside the tolerance
    assert old_rg / ORIG_MEDIAN_RG_40 < 0.7 and old_s2 / ref_s2 < 0.75


def test_default_is_levi_and_families_named():
    assert MOTION_KERNEL_FAMILIES == ("levi", "described")
    assert torch.equal(motion_blur_kernel(61, 0.5, seed=3), motion_blur_kernel(61, 0.5, seed=3, family="levi"))
    assert not torch.equal(motion_blur_kernel(61, 0.5, seed=3), motion_blur_kernel(61, 0.5, seed=3, family="described"))
    with pytest.raises(ValueError):
        motion_blur_kernel(61, 0.5, seed=3, family="other")


# ---------------------------------------------------------------- basic properties


@pytest.mark.parametrize("intensity", [0.0, 0.5, 1.0])
def test_kernel_properties(intensity):
    for s in range(5):
        k = motion_blur_kernel(61, intensity, seed=s)
        assert k.dtype == torch.float64 and k.shape == (61, 61)
        assert float(k.min()) >= 0.0 and abs(float(k.sum()) - 1.0) < 1e-12
        assert int((k > 1e-3).sum()) >= 5  # at least a short stroke (the original's length can be near 0: U(0, 1))


def test_deterministic_per_seed_and_generator():
    a = motion_blur_kernel(61, 0.5, seed=11)
    assert torch.equal(a, motion_blur_kernel(61, 0.5, seed=11))
    assert torch.equal(a, motion_blur_kernel(61, 0.5, generator=torch.Generator().manual_seed(11)))
    assert not torch.equal(a, motion_blur_kernel(61, 0.5, seed=12))
    # no global RNG is touched or used
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    b = motion_blur_kernel(61, 0.5, seed=11)
    assert torch.equal(torch.random.get_rng_state(), before) and torch.equal(a, b)


def test_intensity_zero_is_a_straight_line():
    for s in range(10):
        path = _levi_path(61, 0.0, torch.Generator().manual_seed(s))
        d = directions(path)
        assert max(abs(wrap(x - d[0])) for x in d) < 1e-9  # every step in the same direction
    # the kernel is a thin bar: its spread across the principal axis is the drawn line's (< 0.7 px for all seeds;
    # 0.57 px on average), however long the line; with intensity 0.5 the paths bend (1.66 px on average)
    widths = [minor_width(motion_blur_kernel(61, 0.0, seed=s)) for s in range(40)]
    assert max(widths) < 0.7
    bent = [minor_width(motion_blur_kernel(61, 0.5, seed=s)) for s in range(40)]
    assert statistics.mean(bent) > 2 * statistics.mean(widths)


def test_larger_intensity_longer_and_more_irregular_paths():
    stats = {}
    for intensity in (0.0, 0.5, 1.0):
        paths = [_levi_path(61, intensity, torch.Generator().manual_seed(s)) for s in range(60)]
        stats[intensity] = (statistics.mean(map(polyline_length, paths)), statistics.mean(map(mean_turn, paths)))
    (l0, t0), (l5, t5), (l1, t1) = stats[0.0], stats[0.5], stats[1.0]
    assert t0 < 1e-9 < t5 < t1
    assert l0 < l5 < l1


def test_bad_arguments():
    with pytest.raises(ValueError):
        motion_blur_kernel(61, 1.5, seed=0)
    with pytest.raises(ValueError):
        motion_blur_kernel(3, 0.5, seed=0)


# ---------------------------------------------------------------- the original's rules (one-line mistakes fail)


def test_step_rule():
    """Steps Beta(1, 30) (1 - I + 0.1) D until their sum reaches L = 0.75 D (U + U(0, I^2)).

    References: the transcription of the original (numpy) gave mean #steps 25.18 and mean total 84.02 at I = 0.5,
    11.69 / 70.03 at I = 0; they agree with the exact laws (mean step (1 - I + 0.1) D / 31, E L = 0.75 D (1 + I^2) / 2
    plus an overshoot of about (1 - I + 0.1) D / 32). Tolerance 5% is > 4 s.e. over 2000 paths; getting the eps,
    the I^2, the 0.75, the Beta's parameters or the canvas doubling wrong each moves one of these by >= 15%."""
    _, diag = _levi_canvas(61)
    assert diag == pytest.approx(122 * math.sqrt(2))
    for intensity, n_ref, tot_ref in ((0.5, 25.18, 84.02), (0.0, 11.69, 70.03)):
        g = torch.Generator().manual_seed(99)
        runs = [_levi_steps(diag, intensity, g) for _ in range(2000)]
        n = statistics.mean(map(len, runs))
        tot = statistics.mean(map(sum, runs))
        assert abs(n / n_ref - 1) < 0.05, (intensity, n)
        assert abs(tot / tot_ref - 1) < 0.05, (intensity, tot)
        scale = (1 - intensity + 0.1) * diag
        assert all(0 < s < scale for r in runs for s in r)
        # the loop stops as soon as the sum reaches L: all but the last step sum to less than the maximum L
        assert all(sum(r[:-1]) < 0.75 * diag * (1 + intensity**2) for r in runs)


def test_angle_rule():
    """|angle| ~ Triangular(0, I A, A + 0.1) with A ~ U(0, I pi), sign of the previous one flipped w.p. J ~ Beta(2, 20).

    Exact laws: E|angle| = ((1 + I) I pi / 2 + 0.1) / 3 (0.4260 at I = 0.5), P(flip) = E J = 2 / 22 = 0.0909;
    the transcription gave 0.4255 and 0.0909."""
    g = torch.Generator().manual_seed(5)
    intensity = 0.5
    draws = [_levi_angles(25, intensity, g) for _ in range(2000)]
    assert all(len(a) == 25 for a in draws)
    mean_abs = statistics.mean(abs(x) for a in draws for x in a[1:])
    assert abs(mean_abs / (((1 + intensity) * intensity * math.pi / 2 + 0.1) / 3) - 1) < 0.05, mean_abs
    flips = statistics.mean((x > 0) != (y > 0) for a in draws for x, y in zip(a[:-1], a[1:]))
    assert abs(flips / (2 / 22) - 1) < 0.10, flips
    # bounded by A + 0.1 <= I pi + 0.1
    assert max(abs(x) for a in draws for x in a) <= intensity * math.pi + 0.1


def test_directions_are_absolute_not_cumulated_turns():
    """The original draws each step's *direction* within +-(A + 0.1) of a common (random) rotation; a turning walk
    (cumulated angles) wanders further. So all step directions of a path lie in an arc of width 2 (I pi + 0.1)."""
    intensity = 0.5
    for s in range(100):
        d = directions(_levi_path(61, intensity, torch.Generator().manual_seed(s)))
        ref = d[0]
        rel = [wrap(x - ref) for x in d]
        assert max(rel) - min(rel) <= 2 * (intensity * math.pi + 0.1) + 1e-9, s


def test_orientation_is_uniform():
    """The original rotates every path by U(0, pi) (the angles are symmetric about 0), so the axis of the path's
    chord is uniform on [0, pi): the mean of exp(2i theta) over 200 seeds is ~ 1/sqrt(200) = 0.07 in modulus; without
    the rotation it would be about 0.5 at intensity 0.5."""
    acc = 0j
    for s in range(200):
        path = _levi_path(61, 0.5, torch.Generator().manual_seed(s))
        (x0, y0), (x1, y1) = path[0], path[-1]
        acc += complex(math.cos(2 * math.atan2(y1 - y0, x1 - x0)), math.sin(2 * math.atan2(y1 - y0, x1 - x0)))
    assert abs(acc) / 200 < 0.2


def test_path_is_centred_on_the_supersampled_canvas():
    """Vertices (the cumulative sums, without the origin) have their unweighted mean at the 2K canvas centre."""
    for s in range(10):
        path = _levi_path(61, 0.5, torch.Generator().manual_seed(s))
        mx = sum(p[0] for p in path) / len(path)
        my = sum(p[1] for p in path) / len(path)
        assert mx == pytest.approx(61.0, abs=1e-9) and my == pytest.approx(61.0, abs=1e-9)
    # and the kernels are centred on average (centroid within about a pixel of the centre over many seeds)
    ks = [motion_blur_kernel(61, 0.5, seed=s) for s in range(100)]
    idx = torch.arange(61, dtype=torch.float64)
    mr = statistics.mean(float((k.sum(1) * idx).sum()) for k in ks)
    mc = statistics.mean(float((k.sum(0) * idx).sum()) for k in ks)
    assert abs(mr - 30) < 1.5 and abs(mc - 30) < 1.5


def test_rasterisation_of_a_known_path():
    """A straight 2K-canvas segment: 1-px line, Pillow Gaussian blur radius 1, LANCZOS down to K: a thin bar one
    kernel pixel tall (half the 2x canvas line), centred where the segment is, of about half its length."""
    from replicate.operators.kernels import _levi_render

    k = _levi_render([(31.0, 61.0), (91.0, 61.0)], 61)
    k = k / k.sum()
    rows = k.sum(1)
    cols = k.sum(0)
    assert float(rows[29:32].sum()) > 0.97  # thin: nearly all mass within 3 rows around row 30
    # the transcription's RGB pipeline on this path: rows 29..31 hold 0.0455 / 0.6215 / 0.3255 and sum k^2 is
    # 0.01593 (a 2-px line would give 0.0079 / 0.4921 / 0.4921, a wider blur or a plain resize other profiles)
    assert torch.allclose(rows[29:32], torch.tensor([0.0455, 0.6215, 0.3255], dtype=torch.float64), atol=0.01)
    assert sum_k2(k) == pytest.approx(0.01593, rel=0.01)
    support = torch.nonzero(cols > 1e-3).flatten()
    assert 14 <= int(support.min()) <= 16 and 45 <= int(support.max()) <= 47  # x 31..91 on 2K -> 15.5..45.5 on K
    centre = float((cols * torch.arange(61, dtype=torch.float64)).sum())
    assert abs(centre - 30.5) < 0.5  # pixels 31..91 of the 2K canvas: midpoint 61.5 -> 30.5 on K (half-pixel grid)
