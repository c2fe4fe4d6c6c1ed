"""The verdict rules, by simulation (seeded): what a skeptical reviewer would require of "reproduced"."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replicate.report import verdicts as V

SD, TOL = 2.0, 0.5      # image-to-image SD of PSNR (dB) and the PSNR tolerance for a retrained network


def _rate(gap: float, n: int, trials: int = 2000, setting: str = "paper", seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for _ in range(trials):
        values = 30.0 + gap + SD * rng.standard_normal(n)
        v = V.compare(values, 30.0, item="t", cell="c", metric="psnr", setting=setting).verdict
        counts[v] = counts.get(v, 0) + 1
    return {k: c / trials for k, c in counts.items()}


@pytest.mark.parametrize("n", [4, 16, 68])
def test_a_gap_of_one_and_a_half_tolerances_is_almost_never_reproduced(n):
    assert _rate(1.5 * TOL, n).get(V.REPRODUCED, 0.0) <= 0.05


def test_a_true_match_is_reproduced_when_the_data_can_tell():
    # with image SD 0.5 dB, 68 images pin the mean to +-0.12 dB: a zero gap must come out reproduced
    rng = np.random.default_rng(1)
    hits = sum(V.compare(30 + 0.5 * rng.standard_normal(68), 30.0, item="t", cell="c", metric="psnr",
                         setting="paper").verdict == V.REPRODUCED for _ in range(500))
    assert hits / 500 > 0.95


def test_a_large_gap_differs_and_small_data_is_inconclusive_with_the_n_that_would_decide():
    assert _rate(3.0, 68)[V.DIFFERS] > 0.95
    few = V.compare([30.1, 30.3, 29.9, 30.2], 30.44, item="t", cell="c", metric="psnr", setting="paper")
    assert few.verdict == V.INCONCLUSIVE and "would decide it" in few.note


def test_stand_in_runs_are_analogues_never_reproductions():
    rates = _rate(0.0, 68, setting="analogue", trials=200)
    assert V.REPRODUCED not in rates and V.DIFFERS not in rates


def test_a_failed_precondition_is_inconclusive_whatever_the_numbers():
    c = V.compare([30.0] * 20, 30.0, item="t", cell="c", metric="psnr", setting="paper",
                  precondition="the denoiser gains 0.2 dB at its training noise level")
    assert c.verdict == V.INCONCLUSIVE and "precondition" in c.note
    claim = V.superiority("x", "A beats B", [5.0, 6.0, 7.0], [0.0, 0.0, 0.0], setting="paper",
                          precondition="sampler diverged on 3/4 images")
    assert V.holm([claim])[0].status.startswith(V.INCONCLUSIVE)


def test_claims_keep_their_size_under_the_null_with_clustered_data():
    # 2 images x 4 samples; no method effect on average, but each image has its own (method x image) difference that
    # its 4 samples share: counting the samples as units rejects far more than 5% of the time; aggregated per image
    # first (the unit of evidence), the test keeps its size
    rng = np.random.default_rng(2)
    proper, naive, trials = 0, 0, 2000
    for _ in range(trials):
        image_diff = rng.standard_normal(2)
        df = pd.DataFrame([{"image": i, "sample": s, "d": image_diff[i] + 0.3 * rng.standard_normal()}
                           for i in range(2) for s in range(4)])
        unit = V.per_unit(df, ["image"], "d")
        proper += V.holm([V.superiority("x", "a > b", unit.to_numpy(), 0.0)])[0].status == V.ANALOGUE_HOLDS
        naive += V.holm([V.superiority("x", "a > b", df.d.to_numpy(), 0.0)])[0].status == V.ANALOGUE_HOLDS
    assert proper / trials <= 0.06
    assert naive / trials > 0.15   # what pseudo-replication does (the reason for per_unit)


def test_equivalence_needs_the_whole_interval_inside_the_margin():
    rng = np.random.default_rng(3)
    near = V.holm([V.equivalence("e", "a ~ b", 0.1 + 0.2 * rng.standard_normal(30), 0.0, margin=0.5,
                                 setting="paper")])[0]
    far = V.holm([V.equivalence("e", "a ~ b", 1.5 + 0.2 * rng.standard_normal(30), 0.0, margin=0.5,
                                setting="paper")])[0]
    assert near.status == V.REPRODUCED and far.status == V.DIFFERS


def test_holm_adjusts_in_step_down_order():
    claims = [V.Claim(str(i), "c", "superiority", 1.0, (0.5, 1.5), p, 10, "t", setting="paper")
              for i, p in enumerate([0.01, 0.04, 0.03, 0.005])]
    V.holm(claims)
    assert [c.p_adjusted for c in claims] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [c.status for c in claims][0] == V.REPRODUCED and claims[1].status.startswith(V.INCONCLUSIVE)


def test_a_superiority_claim_with_a_stated_effect_needs_that_effect():
    d = 0.5 + 0.1 * np.random.default_rng(4).standard_normal(20)   # clearly > 0, clearly < 1 dB
    assert V.holm([V.superiority("s", "a > b", d, 0.0, setting="paper")])[0].status == V.REPRODUCED
    assert V.holm([V.superiority("s", "a > b by 1 dB", d, 0.0, min_effect=1.0,
                                 setting="paper")])[0].status == V.DIFFERS
