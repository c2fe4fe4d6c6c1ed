"""Statistics for the report's tables: bootstrap intervals and per-group aggregates. The verdict rules (published
numbers, claims, tolerances) are in replicate/report/verdicts.py.

Everything is deterministic (fixed seeds), so re-running the report gives byte-identical tables.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd


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


def aggregate(df: pd.DataFrame, by: list[str], value: str, *, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per group of `by`: mean, std, bootstrap 95% CI of the mean (ci_lo, ci_hi) and n, sorted by `by`."""
    rows = []
    for key, g in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        est, lo, hi = bootstrap_ci(g[value].to_numpy(), n_boot=n_boot, seed=seed)
        std = float(g[value].std(ddof=1)) if len(g) > 1 else float("nan")
        rows.append(dict(zip(by, key), mean=est, std=std, ci_lo=lo, ci_hi=hi, n=len(g)))
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "ci_lo", "ci_hi", "n"])
