import numpy as np
import pandas as pd
import pytest

from replicate.report import stats


def test_bootstrap_ci_coverage_on_normal_data():
    rng = np.random.default_rng(123)
    true_mean, covered, repeats = 2.0, 0, 200
    for i in range(repeats):
        x = rng.normal(true_mean, 1.0, size=30)
        est, lo, hi = stats.bootstrap_ci(x, n_boot=500, seed=i)
        assert lo <= est <= hi
        covered += lo <= true_mean <= hi
    # percentile bootstrap at n = 30 under-covers slightly; 95% nominal should land in 90-98%
    assert 0.90 * repeats <= covered <= 0.98 * repeats


def test_bootstrap_ci_is_deterministic_and_handles_edge_cases():
    x = np.arange(10.0)
    assert stats.bootstrap_ci(x, seed=3) == stats.bootstrap_ci(x, seed=3)
    assert stats.bootstrap_ci([4.0]) == (4.0, 4.0, 4.0)
    est, lo, hi = stats.bootstrap_ci(x, stat=np.median)
    assert est == 4.5 and lo < est < hi
    with pytest.raises(ValueError, match="NaN"):
        stats.bootstrap_ci([1.0, np.nan])


def test_aggregate():
    df = pd.DataFrame({"method": ["a"] * 5 + ["b"] * 3, "sigma": [0.1] * 8,
                       "psnr": [1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 10.0, 10.0]})
    out = stats.aggregate(df, ["method", "sigma"], "psnr")
    assert list(out.columns) == ["method", "sigma", "mean", "std", "ci_lo", "ci_hi", "n"]
    a = out.iloc[0]
    assert a["method"] == "a" and a["mean"] == 3.0 and a["n"] == 5 and a["ci_lo"] < 3.0 < a["ci_hi"]
    assert out.iloc[1][["mean", "ci_lo", "ci_hi"]].tolist() == [10.0, 10.0, 10.0]
    pd.testing.assert_frame_equal(out, stats.aggregate(df, ["method", "sigma"], "psnr"))
