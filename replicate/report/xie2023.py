"""Report for Xie et al. 2023: Tables 1-4 (PSNR and SSIM), Figs. 2 and 3, the claims, and the published numbers.

Reads only the stage outputs in results/<profile>/xie2023/ (applicability.csv, denoise.csv, robustness.csv,
training.csv, fig3.pt) and the stages' manifests. Unit of evidence: the test image; a claim the paper makes on several
noise models is tested on each of them (all must hold).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from replicate import params as P
from replicate import runtime
from replicate.io import save_figure
from replicate.params import code_profile
from replicate.report import verdicts as V
from replicate.report.common import (NOT_RUN_AT_SCALE, PRODUCED, SETTINGS_MATCH, failed_preconditions, manifests,
                                     markdown_table, ran, rel, show_image, style, write_markdown, write_plots,
                                     write_summary)
from replicate.report.published import load_published, load_published_file

PAPER = "xie2023"
#: DVC plots: Fig. 2's robustness curve (PSNR vs the relative error of the noise parameters)
PLOTS = {"robustness": {"x": "rate", "y": ["psnr"], "title": "PSNR vs noise-parameter error rate (Fig. 2)"}}
METHODS = ("SL", "Nr2N", "Nb2Nb", "Ours")          # the paper's columns, in its order
# "far above" / "very poorly": the paper's gaps are 6 dB (Table 2, with A) and 17 dB (Rayleigh); we ask for 3 dB.
FAR_DB = 3.0
# "PSNR only reduces about 1 dB" at r = 0.1: equivalence to 1 dB within ±0.5 dB (TOST), the width "about" implies
ABOUT_DB, ABOUT_MARGIN = 1.0, 0.5
NEAR_DB = 0.5   # "close to": within ±0.5 dB (TOST)


def _published_numbers() -> pd.DataFrame:
    pub = load_published(PAPER)
    pub = pub[pub["metric"] == "psnr"].copy()
    pub["no"] = pub["task_or_setting"].str.extract(r"No\.(\d+)").astype(int)
    return pub


def table1(res) -> tuple[pd.DataFrame, int]:
    """Table 1 from the applicability the experiment stage derived from what the code can run, next to the print."""
    app = pd.read_csv(res / "applicability.csv")
    pub = load_published_file("xie2023_table1_applicability.csv")
    rows, mismatches = [], 0
    for r in app.itertuples(index=False):
        row = {"No.": r.no, "noise model": r.model}
        for m in ("SL", "Nr2N", "Nb2Nb", "N2S", "Ours"):
            printed = pub[(pub.noise_no == str(r.no)) & (pub.method == m)]["applicability"].iloc[0]
            ours = getattr(r, m)
            row[m] = ours if ours == printed else f"{ours} (paper {printed})"
            mismatches += ours != printed
        rows.append(row)
    return pd.DataFrame(rows), mismatches


def _paired(df: pd.DataFrame, nos, a: str, b: str | list[str], metric="psnr"):
    """Per (image, model) values of method a and of b (or the best of several b), aligned."""
    sub = df[df.no.isin(nos)]
    wide = sub.pivot_table(index=["set", "image_index", "no"], columns="method", values=metric)
    bs = [b] if isinstance(b, str) else b
    if a not in wide or not all(x in wide for x in bs):
        return None, None
    wide = wide.dropna(subset=[a, *bs])
    if len(wide) < 2:
        return None, None
    return wide[a].to_numpy(), wide[bs].max(axis=1).to_numpy()


def curves(prm: dict) -> dict:
    """The PLOTS curves from the results: mean PSNR over images, models and repeats per perturbation rate."""
    import pandas as pd

    path = runtime.results_dir(prm, PAPER) / "robustness.csv"
    rob = pd.read_csv(path) if path.exists() else pd.DataFrame()
    return {} if rob.empty else {"robustness": rob.groupby("rate").psnr.mean().reset_index()}

def build(prm: dict) -> None:
    """Every table, figure, claim and published-number comparison of Xie et al. 2023 for this profile, from the
    results and manifests -> summary.json and the details page."""
    plt = style()
    res = runtime.results_dir(prm, PAPER)
    fig_dir, tab_dir = runtime.figures_dir(prm, PAPER), runtime.tables_dir(prm, PAPER)
    den = pd.read_csv(res / "denoise.csv")
    rob = pd.read_csv(res / "robustness.csv") if (res / "robustness.csv").exists() else pd.DataFrame()
    trn = pd.read_csv(res / "training.csv")
    g = ran(prm, PAPER, "xie2023_denoise")
    names = dict(zip(den.no, den.model))
    at_scale = code_profile(prm) == "paper" and g["subset"] == "full"
    models = sorted(int(n) for n in den.no.unique())
    scale = (f"paper{', CPU subset' if g['subset'] == 'cpu_subset' else ''}: models {models}" if
             code_profile(prm) == "paper" else f"{prm['profile']}: models {models}, small U-Nets trained on embedded data")
    setting = "paper" if at_scale else "analogue"
    pre = "; ".join(failed_preconditions(prm, PAPER).values())
    kw = {"setting": setting, "precondition": pre}
    items, claims, comparisons = {}, [], []
    pub = _published_numbers()

    # -- Table 1: derived by the experiment from what the code can run: a check of the configuration
    if (res / "applicability.csv").exists():
        t1, mism = table1(res)
        p1 = write_markdown(tab_dir / "table1.md", "Table 1: applicability (derived from the code)",
                            markdown_table(t1) + f"\n{mism} of 80 cells differ from the printed table.\n")
        items["Table 1"] = {"status": SETTINGS_MATCH if mism == 0 else V.DIFFERS, "files": [rel(p1)],
                            "note": f"which method the code can run per model; {mism}/80 cells differ (a check of the "
                                    "code's scope, not a result)"}

    # -- Tables 2-4 (PSNR with the official max(gt) peak, PSNR peak 255, SSIM), measured next to published
    notes = "; ".join(sorted(set(str(n) for n in trn.get("notes", pd.Series(dtype=str)).dropna() if str(n))))
    if pre:
        notes += f" Precondition failed (claims on these runs are inconclusive): {pre}."
    for table in ("Table 2", "Table 3", "Table 4"):
        sub = den[den.table == table]
        if sub.empty:
            items[table] = {"status": NOT_RUN_AT_SCALE, "files": [],
                            "note": f"no noise model of {table} in the {scale} grid"}
            continue
        body, files = "", []
        for metric in ("psnr", "psnr_255", "ssim"):
            agg = sub.groupby(["no", "set", "method"])[metric].mean().unstack("method")
            agg = agg[[m for m in (*METHODS, "Ours (exact root)") if m in agg.columns]]
            out = agg.reset_index()
            out.insert(1, "model", [names[n] for n in out["no"]])
            if metric == "psnr":   # the noisy input, for reference (same PSNR convention)
                noisy = sub.groupby(["no", "set"]).psnr_in.mean()
                out.insert(3, "Noisy", [noisy[(n, s_)] for n, s_ in zip(out["no"], out["set"])])
            if metric == "psnr":
                for m in METHODS:
                    vals = []
                    for no, ds in zip(out["no"], out["set"]):
                        cell = pub[(pub.no == no) & (pub.dataset == ds) & (pub.method == m)]
                        vals.append(float(cell.value.iloc[0]) if len(cell) else np.nan)
                    if np.isfinite(vals).any():
                        out[f"{m} (paper)"] = vals
            body += f"\n## {metric} (mean over images; {'PSNR peak = max(gt), official code' if metric == 'psnr' else 'PSNR peak 255' if metric == 'psnr_255' else 'SSIM, skimage defaults'})\n\n"
            body += markdown_table(out, ".4f" if metric == "ssim" else ".2f")
        n_img = sub.groupby("set").image_index.nunique().to_dict()
        body += f"\nImages per set: {n_img}. Training: {trn.steps.max()} steps per network. {notes}\n"
        path = write_markdown(tab_dir / f"{table.lower().replace(' ', '')}.md", f"{table} ({scale})", body)
        files.append(rel(path))
        # comparisons with the published cells: only meaningful on the paper's test sets at the paper's scale
        for (no, ds, m), cell in sub.groupby(["no", "set", "method"]):
            p = pub[(pub.no == no) & (pub.dataset == ds) & (pub.method == m)]
            if p.empty or not at_scale:   # the paper's test sets at the paper's scale only
                continue
            comparisons.append(V.compare(V.per_unit(cell, ["image_index"], "psnr"), float(p.value.iloc[0]),
                                         item=table, cell=f"No.{no} {ds} {m}", metric="psnr", situation="retrained",
                                         source="xie2023 " + table.lower().replace(" ", ""), **kw))
        done = [c.verdict for c in comparisons if c.item == table]
        status = V.combine(done) if done else NOT_RUN_AT_SCALE
        items[table] = {"status": status, "files": files,
                        "note": f"{scale}: models {sorted(int(n) for n in sub.no.unique())}, sets {sorted(sub.set.unique().tolist())}; "
                                + ("" if at_scale else "reduced scale, not comparable cell by cell; ") + notes}

    # -- Fig. 2: robustness to the noise parameters
    if not rob.empty:
        fig, ax = plt.subplots(figsize=(4.6, 3.4))
        per = rob.groupby(["no", "rate", "set", "image_index"]).psnr.mean().reset_index()
        for no, s in per.groupby("no"):
            agg = s.groupby("rate").psnr.agg(["mean", "sem"]).reset_index()
            ax.errorbar(agg["rate"], agg["mean"], yerr=1.96 * agg["sem"].fillna(0), marker="o", capsize=3,
                        label=names.get(no, f"No.{no}"))
        ax.set_xlabel("disturbance rate r"), ax.set_ylabel("PSNR (dB)"), ax.legend(fontsize=7)
        ax.set_title("Fig. 2: PSNR vs disturbance rate (network score, no retraining)\n"
                     "error bars: 95% normal interval of the mean over test images", fontsize=8)
        f2 = save_figure(fig_dir / "fig2_robustness.png", fig)
        items["Fig. 2"] = {"status": PRODUCED, "files": [rel(f2)],
                           "note": "network score solver (the trained AR-DAE score, same y; only the equation's "
                                   f"parameters perturbed: {sorted(c[7:] for c in rob.columns if c.startswith('factor_'))})"}
        base = per[per.rate == 0].set_index(["no", "set", "image_index"]).psnr
        at01 = per[np.isclose(per.rate, 0.1)].set_index(["no", "set", "image_index"]).psnr
        common = base.index.intersection(at01.index)
        if len(common):
            drop = (base[common] - at01[common]).rename("d").reset_index()
            for no, d in drop.groupby("no"):   # on each model of Fig. 2
                claims.append(V.equivalence(f"xie-r0.1-drop/No.{no}", f"{names.get(no, no)}: PSNR drops about "
                                            f"{ABOUT_DB:g} dB at r = 0.1 (within ±{ABOUT_MARGIN:g} dB)",
                                            V.per_unit(d, ["set", "image_index"], "d"), ABOUT_DB, margin=ABOUT_MARGIN,
                                            catalog=["Claim: PSNR drops about 1 dB at r = 0.1"], **kw))
    else:
        items["Fig. 2"] = {"status": NOT_RUN_AT_SCALE, "files": [], "note": "robustness stage not run"}

    # -- Fig. 3: qualitative grid
    f3p = res / "fig3.pt"
    if f3p.exists():
        f3 = torch.load(f3p, weights_only=False)
        rows = f3["rows"]
        cols = ["Noisy", "GT", *METHODS]
        fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.7 * len(cols), 1.8 * len(rows)), squeeze=False)
        for i, row in enumerate(rows):
            for j, c in enumerate(cols):
                ax = axes[i][j]
                img = row["noisy"] if c == "Noisy" else f3["clean"] if c == "GT" else row["outputs"].get(c)
                if img is None:
                    ax.axis("off")
                    continue
                title = c + (f" {row['psnr'][c]:.1f}" if c in row["psnr"] else "")
                if c == "Noisy":
                    title = f"No.{row['no']} noisy"
                show_image(ax, img, title if i == 0 or c in row["psnr"] or c == "Noisy" else "")
        f3f = save_figure(fig_dir / "fig3_qualitative.png", fig)
        items["Fig. 3"] = {"status": PRODUCED, "files": [rel(f3f)], "note": f"{f3['set']} image {f3['image']}"}
    items["Fig. 1"] = {"status": PRODUCED, "files": [], "note": "schematic (estimate s(y), solve s(y) = f(x, y)); "
                                                                 "replicate/solvers/score_denoise.py is its code"}

    # -- claims on Tables 2-4: per model the paper names (all must hold), paired over test images
    def claim(cid, text, nos, a, b, *, shift=0.0, catalog=None, kind="greater"):
        parts = []
        for no in nos:
            va, vb = _paired(den, [no], a, b)
            if va is None:
                continue
            parts.append(V.superiority(f"No.{no}", "", va, vb, min_effect=shift) if kind == "greater" else
                         V.equivalence(f"No.{no}", "", va, vb, margin=NEAR_DB))
        if parts:
            claims.append(V.all_of(cid, text, parts, catalog=catalog or [], **kw))

    others = lambda m: [x for x in ("SL", "Nr2N", "Nb2Nb", "Ours") if x != m]  # noqa: E731
    claim("xie-sl-best-t2", "SL above every other method (Table 2)", [1, 2, 3, 4], "SL", others("SL"),
          catalog=["Claim: supervised learning performs best (Table 2)"])
    claim("xie-sl-best-all", "SL above both Ours and Nb2Nb (all models run)", list(range(1, 17)), "SL", ["Ours", "Nb2Nb"])
    claim("xie-nb2nb-best-noA", "Nb2Nb above Nr2N and Ours without A (No.1, 3)", [1, 3], "Nb2Nb", ["Nr2N", "Ours"],
          catalog=["Claim: Nb2Nb best unsupervised without A (Table 2)"])
    claim("xie-ours-near-nb2nb", f"Ours within {NEAR_DB} dB of Nb2Nb on simple noise (No.1)", [1], "Ours", "Nb2Nb",
          kind="equal")
    claim("xie-nb2nb-poor-A", f"Ours more than {FAR_DB} dB above Nb2Nb with A (No.2, 4)", [2, 4], "Ours", "Nb2Nb",
          shift=FAR_DB, catalog=["Claim: Nb2Nb very poor with A (Table 2)"])
    claim("xie-ours-best-no2", "Ours above Nr2N and Nb2Nb on No.2", [2], "Ours", ["Nr2N", "Nb2Nb"],
          catalog=["Claim: Ours best unsupervised on the second noise model (Table 2)"])
    claim("xie-nb2nb-beats-ours-gp", "Nb2Nb above Ours on Gamma and Poisson (No.5, 7)", [5, 7], "Nb2Nb", "Ours",
          catalog=["Claim: Nb2Nb beats Ours on Gamma and Poisson (Table 3)"])
    claim("xie-ours-rayleigh", f"Ours more than {FAR_DB} dB above Nb2Nb on Rayleigh (No.9)", [9], "Ours", "Nb2Nb",
          shift=FAR_DB, catalog=["Claim: Ours excellent on Rayleigh, Nb2Nb poor (Table 3)"])
    claim("xie-ours-beats-nb2nb-t4", "Ours above Nb2Nb on mixtures No.12-16", [12, 13, 14, 15, 16], "Ours", "Nb2Nb",
          catalog=["Claim: Ours beats Nb2Nb except the first model (Table 4)"])
    # Sec. 3.2: the closed forms are Noise2Score (Tweedie) on the same score
    if "n2s_max_abs_diff" in den and den.n2s_max_abs_diff.notna().any():
        worst = float(den.n2s_max_abs_diff.max())
        claims.append(V.check("xie-equals-noise2score", "Ours equals Noise2Score (Tweedie) on exponential-family models",
                              worst < 1e-6 * 255, worst, int(den.n2s_max_abs_diff.notna().sum()),
                              "max |ours - tweedie| over pixels and images, 0-255 scale (float64)", setting="paper"))

    # -- training and performance
    perf = trn.groupby("method").agg(runs=("no", "size"), steps=("steps", "max"), seconds=("seconds", "sum"),
                                     loss_first=("loss_first", "mean"), loss_last=("loss_last", "mean")).reset_index()
    out = prm.get("baseline_output", "direct")
    notes = sorted({n for n in trn.get("notes", pd.Series(dtype=str)).dropna() if n})
    pp = write_markdown(tab_dir / "training.md", f"Training ({scale})", markdown_table(perf) +
                        f"\nTotal training time {trn.seconds.sum():.0f} s on "
                        f"{manifests(prm, PAPER).get('xie2023_train', {}).get('run', {}).get('processor', '?')}. "
                        f"Baselines (SL, Nr2N, Nb2Nb) output: {out}"
                        f"{' (y + net(y), a stated CPU-profile setting; see params.yaml)' if out == 'residual' else ''}"
                        f"; training images: {int(trn.train_images.max())}"
                        f"{'; ' + '; '.join(notes) if notes else ''}.\n" + _paper_cost_text(prm))
    items["Performance"] = {"status": PRODUCED, "files": [rel(pp)], "note": f"{trn.seconds.sum():.0f} s training"}
    write_plots(prm, PAPER, PLOTS, curves(prm))
    write_summary(prm, PAPER, items, claims, comparisons, scale, setting)


def _paper_cost_text(prm: dict) -> str:
    """The paper profile's projected training bill (written by the train stage from a timing on this machine)."""
    path = runtime.results_dir(prm, PAPER) / "training_cost.csv"
    if not path.exists():
        return ""
    c = pd.read_csv(path).iloc[0]
    return (f"\n## The paper profile's training\n\n{int(c.runs)} runs (the full grid) x {int(c.steps)} steps x batch "
            f"{int(c.batch)} of {int(c.crop)}x{int(c.crop)} crops on the {c.parameters / 1e6:.1f} M-parameter U-Net. "
            f"One forward + backward per crop takes {c.seconds_per_crop_cpu:.2f} s here (measured on "
            f"{int(c.measured_crop)} px crops with {int(c.threads)} threads, scaled by pixels): "
            f"**{c.cpu_hours:,.0f} CPU-hours** on this machine, **~{c.gpu_hours_projected:,.0f} GPU-hours** at the "
            f"ASSUMED CPU->GPU factor of {c.cpu_to_gpu_assumed:.0f} (see costs.md). Mini trains the reduced grid "
            f"above in the seconds shown.\n")
