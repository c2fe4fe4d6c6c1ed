"""dvc.yaml, generated from the stage declarations, so that its dependencies are complete by construction.

Each stage's deps are its code (the import closure of its module: replicate.pipeline.codedeps), its params schema and
the inputs it declares; its params are `profile`, `seed` and the sections it declares; its outs are committed to git
(`cache: false`). `python -m replicate dvc-yaml` rewrites the file; `make check` fails when the committed file differs
from what the declarations give.
"""
from __future__ import annotations

import json

from replicate.pipeline.manifest import dependency_paths
from replicate.pipeline.stage import PROFILE, Stage

HEADER = """\
# GENERATED from the stage declarations (replicate/stages.py and the STAGES of each experiment module) by
# `python -m replicate dvc-yaml`; do not edit by hand: `make check` fails when this file and the declarations differ.
# One command regenerates everything: `dvc repro` (profile from params.yaml; `dvc exp run -S profile=paper`).
# Outputs go to <kind>/${profile}/<paper>/ so the profiles never overwrite each other, and are committed to git
# (cache: false); every stage also writes a manifest (results/${profile}/manifests/<stage>.json) naming the code,
# inputs and parameters it ran on.
"""


def _dvc_path(path: str) -> str:
    return path.replace(PROFILE, "${profile}")


def stage_yaml(stage: Stage) -> list[str]:
    deps = dependency_paths(stage, PROFILE)
    params = list(stage.top_level_params) + list(stage.sections)
    lines = [f"  {stage.name}:", f"    cmd: python -m replicate {stage.name}"]
    if stage.about:
        lines.insert(1, f"    desc: {json.dumps(stage.about, ensure_ascii=False)}")
    lines.append("    deps:")
    lines += [f"      - {_dvc_path(d)}" for d in deps]
    lines.append("    params:")
    lines += [f"      - {p}" for p in params]
    for key, paths in (("outs", [o for o in stage.all_outs if o not in stage.metrics + stage.plots]),
                       ("metrics", stage.metrics), ("plots", stage.plots)):
        if not paths:
            continue
        lines.append(f"    {key}:")
        for out in paths:
            lines.append(f"      - {_dvc_path(out)}:")
            lines.append("          cache: false")
            if out in stage.persist:
                lines.append("          persist: true")
    return lines


def plots_yaml(stages: list[Stage]) -> list[str]:
    """dvc.yaml's top-level plot definitions (x and the y columns of each curve file; `dvc plots show / diff`)."""
    lines = []
    for stage in stages:
        for d in stage.plot_defs:
            lines += [f"  - {json.dumps(d['id'])}:", f"      title: {json.dumps(d.get('title', d['id']))}",
                      f"      x: {d['x']}", "      y:",
                      f"        {_dvc_path(d['file'])}: [{', '.join(d['y'])}]"]
    return (["plots:"] + lines) if lines else []


def render(stages: list[Stage]) -> str:
    lines = [HEADER.rstrip("\n"), "stages:"]
    for stage in stages:
        lines += stage_yaml(stage) + [""]
    lines += plots_yaml(stages)
    return "\n".join(lines).rstrip("\n") + "\n"
