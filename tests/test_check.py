"""make check and the report on results without a manifest: never run (fine) vs. run by older code (must be marked)."""
from __future__ import annotations

import json

from replicate.pipeline.check import stale_marker
from replicate.pipeline.manifest import staleness
from replicate.pipeline.stage import Stage
from replicate.report import build


def _noop(prm: dict) -> None:
    """A stage body that is never called here."""


STAGE = Stage("toy_table", "toy", _noop, outs=("results/{profile}/toy/table.csv",))


def test_a_stage_never_run_has_no_orphans(tmp_path):
    st = staleness(STAGE, "paper", tmp_path)
    assert st.missing and st.stale and st.orphans == []
    assert "never run" in st.reasons()


def test_outputs_without_a_manifest_are_orphans_named_in_the_reasons(tmp_path):
    out = tmp_path / "results" / "paper" / "toy" / "table.csv"
    out.parent.mkdir(parents=True)
    out.write_text("a\n1\n")
    st = staleness(STAGE, "paper", tmp_path)
    assert st.missing and st.orphans == ["results/paper/toy/table.csv"]
    assert "older than the manifests" in st.reasons() and "results/paper/toy/table.csv" in st.reasons()
    assert stale_marker(st) == "toy_table (paper) stale"


def test_the_report_lists_orphans_and_leaves_out_old_format_summaries(tmp_path):
    out = tmp_path / "results" / "paper" / "toy" / "table.csv"
    out.parent.mkdir(parents=True)
    out.write_text("a\n1\n")
    old = tmp_path / "tables" / "paper" / "toy" / "summary.json"
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"paper": "toy", "claims": [], "comparisons": [], "items": {}}))   # no setting / runs
    assert build.read_summaries(tmp_path) == ({}, ["paper/toy"])
    section = "\n".join(build.stale_section(tmp_path, [STAGE], ["paper/toy"]))
    assert "toy_table (paper) stale" in section and "`tables/paper/toy/`" in section
    new = dict(json.loads(old.read_text()), setting="paper", runs={})
    old.write_text(json.dumps(new))
    assert list(build.read_summaries(tmp_path)[0]) == [("paper", "toy")]
