"""Shared pieces of every paper's report: summary files, claim records, markdown tables, figure style.

Each paper's report stage writes `tables/<profile>/<paper>/summary.json`:
    {"paper", "profile", "provenance", "scale",
     "items":       {item id -> {"status", "files": [...], "note"}},      # ids as in report/catalog.yaml
     "claims":      [{"id", "text", "holds", "p_value", "effect_size", "estimate", "ci", "n", "detail"}],
     "comparisons": [{"item", "cell", "metric", "published", "measured", "ci_lo", "ci_hi", "n",
                      "tolerance", "verdict", "source"}]}
The global report (report/build.py) reads these and writes tables/REPORT.md.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from replicate import runtime
from replicate.io import write_json, write_text

# statuses of a catalogue item
REPRODUCED, DIFFERS = "reproduced", "differs"
NOT_RUN_AT_SCALE, NOT_AVAILABLE, NOT_IMPLEMENTED = "not run at this scale", "not available here", "not implemented yet"
PRODUCED = "produced"  # a figure/table with no published number to compare against (qualitative)
NOT_RUN = "profile not run"  # the code exists, but this profile has no results in this checkout


def rel(path: Path) -> str:
    """Path relative to the checkout, for links in markdown."""
    try:
        return str(Path(path).resolve().relative_to(runtime.project_root().resolve()))
    except ValueError:
        return str(path)


def claim_record(claim_id: str, text: str, result, extra: str = "", catalog: list[str] | None = None) -> dict:
    """A stats.ClaimResult (or a dict with the same fields) as a JSON-able record."""
    get = (lambda k: getattr(result, k)) if not isinstance(result, dict) else result.get
    ci = get("ci") or (float("nan"), float("nan"))
    return {"id": claim_id, "text": text, "holds": bool(get("holds")), "p_value": _num(get("p_value")),
            "effect_size": _num(get("effect_size")), "estimate": _num(get("estimate")),
            "ci": [_num(ci[0]), _num(ci[1])], "n": int(get("n") or 0),
            "detail": (get("detail") or "") + (f"; {extra}" if extra else ""), "catalog": catalog or []}


def _num(v):
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else (v if math.isfinite(v) else (1e308 if v > 0 else -1e308))


def write_summary(prm: dict, paper: str, items: dict, claims: list, comparisons: list, scale: str) -> Path:
    path = runtime.tables_dir(prm, paper) / "summary.json"
    write_json(path, {"paper": paper, "profile": prm["profile"], "scale": scale, "seed": prm["seed"],
                      "provenance": runtime.provenance(), "items": items, "claims": claims,
                      "comparisons": comparisons})
    return path


def markdown_table(df: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A small dependency-free markdown table (pandas' to_markdown needs tabulate)."""
    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else format(v, floatfmt)
        return str(v)

    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, title: str, body: str) -> Path:
    return write_text(path, f"# {title}\n\n{body}")


def style():
    """Matplotlib with a non-interactive backend and a consistent, readable style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False, "font.size": 9, "legend.fontsize": 8})
    return plt


def show_image(ax, img, title: str = "", vmin=0.0, vmax=1.0):
    """(C, H, W) tensor/array in [0, 1] -> imshow without axes."""
    a = np.asarray(img, dtype=np.float32)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    ax.imshow(np.clip(a, vmin, vmax), cmap="gray" if a.ndim == 2 else None, vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
