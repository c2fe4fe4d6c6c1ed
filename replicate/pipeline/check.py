"""`make check`: are the committed results the output of the committed code?

For every stage and every committed profile (COMMITTED), the stage's manifest is compared with the tree
(replicate.pipeline.manifest.staleness): a dependency whose hash changed, a dependency added or dropped, changed
parameters, or an output edited after the run. Also: dvc.yaml must be what the stage declarations generate, and
`dvc status` must be clean for the active profile.

  mini (and any profile CI reruns): every stage must be fresh.
  paper: its long CPU runs may be stale (or older than the manifests), but only if tables/REPORT.md marks each such
         stage "stale since <commit>: <changed deps>" (the report reads the same facts); a stage never run for it is
         fine; an edited output is never allowed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from replicate.pipeline.codedeps import REPO_ROOT
from replicate.pipeline.manifest import Staleness, staleness

COMMITTED = ("mini", "paper")        # the profiles whose results are committed
MUST_BE_FRESH = ("mini",)            # profiles that may never be stale


def stage_states(stages, profiles=COMMITTED, root: Path | None = None) -> list[Staleness]:
    out = []
    for stage in stages:
        for profile in (profiles if stage.per_profile else profiles[:1]):
            out.append(staleness(stage, profile, root))
    return out


def stale_marker(state: Staleness) -> str:
    """How the report marks a stale stage (check.py looks for exactly this text)."""
    since = f" since {state.since}" if state.since else ""
    return f"{state.stage} ({state.profile}) stale{since}"


def dvc_status(root: Path) -> list[str]:
    """Stages `dvc status` reports as changed for the active profile ([] if dvc is not installed)."""
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    if not Path(dvc).exists() and not shutil.which("dvc"):
        return []
    run = subprocess.run([dvc, "status", "--json"], cwd=root, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        return [f"dvc status failed: {run.stderr.strip()[:300]}"]
    text = run.stdout.strip()
    return sorted(json.loads(text)) if text else []


def main(argv, stages) -> int:
    from replicate.pipeline.dvcgen import render

    ap = argparse.ArgumentParser(prog="replicate check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-dvc", action="store_true", help="skip `dvc status`")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per stage and profile")
    args = ap.parse_args(argv)
    root = REPO_ROOT
    problems = []
    if (root / "dvc.yaml").read_text() != render(stages):
        problems.append("dvc.yaml differs from the stage declarations: run `python -m replicate dvc-yaml`")
    report = (root / "tables" / "REPORT.md").read_text() if (root / "tables" / "REPORT.md").exists() else ""
    states = stage_states(stages, root=root)
    for st in states:
        if args.verbose:
            print(f"{st.stage:34s} {st.profile:6s} {'ok' if st.ok else st.reasons()}")
        if st.tampered:
            problems.append(f"{st.stage} ({st.profile}): outputs differ from what its run wrote: "
                            f"{', '.join(st.tampered[:4])} (rerun it: dvc repro -f {st.stage})")
        if not st.stale:
            continue
        if st.profile in MUST_BE_FRESH:
            problems.append(f"{st.stage} ({st.profile}) is stale: {st.reasons()} (rerun: dvc repro {st.stage})")
        elif st.missing and not st.orphans:
            continue   # never run for this profile, nothing of it committed: the report says "profile not run"
        elif stale_marker(st) not in report:
            problems.append(f"{st.stage} ({st.profile}) is stale ({st.reasons()}) and tables/REPORT.md does not say "
                            f"so: rerun it, or rebuild the report (dvc repro report)")
        else:
            print(f"note: {stale_marker(st)}: {st.reasons()} (marked in the report)")
    if not args.no_dvc:
        changed = dvc_status(root)
        if changed:
            problems.append(f"dvc status lists {len(changed)} changed stage(s): {', '.join(changed[:6])}")
    n_fresh = sum(1 for s in states if s.ok)
    if problems:
        print("\n".join(f"FAIL {p}" for p in problems), file=sys.stderr)
        print(f"check: {len(problems)} problem(s); {n_fresh} of {len(states)} stage/profile pairs fresh",
              file=sys.stderr)
        return 1
    print(f"check: ok ({n_fresh} of {len(states)} stage/profile pairs fresh; the others are marked in the report)")
    return 0
