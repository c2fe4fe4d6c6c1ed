"""Verdicts: what the report may say about a published number or a claim, and the rules that decide it.

Statuses (the report's header explains each in two lines):
  reproduced        the paper's own setting was run (its data, its model or a faithful retraining, its metric) and
                    the 95% CI of (ours - published) lies inside +-tolerance; for a claim: it holds at alpha = 0.05
                    after Holm's correction over the paper's claims of that profile
  differs           the paper's own setting was run and the CI lies entirely outside +-tolerance (a claim: the CI
                    of its effect excludes the claimed region)
  inconclusive      neither: the report says what n would decide it; or a precondition of the run failed (a
                    denoiser that does not denoise, a training loss that did not fall, a sampler that diverged)
  analogue holds    the same tests on stand-in data or priors (the mini profile, CPU subsets with another prior):
  analogue fails    evidence about the method, never a reproduction of the paper's number
  settings match    a configuration check (our parameters equal the paper's table); not a reproduction
  produced          a qualitative figure or a table with nothing printed to compare
  not run at this scale / not available here / not implemented yet / profile not run
  dry run           the dryrun profile: the paper profile's code ran end to end at a tiny size on stand-in data and
                    checkpoints; proves the code path, never compared with a published number (`mark_dry_run`)
The unit of evidence is the independent image: samples, tasks or noise levels within an image are averaged first
(`per_unit`). Uncertainty about a published number is over images when a subset or another set was used, and over
seeds / noise realisations when the test set and the model are the paper's own (`Uncertainty`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

ALPHA = 0.05
LEVEL = 0.95

REPRODUCED, DIFFERS, INCONCLUSIVE = "reproduced", "differs", "inconclusive"
ANALOGUE_HOLDS, ANALOGUE_FAILS = "analogue holds", "analogue fails"
SETTINGS_MATCH, PRODUCED = "settings match", "produced"
NOT_RUN_AT_SCALE, NOT_AVAILABLE = "not run at this scale", "not available here"
NOT_IMPLEMENTED, PROFILE_NOT_RUN = "not implemented yet", "profile not run"
DRY_RUN = "dry run"
STATUSES = (REPRODUCED, DIFFERS, INCONCLUSIVE, ANALOGUE_HOLDS, ANALOGUE_FAILS, SETTINGS_MATCH, PRODUCED,
            NOT_RUN_AT_SCALE, NOT_AVAILABLE, NOT_IMPLEMENTED, DRY_RUN, PROFILE_NOT_RUN)
EXPLAINED = {
    REPRODUCED: "the paper's own setting ran and the 95% CI of (ours - published) lies inside the tolerance; a claim "
                "holds at alpha 0.05 after Holm's correction",
    DIFFERS: "the paper's own setting ran and the CI lies entirely outside the tolerance (a claim: the CI excludes "
             "what the paper claims)",
    INCONCLUSIVE: "the data cannot tell (the row says what n would), or the run failed a precondition",
    ANALOGUE_HOLDS: "the same test on stand-in data or priors agrees with the paper: evidence about the method, not "
                    "a reproduction",
    ANALOGUE_FAILS: "the same test on stand-in data or priors disagrees with the paper",
    SETTINGS_MATCH: "our configuration equals the paper's table (a check, not a reproduction)",
    PRODUCED: "a figure or table with nothing printed to compare",
    NOT_RUN_AT_SCALE: "the code exists; this profile runs it at a smaller scale or not at all (stated)",
    NOT_AVAILABLE: "a file it needs cannot be had here (the Assets section says which and how to get it)",
    NOT_IMPLEMENTED: "no code yet (the reason is given)",
    DRY_RUN: "the paper profile's code ran end to end at a tiny size on stand-in data and checkpoints (the dryrun "
             "profile): it proves the code path and measures the cost, and is never compared with a published number",
    PROFILE_NOT_RUN: "the code exists; this profile's results are not in this checkout",
}


@dataclass(frozen=True)
class Tolerance:
    """How far ours may lie from a published number and still reproduce it (None: reported only), and why."""
    value: float | None
    why: str


# How far a measured mean may sit from a printed number. Never wider than the smallest effect the paper claims with
# that metric: a tolerance that swallows the paper's own comparisons would "reproduce" anything.
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("psnr", "own"): Tolerance(0.2, "the authors' checkpoint on the paper's test set: only conventions differ "
                                     "(clipping, 8-bit rounding, mean of per-image PSNR vs PSNR of the mean MSE), "
                                     "~0.1-0.2 dB"),
    ("psnr", "retrained"): Tolerance(0.5, "a retrained or other network: training noise moves PSNR by a few tenths "
                                          "(0.5 dB is 12% in MSE)"),
    ("ssim", "own"): Tolerance(0.01, "window (uniform 7x7 vs Gaussian 11x11) and colour handling, ~0.01"),
    ("ssim", "retrained"): Tolerance(0.02, "as own, plus training noise"),
    ("lpips", "own"): Tolerance(0.005, "Kawar et al.'s LPIPS gaps between Ours and MMSE are 0.005-0.014: a wider "
                                       "tolerance would swallow the paper's own comparison"),
    ("lpips", "retrained"): Tolerance(0.005, "as own: never wider than the effects the paper claims"),
    ("fid", "own"): Tolerance(3.0, "FID at N = 1k is biased and library-dependent (DPS issue #5: 29.3 / 37.0 with "
                                   "torch-fidelity vs 44.05 printed); the paper's gaps between methods are > 5"),
    ("fid", "retrained"): Tolerance(3.0, "as own"),
    ("mse_ratio", "own"): Tolerance(0.05, "Kawar et al.'s ratios sit at 1.96-2.04 around the exact 2"),
    ("mse_ratio", "retrained"): Tolerance(0.05, "as own"),
    ("improvement_pct", "own"): Tolerance(3.0, "a ratio of two 3-decimal LPIPS values: rounding alone is +-3 points"),
    ("improvement_pct", "retrained"): Tolerance(3.0, "as own"),
    ("seconds", "own"): Tolerance(None, "wall-clock depends on the GPU: reported, never compared"),
    ("seconds", "retrained"): Tolerance(None, "wall-clock depends on the GPU: reported, never compared"),
}


def tolerance(metric: str, situation: str = "retrained") -> Tolerance:
    """The tolerance of a metric in a situation ('own': the authors' model on the paper's test set; 'retrained': a
    faithful retraining or another test set)."""
    key = (metric, situation)
    if key not in TOLERANCES:
        raise KeyError(f"no tolerance for {metric!r} in situation {situation!r}; known: {sorted(TOLERANCES)}")
    return TOLERANCES[key]


def per_unit(df: pd.DataFrame, unit: list[str], value: str) -> pd.Series:
    """The mean of `value` within each independent unit (image): samples, tasks or levels inside a unit averaged."""
    return df.groupby(unit, sort=True)[value].mean()


def _t_ci(d: np.ndarray, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(mean, lo, hi, sd) of the t-interval of the mean of d (inf half-width for n < 2)."""
    n = d.size
    mean = float(d.mean())
    if n < 2:
        return mean, -math.inf, math.inf, math.nan
    sd = float(d.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, sd


def _n_needed(sd: float, margin: float, level: float = LEVEL) -> int | None:
    """The smallest n whose t-interval half-width t_{n-1} sd / sqrt(n) is below `margin`, if the spread stays what
    it is; None when no n can decide it (the mean sits on the tolerance's edge)."""
    if not np.isfinite(sd) or margin <= 0:
        return None
    if sd == 0:
        return 2
    n = max(2, math.ceil((sps.norm.ppf(0.5 + level / 2) * sd / margin) ** 2))
    while sps.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n) >= margin:
        n += 1
    return n


@dataclass
class Comparison:
    """One published number against our per-unit values."""
    item: str
    cell: str
    metric: str
    published: float
    measured: float | None
    ci: tuple[float, float] | None      # 95% CI of our mean (not of the difference)
    n: int
    uncertainty: str                     # "images" | "seeds"
    setting: str                         # "paper" | "analogue"
    tolerance: float | None
    verdict: str
    note: str = ""
    source: str = "paper"

    def record(self) -> dict:
        """The comparison as a JSON-ready dict (summary.json)."""
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        return out


def compare(values, published: float, *, item: str, cell: str, metric: str, setting: str,
            situation: str = "retrained", uncertainty: str = "images", source: str = "paper",
            precondition: str = "") -> Comparison:
    """The verdict on one published number from per-unit values (one per image, or one per seed).

    reproduced iff the 95% t-CI of (mean - published) lies inside +-tolerance; differs iff it lies entirely
    outside; else inconclusive, with the n that would decide it. Stand-in runs give analogue verdicts; a failed
    precondition gives inconclusive whatever the numbers.
    """
    tol = tolerance(metric, situation).value
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Comparison(item, cell, metric, published, None, None, 0, uncertainty, setting, tol, NOT_AVAILABLE,
                          "no value", source)
    mean, lo, hi, sd = _t_ci(v - published)
    ci = (lo + published, hi + published) if np.isfinite(lo) else None
    base = dict(item=item, cell=cell, metric=metric, published=published, measured=mean + published, ci=ci,
                n=int(v.size), uncertainty=uncertainty, setting=setting, tolerance=tol, source=source)
    if tol is None:
        return Comparison(**base, verdict="reported only", note="not compared (see the tolerance table)")
    if precondition:
        return Comparison(**base, verdict=INCONCLUSIVE, note=f"a precondition failed: {precondition}")
    inside, outside = (-tol <= lo and hi <= tol), (hi < -tol or lo > tol)
    if inside or outside:
        holds = inside
        verdict = (REPRODUCED if holds else DIFFERS) if setting == "paper" else \
            (ANALOGUE_HOLDS if holds else ANALOGUE_FAILS)
        return Comparison(**base, verdict=verdict)
    margin = tol - abs(mean) if abs(mean) < tol else abs(mean) - tol
    need = _n_needed(sd, margin)
    why = f"CI straddles the tolerance; about {need} {uncertainty} would decide it" if need else \
        "CI straddles the tolerance; the mean sits on its edge, no n decides it" if np.isfinite(sd) else \
        f"one {uncertainty[:-1]} gives no interval"
    return Comparison(**base, verdict=INCONCLUSIVE, note=why)


def combine(statuses: list[str]) -> str:
    """One status for a catalogue item from those of its claims or cells: the most critical one, with the mix."""
    from collections import Counter

    base = [s.split(":")[0] for s in statuses]
    if not base:
        return NOT_IMPLEMENTED
    counts = Counter(base)
    for worst in (DIFFERS, ANALOGUE_FAILS, INCONCLUSIVE):
        if worst in counts:
            return worst if len(counts) == 1 else f"{worst} ({', '.join(f'{n} {k}' for k, n in counts.items())})"
    return base[0] if len(counts) == 1 else ", ".join(f"{n} {k}" for k, n in counts.items())


# ---------------------------------------------------------------------------------------------- claims
@dataclass
class Claim:
    """A claim tested on per-unit values. kind: superiority (a > b + min_effect), equivalence (|a - b| < margin),
    below / above (a vs a fixed threshold), or check (an exact property, decided without statistics)."""
    id: str
    text: str
    kind: str
    estimate: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    n: int
    detail: str
    setting: str = "analogue"
    catalog: list[str] = field(default_factory=list)
    precondition: str = ""
    holds_exactly: bool | None = None        # kind "check"
    bound: float = 0.0                       # min_effect (superiority), threshold (below), margin (equivalence)
    p_adjusted: float | None = None
    status: str = ""

    def record(self) -> dict:
        """The claim as a JSON-ready dict (summary.json); non-finite numbers become null."""
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def _units(a, b=None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).ravel()
    if b is None:
        return a
    b = np.asarray(b, dtype=np.float64).ravel() if np.ndim(b) else np.full(a.shape, float(b))
    if a.shape != b.shape:
        raise ValueError(f"paired values of different lengths ({a.size} vs {b.size}): aggregate per unit first")
    return a - b


def superiority(cid: str, text: str, a, b, *, min_effect: float = 0.0, **kw) -> Claim:
    """H1: mean(a - b) > min_effect on paired per-unit values (b may be a scalar); one-sided t-test."""
    d = _units(a, b)
    mean, lo, hi, sd = _t_ci(d)
    if d.size < 2:
        p = math.nan
    elif sd == 0:
        p = 0.0 if mean > min_effect else 1.0
    else:
        p = float(sps.t.sf((mean - min_effect) / (sd / math.sqrt(d.size)), d.size - 1))
    detail = (f"paired one-sided t-test of the per-unit difference against {min_effect:g}"
              + (" (the paper's stated effect)" if min_effect else ""))
    return Claim(cid, text, "superiority", mean, (lo, hi), p, int(d.size), detail, bound=min_effect, **kw)


def superiority_unpaired(cid: str, text: str, a, b, *, min_effect: float = 0.0, **kw) -> Claim:
    """H1: mean(a) - mean(b) > min_effect for two independent groups of units (Welch's one-sided t-test)."""
    a, b = _units(a), _units(b)
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return Claim(cid, text, "superiority", diff, None, math.nan, int(a.size + b.size),
                     "Welch t-test: fewer than 2 units in a group", bound=min_effect, **kw)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        p, lo, hi = (0.0 if diff > min_effect else 1.0), diff, diff
    else:
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
        p = float(sps.t.sf((diff - min_effect) / se, df))
        half = float(sps.t.ppf(0.5 + LEVEL / 2, df)) * se
        lo, hi = diff - half, diff + half
    return Claim(cid, text, "superiority", diff, (lo, hi), p, int(a.size + b.size),
                 f"Welch one-sided t-test of the difference of means against {min_effect:g} "
                 f"({a.size} vs {b.size} units)", bound=min_effect, **kw)


def trend(cid: str, text: str, x, y, *, direction: str = "decreasing", **kw) -> Claim:
    """H1: y falls (or rises) with x: Spearman's rank correlation, one-sided; estimate = rho, each (x, y) a unit."""
    x, y = _units(x), _units(y)
    rho, p2 = sps.spearmanr(x, y) if x.size >= 3 else (math.nan, math.nan)
    want = -1 if direction == "decreasing" else 1
    p = math.nan if not math.isfinite(p2) else (p2 / 2 if rho * want > 0 else 1 - p2 / 2)
    return Claim(cid, text, "trend", float(rho), None, p, int(x.size),
                 f"Spearman rank correlation, one-sided ({direction})", bound=float(want), **kw)


def equivalence(cid: str, text: str, a, b, *, margin: float, **kw) -> Claim:
    """TOST: H1 |mean(a - b)| < margin (the margin the paper's wording implies); p = max of the one-sided p's."""
    if margin <= 0:
        raise ValueError("equivalence: margin must be > 0")
    d = _units(a, b)
    mean, lo, hi, sd = _t_ci(d)
    if d.size < 2:
        p = math.nan
    elif sd == 0:
        p = 0.0 if abs(mean) < margin else 1.0
    else:
        se, df = sd / math.sqrt(d.size), d.size - 1
        p = float(max(sps.t.sf((mean + margin) / se, df), sps.t.cdf((mean - margin) / se, df)))
    return Claim(cid, text, "equivalence", mean, (lo, hi), p, int(d.size),
                 f"TOST of the per-unit difference with margin +-{margin:g}", bound=margin, **kw)


def below(cid: str, text: str, values, threshold: float, **kw) -> Claim:
    """H1: mean(values) < threshold (one-sided t-test); the estimate is the mean."""
    v = _units(values)
    mean, lo, hi, sd = _t_ci(v)
    p = math.nan if v.size < 2 else ((0.0 if mean < threshold else 1.0) if sd == 0 else
                                     float(sps.t.cdf((mean - threshold) / (sd / math.sqrt(v.size)), v.size - 1)))
    return Claim(cid, text, "below", mean, (lo, hi), p, int(v.size), f"one-sided t-test of the mean < {threshold:g}",
                 bound=threshold, **kw)


def all_of(cid: str, text: str, parts: list[Claim], **kw) -> Claim:
    """A claim made on every one of several conditions (every ratio, every task): it holds only if each part holds
    (intersection-union test: p = the largest part's p, no correction needed among the parts); the estimate and CI
    are those of the weakest part."""
    if not parts:
        return Claim(cid, text, "superiority", None, None, math.nan, 0, "no condition to test", **kw)
    worst = max(parts, key=lambda c: c.p_value if c.p_value is not None and math.isfinite(c.p_value) else 2.0)
    p = max((c.p_value if c.p_value is not None else math.nan) for c in parts)
    detail = (f"every condition must hold (intersection-union, p = the largest); weakest: {worst.id}; "
              + "; ".join(f"{c.id}: {c.estimate:+.3g} (p={c.p_value:.2g})" for c in parts
                          if c.estimate is not None and c.p_value is not None))
    return Claim(cid, text, worst.kind, worst.estimate, worst.ci, p, min(c.n for c in parts), detail,
                 bound=worst.bound, **kw)


def check(cid: str, text: str, holds: bool, estimate: float | None, n: int, detail: str, **kw) -> Claim:
    """An exact property decided without statistics (e.g. homogeneity to float precision)."""
    return Claim(cid, text, "check", estimate, None, None, n, detail, holds_exactly=bool(holds), **kw)


def demote_to_analogue(comparisons: list[Comparison], claims: list[Claim], why: str) -> None:
    """Runs that are not the paper's setting after all (e.g. a user's prior in place of the paper's): every
    paper-setting comparison and claim becomes an analogue, with `why` in its note (call before `holm`)."""
    swap = {REPRODUCED: ANALOGUE_HOLDS, DIFFERS: ANALOGUE_FAILS}
    for c in comparisons:
        if c.setting == "paper":
            c.setting, c.verdict = "analogue", swap.get(c.verdict, c.verdict)
            c.note = f"{why}; {c.note}" if c.note else why
    for c in claims:
        if c.setting == "paper":
            c.setting = "analogue"
            c.detail = f"{why}; {c.detail}" if c.detail else why


def holm(claims: list[Claim], alpha: float = ALPHA) -> list[Claim]:
    """Holm's step-down adjustment over the claims with a p-value (one paper, one profile), then each status."""
    tested = sorted((c for c in claims if c.p_value is not None and math.isfinite(c.p_value)),
                    key=lambda c: c.p_value)
    m, running = len(tested), 0.0
    for i, c in enumerate(tested):
        running = max(running, min(1.0, (m - i) * c.p_value))
        c.p_adjusted = running
    for c in claims:
        c.status = _claim_status(c, alpha)
    return claims


def _claim_status(c: Claim, alpha: float) -> str:
    if c.setting == DRY_RUN:
        return DRY_RUN
    if c.precondition:
        return f"{INCONCLUSIVE}: a precondition failed"
    paper = c.setting == "paper"
    yes, no = (REPRODUCED, DIFFERS) if paper else (ANALOGUE_HOLDS, ANALOGUE_FAILS)
    if c.kind == "check":
        return yes if c.holds_exactly else no
    if c.p_value is None or not math.isfinite(c.p_value):
        return f"{INCONCLUSIVE}: {c.n} unit(s) give no test"
    if c.p_adjusted is not None and c.p_adjusted < alpha:
        return yes
    lo, hi = c.ci if c.ci else (-math.inf, math.inf)
    # refuted: the 95% CI excludes what the paper claims
    refuted = {"superiority": hi < c.bound, "below": lo > c.bound,
               "equivalence": lo > c.bound or hi < -c.bound,
               "trend": c.p_value > 1 - alpha,   # the opposite trend is significant (one-sided)
               }.get(c.kind, False)
    return no if refuted else f"{INCONCLUSIVE}: adjusted p = {c.p_adjusted:.2g} with n = {c.n}"


# ---------------------------------------------------------------------------------------------- the dry run
#: item statuses a dry run leaves as they are: nothing to run (no code yet, a configuration check), a paper-profile
#: gap (not run at this scale), and "not available here", which in a dry run is a failure to be seen, never hidden
KEPT_IN_DRY_RUN = (NOT_IMPLEMENTED, SETTINGS_MATCH, NOT_RUN_AT_SCALE, NOT_AVAILABLE)
DRY_RUN_WHY = ("dry run: the paper profile's code at a tiny size on stand-in data and checkpoints (the dryrun "
               "profile); never compared with a published number")


def mark_dry_run(items: dict, claims: list[Claim], comparisons: list[Comparison], why: str = DRY_RUN_WHY) -> str:
    """The dryrun profile's rule, applied where a paper's summary is written (report.common.write_summary), before or
    after `holm`: every comparison and claim becomes "dry run" (its measured value kept, no verdict); every item
    becomes "dry run" unless its status is one of KEPT_IN_DRY_RUN, and its note keeps what the run gave. Returns the
    summary's setting ("dry run")."""
    for c in comparisons:
        c.setting, c.verdict = DRY_RUN, DRY_RUN
        c.note = f"{why}; {c.note}" if c.note else why
    for c in claims:
        c.setting, c.status = DRY_RUN, DRY_RUN
        c.detail = f"{why}; {c.detail}" if c.detail else why
    for it in items.values():
        status = str(it.get("status", ""))
        if status.split(":")[0].split(" (")[0] in KEPT_IN_DRY_RUN:
            continue
        it["status"] = DRY_RUN
        it["note"] = "; ".join(x for x in (f"the run gave: {status}" if status else "", it.get("note", "")) if x)
    return DRY_RUN


def dry_run_failures(summary: dict) -> list[str]:
    """What a dry run's summary.json says did not run: items "not available here" (the dry run must have every file
    it needs, real or stand-in). Empty when the dry run covered the paper profile."""
    return [f"{summary.get('paper')}: {iid}: {it.get('status')} ({it.get('note', '')[:200]})"
            for iid, it in summary.get("items", {}).items()
            if str(it.get("status", "")).startswith(NOT_AVAILABLE)]
