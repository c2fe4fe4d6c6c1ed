"""The papers' printed numbers (replicate/published/*.csv), as one long DataFrame.

Only the result tables in the long format are loaded (paper_id, table, dataset, task_or_setting, method,
metric, value, direction [, std]); hyperparams.csv, xie2023_noise_params.csv and
xie2023_table1_applicability.csv have other columns and are read with `load_published_file`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

PUBLISHED_DIR = Path(__file__).resolve().parent.parent / "published"
LONG_COLUMNS = ["paper_id", "table", "dataset", "task_or_setting", "method", "metric", "value", "direction"]
DIRECTIONS = ("higher_better", "lower_better")


def load_published_file(name: str) -> pd.DataFrame:
    """One CSV from replicate/published, every cell as the printed string (no type guessing)."""
    return pd.read_csv(PUBLISHED_DIR / name, dtype=str, keep_default_na=False)


def load_published(paper_id: str | None = None) -> pd.DataFrame:
    """All long-format result rows (optionally one paper's).

    `value` is a float, `value_str` the number exactly as printed (trailing zeros kept), `std` a float or NaN
    (only chung2023 Table 5 prints one), `file` the CSV it came from. Row order: file name, then file order.
    """
    frames = []
    for path in sorted(PUBLISHED_DIR.glob("*.csv")):
        df = load_published_file(path.name)
        if not set(LONG_COLUMNS) <= set(df.columns):
            continue
        df = df.assign(value_str=df["value"], value=df["value"].astype(float), file=path.name)
        df["std"] = df["std"].astype(float) if "std" in df.columns else float("nan")
        frames.append(df[[*LONG_COLUMNS, "value_str", "std", "file"]])
    out = pd.concat(frames, ignore_index=True)
    if paper_id is not None:
        if paper_id not in set(out["paper_id"]):
            raise KeyError(f"no published numbers for {paper_id!r}; papers: {sorted(set(out['paper_id']))}")
        out = out[out["paper_id"] == paper_id].reset_index(drop=True)
    return out


def published_cell(paper_id: str, table: str, **filters) -> pd.Series:
    """The single row of `table` matching every column=value filter (exact match), e.g.
    published_cell("kawar2021", "table1", dataset="CelebA", task_or_setting="denoising sigma0=0.100",
    method="Ours", metric="psnr").value -> 29.39. Raises KeyError when none or several rows match."""
    df = load_published(paper_id)
    df = df[df["table"] == table]
    if df.empty:
        raise KeyError(f"{paper_id} has no table {table!r}")
    for col, want in filters.items():
        if col not in df.columns:
            raise KeyError(f"unknown column {col!r}; columns: {list(df.columns)}")
        options = sorted(set(df[col]))
        df = df[df[col] == want]
        if df.empty:
            raise KeyError(f"{paper_id} {table}: no row with {col}={want!r}; options here: {options}")
    if len(df) != 1:
        raise KeyError(f"{paper_id} {table} {filters}: {len(df)} rows match, add filters "
                       f"(e.g. {[c for c in ('dataset', 'task_or_setting', 'method', 'metric') if c not in filters]})")
    return df.iloc[0]
