"""Statistics for the report: bootstrap intervals, paired tests, claim checks, published-number verdicts.

Everything is deterministic (fixed seeds), so re-running the report gives byte-identical tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats as sps

ALPHA = 0.05

# Verdicts of a comparison with a published number. compare_to_published returns the first three; callers
# use the last two for cells they did not run at the paper's scale or cannot compute here (e.g. FID without
# the Inception weights).
REPRODUCED = "reproduced"
DIFFERS = "differs"
REPORTED_ONLY = "reported only"
NOT_RUN_AT_SCALE = "not run at this scale"
NOT_AVAILABLE = "not available here"
VERDICTS = (REPRODUCED, DIFFERS, REPORTED_ONLY, NOT_RUN_AT_SCALE, NOT_AVAILABLE)

# How far a measured mean may sit from a printed number and still count as reproducing it (absolute units).
DEFAULT_TOLERANCE: dict[str, float | None] = {
    # PSNR: test subsets, seeds and conventions (mean of per-image PSNR vs PSNR of the mean MSE, clipping,
    # Xie's max(gt) peak) move PSNR by a few tenths of a dB; 0.5 dB is ~12% in MSE.
    "psnr": 0.5,
    # SSIM: window (uniform 7x7 vs Gaussian 11x11) and colour handling change SSIM by ~0.01.
    "ssim": 0.02,
    # LPIPS: printed with 3 decimals; backbone/resize/saving (DPS saves min-max normalised PNGs) shift it.
    # NB: larger than Kawar's Ours-vs-MMSE gaps (0.005-0.014): such claims are checked with paired tests.
    "lpips": 0.02,
    # FID: biased at N = 1k and library-dependent (DPS issue #5: 29.3 / 37.0 with torch-fidelity vs 44.05
    # printed), so only a loose band is meaningful.
    "fid": 5.0,
    # MSE ratio (Kawar Table 1): ratio of two noisy means; mean-of-MSE vs mean-of-PSNR alone moves it by
    # ~0.01-0.02 (NOTES.md), sampling noise on a few hundred images by more.
    "mse_ratio": 0.15,
    # LPIPS improvement in % (Kawar Table 4): a ratio of two 3-decimal numbers; rounding alone is +-3 points.
    "improvement_pct": 5.0,
    # Wall-clock seconds depend on the GPU (DPS used an RTX 2080Ti): reported, never compared.
    "seconds": None,
}


# --------------------------------------------------------------------------------------------------
# intervals and tests
# --------------------------------------------------------------------------------------------------
def _as_1d(values, name: str = "values") -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError(f"{name}: empty")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: contains NaN or inf ({int((~np.isfinite(v)).sum())} of {v.size}); "
                         "drop or explain failed images before computing statistics")
    return v


def bootstrap_ci(values, *, stat: Callable = np.mean, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
    """(estimate, lo, hi): stat(values) and the percentile-bootstrap interval at `level`."""
    v = _as_1d(values)
    est = float(stat(v))
    if v.size == 1:
        return est, est, est
    rng = np.random.default_rng(seed)
    samples = v[rng.integers(0, v.size, size=(n_boot, v.size))]
    try:
        boots = np.asarray(stat(samples, axis=1), dtype=np.float64)
    except TypeError:  # a stat without an axis argument
        boots = np.array([stat(s) for s in samples], dtype=np.float64)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(boots, [tail, 100 - tail])
    return est, float(lo), float(hi)


def _t_one_sample(d: np.ndarray, alternative: str, null: float = 0.0) -> float:
    """One-sample t-test p-value for mean(d) vs null; exact answer when all d are equal (scipy warns/NaNs)."""
    if d.size < 2 or np.ptp(d) == 0:
        m = float(d.mean()) - null
        if m == 0:
            return 1.0
        if d.size < 2:
            return float("nan")
        in_h1 = {"greater": m > 0, "less": m < 0, "two-sided": True}[alternative]
        return 0.0 if in_h1 else 1.0
    return float(sps.ttest_1samp(d, null, alternative=alternative).pvalue)


def _wilcoxon(d: np.ndarray, alternative: str) -> float:
    if np.all(d == 0):
        return 1.0
    return float(sps.wilcoxon(d, alternative=alternative).pvalue)


def paired_test(a, b, *, alternative: str = "greater", level: float = 0.95) -> dict:
    """Paired comparison of a and b (same images). H1 for "greater": mean(a - b) > 0.

    Returns mean_diff, a two-sided t interval (ci_lo, ci_hi) at `level`, effect_size (Cohen's d_z = mean/sd of
    the differences), both p-values (p_t, p_wilcoxon) and the primary p_value: Wilcoxon signed-rank when
    n >= 6 (no normality assumption), else the t-test (Wilcoxon cannot reach p < 0.05 with n < 6).
    `b` may be a scalar (one-sample test against it).
    """
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}")
    a = _as_1d(a, "a")
    b = np.full(a.shape, float(b)) if np.ndim(b) == 0 else _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired_test: a and b have different lengths ({a.size} vs {b.size})")
    d = a - b
    n = d.size
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    if n > 1 and sd > 0:
        half = sps.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
        effect = mean / sd
    else:
        half = 0.0 if n > 1 else float("nan")
        effect = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    p_t = _t_one_sample(d, alternative)
    p_w = _wilcoxon(d, alternative)
    primary = "wilcoxon" if n >= 6 else "t"
    return dict(mean_diff=mean, ci_lo=mean - half, ci_hi=mean + half, effect_size=effect,
                p_value=p_w if primary == "wilcoxon" else p_t, p_t=p_t, p_wilcoxon=p_w, n=n, test=primary)


def aggregate(df: pd.DataFrame, by: list[str], value: str, *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per group of `by`: mean, std, bootstrap 95% CI of the mean (ci_lo, ci_hi) and n, sorted by `by`."""
    rows = []
    for key, g in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        est, lo, hi = bootstrap_ci(g[value].to_numpy(), n_boot=n_boot, seed=seed)
        std = float(g[value].std(ddof=1)) if len(g) > 1 else float("nan")
        rows.append(dict(zip(by, key), mean=est, std=std, ci_lo=lo, ci_hi=hi, n=len(g)))
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "ci_lo", "ci_hi", "n"])


# --------------------------------------------------------------------------------------------------
# published numbers
# --------------------------------------------------------------------------------------------------
def compare_to_published(measured_mean, ci, published: float, *, tolerance: float | str | None,
                         direction: str) -> str:
    """Verdict for one cell.

    "reproduced" when |measured - published| <= tolerance, or when `published` lies inside the CI widened by
    the tolerance on both sides (a small measured set has a wide CI); otherwise "differs". Being much
    *better* than the paper also "differs": a reproduction should land on the number, not beat it.
    tolerance: absolute, or a metric name looked up in DEFAULT_TOLERANCE; None -> "reported only".
    measured_mean None/NaN -> "not available here". `direction` ("higher_better"/"lower_better") is
    validated here and used by `better_or_worse` to say which side a difference is on.
    """
    if direction not in ("higher_better", "lower_better"):
        raise ValueError(f"direction must be 'higher_better' or 'lower_better', got {direction!r}")
    if isinstance(tolerance, str):
        if tolerance not in DEFAULT_TOLERANCE:
            raise KeyError(f"no default tolerance for metric {tolerance!r}; known: {sorted(DEFAULT_TOLERANCE)}")
        tolerance = DEFAULT_TOLERANCE[tolerance]
    if tolerance is None:
        return REPORTED_ONLY
    if measured_mean is None or not np.isfinite(measured_mean):
        return NOT_AVAILABLE
    if abs(float(measured_mean) - float(published)) <= tolerance:
        return REPRODUCED
    if ci is not None:
        lo, hi = ci
        if lo - tolerance <= published <= hi + tolerance:
            return REPRODUCED
    return DIFFERS


def better_or_worse(measured: float, published: float, direction: str) -> str:
    """"better", "worse" or "equal": the side of the published number the measurement is on."""
    if measured == published:
        return "equal"
    higher = measured > published
    return "better" if higher == (direction == "higher_better") else "worse"


# --------------------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    paper: str
    claim_id: str
    text: str
    kind: str  # "greater" | "below" | "equal" | free text for claims checked by hand


@dataclass
class ClaimResult:
    claim: Claim | None
    holds: bool
    p_value: float
    effect_size: float
    estimate: float
    ci: tuple[float, float]
    n: int
    detail: str = field(default="")


def check_claim_greater(a, b, *, claim: Claim | None = None, alpha: float = ALPHA) -> ClaimResult:
    """H1: mean(a - b) > 0 on paired values (b may be a scalar). Holds when the primary p < alpha."""
    r = paired_test(a, b, alternative="greater")
    return ClaimResult(claim, bool(r["p_value"] < alpha), r["p_value"], r["effect_size"], r["mean_diff"],
                       (r["ci_lo"], r["ci_hi"]), r["n"],
                       f"paired a-b, primary {r['test']}; p_t={r['p_t']:.3g}, p_wilcoxon={r['p_wilcoxon']:.3g}, "
                       f"95% t-CI of mean difference")


def check_claim_below(values, threshold: float, *, claim: Claim | None = None, alpha: float = ALPHA) -> ClaimResult:
    """One-sample, H1: mean(values) < threshold (e.g. Kawar's "MSE ratio below 2"). Estimate = mean."""
    r = paired_test(values, threshold, alternative="less")
    return ClaimResult(claim, bool(r["p_value"] < alpha), r["p_value"], r["effect_size"],
                       r["mean_diff"] + threshold, (r["ci_lo"] + threshold, r["ci_hi"] + threshold), r["n"],
                       f"one-sample vs {threshold:g}, primary {r['test']}; p_t={r['p_t']:.3g}, "
                       f"p_wilcoxon={r['p_wilcoxon']:.3g}, 95% t-CI of the mean")


def check_claim_equal(a, b, margin: float, *, claim: Claim | None = None, alpha: float = ALPHA) -> ClaimResult:
    """TOST equivalence on paired differences: H0 |mean(a - b)| >= margin, H1 |mean(a - b)| < margin.

    p = max of the two one-sided t-test p-values; holds when p < alpha, i.e. when the (1 - 2 alpha) t interval
    of the mean difference (reported as ci) lies inside (-margin, margin). b may be a scalar.
    """
    if margin <= 0:
        raise ValueError("check_claim_equal: margin must be > 0")
    a = _as_1d(a, "a")
    b = np.full(a.shape, float(b)) if np.ndim(b) == 0 else _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"check_claim_equal: a and b have different lengths ({a.size} vs {b.size})")
    d = a - b
    n = d.size
    if n < 2:
        raise ValueError("check_claim_equal: need at least 2 pairs")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:
        p = 0.0 if abs(mean) < margin else 1.0
        ci, effect = (mean, mean), (0.0 if mean == 0 else math.copysign(math.inf, mean))
    else:
        se = sd / math.sqrt(n)
        p_low = sps.t.sf((mean + margin) / se, n - 1)   # H0: mean <= -margin
        p_high = sps.t.cdf((mean - margin) / se, n - 1)  # H0: mean >= +margin
        p = float(max(p_low, p_high))
        half = sps.t.ppf(1 - alpha, n - 1) * se
        ci, effect = (mean - half, mean + half), mean / sd
    return ClaimResult(claim, bool(p < alpha), p, effect, mean, ci, n,
                       f"TOST with margin {margin:g}; ci is the {100 * (1 - 2 * alpha):.0f}% t-CI of the mean difference")
