"""Report for Chung et al. 2023 (DPS): tables in the paper's layout, figures, claims, comparison with published numbers.

Reads only the per-image results and manifests of the experiment stages (results/<profile>/chung2023/). One module
per part of the paper: linear (Tables 1/2/6/7, Figs. 1, 4, 5, 7, 13-20), phase_retrieval (Table 3, Fig. 6),
nonuniform (Table 4), ablations (Table 5, Figs. 8, 11, App. C.4), jensen_gap (Remark 2), wallclock. Metric availability:
  * PSNR / SSIM everywhere;
  * LPIPS-VGG (the DPS code's) only when its torchvision backbone is in the asset mirror (otherwise the LPIPS columns
    are empty and every LPIPS claim falls back to PSNR, which the claim's detail says);
  * FID never at these sizes: it needs the Inception weights and ~1k images per cell (paper profile on a GPU).
"""
from __future__ import annotations

from replicate import runtime
from replicate.report.chung2023 import ablations, jensen_gap, linear, nonuniform, phase_retrieval, wallclock
from replicate.report.chung2023.common import PAPER, Context, _asset_reason, _perceptual, _read, _unavailable
from replicate.report.common import (manifests, ran, style, universal_prior_precondition, write_plots,
                                     write_summary)

STAGES = ("linear", "phase_retrieval", "ablations", "benchmark", "nonuniform", "jensen_gap")
#: DVC plots: Fig. 11, quality vs the number of network evaluations, DPS and DDRM
PLOTS = {"nfe": {"x": "nfe", "y": ["dps", "ddrm"], "title": "PSNR vs NFE, DPS and DDRM (Fig. 11)"}}


def curves(abl) -> dict:
    """The PLOTS curves from the ablations: mean PSNR over images per NFE and method."""
    if abl.empty or "study" not in abl:
        return {}
    nfe = abl[abl.study == "nfe"]
    wide = nfe.groupby(["value", "setting"]).psnr.mean().unstack("setting").reset_index()
    return {"nfe": wide.rename(columns={"value": "nfe"})}


def context(prm: dict, lin) -> Context:
    """The run context: the parameters the runs used (their manifests), the sets that ran and with which prior, the
    scale and setting every verdict is stated for, what is missing and why."""
    res = runtime.results_dir(prm, PAPER)
    if "chung2023_linear" in manifests(prm, PAPER):
        prm = {**prm, **ran(prm, PAPER, "chung2023_linear")}   # the parameters the runs used
    sets_here = sorted(lin.set.unique()) if not lin.empty else []
    prior_of = {s: prm["test_sets"].get(s, {}).get("prior", prm["prior"]) for s in sets_here}
    scale = (f"{prm['profile']}{', CPU subset' if prm['subset'] == 'cpu_subset' else ''}: "
             + (", ".join(f"{s} ({lin[lin.set == s].image_index.nunique()} images, prior {prior_of[s]})"
                          for s in sets_here) or "no set ran") + f", NFE {prm['steps']['dps']}")
    # the paper's own setting: its ADM checkpoints on FFHQ / ImageNet; any other prior or set is an analogue
    paper_sets = {s for s, p in prior_of.items() if p.startswith("adm_")}
    setting = "paper" if sets_here and set(sets_here) <= paper_sets else "analogue"
    metric, lower = _perceptual(lin) if not lin.empty else ("psnr", False)
    lp_why, fid_why = _asset_reason(prm, "lpips"), _asset_reason(prm, "inception")
    return Context(
        prm=prm, res=res, fig_dir=runtime.figures_dir(prm, PAPER), tab_dir=runtime.tables_dir(prm, PAPER),
        plt=style(), scale=scale, setting=setting,
        kw={"setting": setting, "precondition": universal_prior_precondition(prm)},
        missing=_unavailable(res), not_run=[n for n in STAGES if not (res / f"{n}.csv").exists()],
        why_lpips="" if not lp_why else f"LPIPS-{prm['lpips_net']} not available here ({lp_why}); ",
        why_fid=f"FID not available here ({'Inception weights missing' if fid_why else 'needs ~1k images per cell'})",
        sets_here=sets_here, paper_sets=paper_sets, metric=metric, lower=lower)


def build(prm: dict) -> None:
    """Every table, figure, claim and published-number comparison of the paper for this profile -> summary.json and
    the details page (report.common.write_summary)."""
    res = runtime.results_dir(prm, PAPER)
    lin, pr, abl, bench, nonu, jg = (_read(res, n) for n in STAGES)
    ctx = context(prm, lin)
    gauss = lin[lin.noise == "gaussian"] if not lin.empty else lin
    linear.tables(ctx, gauss)
    linear.claims(ctx, gauss)
    ex_files = linear.figures(ctx)
    phase_retrieval.table3(ctx, pr, ex_files)
    nonuniform._table4(ctx.plt, nonu, res, ctx.prm, ctx.items, ctx.claims, ctx.comparisons, ctx.fig_dir, ctx.tab_dir,
                       ctx.scale, ctx.why_lpips, ctx.why_fid, "nonuniform" in ctx.not_run, ctx.kw)
    jensen_gap._jensen_gap(ctx.plt, jg, ctx.prm, ctx.items, ctx.claims, ctx.fig_dir, ctx.tab_dir, ctx.scale,
                           "jensen_gap" in ctx.not_run)
    ablations._ablations(ctx.plt, abl, ctx.prm, ctx.items, ctx.claims, ctx.fig_dir, ctx.tab_dir, ctx.scale,
                         ctx.why_lpips, "ablations" in ctx.not_run, ctx.kw)
    ablations._poisson_gaussian(ctx.items, ctx.tab_dir, ctx.prm, ctx.scale)
    wallclock.wallclock(ctx, lin, pr, bench)
    linear.fig7(ctx, gauss)
    write_plots(ctx.prm, PAPER, PLOTS, curves(abl))
    write_summary(ctx.prm, PAPER, ctx.items, ctx.claims, ctx.comparisons, ctx.scale, ctx.setting)
