"""Shared pieces of every paper's report: what ran (manifests), the summary file and details page, figure style.

A paper's report reads only its stages' results and manifests (results/<profile>/<paper>/, results/<profile>/
manifests/): what ran, with which parameters, on which assets, and whether its preconditions held, is read from the
manifests, never re-derived from the experiment code. It writes

  tables/<profile>/<paper>/summary.json
      {"paper", "profile", "scale", "setting", "items": {catalogue id -> {"status", "files", "note"}},
       "claims": [verdicts.Claim records], "comparisons": [verdicts.Comparison records], "headline": [cells],
       "runs": {stage -> {"commit", "seconds", "threads", "device", "preconditions"}}}
  tables/<profile>/<paper>/REPORT.md     the details page: every item, claim and published number of the paper

and the global report (report/build.py) gathers the summaries into tables/REPORT.md.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from replicate import runtime
from replicate.io import write_csv, write_json, write_text
from replicate.markdown import cell, markdown_table, write_markdown  # noqa: F401 (used by every report)
from replicate.params import code_profile, is_dryrun
from replicate.report import verdicts as V
from replicate.report.verdicts import (DIFFERS, INCONCLUSIVE, NOT_AVAILABLE, NOT_IMPLEMENTED,  # noqa: F401
                                       NOT_RUN_AT_SCALE, PRODUCED, PROFILE_NOT_RUN, REPRODUCED, SETTINGS_MATCH)

DEVIATIONS = Path(__file__).with_name("deviations")


def rel(path: Path) -> str:
    """Path relative to the checkout, for links in markdown."""
    try:
        return str(Path(path).resolve().relative_to(runtime.project_root().resolve()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------- what ran
def manifests(prm: dict, paper: str, only: tuple[str, ...] | None = None) -> dict[str, dict]:
    """stage name -> manifest of every stage of `paper` that ran for this profile (only those named in `only`: a
    report reads no file its stage does not declare)."""
    folder = runtime.project_root() / "results" / runtime.run_name(prm) / "manifests"
    paths = (sorted(p for p in folder.glob(f"{paper}_*.json") if p.stem != f"{paper}_report")   # not its own: a
             if only is None else [folder / f"{s}.json" for s in only])                          # rerun is the same
    return {p.stem: json.loads(p.read_text()) for p in paths if p.is_file()}


def ran(prm: dict, paper: str, stage: str) -> dict:
    """The effective parameters of `paper`'s section that the stage ran with (from its manifest)."""
    m = manifests(prm, paper).get(stage)
    if m is None:
        raise FileNotFoundError(f"no manifest for {stage} ({prm['profile']}): run `dvc repro {stage}` first")
    return m["effective"][paper]


def failed_preconditions(prm: dict, paper: str, models=None, only: tuple[str, ...] | None = None) -> dict[str, str]:
    """stage -> why its run fails its own precondition (the diagnostics a stage records; empty when all hold).

    models: a predicate on a model's name, to keep only the networks a claim stands on (e.g. the universal prior);
    only: the stages to look at (default: every stage of the paper)."""
    out = {}
    for stage, m in manifests(prm, paper, only).items():
        d = m.get("diagnostics", {})
        bad = [b for b in d.get("denoisers_below_min_gain") or d.get("networks_below_min_gain") or []
               if models is None or models(b)]
        if bad:
            rule = d.get("precondition") or f"a held-out PSNR gain of at least {d.get('min_gain_db', '?')} dB"
            out[stage] = f"{', '.join(bad)} fail the training precondition ({rule}): they barely denoise"
        diverged = d.get("diverged")
        if diverged:
            out[stage] = f"the sampler diverged: {diverged}"
    return out


UNIVERSAL_PRIOR_STAGE = "mohan2020_models"   # trains the universal prior of mini / smoke (its manifest: the gains)


def universal_prior_precondition(prm: dict) -> str:
    """Why the universal prior of mini / smoke (trained by mohan2020_models) cannot stand for an MMSE denoiser, or ''.
    The paper profile uses the authors' networks: no precondition of ours applies."""
    if code_profile(prm) == "paper":
        return ""
    return failed_preconditions(prm, "mohan2020", lambda name: name.startswith("universal"),
                                only=(UNIVERSAL_PRIOR_STAGE,)).get(UNIVERSAL_PRIOR_STAGE, "")


def deviations(paper: str) -> list[dict]:
    """The paper's deviations table: text vs released code vs this project, with the measured effect."""
    return [yaml.safe_load(p.read_text()) for p in sorted(DEVIATIONS.glob(f"{paper}_*.yaml"))]


# ---------------------------------------------------------------------------------------------- output
def _claims_table(claims: list[V.Claim]) -> str:
    rows = ["| claim | status | estimate | 95% CI | p (raw) | p (Holm) | n | test |", "|---|---|---|---|---|---|---|---|"]
    for c in claims:
        ci = "–" if not c.ci else f"[{c.ci[0]:.3g}, {c.ci[1]:.3g}]"
        fmt = (lambda v, f=".3g": "–" if v is None or not np.isfinite(v) else format(v, f))
        rows.append("| " + " | ".join(cell(v) for v in (
            c.text, c.status, fmt(c.estimate), ci, fmt(c.p_value, ".2g"), fmt(c.p_adjusted, ".2g"), c.n,
            c.detail)) + " |")
    return "\n".join(rows) + "\n"


def _comparisons_table(comparisons: list[V.Comparison]) -> str:
    rows = ["| item | cell | metric | published | ours | 95% CI | n | tolerance | verdict | note |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for c in comparisons:
        ours = "–" if c.measured is None else f"{c.measured:.4g}"
        ci = "–" if not c.ci else f"[{c.ci[0]:.4g}, {c.ci[1]:.4g}]"
        tol = "–" if c.tolerance is None else f"±{c.tolerance:g}"
        rows.append("| " + " | ".join(cell(v) for v in (
            c.item, c.cell, c.metric, f"{c.published:g}", ours, ci, f"{c.n} {c.uncertainty}", tol, c.verdict,
            "; ".join(x for x in (c.note, "" if c.source == "paper" else f"source: {c.source}") if x))) + " |")
    return "\n".join(rows) + "\n"


def details_page(summary: dict, claims: list[V.Claim], comparisons: list[V.Comparison]) -> str:
    """tables/<profile>/<paper>/REPORT.md: every item, claim, published number and deviation of the paper."""
    paper, profile = summary["paper"], summary["profile"]
    depth = "../../../"
    lines = [f"# {paper}: details ({profile} profile)", "",
             f"Scale: {summary['scale']}. Setting: {summary['setting']} "
             f"({'the paper’s own data, model and metric' if summary['setting'] == 'paper' else 'stand-in data or priors: analogue verdicts only'}).",
             "", "## Catalogue items", "", "| item | status | files | note |", "|---|---|---|---|"]
    for iid, it in summary["items"].items():
        files = ", ".join(f"[{Path(f).name}]({depth}{f})" for f in it.get("files", []))
        lines.append("| " + " | ".join(cell(v) for v in (iid, it["status"], files, it.get("note", ""))) + " |")
    if claims:
        lines += ["", "## Claims", "", "Tested on independent images (samples, tasks and levels within an image "
                  "averaged first); Holm's correction over this paper's claims in this profile.", "",
                  _claims_table(claims)]
    if comparisons:
        lines += ["", "## Published numbers", "", _comparisons_table(comparisons)]
    devs = deviations(paper)
    if devs:
        lines += ["", "## Deviations: paper text vs released code vs this project", "",
                  "| what | the text | the released code | this project | setting | measured effect |",
                  "|---|---|---|---|---|---|"]
        for d in devs:
            lines.append("| " + " | ".join(cell(d.get(k, "")) for k in ("title", "text", "code", "ours", "setting",
                                                                           "effect")) + " |")
    if summary.get("preconditions"):
        lines += ["", "## Preconditions that failed", ""] + [f"- {k}: {v}" for k, v in summary["preconditions"].items()]
    linked = {Path(f).name for it in summary["items"].values() for f in it.get("files", [])}
    others = [f for f in summary.get("figures", []) if Path(f).name not in linked]
    if others:
        lines += ["", "## Other figures", ""] + [f"- [{Path(f).name}]({depth}{f})" for f in others]
    lines += ["", "## Runs", "", "| stage | commit | seconds | threads | GPU |", "|---|---|---|---|---|"]
    for stage, r in summary.get("runs", {}).items():
        lines.append(f"| {stage} | {r.get('commit', '')} | {r.get('seconds', '')} | {r.get('cpu_threads', '')} | "
                     f"{r.get('cuda') or 'none'} |")
    return "\n".join(lines) + "\n"


def write_summary(prm: dict, paper: str, items: dict, claims: list[V.Claim], comparisons: list[V.Comparison],
                  scale: str, setting: str, headline: list[str] | None = None) -> Path:
    """Holm-adjust the claims, then write summary.json and the details page of this paper and profile.

    headline: the comparison cells shown on the one-page report (default: the first six with a measured value)."""
    if setting not in ("paper", "analogue"):   # what the paper's report says it ran: its own setting or an analogue
        raise ValueError(f"{paper}: a report's setting is 'paper' or 'analogue', got {setting!r}")
    override = prm.get("prior_override")
    if override is not None:   # a user's prior: evidence about the method with that prior, never a reproduction
        from replicate.denoisers.priors import describe

        prior = describe(override)
        V.demote_to_analogue(comparisons, claims, f"prior replaced by {prior}")
        setting = f"analogue (prior: {prior})"
    V.holm(claims)
    if is_dryrun(prm):   # stand-in data and checkpoints: the code path ran; no number is compared with the paper
        setting = V.mark_dry_run(items, claims, comparisons)
    runs = {stage: {k: m.get("run", {}).get(k) for k in ("commit", "seconds", "cpu_threads", "cuda")}
            for stage, m in manifests(prm, paper).items()}
    if headline is None:
        headline = [c.cell for c in comparisons if c.measured is not None][:6]
    figures = sorted(rel(f) for f in runtime.figures_dir(prm, paper).glob("*.png"))
    preconditions = failed_preconditions(prm, paper)
    universal = universal_prior_precondition(prm) if paper != "mohan2020" else ""
    if universal:
        preconditions["mohan2020_models (the universal prior)"] = universal
    summary = {"paper": paper, "profile": prm["profile"], "scale": scale, "setting": setting, "seed": prm["seed"],
               "figures": figures, "items": items, "claims": [c.record() for c in claims],
               "comparisons": [c.record() for c in comparisons], "headline": headline,
               "preconditions": preconditions, "runs": runs}
    out = runtime.tables_dir(prm, paper)
    write_text(out / "REPORT.md", details_page(summary, claims, comparisons))
    write_json(out / "summary.json", summary)
    write_json(metrics_path(prm, paper), metrics_of(summary, comparisons))
    return out / "summary.json"


# ---------------------------------------------------------------------------------------------- DVC metrics, plots
def metrics_path(prm: dict, paper: str) -> Path:
    """The paper's DVC metrics file (`dvc metrics show`, the metric columns of `dvc exp show`)."""
    return runtime.project_root() / "tables" / runtime.run_name(prm) / "metrics" / f"{paper}.json"


def metrics_of(summary: dict, comparisons: list[V.Comparison]) -> dict:
    """The headline numbers as DVC metrics: per headline cell our mean, the published value and the verdict; and how
    many items, claims and comparisons have each status."""
    counts: dict[str, int] = {}
    statuses = [i.get("status", "") for i in summary["items"].values()] + [c["status"] for c in summary["claims"]]
    for s in statuses + [c.verdict for c in comparisons]:
        key = str(s).split(":")[0].split(" (")[0]
        counts[key] = counts.get(key, 0) + 1
    head = {c.cell: {"ours": None if c.measured is None else round(float(c.measured), 6), "published": c.published,
                     "verdict": c.verdict} for c in comparisons if c.cell in summary["headline"]}
    return {"setting": summary["setting"], "status_counts": dict(sorted(counts.items())), "headline": head}


def plots_dir(prm: dict, paper: str) -> Path:
    """Where the paper's DVC plot files go: tables/<run>/plots/<paper>/."""
    return runtime.project_root() / "tables" / runtime.run_name(prm) / "plots" / paper


def write_plots(prm: dict, paper: str, plots: dict[str, dict], frames: dict) -> None:
    """Each declared curve of the paper (its report module's PLOTS: file name -> {x, y, title}) as a CSV for DVC
    plots; a curve this run has no data for is written with its header only (DVC needs every declared file)."""
    import pandas as pd

    for name, spec in plots.items():
        cols = [spec["x"], *spec["y"]]
        df = frames.get(name)
        df = pd.DataFrame(columns=cols) if df is None or df.empty else df.reindex(columns=cols)
        write_csv(plots_dir(prm, paper) / f"{name}.csv", df)


# ---------------------------------------------------------------------------------------------- figures
def style():
    """Matplotlib with a non-interactive backend and a consistent, readable style."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False, "font.size": 9, "legend.fontsize": 8})
    return plt


def show_image(ax, img, title: str = "", vmin=0.0, vmax=1.0):
    """(C, H, W) tensor/array in [0, 1] -> imshow without axes."""
    a = np.asarray(img, dtype=np.float32)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    ax.imshow(np.clip(a, vmin, vmax), cmap="gray" if a.ndim == 2 else None, vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
