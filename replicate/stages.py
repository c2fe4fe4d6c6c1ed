"""Every stage of the pipeline, in pipeline order: what `python -m replicate <stage>` runs and what dvc.yaml is
generated from (`python -m replicate dvc-yaml`).

Each paper contributes the stages its experiment modules declare (`STAGES` lists of replicate.pipeline.Stage) and
one `<paper>_report` stage built here: its inputs are the outputs and manifests of the paper's other stages, so the
report reruns exactly when one of them changed. The global `report` stage gathers every paper's summary of the
committed profiles (mini and paper) into tables/REPORT.md; `readme` writes the README's results block.
"""
from __future__ import annotations

import functools
import importlib

from replicate.pipeline.stage import Stage, UnknownStage

# paper -> (its experiment modules, its report module); pipeline order
PAPERS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "foundation": (("replicate.experiments.foundation",), None),
    "mohan2020": (("replicate.experiments.mohan2020_models", "replicate.experiments.mohan2020"),
                  "replicate.report.mohan2020"),
    "kawar2021": (("replicate.experiments.kawar2021",), "replicate.report.kawar2021"),
    "chung2023": (("replicate.experiments.chung2023",), "replicate.report.chung2023"),
    "elad_lecture": (("replicate.experiments.elad_lecture",), "replicate.report.elad_lecture"),
    "xie2023": (("replicate.experiments.xie2023_train", "replicate.experiments.xie2023"), "replicate.report.xie2023"),
    "kadkhodaie2021": (("replicate.experiments.kadkhodaie2021",), "replicate.report.kadkhodaie2021"),
}
REPORT_MODULE = "replicate.report.build"


def report_stage(paper: str, module: str, upstream: list[Stage]) -> Stage:
    """`<paper>_report`: builds everything the paper's report module makes from the outputs of its other stages; its
    headline numbers are DVC metrics (tables/<profile>/metrics/<paper>.json) and the curves its module declares in
    PLOTS are DVC plots (tables/<profile>/plots/<paper>/<name>.csv)."""
    report = importlib.import_module(module)
    inputs = sorted({p for s in upstream for p in s.all_outs})
    if paper != "mohan2020":   # every other report checks the universal prior's precondition (report.common)
        inputs.append("results/{profile}/manifests/mohan2020_models.json")
    plots = getattr(report, "PLOTS", {})
    folder = f"tables/{{profile}}/plots/{paper}"
    defs = tuple({"id": f"{paper}: {spec['title']}", "title": spec["title"], "file": f"{folder}/{name}.csv",
                  "x": spec["x"], "y": list(spec["y"])} for name, spec in plots.items())
    return Stage(f"{paper}_report", paper, report.build,
                 outs=(f"figures/{{profile}}/{paper}", f"tables/{{profile}}/{paper}"),
                 inputs=tuple(inputs), also_reads=tuple(sorted({r for s in upstream for r in s.also_reads})),
                 compare=(f"tables/{{profile}}/{paper}/summary.json",),
                 metrics=(f"tables/{{profile}}/metrics/{paper}.json",), plots=(folder,) if plots else (),
                 plot_defs=defs, about=f"{paper}: tables, figures, claims and the comparison with published numbers")


def paper_stages(paper: str, with_report: bool = True) -> list[Stage]:
    experiments, report = PAPERS[paper]
    out: list[Stage] = []
    for module in experiments:
        out += importlib.import_module(module).STAGES
    if report and with_report:
        out.append(report_stage(paper, report, list(out)))
    return out


@functools.lru_cache(maxsize=1)
def _all() -> tuple[Stage, ...]:
    stages: list[Stage] = []
    for paper in PAPERS:
        stages += paper_stages(paper)
    stages += importlib.import_module(REPORT_MODULE).global_stages(stages)
    names = [s.name for s in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate stage names: {duplicates}")
    return tuple(stages)


def all_stages() -> list[Stage]:
    return list(_all())


def stage_names() -> list[str]:
    return [s.name for s in _all()]


def get(name: str) -> Stage:
    """One stage by its DVC name; only its own paper's modules are imported (a stage never depends on another
    paper's import side effects)."""
    paper = next((p for p in sorted(PAPERS, key=len, reverse=True) if name.startswith(p + "_")), None)
    candidates = paper_stages(paper, with_report=name.endswith("_report")) if paper else all_stages()
    for s in candidates:
        if s.name == name:
            return s
    import difflib

    close = difflib.get_close_matches(name, stage_names(), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `python -m replicate list` shows them all"
    raise UnknownStage(f"unknown stage {name!r}{hint}")
