"""Report for Kawar, Vaksman & Elad 2021: Tables 1-4, the residual analysis of section 4.2, image grids, |difference|
x4 maps, intermediate iterates, inpainting, claims, and the comparison with the published numbers.

Reads only what the experiment stages wrote under results/<profile>/kawar2021/.  A run whose files (NCSNv2
checkpoint, data set) are missing was recorded by the stages with its reason; every catalogue item that needs it is
reported "not available here" with that reason, and the same figure/table from the runs that did run (mini: the
self-trained prior on photographs) is linked as its analogue, never as the paper's number.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from replicate import runtime
from replicate.io import save_figure, write_csv
from replicate.pipeline import availability
from replicate.report import stats
from replicate.report import verdicts as V
from replicate.report.catalog import find_published
from replicate.report.common import (NOT_AVAILABLE, NOT_RUN_AT_SCALE, PRODUCED, SETTINGS_MATCH, manifests, markdown_table, ran, rel,
                                     style, universal_prior_precondition, write_markdown, write_plots, write_summary)
from replicate.report.kawar2021_figures import (_nearest, fig_diff, fig_grid, fig_hist, fig_inpaint, fig_residual,
                                                fig_steps)

PAPER = "kawar2021"
#: DVC plots: residual std of the posterior samples and of the MMSE output relative to sigma0 (Sec. 4.2: the samples'
#: residual looks like the noise, the MMSE's is smaller)
PLOTS = {"residual_std": {"x": "sigma0", "y": ["ours", "mmse"],
                          "title": "residual std / sigma0 vs sigma0 (1 = the noise itself)"}}

# The paper's runs behind each catalogue item: (run, kind, setting).  kind: grid | diff | hist | residual | steps |
# inpaint | inpaint_steps; setting: sigma0 (denoising) or mask (inpainting).
FIGURES = {
    "Fig. 1": ("celeba", "grid", 0.406), "Fig. 2": ("lsun_tower", "grid", None), "Fig. 3": ("celeba", "grid", 0.406),
    "Fig. 4": ("lsun_bedroom", "grid", None), "Fig. 5": ("celeba", "residual", 0.607), "Fig. 6": ("ffhq", "grid", 0.4),
    "Fig. 7": ("lsun_bedroom", "steps", 0.606), "Fig. 8": ("lsun_tower", "inpaint", "text"),
    "Fig. 9": ("celeba", "inpaint", "rows"), "Fig. 10": ("celeba", "grid", None),
    "Fig. 11": ("ffhq", "grid", 0.2), "Fig. 12": ("ffhq", "diff", 0.2), "Fig. 13": ("ffhq", "hist", 0.2),
    "Fig. 14": ("ffhq", "grid", 0.4), "Fig. 15": ("ffhq", "diff", 0.4), "Fig. 16": ("ffhq", "hist", 0.4),
    "Fig. 17": ("ffhq", "grid", 0.602), "Fig. 18": ("ffhq", "diff", 0.602), "Fig. 19": ("ffhq", "hist", 0.602),
    "Fig. 20": ("lsun_tower", "grid", 0.198), "Fig. 21": ("lsun_tower", "diff", 0.198),
    "Fig. 22": ("lsun_tower", "hist", 0.198), "Fig. 23": ("lsun_tower", "grid", 0.403),
    "Fig. 24": ("lsun_tower", "diff", 0.403), "Fig. 25": ("lsun_tower", "hist", 0.403),
    "Fig. 26": ("lsun_tower", "grid", 0.606), "Fig. 27": ("lsun_tower", "diff", 0.606),
    "Fig. 28": ("lsun_tower", "hist", 0.606), "Fig. 29": ("ffhq", "inpaint", "text"),
    "Fig. 30": ("lsun_tower", "inpaint", "text"), "Fig. 31": ("lsun_bedroom", "inpaint", "text"),
    "Fig. 32": ("celeba", "inpaint", "eye"), "Fig. 33": ("celeba", "inpaint_steps", "eye"),
}
PUBLISHED_DATASET = {"celeba": "CelebA", "lsun_bedroom": "LSUN bedroom"}
STD_MARGIN = 0.05      # residual std within +-5 % of sigma0 ("match almost perfectly"; 2-decimal rounding ~1-2 %)
RHO_LIMIT = 0.02       # "|rho| is smaller than 0.02"
P_LIMIT = 0.05         # "p-values comfortably above 0.05"
# "comfortably above 0.05": read as "the normality test rejects at most twice as often as it would for exact Gaussian
# noise" (5% nominal): the fraction of residuals with p <= 0.05 per image must be below 10%
REJECT_LIMIT = 0.10


def _read(path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return pd.DataFrame()


def _load_arrays(res, kind: str) -> dict:
    out = {}
    for f in sorted((res / f"{kind}_arrays").glob("*.pt")):
        run, idx = f.stem.rsplit("_", 1)
        out.setdefault(run, {})[int(idx)] = torch.load(f, weights_only=False)
    return out



# ------------------------------------------------------------------------------------------------ tables
def table1(den: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Table 1's layout per (run, sigma0): PSNR of noisy, BM3D, MMSE and our samples, and the MSE ratio ours / MMSE
    per image with its bootstrap CI (the paper's central number: 2 for an exact posterior sampler)."""
    rows = []
    for (run, s0), g in den.groupby(["run", "sigma0"], sort=True):
        per_image = g.groupby("image_index").agg(mse_ours=("mse_ours", "mean"), mse_mmse=("mse_mmse", "first"))
        ratio = per_image.mse_ours / per_image.mse_mmse
        est, lo, hi = stats.bootstrap_ci(ratio.to_numpy(), seed=seed) if len(ratio) > 1 else (float(ratio.iloc[0]),) * 3
        first = g.drop_duplicates("image_index")
        rows.append({"run": run, "sigma0": s0, "images": g.image_index.nunique(), "samples": len(g),
                     "PSNR noisy": first.psnr_noisy.mean(), "PSNR BM3D": first.psnr_bm3d.mean(),
                     "PSNR MMSE": first.psnr_mmse.mean(), "PSNR ours": g.psnr_ours.mean(),
                     "MSE ratio": g.mse_ours.mean() / first.mse_mmse.mean(),
                     "ratio from PSNRs": 10 ** ((first.psnr_mmse.mean() - g.psnr_ours.mean()) / 10),
                     "per-image ratio": est, "ratio CI lo": lo, "ratio CI hi": hi,
                     "RMS D(x)-x at sigma_L": first.prior_clean_rmse.mean() if "prior_clean_rmse" in g else np.nan})
    return pd.DataFrame(rows)


def residual_table(den: pd.DataFrame) -> pd.DataFrame:
    """Section 4.2's residual statistics per (run, sigma0): std, normality p and neighbour correlation of y - x_hat
    for our samples and for the MMSE output."""
    rows = []
    for (run, s0), g in den.groupby(["run", "sigma0"], sort=True):
        m = g.drop_duplicates("image_index")
        for who, d, pre in (("ours", g, "res_"), ("MMSE", m, "mmse_res_")):
            rows.append({"run": run, "sigma0": s0, "output": who, "n": len(d),
                         "std mean": d[f"{pre}std"].mean(), "std / sigma0": d[f"{pre}std"].mean() / s0,
                         "p median": d[f"{pre}p"].median(), "frac p > 0.05": (d[f"{pre}p"] > P_LIMIT).mean(),
                         "|rho| mean": d[f"{pre}abs_rho"].mean(), "|rho| max": d[f"{pre}abs_rho"].max(),
                         "frac |rho| < 0.02": (d[f"{pre}abs_rho"] < RHO_LIMIT).mean()})
    return pd.DataFrame(rows)


def hyperparams_check() -> tuple[pd.DataFrame, bool]:  # noqa: C901 (one table, one pass)
    """The paper profile's settings against Tables 2/3 and section 4.1 (hyperparams.csv), and L vs NCSNv2's ladder."""
    from replicate import params as P
    from replicate.denoisers.ncsnv2 import NCSNV2_CONFIGS, geometric_sigmas
    from replicate.samplers.langevin import split_network_ladder

    pub = pd.read_csv(find_published("hyperparams.csv"))
    pub = pub[pub.paper_id == PAPER]
    try:
        paper = P.load(PAPER, profile="paper")
    except Exception:  # noqa: BLE001 - the private params file of a test may not hold the paper block
        return pd.DataFrame(), False
    rows = []
    runs_by_ds = {"CelebA": ["celeba"], "LSUN": ["lsun_bedroom", "lsun_tower"], "FFHQ": ["ffhq"]}
    for _, r in pub.iterrows():
        for run in runs_by_ds.get(r.dataset, []):
            cfg = paper["runs"].get(run)
            if cfg is None:
                continue
            ours, pv = None, float(r.value)
            c = NCSNV2_CONFIGS[cfg["prior"]["config"]]
            # the rate of the ladder the sampler really uses (NCSNv2's), rounded as the paper prints it
            ladder_rate = round((c["sigma_end"] / c["sigma_begin"]) ** (1 / (c["num_classes"] - 1)), 3)
            if r.experiment.startswith("denoising (Table 2)"):
                ours = {"epsilon": cfg["denoise"]["epsilon"], "T": cfg["denoise"]["T"]}.get(r.param, ladder_rate)
            elif r.experiment.startswith("inpainting (Table 3)"):
                ours = {"epsilon": cfg["inpaint"]["epsilon"], "T": cfg["inpaint"]["T"], "L+K": c["num_classes"],
                        "sigma_-K": c["sigma_begin"]}.get(r.param, ladder_rate)
            elif r.experiment.startswith("denoising (Sec. 4.1)"):
                s0 = float(r.experiment.split("=")[1].split(")")[0])
                below = split_network_ladder(geometric_sigmas(c["sigma_begin"], c["sigma_end"], c["num_classes"]), s0)[2]
                ours = len(below) + 1  # the printed L counts sigma0's own ladder point
            if ours is None:
                continue
            ok = abs(float(ours) - pv) <= 1e-9 * max(1.0, abs(pv))
            rows.append({"run": run, "experiment": r.experiment, "param": r.param, "paper": pv, "ours": ours, "match": ok})
    df = pd.DataFrame(rows)
    return df, bool(len(df) and df.match.all())


def run_claims(run: str, den: pd.DataFrame, label: str, **kw) -> list[V.Claim]:
    """The paper's quantitative denoising claims on one run; the unit is the image (samples and sigma0 averaged)."""
    unit = ["image_index"]
    d = den.assign(std_ratio=den.res_std / den.sigma0, rejected=(den.res_p <= P_LIMIT).astype(float))
    per_img = den.groupby(["image_index", "sigma0"]).apply(lambda g: g.mse_ours.mean() / g.mse_mmse.iloc[0],
                                                           include_groups=False).rename("ratio").reset_index()
    return [
        V.equivalence(f"residual-std-matches-sigma0/{run}", f"{label}: the residual std of our samples matches sigma0 "
                      f"(within ±{STD_MARGIN:.0%})", V.per_unit(d, unit, "std_ratio"), 1.0, margin=STD_MARGIN,
                      catalog=["Claim: residual std matches sigma0"], **kw),
        V.below(f"residual-rho-below-0.02/{run}", f"{label}: max |Pearson rho| of the residual over 8 directions is "
                f"below {RHO_LIMIT}", V.per_unit(d, unit, "res_abs_rho"), RHO_LIMIT,
                catalog=["Claim: residual correlation below 0.02"], **kw),
        V.below(f"residual-normal/{run}", f"{label}: residuals pass D'Agostino-Pearson normality (p > 0.05): the "
                f"normality test rejects at most {REJECT_LIMIT:.0%} of them (5% for exact Gaussian noise)",
                V.per_unit(d, unit, "rejected"), REJECT_LIMIT,
                catalog=["Claim: residual normality p-values above 0.05"], **kw),
        V.below(f"mse-ratio-below-2/{run}", f"{label}: MSE ratio ours / MMSE is below 2",
                V.per_unit(per_img, unit, "ratio"), 2.0, catalog=["Claim: MSE ratio below 2"], **kw),
    ]


# ------------------------------------------------------------------------------------------------ build
def curves(prm: dict) -> dict:
    """The PLOTS curves from the results: std(y - x_hat) / sigma0 per sigma0, samples (ours) and MMSE, mean over runs
    and images."""
    den = _read(runtime.results_dir(prm, PAPER) / "denoise.csv")
    if den.empty:
        return {}
    d = den.assign(ours=den.res_std / den.sigma0, mmse=den.mmse_res_std / den.sigma0)
    return {"residual_std": d.groupby("sigma0")[["ours", "mmse"]].mean().reset_index()}

def build(prm: dict) -> None:
    """Every table, figure, claim and published-number comparison of Kawar et al. 2021 for this profile, from the
    results and manifests -> summary.json and the details page."""
    plt = style()
    res = runtime.results_dir(prm, PAPER)
    fig_dir, tab_dir = runtime.figures_dir(prm, PAPER), runtime.tables_dir(prm, PAPER)
    den, inp, exact = _read(res / "denoise.csv"), _read(res / "inpaint.csv"), _read(res / "exactness.csv")
    avail = availability.read(res).drop(columns="stage").rename(columns={"item": "run"})
    reasons = availability.unavailable(res)
    all_runs = (ran(prm, PAPER, "kawar2021_denoise") if "kawar2021_denoise" in manifests(prm, PAPER) else prm)["runs"]
    ran_runs = sorted(den.run.unique()) if not den.empty else []
    scale = (f"{prm['profile']}: " + (", ".join(f"{r} ({all_runs[r].get('dataset', r)})" for r in ran_runs)
                                      or "no run had its files"))
    setting = "paper" if any(all_runs[r]["prior"]["kind"] == "ncsnv2" for r in ran_runs) else "analogue"
    universal_pre = universal_prior_precondition(prm)

    def run_kw(run: str) -> dict:
        """Setting and precondition of one run: NCSNv2 on the paper's data is the paper's own; the rest analogues."""
        kind = all_runs[run]["prior"]["kind"]
        return {"setting": "paper" if kind == "ncsnv2" else "analogue",
                "precondition": universal_pre if kind == "universal" else ""}
    items, claims, comparisons = {}, [], []
    den_arr, inp_arr = _load_arrays(res, "denoise"), _load_arrays(res, "inpaint")

    def why_missing(run: str) -> str:
        if run in reasons:
            return f"{run}: {reasons[run]}"
        if run not in all_runs:
            return f"the {run} run (NCSNv2 checkpoint + data set) belongs to the paper profile; this is {prm['profile']}"
        return ""

    # ---- availability table
    if not avail.empty:
        write_markdown(tab_dir / "availability.md", "Kawar et al. 2021: runs and what they need",
                       markdown_table(avail.drop_duplicates("run")))

    # ---- figures per run that ran
    produced: dict[tuple, list] = {}
    def describe(run: str) -> str:
        """'dataset, prior: ' for a figure title (what the reader must know to compare with the paper's figure)."""
        r = all_runs[run]
        prior = r["prior"]["kind"] if prm.get("prior_override") is None else f"user prior {prm['prior_override']}"
        return f"{r.get('dataset', run)}, prior {prior}: "

    for run, arrs in den_arr.items():
        for s0 in all_runs[run]["sigma0s"]:
            tag = f"{run}_s{float(s0):.3f}"
            produced[(run, "grid", float(s0))] = [fig_grid(plt, arrs, s0, fig_dir / f"grid_{tag}.png", describe(run))]
            produced[(run, "diff", float(s0))] = [fig_diff(plt, arrs, s0, fig_dir / f"diff_{tag}.png")]
            produced[(run, "hist", float(s0))] = [fig_hist(plt, arrs, s0, fig_dir / f"hist_{tag}.png")]
            produced[(run, "residual", float(s0))] = [fig_residual(plt, arrs, s0, fig_dir / f"residual_{tag}.png")]
            produced[(run, "steps", float(s0))] = [fig_steps(plt, arrs, s0, fig_dir / f"steps_{tag}.png")]
    for run, arrs in inp_arr.items():
        for kind in all_runs[run]["inpaint"]["masks"]:
            if not any(kind in a["masks"] for a in arrs.values()):
                continue
            produced[(run, "inpaint", kind)] = [fig_inpaint(plt, arrs, kind, fig_dir / f"inpaint_{run}_{kind}.png",
                                                            describe(run))]
            produced[(run, "inpaint_steps", kind)] = [
                fig_steps(plt, {i: a for i, a in arrs.items() if kind in a["masks"]}, kind,
                          fig_dir / f"inpaint_steps_{run}_{kind}.png", inpaint=True)]

    def analogue(kind: str, where) -> list[str]:
        """Files of the same figure kind from the runs that did run (largest sigma0 <= the paper's, else any)."""
        cands = [k for k in produced if k[1] == kind]
        if isinstance(where, str):
            cands = [k for k in cands if k[2] == where] or cands
        elif where is not None and cands:
            best = _nearest([k[2] for k in cands], where)
            cands = [k for k in cands if k[2] == best]
        return [rel(f) for k in cands for f in produced[k]]

    for item, (run, kind, where) in FIGURES.items():
        key = next((k for k in produced if k[0] == run and k[1] == kind and (where is None or k[2] == where
                                                                              or (isinstance(where, float) and abs(k[2] - where) < 2e-3))), None)
        if key is not None:
            files = [rel(f) for k in produced if k[0] == run and k[1] == kind for f in produced[k]] if where is None \
                else [rel(f) for f in produced[key]]
            items[item] = {"status": PRODUCED, "files": files, "note": f"{run}, {kind}, {where}"}
        elif run in ran_runs:   # the run had its files, but this profile ran other noise levels
            items[item] = {"status": NOT_RUN_AT_SCALE, "files": analogue(kind, where),
                           "note": f"the {run} run of this profile does not include {kind} at {where}"}
        else:
            alt = analogue(kind, where)
            items[item] = {"status": NOT_AVAILABLE, "files": alt,
                           "note": f"needs the paper's {run} run ({why_missing(run)})"
                                   + (f"; linked: the same {kind} figure from this profile's runs "
                                      f"({', '.join(sorted({k[0] for k in produced if k[1] == kind}))}), an analogue only"
                                      if alt else "")}

    # ---- Table 1
    files = []
    t1 = table1(den, prm["seed"]) if not den.empty else pd.DataFrame()
    if not t1.empty:
        write_csv(tab_dir / "table1.csv", t1)
        files.append(write_markdown(
            tab_dir / "table1.md", f"Kawar et al. 2021, Table 1 ({scale}): PSNR (dB) of BM3D / MMSE / ours, MSE ratio",
            "Mean PSNR over images (ours: over images and samples; skimage convention, outputs clamped to [0, 1]); "
            "'MSE ratio' = mean MSE ours / mean MSE MMSE; 'ratio from PSNRs' = 10^((PSNR_MMSE - PSNR_ours)/10) as the "
            "paper's column appears to be computed (NOTES.md §4); per-image ratio with a 95% bootstrap CI. "
            "'RMS D(x)-x at sigma_L': the prior denoiser applied to the clean image at sigma_L = 0.01 (an MMSE "
            "denoiser leaves it almost unchanged, << 0.01; a larger value means the prior's score near sigma_L is "
            "wrong and the chains drift, whatever the sampler).\n\n"
            + markdown_table(t1, ".3f")))
    pub1 = pd.read_csv(find_published("kawar2021_table1.csv"))
    first = den.drop_duplicates(["run", "sigma0", "image_index"]) if not den.empty else den
    per_image = {
        "PSNR BM3D": first.set_index(["run", "sigma0", "image_index"]).psnr_bm3d if not den.empty else None,
        "PSNR MMSE": first.set_index(["run", "sigma0", "image_index"]).psnr_mmse if not den.empty else None,
        "PSNR ours": den.groupby(["run", "sigma0", "image_index"]).psnr_ours.mean() if not den.empty else None,
        "MSE ratio": (den.groupby(["run", "sigma0", "image_index"]).mse_ours.mean()
                      / first.set_index(["run", "sigma0", "image_index"]).mse_mmse) if not den.empty else None}
    for r in t1.itertuples() if not t1.empty else []:
        ds = PUBLISHED_DATASET.get(r.run)
        if ds is None:
            continue
        cond = f"denoising sigma0={r.sigma0:.3f}"
        for method, col, metric in (("BM3D", "PSNR BM3D", "psnr"), ("MMSE", "PSNR MMSE", "psnr"),
                                    ("Ours", "PSNR ours", "psnr"),
                                    ("Ours_vs_MMSE (MSE_ours/MSE_MMSE)", "MSE ratio", "mse_ratio")):
            p = pub1[(pub1.dataset == ds) & (pub1.task_or_setting == cond) & (pub1.method == method)]
            if p.empty:
                continue
            values = per_image[col].loc[(r.run, r.sigma0)].to_numpy()
            comparisons.append(V.compare(values, float(p.value.iloc[0]), item="Table 1", cell=f"{ds} {cond} {method}",
                                         metric=metric, situation="own", uncertainty="images",
                                         source="kawar2021_table1.csv", **run_kw(r.run)))
    t1_cells = sum(c.item == "Table 1" for c in comparisons)
    if not t1_cells:
        items["Table 1"] = {"status": NOT_AVAILABLE, "files": [rel(f) for f in files],
                            "note": f"needs {why_missing('celeba')} and {why_missing('lsun_bedroom')}"
                                    + ("; linked: the same table for this profile's runs (not the paper's cells)"
                                       if files else "")}
    else:
        items["Table 1"] = {"status": V.combine([c.verdict for c in comparisons if c.item == "Table 1"]),
                            "files": [rel(f) for f in files], "note": f"{t1_cells} published cells"}

    # ---- Tables 2/3: hyperparameters of the paper profile
    hp, hp_ok = hyperparams_check()
    if not hp.empty:
        f = write_markdown(tab_dir / "hyperparams.md", "Kawar et al. 2021: Tables 2/3 and section 4.1 vs the paper profile",
                           "L: the printed L against 1 + the number of NCSNv2 ladder levels below sigma0 (NOTES.md §4).\n\n"
                           + markdown_table(hp, ".4g"))
        for t in ("Table 2", "Table 3"):
            items[t] = {"status": SETTINGS_MATCH if hp_ok else V.DIFFERS, "files": [rel(f)],
                        "note": "parameters consumed by the paper profile (params.yaml, kawar2021.paper); all match"
                                if hp_ok else "some parameters differ, see the table"}

    # ---- Table 4: LPIPS
    lp_why = next((r.get("reason", "") for m in manifests(prm, PAPER).values()
                   for name, r in m.get("assets", {}).items() if "lpips" in name and not r.get("available")), "")
    has_lp = not den.empty and den.lpips_ours.notna().any()
    if has_lp:
        g = den.groupby(["run", "sigma0"]).agg(lpips_ours=("lpips_ours", "mean"), lpips_mmse=("lpips_mmse", "mean"),
                                               n=("image_index", "nunique")).reset_index()
        g["improvement %"] = 100 * (g.lpips_mmse - g.lpips_ours) / g.lpips_mmse
        f4 = write_markdown(tab_dir / "table4.md", f"Kawar et al. 2021, Table 4 ({scale}): LPIPS v0.1 ({prm['lpips_net']})",
                            markdown_table(g, ".4f"))
        for run, dr in den.groupby("run"):
            per_img = dr.groupby(["sigma0", "image_index"]).agg(o=("lpips_ours", "mean"), m=("lpips_mmse", "first"))
            per_img = per_img.assign(d=per_img.m - per_img.o).reset_index()
            claims.append(V.superiority(f"lpips-ours-below-mmse/{run}", f"{run}: LPIPS of our samples is lower than "
                                        "the MMSE output's", V.per_unit(per_img, ["image_index"], "d"), 0.0,
                                        catalog=["Claim: LPIPS about 16% lower"], **run_kw(run)))
        items["Table 4"] = {"status": NOT_AVAILABLE if "celeba" not in set(g.run) else PRODUCED, "files": [rel(f4)],
                            "note": "CelebA: " + why_missing("celeba") if "celeba" not in set(g.run) else ""}
    else:
        items["Table 4"] = {"status": NOT_AVAILABLE, "files": [],
                            "note": f"LPIPS: {lp_why.splitlines()[0] if lp_why else 'not computed'}; "
                                    f"CelebA: {why_missing('celeba')}"}
        items["Claim: LPIPS about 16% lower"] = {"status": NOT_AVAILABLE, "files": [], "note": items["Table 4"]["note"]}

    # ---- section 4.2: residual analysis + claims
    if not den.empty:
        rt = residual_table(den)
        fr = write_markdown(tab_dir / "residuals.md", f"Kawar et al. 2021, section 4.2 ({scale}): residual y - x_hat",
                            "Per residual image: empirical std, D'Agostino-Pearson normality p (scipy.stats.normaltest), "
                            "max |Pearson rho| over the 8 neighbour directions.\n\n" + markdown_table(rt, ".3f"))
        fig, ax = plt.subplots(figsize=(4, 3.2))
        for run, g in den.groupby("run"):
            a = g.groupby("sigma0").res_std.agg(["mean", "min", "max"])
            ax.errorbar(a.index, a["mean"], yerr=[a["mean"] - a["min"], a["max"] - a["mean"]], fmt="o", label=f"ours ({run})")
            m = g.drop_duplicates(["sigma0", "image_index"]).groupby("sigma0").mmse_res_std.mean()
            ax.plot(m.index, m.values, "s", mfc="none", label=f"MMSE ({run})")
        lim = [0, float(den.sigma0.max()) * 1.1]
        ax.plot(lim, lim, "k:", lw=1, label="std = σ0")
        ax.set(xlabel="σ0", ylabel="std of y − x̂", title="residual std vs σ0")
        ax.legend(fontsize=6)
        fs = save_figure(fig_dir / "residual_std_vs_sigma0.png", fig)
        items["Section 4.2 residual analysis"] = {"status": PRODUCED, "files": [rel(fr), rel(fs)], "note": scale}
        for run, g in den.groupby("run", sort=True):
            claims += run_claims(run, g, all_runs[run].get("dataset", run), **run_kw(run))
        # timing of the network priors (the analytic Gaussian prior's FFT "denoiser" is too cheap to say anything)
        nets = [r for r in den.run.unique() if all_runs[r]["prior"]["kind"] != "gaussian"] or list(den.run.unique())
        timed = den[den.run.isin(nets)]
        calls = timed.drop_duplicates(["run", "sigma0", "image_index"])
        rate = (calls.denoiser_calls / calls.denoiser_seconds).median()
        ovh = calls.sampler_overhead.median()
        sec8 = float(timed.seconds_ours_per_sample.median()) * 8
        where = manifests(prm, PAPER).get("kawar2021_denoise", {}).get("run", {})
        items["Performance"] = {"status": PRODUCED, "files": [], "note":
                                f"{', '.join(nets)}: median {rate:.1f} batched denoiser calls/s, sampler overhead "
                                f"{100 * ovh:.1f}% of the denoiser time; {sec8:.1f} s per 8 samples "
                                f"(median over sigma0) at {prm['profile']} sizes "
                                f"({where.get('processor', '?')}, {where.get('cpu_threads', '?')} threads)"}
        celeba_ran = "celeba" in ran_runs   # then only the GPU is missing (a dry run on a CPU), not a file
        items["Claim: runtime about 2 minutes for 8 CelebA images"] = {
            "status": NOT_RUN_AT_SCALE if celeba_ran else NOT_AVAILABLE, "files": [],
            "note": ("a GPU timing at the paper's size; this run" if celeba_ran else
                     f"needs NCSNv2 CelebA on a GPU ({why_missing('celeba')}); here") + ": " + items["Performance"]["note"]}
    for item in ("Claim: Fig. 5 residual std 0.59 or 0.6", "Claim: images up to 256x256"):
        run = "celeba" if "Fig. 5" in item else "ffhq"
        if den.empty or run not in set(den.run):
            items[item] = {"status": NOT_AVAILABLE, "files": [], "note": why_missing(run)}
    if not den.empty and "celeba" in set(den.run):
        g = den[(den.run == "celeba") & ((den.sigma0 - 0.607).abs() < 1e-3)]
        if not g.empty:
            claims.append(V.check("fig5-std", "CelebA sigma0=0.607: residual std rounds to 0.59 or 0.60",
                                  bool(g.res_std.round(2).isin([0.59, 0.6]).all()), float(g.res_std.mean()), len(g),
                                  "every sample", catalog=["Claim: Fig. 5 residual std 0.59 or 0.6"],
                                  **run_kw("celeba")))

    # ---- exactness under the Gaussian prior (theoretical MSE ratio 2)
    if not exact.empty:
        fe = write_markdown(tab_dir / "exactness.md", "Algorithm 1 under an analytic Gaussian prior (closed form)",
                            "Expected MSE of one sample over the MMSE (exact posterior sampling: 2), for each run's "
                            "eps / T / ladder; variance_ratio_mean = algorithm output variance over posterior variance, "
                            "averaged over frequencies.\n\n" + markdown_table(exact, ".4g"))
        # the runs' own settings; rows of another step size (also_epsilon: FFHQ's text vs table) are shown, not tested
        own = exact[exact.epsilon_source.str.startswith("params")] if "epsilon_source" in exact else exact
        dev = float((own.mse_ratio_closed_form - 2).abs().max())
        claims.append(V.check(
            "gaussian-mse-ratio-2", "With an exact posterior sampler the MSE ratio is 2: Algorithm 1 with these "
                                    "settings gets within 0.1 of it on a Gaussian prior", bool(dev < 0.1),
            float(own.mse_ratio_closed_form.mean()), len(own),
            f"closed form, max |ratio - 2| = {dev:.3f}; tests/test_langevin.py checks samples against it"))
        items["Exactness (Gaussian prior)"] = {"status": PRODUCED, "files": [rel(fe)], "note": "closed form"}

    # ---- inpainting table
    if not inp.empty:
        it = inp.groupby(["run", "mask", "sigma0"]).agg(
            images=("image_index", "nunique"), missing=("missing_fraction", "mean"), psnr=("psnr", "mean"),
            psnr_missing=("psnr_missing", "mean"), observed_residual_std=("observed_residual_std", "mean")).reset_index()
        fi = write_markdown(tab_dir / "inpainting.md", f"Kawar et al. 2021: noisy inpainting, Algorithm 2 ({scale})",
                            "PSNR over the whole image and over the missing pixels; std of y - x_hat on observed pixels "
                            "(should be about sigma0).\n\n" + markdown_table(it, ".3f"))
        items["Inpainting summary"] = {"status": PRODUCED, "files": [rel(fi)], "note": scale}

    write_plots(prm, PAPER, PLOTS, curves(prm))
    write_summary(prm, PAPER, items, claims, comparisons, scale, setting)

