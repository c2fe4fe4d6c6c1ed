"""The report catalogue (replicate/report/catalog.yaml) is complete and well-formed."""
from __future__ import annotations

import copy
import csv
import re
from pathlib import Path

import pytest

from replicate.report import catalog

PARAMETER_CSVS = {"hyperparams.csv", "xie2023_noise_params.csv"}


def _published_csvs() -> dict[str, Path]:
    """Every published CSV, by file name (shared folder and package copy together)."""
    found: dict[str, Path] = {}
    for d in reversed(catalog.published_dirs()):
        if d.is_dir():
            for p in sorted(d.glob("*.csv")):
                found[p.name] = p
    return found


def _referenced_csvs() -> set[str]:
    out = set()
    for it in catalog.items():
        if it.get("published_csv"):
            out.add(it["published_csv"])
        out.update(it.get("also_csv") or [])
    return out


def test_catalog_loads_and_validates():
    cat = catalog.load_catalog()
    assert set(cat["papers"]) == set(catalog.PAPER_IDS)
    for pid, p in cat["papers"].items():
        assert p["issue"] == catalog.ISSUES[pid]


def test_every_paper_has_items():
    for pid in catalog.PAPER_IDS:
        its = catalog.items(pid)
        assert its, pid
        assert all(it["paper"] == pid for it in its)
    assert len(catalog.items()) == sum(len(catalog.items(p)) for p in catalog.PAPER_IDS)


def test_items_have_schema_fields():
    for it in catalog.items():
        assert it["kind"] in catalog.KINDS
        assert isinstance(it["gpu"], bool)
        assert isinstance(it["needs"], list)
        assert "published_csv" in it
        if it["kind"] == "claim":
            assert it["quote"].strip()


def test_ids_unique_per_paper():
    for pid in catalog.PAPER_IDS:
        ids = [it["id"] for it in catalog.items(pid)]
        assert len(ids) == len(set(ids)), pid


def test_every_result_csv_is_referenced():
    csvs = _published_csvs()
    assert csvs, "no published CSVs found"
    missing = sorted(set(csvs) - PARAMETER_CSVS - _referenced_csvs())
    assert not missing, f"published CSVs not referenced by any catalogue item: {missing}"


def test_csv_table_ids_are_items():
    for name, path in sorted(_published_csvs().items()):
        if name in PARAMETER_CSVS:
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and "table" in rows[0], name
        paper = rows[0]["paper_id"]
        ids = {it["id"] for it in catalog.items(paper)}
        for table in sorted({r["table"] for r in rows}):
            item_id = catalog.csv_table_item_id(table)
            if table == "table_wallclock":
                assert any("wall-clock" in i for i in ids), (name, table)
            assert item_id in ids, (name, table, item_id)
            item = catalog.get(paper, item_id)
            assert item["kind"] == "table"
            assert item["published_csv"] == name, (name, item)


def test_csv_table_item_id_mapping():
    assert catalog.csv_table_item_id("table1") == "Table 1"
    assert catalog.csv_table_item_id("table_wallclock") == "Table (wall-clock)"
    with pytest.raises(ValueError):
        catalog.csv_table_item_id("fig3")


def test_every_table_named_in_the_papers_is_an_item():
    # Tables of the papers (Tables 2/3 of kawar2021 are hyperparameter tables, in hyperparams.csv).
    expected = {
        "kawar2021": {"Table 1", "Table 2", "Table 3", "Table 4"},
        "xie2023": {"Table 1", "Table 2", "Table 3", "Table 4"},
        "chung2023": {f"Table {i}" for i in range(1, 8)} | {"Table (wall-clock)"},
        "mohan2020": set(),
        "kadkhodaie2021": set(),
        "elad_lecture": set(),
    }
    for pid, tables in expected.items():
        # "Demo: ..." items are the lecture demonstrations issue 7 asks for, not tables printed in a paper
        got = {it["id"] for it in catalog.items(pid) if it["kind"] == "table" and not it["id"].startswith("Demo:")}
        assert got == tables, pid


def _figure_numbers(pid: str) -> set[int]:
    nums: set[int] = set()
    for it in catalog.items(pid):
        if it["kind"] != "figure":
            continue
        m = re.match(r"Figs?\. (\d+)(?:\s*[-–]\s*(\d+)|, (\d+))?$", it["id"])
        if not m:
            continue
        a = int(m.group(1))
        b = int(m.group(2) or m.group(3) or a)
        nums.update(range(a, b + 1))
    return nums


def test_every_figure_in_figures_md_is_covered():
    # Figure numbers per figures.md (kadkhodaie2021 and mohan2020 share file 002 but have their own).
    expected = {
        "kawar2021": set(range(1, 34)),
        "xie2023": {1, 2, 3},
        "mohan2020": {1, 2, 9, 10},
        "kadkhodaie2021": set(range(1, 14)),
        "chung2023": set(range(1, 21)),
    }
    for pid, nums in expected.items():
        assert _figure_numbers(pid) == nums, pid


def test_needs_use_known_prefixes():
    for it in catalog.items():
        for n in it["needs"]:
            assert n.startswith(catalog.NEED_PREFIXES), (it["paper"], it["id"], n)


def test_validation_rejects_bad_catalogues():
    good = catalog.load_catalog()

    bad = copy.deepcopy(good)
    bad["papers"]["xie2023"]["items"][0]["kind"] = "plot"
    with pytest.raises(catalog.CatalogError, match="kind"):
        catalog.validate(bad)

    bad = copy.deepcopy(good)
    bad["papers"]["xie2023"]["items"].append(copy.deepcopy(bad["papers"]["xie2023"]["items"][0]))
    with pytest.raises(catalog.CatalogError, match="duplicate"):
        catalog.validate(bad)

    bad = copy.deepcopy(good)
    bad["papers"]["kawar2021"]["items"][0]["published_csv"] = "no_such_table.csv"
    with pytest.raises(catalog.CatalogError, match="not found"):
        catalog.validate(bad)

    bad = copy.deepcopy(good)
    del bad["papers"]["chung2023"]["items"][0]["setting"]
    with pytest.raises(catalog.CatalogError, match="missing 'setting'"):
        catalog.validate(bad)

    bad = copy.deepcopy(good)
    claim = next(i for i in bad["papers"]["kawar2021"]["items"] if i["kind"] == "claim")
    claim.pop("quote")
    with pytest.raises(catalog.CatalogError, match="quote"):
        catalog.validate(bad)

    bad = copy.deepcopy(good)
    del bad["papers"]["elad_lecture"]
    with pytest.raises(catalog.CatalogError, match="missing paper"):
        catalog.validate(bad)


def test_unknown_paper_raises():
    with pytest.raises(KeyError):
        catalog.items("nobody2099")


def test_report_says_profile_not_run_rather_than_not_implemented_when_a_profile_has_no_results():
    from replicate.report.build import item_status

    item = {"id": "Table 9", "kind": "table", "needs": ["checkpoint:NCSNv2 CelebA"]}
    empty = {"items": {}, "claims": [], "comparisons": []}
    assert item_status(item, None, {})[0] == "profile not run"
    assert item_status(item, empty, {})[0] == "not implemented yet"   # run, asked for nothing it lacked
    assert item_status(item, {**empty, "items": {"Table 9": {"status": "differs"}}}, {})[0] == "differs"
    # what the runs recorded, never this machine's cache: a missing checkpoint makes the item "not available here"
    missing = {"set:weights/ncsnv2_celeba": {"available": False, "reason": "Google Drive: download by hand"}}
    assert item_status(item, empty, missing) == ("not available here", "needs checkpoint:NCSNv2 CelebA")
    claim = {"id": "Claim: x", "kind": "claim", "needs": []}
    linked = {**empty, "claims": [{"id": "c1", "status": "analogue holds", "catalog": ["Claim: x"]},
                                  {"id": "c2", "status": "inconclusive: a precondition failed", "catalog": ["Claim: x"]}]}
    assert item_status(claim, linked, {})[0].startswith("inconclusive (")
