"""The dryrun profile end to end: every stage of the paper profile's code, at a tiny size, on stand-in files.

    python -m replicate dryrun [--workers 2] [--stages STAGE ...]      (make dryrun; CI runs it after the tests)

1. Stand-ins: `replicate.pipeline.standins` writes the files that cannot be had here (CelebA, LSUN, FFHQ, ImageNet,
   DIV2K, the NCSNv2 / ADM / bkse checkpoints, the LPIPS and FID backbones) in their real formats into the stand-in
   folder (REPLICATE_STANDINS, else data/standins/), once; the registry hands them out under dryrun only.
2. A parameter file: params.yaml with `profile: dryrun` and the scale-out launcher's local workers (`--workers`), in
   a temporary folder (REPLICATE_PARAMS), so the checkout's params.yaml and dvc.lock are never touched.
3. Every per-profile stage in pipeline order (the per-paper reports included), each as `python -m replicate <stage>`
   in its own process, as DVC runs it: the same readers, checkpoint loaders, operators, samplers, metrics and report
   code as the paper profile (params.py: the dryrun block only shrinks sizes). A failing stage is reported with the
   tail of its log and the run goes on with the stages that do not need it.
4. The summary `tables/dryrun/DRYRUN.md`: per stage its seconds and outcome; every item still "not available here"
   is a failure (a dry run must reach every file, real or stand-in). Exit 1 when anything failed.

Outputs go to results/dryrun/, tables/dryrun/, figures/dryrun/, data/models/dryrun/ (ignored by git): every number
there is labelled "dry run" and never compared with a published number (report.verdicts.mark_dry_run).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from replicate.pipeline.codedeps import REPO_ROOT
from replicate.pipeline.stage import Stage

PROFILE = "dryrun"
LOG_TAIL = 25   # lines of a failed stage's log shown
COLUMNS = ["stage", "seconds", "peak memory (GiB)", "outcome"]


def _params_file(folder: Path, workers: int) -> Path:
    """params.yaml with the dryrun profile and `workers` local worker processes."""
    from replicate import params as P

    everything = P.read_all()
    everything["profile"] = PROFILE
    everything["launcher"] = {**(everything.get("launcher") or {}), "kind": "local", "workers": workers}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(everything, sort_keys=False))
    return path


def _upstream(stage: Stage, stages: list[Stage]) -> set[str]:
    """Names of the stages whose outputs `stage` reads (its declared inputs)."""
    def within(a: str, b: str) -> bool:
        return a == b or a.startswith(b + "/") or b.startswith(a + "/")

    return {s.name for s in stages if s.name != stage.name
            for out in s.all_outs for d in stage.inputs if within(d, out)}


def run(stages: list[Stage], workers: int = 2, only: list[str] | None = None, out=sys.stdout) -> int:
    from replicate.assets import registry as R
    from replicate.io import write_text
    from replicate.markdown import markdown_table
    from replicate.report.verdicts import dry_run_failures

    chosen = [s for s in stages if s.per_profile and (not only or s.name in only)]
    unknown = sorted(set(only or ()) - {s.name for s in stages})
    if unknown:
        print(f"error: unknown stage(s) {unknown}; see `python -m replicate list`", file=sys.stderr)
        return 2
    t_all = time.perf_counter()
    # in a process of its own: a child's peak memory starts at its parent's, and the generator holds GBs of weights
    if subprocess.call([sys.executable, "-m", "replicate.pipeline.standins"], cwd=REPO_ROOT) != 0:
        print("error: generating the stand-ins failed (see above)", file=sys.stderr)
        return 1
    root = R.standins_dir()
    print(f"stand-ins: {root} ({time.perf_counter() - t_all:.0f} s)", file=out, flush=True)
    logs = REPO_ROOT / "results" / PROFILE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows, failed = [], set()
    with tempfile.TemporaryDirectory(prefix="replicate-dryrun-") as tmp:
        env = {**os.environ, "REPLICATE_PARAMS": str(_params_file(Path(tmp), workers)), "REPLICATE_PROFILE": PROFILE,
               "REPLICATE_STANDINS": str(root), "PYTHONUNBUFFERED": "1"}
        for i, stage in enumerate(chosen, 1):
            blocked = sorted(_upstream(stage, stages) & failed)
            if blocked:
                failed.add(stage.name)
                rows.append({"stage": stage.name, "seconds": "", "peak memory (GiB)": "",
                             "outcome": f"not run: {', '.join(blocked)} failed"})
                print(f"[{i}/{len(chosen)}] {stage.name}: not run ({', '.join(blocked)} failed)", file=out, flush=True)
                continue
            log = logs / f"{stage.name}.log"
            t0 = time.perf_counter()
            with open(log, "w") as handle:
                proc = subprocess.Popen([sys.executable, "-m", "replicate", stage.name], cwd=REPO_ROOT, env=env,
                                        stdout=handle, stderr=subprocess.STDOUT)
                _, status, usage = os.wait4(proc.pid, 0)   # usage: the stage and its workers (largest process)
                proc.returncode = code = os.waitstatus_to_exitcode(status)
            seconds = time.perf_counter() - t0
            outcome = "ran" if code == 0 else f"failed (exit {code}; log: {log.relative_to(REPO_ROOT)})"
            rows.append({"stage": stage.name, "seconds": f"{seconds:.1f}",
                         "peak memory (GiB)": f"{usage.ru_maxrss / 2**20:.2f}", "outcome": outcome})
            print(f"[{i}/{len(chosen)}] {stage.name}: {outcome} in {seconds:.1f} s", file=out, flush=True)
            if code != 0:
                failed.add(stage.name)
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
                print("\n".join("    " + line for line in tail), file=out, flush=True)
    gaps = []
    for path in sorted((REPO_ROOT / "tables" / PROFILE).glob("*/summary.json")):
        gaps += dry_run_failures(json.loads(path.read_text()))
    total = time.perf_counter() - t_all
    text = ["# Dry run of the paper profile", "",
            f"Every stage of the paper profile's code at the dryrun profile's sizes, on stand-in files from "
            f"`{R.STANDIN_HASHES}` (never compared with a published number); {workers} local worker(s); "
            f"{total:.0f} s in all. Peak memory: the resident set of the stage's largest process (CPU memory, at "
            "the dry run's sizes; a GPU's memory is not measured here).", "",
            markdown_table(pd.DataFrame(rows, columns=COLUMNS)), ""]
    if gaps:
        text += ["Items that did not run (a dry run must reach every file, real or stand-in):", ""]
        text += [f"- {g}" for g in gaps] + [""]
    write_text(REPO_ROOT / "tables" / PROFILE / "DRYRUN.md", "\n".join(text))
    for g in gaps:
        print(f"not run: {g}", file=out)
    bad = len(failed) + len(gaps)
    print(f"dry run: {len(chosen) - len(failed)}/{len(chosen)} stages ran, {len(gaps)} item(s) not reached, "
          f"{total:.0f} s; summary in tables/{PROFILE}/DRYRUN.md", file=out)
    return 1 if bad else 0


def main(argv, stages: list[Stage]) -> int:
    ap = argparse.ArgumentParser(prog="python -m replicate dryrun", description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="local worker processes of the scale-out launcher")
    ap.add_argument("--stages", nargs="*", help="only these stages (their upstream outputs must exist)")
    args = ap.parse_args(argv)
    return run(stages, args.workers, args.stages)
