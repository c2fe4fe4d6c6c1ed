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


def test_paired_test_detects_shift_and_not_null():
    rng = np.random.default_rng(0)
    base = rng.normal(size=40)
    r = stats.paired_test(base + 0.8 + 0.3 * rng.normal(size=40), base, alternative="greater")
    assert r["p_value"] < 0.01 and r["p_t"] < 0.01 and r["p_wilcoxon"] < 0.01
    assert r["test"] == "wilcoxon" and r["n"] == 40 and r["effect_size"] > 1
    assert r["ci_lo"] < r["mean_diff"] < r["ci_hi"] and r["ci_lo"] > 0
    # the wrong direction is not significant
    assert stats.paired_test(base + 0.8 + 0.3 * rng.normal(size=40), base, alternative="less")["p_value"] > 0.5
    # null: significant at 5% in roughly 5% of seeds, so "p > 0.05 on most seeds"
    rejections = sum(stats.paired_test(g.normal(size=30), g.normal(size=30), alternative="two-sided")["p_value"] < 0.05
                     for g in (np.random.default_rng(s) for s in range(100)))
    assert rejections <= 12


def test_paired_test_small_n_uses_t_and_validates():
    r = stats.paired_test([1.0, 2.0, 3.1], [0.0, 1.0, 2.0])
    assert r["test"] == "t" and r["p_value"] == r["p_t"]
    with pytest.raises(ValueError, match="different lengths"):
        stats.paired_test([1.0, 2.0], [1.0])
    assert stats.paired_test([1.0, 2.0, 3.0], 1.0)["mean_diff"] == 1.0  # a scalar b is a one-sample test
    with pytest.raises(ValueError, match="alternative"):
        stats.paired_test([1.0, 2.0], [1.0, 3.0], alternative="bigger")
    assert stats.paired_test([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])["p_value"] == 1.0


def test_tost_equivalence():
    rng = np.random.default_rng(1)
    a = rng.normal(size=60)
    same = stats.check_claim_equal(a + 0.01 * rng.normal(size=60), a, margin=0.05)
    assert same.holds and same.p_value < 0.05 and abs(same.estimate) < 0.05
    assert -0.05 < same.ci[0] < same.ci[1] < 0.05
    shifted = stats.check_claim_equal(a + 0.2 + 0.01 * rng.normal(size=60), a, margin=0.05)
    assert not shifted.holds and shifted.p_value > 0.5
    # too noisy to tell: no equivalence even though the true difference is 0
    noisy = stats.check_claim_equal(a + rng.normal(size=60), a, margin=0.05)
    assert not noisy.holds


def test_claim_greater_and_below():
    claim = stats.Claim("kawar2021", "mse_ratio_below_2", "MSE ratio below 2", "below")
    rng = np.random.default_rng(2)
    ratios = 1.8 + 0.05 * rng.normal(size=20)
    r = stats.check_claim_below(ratios, 2.0, claim=claim)
    assert r.holds and r.claim is claim and r.n == 20
    assert r.estimate == pytest.approx(ratios.mean()) and r.ci[0] < r.estimate < r.ci[1] < 2.0
    assert not stats.check_claim_below(2.1 + 0.05 * rng.normal(size=20), 2.0).holds
    g = stats.check_claim_greater(rng.normal(1.0, 0.1, 10), rng.normal(0.0, 0.1, 10))
    assert g.holds and g.effect_size > 0
    assert not stats.check_claim_greater(rng.normal(0.0, 0.1, 10), rng.normal(1.0, 0.1, 10)).holds


def test_compare_to_published_verdicts():
    c = stats.compare_to_published
    assert c(29.1, None, 29.39, tolerance="psnr", direction="higher_better") == stats.REPRODUCED
    assert c(28.5, None, 29.39, tolerance="psnr", direction="higher_better") == stats.DIFFERS
    # outside the tolerance, but the published value is inside the CI widened by the tolerance
    assert c(28.5, (28.0, 28.95), 29.39, tolerance=0.5, direction="higher_better") == stats.REPRODUCED
    assert c(28.5, (28.3, 28.7), 29.39, tolerance=0.5, direction="higher_better") == stats.DIFFERS
    # much better than the paper is still not a reproduction
    assert c(31.0, (30.8, 31.2), 29.39, tolerance=0.5, direction="higher_better") == stats.DIFFERS
    assert c(0.030, None, 0.027, tolerance="lpips", direction="lower_better") == stats.REPRODUCED
    assert c(50.0, None, 39.35, tolerance="fid", direction="lower_better") == stats.DIFFERS
    assert c(3.0, None, 78.52, tolerance="seconds", direction="lower_better") == stats.REPORTED_ONLY
    assert c(float("nan"), None, 1.0, tolerance="mse_ratio", direction="lower_better") == stats.NOT_AVAILABLE
    with pytest.raises(ValueError):
        c(1.0, None, 1.0, tolerance=0.1, direction="up")
    assert stats.better_or_worse(28.0, 29.0, "higher_better") == "worse"
    assert stats.better_or_worse(0.02, 0.03, "lower_better") == "better"
    assert set(stats.DEFAULT_TOLERANCE) == {"psnr", "ssim", "lpips", "fid", "mse_ratio", "improvement_pct", "seconds"}


def test_aggregate():
    df = pd.DataFrame({"method": ["a"] * 5 + ["b"] * 3, "sigma": [0.1] * 8,
                       "psnr": [1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 10.0, 10.0]})
    out = stats.aggregate(df, ["method", "sigma"], "psnr")
    assert list(out.columns) == ["method", "sigma", "mean", "std", "ci_lo", "ci_hi", "n"]
    a = out.iloc[0]
    assert a["method"] == "a" and a["mean"] == 3.0 and a["n"] == 5 and a["ci_lo"] < 3.0 < a["ci_hi"]
    assert out.iloc[1][["mean", "ci_lo", "ci_hi"]].tolist() == [10.0, 10.0, 10.0]
    pd.testing.assert_frame_equal(out, stats.aggregate(df, ["method", "sigma"], "psnr"))
