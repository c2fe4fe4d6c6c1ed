"""What a stage could not run here, in one format for every stage: `results/<run>/<paper>/<what>_availability.csv`.

One row per item the stage would run (a test set, a Kawar run): `item`, `available` (bool), `reason` (why not, with
the asset registry's instruction; empty when available), then any columns of the stage's own (dataset, prior, ...).
The report reads these files and the manifests; it never asks the asset registry what this machine has.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from replicate import runtime
from replicate.io import write_csv

COLUMNS = ("item", "available", "reason")


def path(prm: dict, paper: str, what: str) -> Path:
    return runtime.results_dir(prm, paper) / f"{what}_availability.csv"


def portable(text: str) -> str:
    """`text` without this machine's paths (a committed result must read the same in every checkout): the mirrors
    become `$REPLICATE_MIRROR`, the checkout's own paths relative ones."""
    from replicate.assets.registry import mirror_dirs

    for mirror in mirror_dirs():
        text = text.replace(str(mirror), "$REPLICATE_MIRROR")
    root = str(runtime.project_root())
    return text.replace(root + "/", "").replace(root, ".")


def write(prm: dict, paper: str, what: str, rows: list[dict]) -> Path:
    """Write one stage's availability rows (each with at least item, available, reason); paths in them are made
    portable (the registry's instructions name this machine's cache and mirrors)."""
    for r in rows:
        missing = [c for c in COLUMNS if c not in r]
        if missing:
            raise ValueError(f"availability row {r} lacks {missing}")
    rows = [{k: portable(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows]
    df = pd.DataFrame(rows, columns=list(COLUMNS) + [c for c in (rows[0] if rows else {}) if c not in COLUMNS])
    out = path(prm, paper, what)
    write_csv(out, df)
    return out


def write_missing(prm: dict, paper: str, what: str, present, missing: dict[str, str]) -> Path:
    """The common case: items that are here, and {item: why not} for the others."""
    rows = [{"item": s, "available": True, "reason": ""} for s in present if s not in missing]
    rows += [{"item": s, "available": False, "reason": why} for s, why in missing.items()]
    return write(prm, paper, what, rows)


def read(results: Path, what: str = "*") -> pd.DataFrame:
    """Every `<what>_availability.csv` under a paper's results folder (all stages by default), with a `stage`
    column."""
    frames = []
    for p in sorted(Path(results).glob(f"{what}_availability.csv")):
        df = pd.read_csv(p, keep_default_na=False)
        frames.append(df.assign(stage=p.name[: -len("_availability.csv")]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*COLUMNS, "stage"])


def unavailable(results: Path, what: str = "*") -> dict[str, str]:
    """{item: why not here} of one stage (or of all)."""
    df = read(results, what)
    bad = df[~df["available"].astype(str).str.lower().isin(("true", "1"))]
    return dict(zip(bad["item"].astype(str), bad["reason"].astype(str)))
