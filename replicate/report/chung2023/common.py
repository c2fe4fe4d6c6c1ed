"""Chung et al. 2023 report: what every section shares (names, readers, the published-number comparison,
mosaics) and the run context the sections fill."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from replicate.io import save_figure
from replicate.pipeline import availability
from replicate.report import verdicts as V
from replicate.report.common import NOT_AVAILABLE, manifests

PAPER = "chung2023"
METHOD_NAMES = {"dps": "DPS (ours)", "ddrm": "DDRM", "mcg": "MCG", "score_sde": "Score-SDE", "pnp_admm": "PnP-ADMM",
                "admm_tv": "ADMM-TV", "er": "ER", "hio": "HIO", "oss": "OSS"}

TASK_NAMES = {"sr4": "SR", "inpaint_box": "Inpaint (box)", "inpaint_random": "Inpaint (random)",
              "deblur_gauss": "Deblur (gauss)", "deblur_motion": "Deblur (motion)"}
PUBLISHED_METHOD = {"dps": "DPS (ours)", "ddrm": "DDRM", "mcg": "MCG", "score_sde": "Score-SDE (ILVR)",
                    "pnp_admm": "PnP-ADMM", "admm_tv": "ADMM-TV", "er": "ER", "hio": "HIO", "oss": "OSS"}
# which published table holds which dataset of the paper profile
PAPER_TABLES = {"ffhq": ("table1", "table6"), "imagenet": ("table2", "table7")}



@dataclass
class Context:
    """What the report's sections share: the effective parameters of the runs, where results, figures and tables
    are, the scale and setting the verdicts are stated for, and the items, claims and comparisons they add to."""
    prm: dict
    res: Path
    fig_dir: Path
    tab_dir: Path
    plt: object
    scale: str
    setting: str
    kw: dict                      # setting and precondition, passed to every claim
    missing: dict                 # {set: why not here}
    not_run: list                 # stages without a results file
    why_lpips: str
    why_fid: str
    sets_here: list
    paper_sets: set
    metric: str = "psnr"          # the perceptual metric measured here (LPIPS, else PSNR)
    lower: bool = False           # lower is better for that metric
    items: dict = field(default_factory=dict)
    claims: list = field(default_factory=list)
    comparisons: list = field(default_factory=list)


def _read(res, name):
    path = res / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def _unavailable(res, stage: str = "*") -> dict[str, str]:
    """{set: why not here} from the stages' <stage>_availability.csv (all stages by default)."""
    return availability.unavailable(res, stage)


def _perceptual(df: pd.DataFrame) -> tuple[str, bool]:
    """("lpips", lower_better) when LPIPS was computed, else the PSNR stand-in ("psnr", higher better)."""
    if "lpips" in df and df["lpips"].notna().any():
        return "lpips", True
    return "psnr", False


def _mean_table(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Paper layout: one row per method, columns task x metric (means over images and samples)."""
    ok = df[df.status == "ok"]
    tab = ok.groupby(["method", "task"])[metrics].mean().unstack("task")
    tab = tab.swaplevel(0, 1, axis=1)
    tasks = [t for t in TASK_NAMES if t in tab.columns.get_level_values(0)]
    cols = [(t, m) for t in tasks for m in metrics]
    tab = tab.reindex(columns=pd.MultiIndex.from_tuples(cols))
    order = [m for m in METHOD_NAMES if m in tab.index]
    tab = tab.loc[order]
    flat = pd.DataFrame({f"{TASK_NAMES[t]} {m.upper()}": tab[(t, m)] for t, m in cols})
    flat.insert(0, "Method", [METHOD_NAMES[m] for m in tab.index])
    return flat.reset_index(drop=True)


def _asset_reason(prm: dict, needle: str) -> str:
    """Why an asset the runs asked for was missing (from their manifests), or '' if it was there or never asked."""
    return next((r.get("reason", "missing").splitlines()[0] for m in manifests(prm, PAPER).values()
                 for name, r in m.get("assets", {}).items() if needle in name and not r.get("available")), "")


def _comparison(item: str, source: str, row, sub: pd.DataFrame, why_missing: str,
                setting: str = "paper") -> V.Comparison:
    """One published cell against the per-image values ``sub`` measured for it (samples averaged per image), or "not
    available here" with the first line of ``why_missing`` when nothing was measured."""
    cell = f"{row.task_or_setting} | {row.method}"
    if sub.empty or row.metric not in sub or sub[row.metric].isna().all():
        tol = V.TOLERANCES.get((row.metric, "own"), V.Tolerance(None, "")).value
        return V.Comparison(item, cell, row.metric, float(row.value), None, None, 0, "images", setting, tol,
                            NOT_AVAILABLE, why_missing.splitlines()[0], source)
    values = V.per_unit(sub.dropna(subset=[row.metric]), ["set", "image_index"], row.metric)
    return V.compare(values, float(row.value), item=item, cell=cell, metric=row.metric, setting=setting,
                     situation="own", uncertainty="images", source=source)


def _mosaic(plt, rows: list[list], labels: list[list[str]], path, title: str = ""):
    """Images (C, H, W) on [0, 1] as one mosaic (one imshow: fast), with a label over each tile."""
    h = max(im.shape[-2] for r in rows for im in r if im is not None)
    w = max(im.shape[-1] for r in rows for im in r if im is not None)
    ncol = max(len(r) for r in rows)
    pad = 2
    canvas = np.ones((len(rows) * (h + pad), ncol * (w + pad), 3), dtype=np.float32)
    for i, r in enumerate(rows):
        for j, im in enumerate(r):
            if im is None:
                continue
            a = np.clip(np.asarray(im, dtype=np.float32), 0, 1)
            a = np.repeat(a, 3, 0) if a.shape[0] == 1 else a
            ch, cw = a.shape[-2:]
            canvas[i * (h + pad): i * (h + pad) + ch, j * (w + pad): j * (w + pad) + cw] = a.transpose(1, 2, 0)
    scale = 1.6 / (h + pad)
    fig, ax = plt.subplots(figsize=(max(4.0, ncol * (w + pad) * scale), len(rows) * (h + pad) * scale + 0.4))
    ax.imshow(canvas, interpolation="nearest")
    for i, r in enumerate(labels):
        for j, lab in enumerate(r):
            ax.text(j * (w + pad) + 1, i * (h + pad) + 1, lab, fontsize=5, va="top", color="yellow",
                    bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "lw": 0})
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    f = save_figure(path, fig)
    plt.close(fig)
    return f
