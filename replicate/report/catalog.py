"""The catalogue of everything the final report must account for.

`catalog.yaml` (next to this file) lists, per paper, every table, every figure and every
quantitative claim of the papers (source: shared/published/figures.md and experiments.md).
The report (tables/REPORT.md) gives each item a status; this module is the single source of
that list.

    load_catalog() -> dict          the validated YAML ({"papers": {paper_id: {...}}})
    items(paper=None) -> list[dict] flat list of items, each with "paper" added
    papers() -> list[str]           paper ids in catalogue order
    get(paper, item_id) -> dict     one item

Validation (CatalogError on failure): required keys and types for papers and items, the item
kind, `quote` present for claims, unique item ids within a paper, and every published CSV named
(`published_csv`, `also_csv`) existing in replicate/published/ or in the shared published folder.
"""
from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")
PACKAGE_PUBLISHED = Path(__file__).resolve().parent.parent / "published"
SHARED_PUBLISHED = Path(os.environ.get("REPLICATE_SHARED_PUBLISHED",
                                       Path(__file__).resolve().parents[2].parent / "shared" / "published"))

PAPER_IDS = ("kawar2021", "xie2023", "mohan2020", "kadkhodaie2021", "chung2023", "elad_lecture")
ISSUES = {"mohan2020": 9, "kadkhodaie2021": 3, "kawar2021": 4, "chung2023": 5, "xie2023": 6,
          "elad_lecture": 7}
KINDS = ("table", "figure", "claim")
CONTENTS = ("quantitative", "qualitative", "schematic", "parameters", "analytical", "background",
            "bibliometric")
NEED_PREFIXES = ("checkpoint:", "dataset:", "metric:", "external:")
# Statuses the report may give an item (kept here so that the report and its tests share them).
STATUSES = ("reproduced", "differs", "not run at this scale", "not available here",
            "not implemented yet", "profile not run")

PAPER_KEYS = {"title": str, "authors": str, "venue": str, "issue": int, "items": list}
ITEM_REQUIRED = {"id": str, "kind": str, "title": str, "setting": str, "needs": list, "gpu": bool}
ITEM_OPTIONAL = {"quote": str, "exp": str, "content": str, "also_csv": list, "notes": str}
# published_csv is required too, but may be null.


class CatalogError(ValueError):
    """The catalogue does not match its schema."""


def published_dirs() -> list[Path]:
    """Folders where a published CSV may live (the package copy first)."""
    return [PACKAGE_PUBLISHED, SHARED_PUBLISHED]


def find_published(name: str) -> Path | None:
    """The path of a published-numbers file (e.g. 'kawar2021_table1.csv') in the first published folder that has it,
    else None."""
    for d in published_dirs():
        p = d / name
        if p.is_file():
            return p
    return None


def _check_item(pid: str, it, errors: list[str]) -> None:
    where = f"{pid}: item {it.get('id', '?') if isinstance(it, dict) else it!r}"
    if not isinstance(it, dict):
        errors.append(f"{where}: not a mapping")
        return
    allowed = set(ITEM_REQUIRED) | set(ITEM_OPTIONAL) | {"published_csv"}
    for k in sorted(set(it) - allowed):
        errors.append(f"{where}: unknown key {k!r}")
    for k, typ in ITEM_REQUIRED.items():
        if k not in it:
            errors.append(f"{where}: missing {k!r}")
        elif not isinstance(it[k], typ) or (typ is str and not it[k].strip()):
            errors.append(f"{where}: {k!r} must be a non-empty {typ.__name__}")
    if "published_csv" not in it:
        errors.append(f"{where}: missing 'published_csv' (use null when there is none)")
    for k, typ in ITEM_OPTIONAL.items():
        if k in it and not isinstance(it[k], typ):
            errors.append(f"{where}: {k!r} must be a {typ.__name__}")
    if it.get("kind") not in KINDS:
        errors.append(f"{where}: kind {it.get('kind')!r} not in {KINDS}")
    if it.get("kind") == "claim" and not (isinstance(it.get("quote"), str) and it["quote"].strip()):
        errors.append(f"{where}: a claim needs a non-empty 'quote'")
    if "content" in it and it["content"] not in CONTENTS:
        errors.append(f"{where}: content {it['content']!r} not in {CONTENTS}")
    for n in it.get("needs") or []:
        if not isinstance(n, str) or not n.startswith(NEED_PREFIXES):
            errors.append(f"{where}: need {n!r} must start with one of {NEED_PREFIXES}")
    csvs = []
    if it.get("published_csv") is not None:
        csvs.append(it["published_csv"])
    csvs += list(it.get("also_csv") or [])
    for c in csvs:
        if not isinstance(c, str) or not c.endswith(".csv") or "/" in c:
            errors.append(f"{where}: published CSV {c!r} must be a bare *.csv file name")
        elif find_published(c) is None:
            errors.append(f"{where}: published CSV {c!r} not found in "
                          + " or ".join(str(d) for d in published_dirs()))


def validate(cat) -> dict:
    """Raise CatalogError listing every schema violation; return `cat` unchanged otherwise."""
    errors: list[str] = []
    if not isinstance(cat, dict) or not isinstance(cat.get("papers"), dict):
        raise CatalogError("catalogue must be a mapping with a 'papers' mapping")
    papers_ = cat["papers"]
    for pid in PAPER_IDS:
        if pid not in papers_:
            errors.append(f"missing paper {pid!r}")
    for pid, paper in papers_.items():
        if pid not in PAPER_IDS:
            errors.append(f"unknown paper id {pid!r} (expected one of {PAPER_IDS})")
        if not isinstance(paper, dict):
            errors.append(f"{pid}: not a mapping")
            continue
        for k, typ in PAPER_KEYS.items():
            if k not in paper:
                errors.append(f"{pid}: missing {k!r}")
            elif not isinstance(paper[k], typ) or isinstance(paper[k], bool):
                errors.append(f"{pid}: {k!r} must be a {typ.__name__}")
        if pid in ISSUES and paper.get("issue") != ISSUES[pid]:
            errors.append(f"{pid}: issue {paper.get('issue')!r}, expected {ISSUES[pid]}")
        seen: set[str] = set()
        for it in paper.get("items") or []:
            _check_item(pid, it, errors)
            iid = it.get("id") if isinstance(it, dict) else None
            if iid in seen:
                errors.append(f"{pid}: duplicate item id {iid!r}")
            seen.add(iid)
        if not paper.get("items"):
            errors.append(f"{pid}: no items")
    if errors:
        raise CatalogError("catalog.yaml is invalid:\n  " + "\n  ".join(errors))
    return cat


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return validate(yaml.safe_load(fh))


def load_catalog(path: str | os.PathLike | None = None) -> dict:
    """The validated catalogue (a fresh copy each call, so callers may mutate it)."""
    return copy.deepcopy(_load(str(path or CATALOG_PATH)))


def papers(path: str | os.PathLike | None = None) -> list[str]:
    """The paper ids of the catalogue, in its order."""
    return list(load_catalog(path)["papers"])


def items(paper: str | None = None, path: str | os.PathLike | None = None) -> list[dict]:
    """All items (of one paper if `paper` is given), each with its `paper` id added."""
    cat = load_catalog(path)["papers"]
    if paper is not None and paper not in cat:
        raise KeyError(f"unknown paper {paper!r}; known: {list(cat)}")
    out = []
    for pid, p in cat.items():
        if paper is not None and pid != paper:
            continue
        for it in p["items"]:
            out.append({"paper": pid, **it})
    return out


def get(paper: str, item_id: str) -> dict:
    """One catalogue item of `paper` by its id (KeyError naming it if there is none)."""
    for it in items(paper):
        if it["id"] == item_id:
            return it
    raise KeyError(f"{paper}: no item {item_id!r}")


def csv_table_item_id(table: str) -> str:
    """Map a CSV `table` value to its catalogue item id ("table1" -> "Table 1",
    "table_wallclock" -> "Table (wall-clock)")."""
    t = table.strip().lower()
    if t == "table_wallclock":
        return "Table (wall-clock)"
    if t.startswith("table") and t[5:].isdigit():
        return f"Table {int(t[5:])}"
    raise ValueError(f"unrecognised table id {table!r}")


if __name__ == "__main__":  # python -m replicate.report.catalog : summary counts
    cat = load_catalog()
    for pid, p in cat["papers"].items():
        kinds = [it["kind"] for it in p["items"]]
        print(f"{pid:15s} issue #{p['issue']:<2d} tables {kinds.count('table'):3d}  "
              f"figures {kinds.count('figure'):3d}  claims {kinds.count('claim'):3d}  "
              f"total {len(kinds):3d}")
