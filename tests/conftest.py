"""Shared test set-up: single-threaded, deterministic torch; the offline mirror when it is beside the checkout."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

torch.set_num_threads(int(os.environ.get("REPLICATE_TEST_THREADS", "1")))
os.environ.setdefault("REPLICATE_OFFLINE", "1")  # tests never reach for the network


@pytest.fixture
def mirror() -> Path:
    """The offline mirror, found as the README says (REPLICATE_MIRROR, else ../shared/mirror beside the checkout);
    tests that need it are skipped without it (and in CI a skip fails the run)."""
    from replicate.assets.registry import mirror_dirs

    found = [d for d in mirror_dirs() if d.is_dir()]
    if not found:
        pytest.skip("no offline mirror (set REPLICATE_MIRROR, or put shared/mirror beside the checkout)")
    return found[0]


# In CI every test must run: a skipped test fails the session (a skip would hide the very check CI exists for).
_SKIPPED: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI") and _SKIPPED and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if os.environ.get("CI") and _SKIPPED:
        terminalreporter.write_line(f"CI: {len(_SKIPPED)} test(s) skipped, which fails the run: "
                                    + ", ".join(_SKIPPED[:10]), red=True)


@pytest.fixture(scope="session")
def smoke_root(tmp_path_factory) -> Path:
    """A scratch project root for end-to-end stage tests on the smoke profile: params.yaml (the repository's, with
    every paper's section) and the smoke mohan2020 models (the universal priors of mini/smoke), trained once per
    session in seconds. Run stages with cwd=smoke_root (replicate.runtime resolves outputs from the cwd)."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("smoke_root")
    text = (REPO / "params.yaml").read_text()
    for snippet in sorted((REPO / "replicate" / "experiments").glob("*.params.yaml")):
        section = snippet.name.split(".")[0]
        if f"\n{section}:" not in "\n" + text:  # a new paper's block not merged into params.yaml yet (CONTRIBUTING)
            text += "\n" + snippet.read_text()
    (root / "params.yaml").write_text(text)
    env = smoke_env(root)
    run = subprocess.run([sys.executable, "-m", "replicate", "mohan2020", "models"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return root


def smoke_env(root: Path) -> dict:
    env = dict(os.environ, REPLICATE_PROFILE="smoke", REPLICATE_THREADS="1", PYTHONPATH=str(REPO),
               REPLICATE_OFFLINE="1")
    env.pop("REPLICATE_PARAMS", None)
    return env
