"""Markdown output shared by every stage that writes a table: well-formed tables (cells escaped) and atomic files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from replicate.io import write_text


def cell(value, floatfmt: str = ".2f") -> str:
    """One table cell: floats formatted, NaN empty, and `|` / newlines escaped so the row keeps its columns."""
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else format(value, floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A small dependency-free markdown table (pandas' to_markdown needs tabulate)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v, floatfmt) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, title: str, body: str) -> Path:
    return write_text(path, f"# {title}\n\n{body}")
