"""Chung et al. 2023 report, the noisy linear tasks: Tables 1/2/6/7 in the paper's layout, the published
numbers compared, the claims on every task (DPS vs each baseline, DDRM's PSNR, what projections do with the
measurement noise), the qualitative grids (Figs. 1, 4, 5, 13-20) and Fig. 7 in numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from replicate.io import save_figure
from replicate.report import verdicts as V
from replicate.report.chung2023.common import (METHOD_NAMES, PAPER, PAPER_TABLES, PUBLISHED_METHOD, TASK_NAMES, Context,
                                              _comparison, _mean_table, _mosaic)
from replicate.report.common import NOT_AVAILABLE, NOT_RUN_AT_SCALE, PRODUCED, markdown_table, rel, write_markdown


def tables(ctx: Context, gauss: pd.DataFrame) -> None:
    """Tables 1/2/6/7 in the paper's layout per test set here, and every published cell compared."""
    table_files = []
    for set_name in ctx.sets_here:
        sub = gauss[gauss.set == set_name]
        body = (f"Set `{set_name}` ({sub.image_index.nunique()} images, prior "
                f"`{ctx.prm['test_sets'][set_name].get('prior', ctx.prm['prior'])}`, NFE {ctx.prm['steps']}). "
                f"Gaussian noise sigma_y = {ctx.prm['noise']['sigma']} on [-1, 1]. {ctx.why_lpips}{ctx.why_fid}.\n\n")
        body += "## Perception (Tables 1/2 layout; LPIPS lower is better)\n\n"
        body += markdown_table(_mean_table(sub, ["lpips"]), floatfmt=".3f")
        body += "\n## Distortion (Tables 6/7 layout)\n\n" + markdown_table(_mean_table(sub, ["psnr", "ssim"]), ".3f")
        body += "\n## Measurement fit (||A x - y|| and ||A x - A x_true|| in noise-std units; 1 = noise level)\n\n"
        body += markdown_table(_mean_table(sub, ["fit_y", "fit_clean"]), ".2f")
        skipped = sub[sub.status != "ok"][["task", "method", "status"]].drop_duplicates()
        if not skipped.empty:
            body += "\n'-' cells (not applicable):\n\n" + markdown_table(skipped)
        table_files.append(write_markdown(ctx.tab_dir / f"tables_linear_{set_name}.md",
                                          f"DPS Tables 1/2/6/7 layout on {set_name} ({ctx.scale})", body))
    for item, (tabs, ds) in {"Table 1": (("table1",), "ffhq"), "Table 6": (("table6",), "ffhq"),
                             "Table 2": (("table2",), "imagenet"), "Table 7": (("table7",), "imagenet")}.items():
        if ds in ctx.sets_here:
            ctx.items[item] = {"status": PRODUCED, "files": [rel(f) for f in table_files],
                           "note": f"measured on {ds}; {ctx.why_lpips}{ctx.why_fid}"}
        else:
            reason = ctx.missing.get(ds, f"{ds} is not part of the {ctx.scale} profile (paper profile on a GPU)")
            ctx.items[item] = {"status": NOT_AVAILABLE, "files": [rel(f) for f in table_files],
                           "note": f"{ds}: {reason.splitlines()[0]}. The same layout with real numbers on this "
                                   f"machine's sets ({', '.join(ctx.sets_here) or 'none'}) is in the files."}
    _compare_published(ctx.comparisons, gauss, ctx.sets_here, ctx.missing, ctx.scale, ctx.paper_sets)


def claims(ctx: Context, gauss: pd.DataFrame) -> None:
    """The paper's claims on the noisy linear tasks, each tested on every task it is made on (unit: image)."""
    if not gauss.empty:
        ok = gauss[gauss.status == "ok"]
        per = ok.groupby(["task", "method", "image_index", "set"])[["psnr", "ssim", "lpips", "fit_clean", "fit_y"]]
        per = per.mean().reset_index()
        pv = per.pivot_table(index=["set", "task", "image_index"], columns="method", values=ctx.metric)
        psnr = per.pivot_table(index=["set", "task", "image_index"], columns="method", values="psnr")
        for base in [m for m in ctx.prm["methods"] if m != "dps" and m in pv.columns]:
            # the paper claims it on every noisy linear task: one test per task (unit: image), all must hold
            parts = [V.superiority(f"{t}", "", *((d[base], d["dps"]) if ctx.lower else (d["dps"], d[base])))
                     for t, d in ((t, pv.xs(t, level="task")[["dps", base]].dropna())
                                  for t in sorted(set(pv.index.get_level_values("task")))) if len(d)]
            ctx.claims.append(V.all_of(
                f"dps-beats-{base}", f"DPS is better than {METHOD_NAMES[base]} on every noisy linear task it runs "
                                     + ("(LPIPS)" if ctx.metric == "lpips" else
                                        "(PSNR stand-in: LPIPS not available here)"),
                parts, catalog=["Claim: DPS outperforms all methods on noisy linear problems"], **ctx.kw))
        # perception-distortion: DPS underperforms DDRM in PSNR (Tables 6/7), on every task both run
        if {"dps", "ddrm"} <= set(psnr.columns):
            parts = [V.superiority(f"{t}", "", d["ddrm"], d["dps"])
                     for t, d in ((t, psnr.xs(t, level="task")[["dps", "ddrm"]].dropna())
                                  for t in sorted(set(psnr.index.get_level_values("task")))) if len(d)]
            ctx.claims.append(V.all_of("ddrm-psnr", "DPS underperforms DDRM in PSNR on every task both run (the "
                                   "perception-distortion trade-off)", parts,
                                   catalog=["Claim: DPS underperforms DDRM in PSNR"], **ctx.kw))
        # projections and measurement noise (Sec. 4, App. C.1, Fig. 7). Two effects, tested separately:
        #  * well-conditioned A (SR, inpainting): the projection fits the noisy y exactly, ||A x - y|| well below
        #    the noise level (fit_y < 1: it keeps the noise instead of removing it);
        #  * ill-conditioned A (deblurring): A^+ amplifies the noise, so the reconstruction is worse than DPS's.
        fy = per.pivot_table(index=["set", "task", "image_index"], columns="method", values="fit_y")
        tasks = set(per.task)
        well = [t for t in ("sr4", "inpaint_box", "inpaint_random") if t in tasks]
        ill = [t for t in ("deblur_gauss", "deblur_motion") if t in tasks]
        for proj in [m for m in ("score_sde", "mcg") if m in fy.columns]:
            d = fy[fy.index.get_level_values("task").isin(well)][proj].dropna().rename("v").reset_index()
            if len(d):
                ctx.claims.append(V.below(
                    f"projection-overfits-noise-{proj}",
                    f"{METHOD_NAMES[proj]} fits the noisy measurement below the noise level on SR / inpainting "
                    f"(||A x - y|| / (sigma sqrt(m)) < 1; tasks {', '.join(well)} averaged per image)",
                    V.per_unit(d, ["set", "image_index"], "v"), 1.0, catalog=["Fig. 7"], **ctx.kw))
            if "dps" in psnr.columns and proj in psnr.columns:
                parts = [V.superiority(t, "", d["dps"], d[proj])
                         for t, d in ((t, psnr.xs(t, level="task")[["dps", proj]].dropna()) for t in ill
                                      if t in set(psnr.index.get_level_values("task"))) if len(d)]
                ctx.claims.append(V.all_of(
                    f"projection-amplifies-noise-{proj}",
                    f"{METHOD_NAMES[proj]} amplifies the measurement noise on deblurring (A^+ of an ill-conditioned "
                    f"blur): lower PSNR than DPS on every deblurring task (projection {ctx.prm['projection']['mode']})",
                    parts, catalog=["Fig. 7"], **ctx.kw))


def figures(ctx: Context) -> dict[str, list]:
    """The qualitative grids; returns their files by stage (phase retrieval's too)."""
    ex_files = _grids(ctx.plt, ctx.res, ctx.fig_dir, ctx.prm)
    missing_status = NOT_RUN_AT_SCALE if "linear" in ctx.not_run else NOT_AVAILABLE
    for it in ("Fig. 4", "Figs. 13-18"):
        ctx.items[it] = {"status": PRODUCED if ex_files.get("linear") else missing_status,
                     "files": [rel(f) for f in ex_files.get("linear", [])],
                         "note": f"{ctx.scale}: {', '.join(ctx.sets_here)} with the universal denoiser prior "
                                 "(not FFHQ/ImageNet)"}
    ctx.items["Figs. 19-20"] = ctx.items["Fig. 5"] = {
        "status": PRODUCED if ex_files.get("poisson") else missing_status,
        "files": [rel(f) for f in ex_files.get("poisson", [])],
        "note": f"Poisson rate {ctx.prm['poisson']['rate']}, tasks {ctx.prm['poisson']['tasks']}"}
    ctx.items["Fig. 1"] = {"status": PRODUCED if ex_files.get("linear") else missing_status,
                       "files": [rel(f) for f in ex_files.get("linear", []) + ex_files.get("phase_retrieval", [])],
                       "note": "representative results on this machine's sets; non-uniform deblur not available "
                               "(bkse weights)"}
    for it in ("Fig. 2", "Fig. 3"):
        ctx.items[it] = {"status": PRODUCED, "files": [], "note": "schematic in the paper; nothing to compute"}
    return ex_files


def fig7(ctx: Context, gauss: pd.DataFrame) -> None:
    """Fig. 7 in numbers (the last item of the report, as in the paper's order of discussion)."""
    missing_status = NOT_RUN_AT_SCALE if "linear" in ctx.not_run else NOT_AVAILABLE
    f7 = _fig7(ctx.plt, gauss, ctx.fig_dir, ctx.prm) if not gauss.empty else None
    ctx.items["Fig. 7"] = {"status": PRODUCED if f7 else missing_status, "files": [rel(f7)] if f7 else [],
                           "note": "quantified: PSNR and ||A x - A x_true|| per task for DPS vs the projection methods "
                                   "(also in tables_linear_*.md, 'Measurement fit'); see the projection claims"}


def _compare_published(comparisons, gauss, sets_here, missing, scale, paper_sets):
    from replicate.report.published import load_published

    pub = load_published(PAPER)
    for ds, tables in PAPER_TABLES.items():
        for table in tables:
            for _, row in pub[pub.table == table].iterrows():
                task = next((t for t, n in TASK_NAMES.items() if row.task_or_setting.startswith(n + " ")), None)
                method = next((m for m, n in PUBLISHED_METHOD.items() if n == row.method), None)
                sub = gauss[(gauss.set == ds) & (gauss.task == task) & (gauss.method == method)] if ds in sets_here \
                    else pd.DataFrame()
                why = missing.get(ds, f"not part of the {scale} profile") if ds not in sets_here else \
                    f"{row.metric} not computable here"
                comparisons.append(_comparison(f"Table {table[-1]}", f"{table}.csv", row, sub, why,
                                               "paper" if ds in paper_sets else "analogue"))


def _fig7(plt, gauss, fig_dir, prm):
    """Fig. 7's point in numbers: per task, reconstruction PSNR and the fit to the clean measurement
    ||A x - A x_true|| / (sigma sqrt(m)) of DPS and of the projection methods (MCG, Score-SDE), which copy the
    measurement noise into the estimate (and amplify it through A^+ on deblurring). Means over images, with the
    per-image values as dots."""
    ok = gauss[(gauss.status == "ok") & gauss.method.isin(["dps", "mcg", "score_sde"])]
    if ok.empty:
        return None
    per = ok.groupby(["task", "method", "set", "image_index"])[["psnr", "fit_clean"]].mean().reset_index()
    tasks = [t for t in TASK_NAMES if t in set(per.task)]
    methods = [m for m in ("dps", "mcg", "score_sde") if m in set(per.method)]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.3))
    width = 0.8 / len(methods)
    for k, m in enumerate(methods):
        for ax, col in zip(axes, ("psnr", "fit_clean")):
            d = per[per.method == m]
            means = [d[d.task == t][col].mean() for t in tasks]
            xs = np.arange(len(tasks)) + (k - (len(methods) - 1) / 2) * width
            ax.bar(xs, means, width, label=METHOD_NAMES[m], alpha=0.8)
            for i, t in enumerate(tasks):
                v = d[d.task == t][col]
                ax.plot(np.full(len(v), xs[i]), v, "k.", ms=2)
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    for ax, lab in zip(axes, ("PSNR (dB)", "fit to A x_true (noise std = 1)")):
        ax.set_xticks(np.arange(len(tasks)), [TASK_NAMES[t] for t in tasks], rotation=20, fontsize=7)
        ax.set_ylabel(lab, fontsize=8)
    axes[1].axhline(1.0, color="gray", ls=":", lw=0.8)
    axes[1].set_yscale("log")
    lo_hi = per.fit_clean[per.fit_clean > 0]
    axes[1].set_yticks([v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if lo_hi.min() / 2 <= v <= lo_hi.max() * 2])
    axes[1].yaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes[1].yaxis.set_minor_formatter(NullFormatter())
    axes[0].legend(fontsize=6, loc="lower left", framealpha=0.9)
    fig.suptitle(f"Fig. 7: projections carry the measurement noise (sigma_y = {prm['noise']['sigma']} on [-1, 1])",
                 fontsize=8)
    f = save_figure(fig_dir / "fig7_projection_noise.png", fig)
    plt.close(fig)
    return f


DIVERGED_DB = 8.0   # a reconstruction this far from the image (PSNR below it) is flagged in the grids


def _tile_label(name: str, img, clean) -> str:
    """A grid tile's label: the method and its PSNR against the clean image; flagged when it diverged."""
    mse = float(((torch.as_tensor(img).double().clamp(0, 1) - torch.as_tensor(clean).double()) ** 2).mean())
    p = 10 * np.log10(1 / max(mse, 1e-12)) if np.isfinite(mse) else float("nan")
    return f"{name} {p:.1f} dB" + (" DIVERGED" if not np.isfinite(p) or p < DIVERGED_DB else "")


def _grids(plt, res, fig_dir, prm) -> dict[str, list]:
    """Qualitative grids: per task, the measurement, every method (several samples for the diffusion methods) and the
    ground truth (Figs. 4, 5, 13-20 layout); phase retrieval (Fig. 6)."""
    out: dict[str, list] = {}
    for path in sorted((res / "linear_arrays").glob("*.pt")):
        ex = torch.load(path, weights_only=False)
        for kind in ("gaussian", "poisson"):
            tasks = [t for t in TASK_NAMES if f"{kind}/{t}/measurement" in ex]
            if not tasks:
                continue
            # one column per (method, sample) for every task, so a '-' cell stays an empty tile
            cols = [(m, s) for m in METHOD_NAMES
                    for s in range(max((ex[f"{kind}/{t}/{m}"].shape[0] for t in tasks if f"{kind}/{t}/{m}" in ex),
                                       default=0))]
            rows, labels = [], []
            for t in tasks:
                r, lab = [ex[f"{kind}/{t}/measurement"]], [f"{TASK_NAMES[t]}: y"]
                for m, s in cols:
                    xs = ex.get(f"{kind}/{t}/{m}")
                    ok = xs is not None and s < xs.shape[0]
                    r.append(xs[s] if ok else None)
                    lab.append(_tile_label(METHOD_NAMES[m] + (f" #{s + 1}" if s else ""), xs[s], ex["clean"]) if ok
                               else f"{METHOD_NAMES[m]}: not applicable" if s == 0 else "")
                r.append(ex["clean"])
                lab.append("ground truth")
                rows.append(r)
                labels.append(lab)
            f = _mosaic(plt, rows, labels, fig_dir / f"grid_{kind}_{path.stem}.png",
                        f"{ex['image']}: {kind} noise; PSNR per tile; 'not applicable': the paper's '-' cells; "
                        f"'DIVERGED': below {DIVERGED_DB:g} dB")
            out.setdefault("linear" if kind == "gaussian" else "poisson", []).append(f)
    for path in sorted((res / "phase_retrieval_arrays").glob("*.pt")):
        ex = torch.load(path, weights_only=False)
        methods = [m for m in ("dps", "oss", "hio", "er") if m in ex]
        f = _mosaic(plt, [[ex[m][0] for m in methods] + [ex["clean"]]],
                    [[METHOD_NAMES[m] for m in methods] + ["ground truth"]],
                    fig_dir / f"grid_phase_retrieval_{path.stem}.png", f"{ex['image']}: Fourier phase retrieval")
        out.setdefault("phase_retrieval", []).append(f)
    return out
