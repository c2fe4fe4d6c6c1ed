import pytest

from replicate.report.published import (DIRECTIONS, PUBLISHED_DIR, load_published, load_published_file,
                                        published_cell)


def test_every_csv_loads():
    files = sorted(p.name for p in PUBLISHED_DIR.glob("*.csv"))
    assert len(files) == 16
    for name in files:
        assert len(load_published_file(name)) > 0
    df = load_published()
    # every long-format file is in the frame (13 result tables; the 3 others have their own columns)
    assert df["file"].nunique() == 13
    assert len(df) == 452
    assert set(df["paper_id"]) == {"kawar2021", "xie2023", "chung2023"}


def test_values_parse_and_directions_are_valid():
    df = load_published()
    assert df["value"].dtype == float and df["value"].notna().all()
    assert (df["value_str"].astype(float) == df["value"]).all()
    assert set(df["direction"]) <= set(DIRECTIONS)
    expected = {"psnr": "higher_better", "ssim": "higher_better", "improvement_pct": "higher_better",
                "lpips": "lower_better", "fid": "lower_better", "seconds": "lower_better",
                "mse_ratio": "lower_better"}
    assert set(df["metric"]) == set(expected)
    for metric, direction in expected.items():
        assert (df.loc[df["metric"] == metric, "direction"] == direction).all(), metric
    # printed strings are kept (trailing zeros matter for "as printed" tables)
    assert "1.90" in set(df["value_str"])
    # only chung2023 Table 5 prints a std
    assert set(df.loc[df["std"].notna(), "table"]) == {"table5"}


def test_kawar_table1_ratio_matches_psnrs():
    t = load_published("kawar2021")
    t = t[t["table"] == "table1"]
    n = 0
    for (dataset, setting), g in t.groupby(["dataset", "task_or_setting"]):
        by_method = dict(zip(g["method"], g["value"]))
        ratio = by_method["Ours_vs_MMSE (MSE_ours/MSE_MMSE)"]
        implied = 10 ** ((by_method["MMSE"] - by_method["Ours"]) / 10)
        assert abs(ratio - implied) <= 0.03, (dataset, setting, ratio, implied)
        n += 1
    assert n == 8


def test_kawar_table4_improvement_matches_lpips():
    t = load_published("kawar2021")
    t = t[t["table"] == "table4"]
    for setting, g in t.groupby("task_or_setting"):
        m = dict(zip(g["metric"] + "/" + g["method"], g["value"]))
        implied = 100 * (m["lpips/MMSE"] - m["lpips/Ours"]) / m["lpips/MMSE"]
        assert abs(m["improvement_pct/Ours_vs_MMSE (LPIPS reduction)"] - implied) <= 0.1, setting


def test_published_cell():
    row = published_cell("kawar2021", "table1", dataset="CelebA", task_or_setting="denoising sigma0=0.100",
                         method="Ours", metric="psnr")
    assert row["value"] == 29.39 and row["value_str"] == "29.39" and row["direction"] == "higher_better"
    t5 = published_cell("chung2023", "table5",
                        method="DPS step schedule: Constant, initial value 1.0 (Ours)", metric="lpips")
    assert (t5["value"], t5["std"]) == (0.247, 0.045)
    with pytest.raises(KeyError, match="rows match"):
        published_cell("kawar2021", "table1", method="Ours")
    with pytest.raises(KeyError, match="options here"):
        published_cell("kawar2021", "table1", method="Theirs")
    with pytest.raises(KeyError):
        load_published("nobody2099")
