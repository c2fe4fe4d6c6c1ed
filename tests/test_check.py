"""make check and the report on results without a manifest: never run (fine) vs. run by older code (must be marked)."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from replicate.pipeline.check import stale_marker
from replicate.pipeline.manifest import staleness
from replicate.pipeline.stage import Stage
from replicate.report import build


def _noop(prm: dict) -> None:
    """A stage body that is never called here."""


REPO = Path(__file__).resolve().parent.parent
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


def test_availability_reasons_carry_no_machine_paths(tmp_path, monkeypatch):
    from replicate import runtime
    from replicate.pipeline import availability

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("REPLICATE_MIRROR", str(mirror))
    monkeypatch.setattr(runtime, "project_root", lambda: tmp_path)
    root = tmp_path
    why = f"put it at {root}/data/downloads/x.zip\n   or {mirror}/host/x.zip"
    out = availability.write({"profile": "mini", "seed": 0}, "toy", "stage", [
        {"item": "a", "available": False, "reason": why}])
    text = out.read_text()
    assert "data/downloads/x.zip" in text and "$REPLICATE_MIRROR/host/x.zip" in text and str(tmp_path) not in text


MACHINE_PATH = re.compile(r"(?:^|[\s\"'(=])/(?:home|work|tmp|root|Users|mnt|private|var)/")


def test_committed_results_and_reports_carry_no_machine_paths():
    """A committed result reads the same in every checkout: no absolute path of the machine that made it (every
    committed profile: a paper-profile file once carried the cache path of the checkout that ran it)."""
    listed = subprocess.run(["git", "ls-files", "results", "tables", "data", "README.md"], cwd=REPO,
                            capture_output=True, text=True).stdout.split()
    offenders = [f for f in listed if f.endswith((".csv", ".md", ".json")) and
                 MACHINE_PATH.search((REPO / f).read_text(errors="replace"))]
    assert not offenders, offenders


def test_committed_reports_print_numbers_not_numpy_reprs():
    """Reports are read by people: a list of levels prints as [0.1, 0.2], not [np.float64(0.1), ...] (numpy 2's repr
    leaked into the scale lines and notes once)."""
    listed = subprocess.run(["git", "ls-files", "tables", "README.md"], cwd=REPO,
                            capture_output=True, text=True).stdout.split()
    offenders = [f for f in listed if f.endswith((".md", ".json")) and
                 re.search(r"np\.(int|float)\d+\(", (REPO / f).read_text(errors="replace"))]
    assert not offenders, offenders
