"""Report for Elad's lecture: the four "discoveries" of one MMSE denoiser, from the per-image results of
replicate/experiments/elad_lecture.py.

Perception index (LPIPS needs AlexNet/VGG weights that are not in this mirror): the ratio of the high-frequency
energy of an estimate to that of the clean image, hf = std(Laplacian(x_hat)) / std(Laplacian(x)), reported as
|log2 hf| (0 = the detail of a natural image; MMSE estimates are too smooth, hf < 1). It is a no-reference-style
statistic (it uses the clean image only for its energy level), stated as such in every table and figure.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from replicate import params as P
from replicate import runtime
from replicate.io import save_figure
from replicate.params import code_profile
from replicate.report import verdicts as V
from replicate.report.common import (NOT_RUN_AT_SCALE, PRODUCED, SETTINGS_MATCH, markdown_table, rel, show_image, style,
                                     universal_prior_precondition, write_markdown, write_plots, write_summary)

PAPER = "elad_lecture"
#: DVC plots: the "is denoising dead?" curves, output PSNR vs sigma for the classic and the learned denoisers
PLOTS = {"denoisers": {"x": "sigma", "y": ["BM3D", "NLM", "TV", "wavelet", "learned prior"],
                       "title": "denoising PSNR vs sigma (0-255), classic vs the learned prior"}}

PERCEPTION_NOTE = ("perception index |log2 hf|, hf = std of the Laplacian of the estimate / that of the clean image "
                   "(0 is best; LPIPS is not available here: its AlexNet weights are not in the mirror)")


def _load(res, name):
    path = res / name
    return pd.read_csv(path) if path.exists() else None


# Our denoiser for each published reference row of the classic table, and whether it is the same method: BM3D (the
# bm3d package) and Zhang et al.'s DnCNN-S for sigma 25 (KAIR's published weights) are; Mohan et al.'s blind DnCNN
# [0, 55] is not (shown beside it, never compared)
REFERENCE_STAND_INS = {"BM3D": ("BM3D", True), "DnCNN-S": ("DnCNN-S σ=25 (KAIR)", True)}
FULL_SET_SIZES = {"set12": 12, "bsd68": 68}


def per_seed_or_image(sub: pd.DataFrame, full_set: bool) -> tuple[np.ndarray, str]:
    """The units of a published-number comparison: on the paper's full test set, the set mean of each noise
    realisation (the spread over images is not uncertainty about the published number: one realisation gives no
    interval); on a subset or another set, the images."""
    if full_set:
        repeats = sub.noise_repeat if "noise_repeat" in sub else pd.Series(0, index=sub.index)
        return sub.groupby(repeats).psnr.mean().to_numpy(), "seeds"
    return sub.groupby("image_index").psnr.mean().to_numpy(), "images"


def classic_comparisons(prm: dict, classic: pd.DataFrame) -> list[V.Comparison]:
    """One comparison per published reference cell (set, method, sigma) whose method and full test set we ran: BM3D
    (the same algorithm, the bm3d package) and DnCNN-S at sigma 25 (KAIR's published network) on the full Set12 /
    BSD68; elsewhere (a subset, stand-in images) "not run at this scale"."""
    out = []
    for ref in prm["classic"]["reference"]:
        set_name = ref["set"].lower()
        ours, same_method = REFERENCE_STAND_INS[ref["method"].split(" ")[0]]
        for sigma, published in ref["psnr"].items():
            sub = classic[(classic.set == set_name) & (classic.denoiser == ours) & (classic.sigma == int(sigma))]
            if sub.empty or not same_method:
                continue
            full = sub.image_index.nunique() == FULL_SET_SIZES.get(set_name)
            values, unit = per_seed_or_image(sub, full)
            c = V.compare(values, float(published), item="Demo: classic-era denoising table",
                          cell=f"{ref['set']} {ours} sigma={sigma}", metric="psnr",
                          setting="paper" if full else "analogue", situation="own", uncertainty=unit,
                          source=ref["method"])
            if not full:
                c.verdict, c.note = NOT_RUN_AT_SCALE, f"{sub.image_index.nunique()} images, not the full {ref['set']}"
            out.append(c)
    return out


def curves(prm: dict) -> dict:
    """The PLOTS curves from the results: mean PSNR over images (first noise realisation) per sigma and denoiser; the
    lecture's one learned prior (the universal denoiser or a user's) as "learned prior"."""
    classic = _load(runtime.results_dir(prm, PAPER), "classic.csv")
    if classic is None or classic.empty:
        return {}
    d = classic[classic.noise_repeat == 0] if "noise_repeat" in classic else classic
    wide = d.groupby(["sigma", "denoiser"]).psnr.mean().unstack("denoiser")
    learned = [c for c in wide.columns if c == "universal BF-CNN" or c.startswith("prior ")]
    wide = wide.rename(columns={c: "learned prior" for c in learned}).rename(columns={"Wavelet": "wavelet"})
    return {"denoisers": wide.reset_index()}

def build(prm: dict) -> None:
    """Every table, figure, claim and published-number comparison of the lecture's demonstrations for this profile,
    from the results and manifests -> summary.json and the details page."""
    plt = style()
    res = runtime.results_dir(prm, PAPER)
    fig_dir, tab_dir = runtime.figures_dir(prm, PAPER), runtime.tables_dir(prm, PAPER)
    items, claims, comparisons = {}, [], []
    scale = ("paper: the authors' checkpoints, full Set12 / BSD68 for the classic table, stated crops elsewhere"
             if code_profile(prm) == "paper" else f"{prm['profile']}: scikit-image photographs, networks trained here")
    # the lecture states no setting of its own: its demonstrations are tested as analogues in every profile
    pre = universal_prior_precondition(prm)
    kw = {"setting": "analogue", "precondition": pre}

    # ---------------------------------------------------------------- 1. classic-era denoising table
    classic = _load(res, "classic.csv")
    if classic is not None:
        agg = classic.groupby(["set", "sigma", "denoiser", "kind"], sort=False)[["psnr", "ssim"]].mean().reset_index()
        wide = agg.pivot_table(index=["kind", "denoiser"], columns=["set", "sigma"], values="psnr", sort=False)
        repeats = classic.noise_repeat.nunique() if "noise_repeat" in classic else 1
        body = ["Mean PSNR (dB) / SSIM per test set and noise level (sigma on the 0-255 scale). "
                f"{repeats} noise realisation{'s' if repeats > 1 else ''} per image and sigma (averaged), shared by "
                "all denoisers.", ""]
        for set_name, sub in agg.groupby("set", sort=False):
            t = sub.pivot_table(index="denoiser", columns="sigma", values=["psnr", "ssim"], sort=False)
            t.columns = [f"{m.upper()} s={s}" for m, s in t.columns]
            body += [f"### {set_name} ({classic[classic.set == set_name].image_index.nunique()} images)", "",
                     markdown_table(t.reset_index(), ".3f")]
        ref = pd.DataFrame([{"set": r["set"], "method": r["method"], **{f"PSNR s={k}": v for k, v in r["psnr"].items()}}
                            for r in prm["classic"]["reference"]])
        comparisons = classic_comparisons(prm, classic)
        body += ["### Published reference rows (Zhang et al. 2017, on the full Set12 / BSD68)", "",
                 markdown_table(ref, ".2f"),
                 "### Our numbers against them", "",
                 "Compared only where our test set is the full published one and the method is the same: BM3D (the "
                 "bm3d package) and DnCNN-S at sigma 25 (KAIR's published weights); our DnCNN [0,55] is Mohan et al.'s "
                 "blind DnCNN, another network. On a full set the uncertainty is over noise realisations "
                 "(noise_repeats), not over images.", "",
                 markdown_table(pd.DataFrame([{"cell": c.cell, "published": c.published, "ours": c.measured,
                                               "n": f"{c.n} {c.uncertainty}", "verdict": c.verdict}
                                              for c in comparisons]), ".2f") if comparisons else "(none)\n",
                 "TV's weight per sigma was chosen on training images: " +
                 ", ".join(sorted(set(classic.loc[classic.denoiser == "TV", "setting"].astype(str)))), ""]
        f_md = write_markdown(tab_dir / "classic_denoising.md", "Is denoising dead? Classic vs learned denoisers",
                              "\n".join(body))
        fig, axes = plt.subplots(1, classic.set.nunique(), figsize=(5 * classic.set.nunique(), 3.6), squeeze=False)
        for ax, (set_name, sub) in zip(axes[0], agg.groupby("set", sort=False)):
            for name, g in sub.groupby("denoiser", sort=False):
                ls = "-" if g.kind.iloc[0] == "learned" else "--"
                ax.plot(g.sigma, g.psnr, ls, marker="o", label=name)
            ax.set(xlabel="sigma (0-255)", ylabel="mean PSNR (dB)", title=set_name)
        axes[0][-1].legend(loc="upper right")
        f_png = save_figure(fig_dir / "classic_denoising.png", fig)
        # where Zhang et al.'s rows were run (full sets, same method) the item is what its published numbers say
        decided = [c.verdict for c in comparisons if c.verdict != NOT_RUN_AT_SCALE]
        items["Demo: classic-era denoising table"] = {
            "status": V.combine(decided) if decided else PRODUCED, "files": [rel(f_md), rel(f_png)],
            "note": f"{len(wide)} denoisers" + (f"; {len(decided)} published number(s) of Zhang et al. 2017"
                                                if decided else "")}
        best_classic = classic[classic.kind == "classic"].groupby(["set", "image_index", "sigma"]).psnr.max()
        best_learned = classic[classic.kind == "learned"].groupby(["set", "image_index", "sigma"]).psnr.max()
        gain = (best_learned - best_classic.loc[best_learned.index]).rename("d").reset_index()
        claims.append(V.superiority("learned beats classic", "the best learned denoiser beats the best classic one "
                                    "(PSNR, every noise level averaged per image)",
                                    V.per_unit(gain, ["set", "image_index"], "d"), 0.0,
                                    catalog=["Demo: classic-era denoising table"], **kw))

    # ---------------------------------------------------------------- 2. PnP / RED
    inv = _load(res, "inverse.csv")
    cond = _load(res, "red_conditions.csv")
    if inv is not None:
        ok = inv[inv.status == "ok"]
        t = ok.pivot_table(index="task", columns="method", values=["psnr", "ssim"], aggfunc="mean", sort=False)
        t.columns = [f"{m.upper()} {meth}" for m, meth in t.columns]
        body = ["PSNR / SSIM (mean over images) of each solver with the same denoiser "
                f"({prm['inverse']['red']['iters_sd']} RED-SD, {prm['inverse']['red']['iters_fp']} RED-FP, "
                f"{prm['inverse']['pnp']['iters']} PnP-ADMM iterations).", "", markdown_table(t.reset_index(), ".3f")]
        bad = inv[inv.status != "ok"]
        if len(bad):
            body += [f"Diverged runs: {len(bad)}: " + "; ".join(f"{r.task}/{r.method}: {r.status}"
                                                               for r in bad.itertuples()), ""]
        if cond is not None:
            c = cond.groupby(["denoiser", "sigma"])[["homogeneity_error", "jacobian_asymmetry"]].median().reset_index()
            body += ["### RED's conditions (median over test images)", "",
                     "local homogeneity error ||D((1+e)x) - (1+e)D(x)|| / (e ||D(x)||) and Jacobian asymmetry "
                     "|u'Jv - v'Ju| / (|u'Jv| + |v'Ju|) from random probes (0 = the condition holds).", "",
                     markdown_table(c, ".3g")]
        f_md = write_markdown(tab_dir / "pnp_red.md", "One denoiser solves inverse problems: PnP-ADMM and RED",
                              "\n".join(body))
        tasks = list(dict.fromkeys(ok.task))
        fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.2), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            for method, g in ok[ok.task == task].groupby("method", sort=False):
                traces = [np.array(str(s).split(), dtype=float) for s in g.psnr_trace if isinstance(s, str)]
                if not traces:
                    continue
                n = min(len(tr) for tr in traces)
                ax.plot(np.arange(1, n + 1), np.mean([tr[:n] for tr in traces], 0), label=method)
            ax.set(xlabel="iteration", ylabel="PSNR (dB)", title=task)
        axes[0][-1].legend()
        f_png = save_figure(fig_dir / "pnp_red_convergence.png", fig)
        items["Demo: PnP and RED"] = {"status": PRODUCED, "files": [rel(f_md), rel(f_png)]}
        meas = ok.groupby(["set", "image_index", "task", "method"]).psnr.mean().unstack("method")
        if {"RED-FP", "RED-SD"} <= set(meas.columns):
            d = (meas["RED-FP"] - meas["RED-SD"]).rename("d").reset_index()
            claims.append(V.equivalence("RED variants agree", "RED's fixed-point and steepest-descent variants reach "
                                        "the same PSNR (within 0.5 dB; they minimise the same objective)",
                                        V.per_unit(d, ["set", "image_index"], "d"), 0.0, margin=0.5,
                                        catalog=["Demo: PnP and RED"], **kw))

    # ---------------------------------------------------------------- 3. synthesis
    syn_path = res / "synthesis.npz"
    if syn_path.exists():
        arrays = np.load(syn_path)
        syn = pd.read_csv(res / "synthesis.csv")
        n = arrays["song_ermon"].shape[0]
        fig, axes = plt.subplots(2, n, figsize=(1.8 * n, 4.0), squeeze=False)
        for row, (key, label) in enumerate((("song_ermon", "Song & Ermon"), ("kadkhodaie", "Kadkhodaie & Simoncelli"))):
            calls = int(syn.loc[row, "denoiser_calls"])
            for k in range(n):
                show_image(axes[row][k], arrays[key][k], f"{label}\n({calls} calls)" if k == 0 else "")
        f_png = save_figure(fig_dir / "synthesis.png", fig)
        f_md = write_markdown(tab_dir / "synthesis.md", "One denoiser synthesises images",
                              markdown_table(syn, ".3g"))
        items["Demo: synthesis"] = {"status": PRODUCED, "files": [rel(f_png), rel(f_md)]}

    # ---------------------------------------------------------------- 4. SNIPS
    sn = _load(res, "snips.csv")
    if sn is not None:
        kind = np.where(sn.estimate.str.startswith("sample "), "posterior sample", sn.estimate)
        t = sn.assign(estimate=kind).groupby(["task", "estimate"], sort=False)[["psnr", "ssim"]].mean().reset_index()
        f_md = write_markdown(tab_dir / "snips.md", "SNIPS: noisy inverse problems by posterior sampling",
                              f"sigma_0 = {prm['snips']['tasks'][next(iter(prm['snips']['tasks']))]['sigma_y']:g}/255; "
                              f"{prm['snips']['samples']} samples per image; PSNR/SSIM of single samples, of their "
                              "mean, and of the pseudo-inverse (least squares).\n\n" + markdown_table(t, ".3f"))
        first = sorted((res / "snips_arrays").glob("*.npz"))[0]
        a = np.load(first)
        task_names = [k[: -len("_samples")] for k in a.files if k.endswith("_samples")]
        fig, axes = plt.subplots(len(task_names), 5, figsize=(9, 1.9 * len(task_names)), squeeze=False)
        for r_, task in enumerate(task_names):
            s = a[f"{task}_samples"]
            show_image(axes[r_][0], a["clean"][0], "original" if r_ == 0 else "")
            show_image(axes[r_][1], a[f"{task}_measured"][0], "pseudo-inverse" if r_ == 0 else "")
            show_image(axes[r_][2], s[0], "sample 1" if r_ == 0 else "")
            show_image(axes[r_][3], s[min(1, len(s) - 1)], "sample 2" if r_ == 0 else "")
            show_image(axes[r_][4], s.mean(0), "mean of samples" if r_ == 0 else "")
            axes[r_][0].text(-4, s.shape[-2] / 2, task, rotation=90, va="center", ha="right", fontsize=8)
        f_png = save_figure(fig_dir / "snips.png", fig)
        items["Slides: SNIPS demos"] = {"status": PRODUCED, "files": [rel(f_md), rel(f_png)],
                                        "note": "with the project's denoiser, not the SNIPS NCSNv2 models and images"}
        samples = sn[sn.estimate.str.startswith("sample ")].groupby(["set", "image_index", "task"]).psnr.mean()
        lsq = sn[sn.estimate == "pseudo-inverse"].set_index(["set", "image_index", "task"]).psnr
        d = (samples - lsq.loc[samples.index]).rename("d").reset_index()
        claims.append(V.superiority("SNIPS beats least squares", "SNIPS samples are closer to the original than the "
                                    "pseudo-inverse (PSNR, tasks averaged per image)",
                                    V.per_unit(d, ["set", "image_index"], "d"), 0.0, catalog=["Slides: SNIPS demos"],
                                    **kw))

    # ---------------------------------------------------------------- 5. perception-distortion
    per = _load(res, "perception.csv")
    if per is not None:
        per = per.assign(perception=np.abs(np.log2(per.hf_ratio)))
        t = per.groupby(["method", "kind"], sort=False)[["mse", "psnr", "hf_ratio", "perception"]].mean().reset_index()
        mmse = per[per.method.str.startswith("MMSE")].set_index("image_index").mse
        body = [f"Denoising at sigma_0 = {prm['perception']['sigma0']}/255, one denoiser throughout; {PERCEPTION_NOTE}.",
                "Posterior sampling at best doubles the MMSE error (x_hat and x independent given y: "
                "E||x_hat - x||^2 = 2 E||E[x|y] - x||^2); ratio = sample MSE / MMSE MSE per image.", "",
                markdown_table(t, ".4g")]
        ratios = {}
        for method, g in per[per.kind == "posterior sample"].groupby("method", sort=False):
            ratio = g.groupby("image_index").mse.mean() / mmse.loc[g.image_index.unique()]
            ratios[method] = ratio
            body.append(f"- {method}: MSE ratio to MMSE {ratio.mean():.2f} (per image: "
                        + ", ".join(f"{v:.2f}" for v in ratio) + ")")
        f_md = write_markdown(tab_dir / "perception_distortion.md", "The perception-distortion picture",
                              "\n".join(body) + "\n")
        # like with like: each estimate's MSE relative to the MMSE estimate's on the same image (1 = the MMSE, 2 = the
        # posterior-sampling bound), one point per image (samples averaged within an image), and each method's mean
        # with the standard error over images
        per = per.assign(rel_mse=per.mse / per.image_index.map(mmse))
        by_image = per.groupby(["method", "kind", "image_index"], sort=False)[["rel_mse", "perception"]].mean()
        fig, ax = plt.subplots(figsize=(7.6, 3.9))
        for k, ((method, kind), g) in enumerate(by_image.groupby(level=[0, 1], sort=False)):
            marker = "o" if kind == "posterior sample" else "s"
            ax.scatter(g.rel_mse, g.perception, s=10, alpha=0.35, marker=marker, color=f"C{k}")
            se = g.std(ddof=1) / np.sqrt(len(g)) if len(g) > 1 else g.mean() * 0
            ax.errorbar(g.rel_mse.mean(), g.perception.mean(), xerr=se.rel_mse, yerr=se.perception, marker=marker,
                        ms=7, color=f"C{k}", mec="k", capsize=2, label=f"{method} ({kind})")
        ax.axvline(1.0, color="k", lw=0.8, ls=":", label="MMSE of the same image")
        ax.axvline(2.0, color="r", lw=1.0, ls="--", label="2 x MMSE: posterior-sampling bound")
        ax.set(xlabel="distortion: MSE / MSE of the MMSE estimate on the same image",
               ylabel="perception index |log2 hf| (0 = as detailed as the clean image)",
               title=f"denoising, sigma_0 = {prm['perception']['sigma0']}/255; small dots: images; large: mean ± SE "
                     f"over {per.image_index.nunique()} images")
        ax.title.set_fontsize(8)
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5))  # outside: keeps every point visible
        fig.text(0.01, 0.01, "hf = std of the Laplacian of the estimate / that of the clean image: < 1 smoother, > 1 "
                             "noisier than the truth", fontsize=6)
        f_png = save_figure(fig_dir / "perception_distortion.png", fig)
        items["Demo: perception-distortion"] = {"status": PRODUCED, "files": [rel(f_md), rel(f_png)],
                                                "note": PERCEPTION_NOTE}
        for method, ratio in ratios.items():
            # "compromising 3 dB": a ratio of 2 (10 log10 2 = 3.01 dB); "about" read as within 0.5 of it
            claims.append(V.equivalence(f"{method}: MSE about 2 x MMSE", f"{method} samples cost about twice the "
                                        "MMSE error (ratio within 2 ± 0.5; the lecture: 'compromising 3dB compared "
                                        "to the MMSE')", ratio.to_numpy(), 2.0, margin=0.5,
                                        catalog=["Claim: posterior sampling costs 3dB vs MMSE"], **kw))
        samp = per[per.kind == "posterior sample"].groupby("image_index").perception.mean()
        c = V.superiority("samples look more natural than MMSE", "posterior samples have a better perception index "
                          "than the MMSE estimate", per[per.method.str.startswith("MMSE")].set_index("image_index")
                          .perception.loc[samp.index].to_numpy(), samp.to_numpy(),
                          catalog=["Demo: perception-distortion"], **kw)
        c.detail += "; " + PERCEPTION_NOTE
        claims.append(c)

    # ---------------------------------------------------------------- 6. four panels
    if inv is not None and syn_path.exists() and sn is not None and per is not None:
        f4 = four_panels(prm, plt, res)
        items["Demo: four discoveries"] = {"status": PRODUCED, "files": [rel(f4)]}

    # ---------------------------------------------------------------- the slide's DnCNN parameter count
    from replicate.denoisers.checkpoints import KAIRDnCNN

    n_params = sum(p.numel() for p in KAIRDnCNN(channels=1).parameters())
    within = abs(n_params - 5.5e5) <= 0.05 * 5.5e5  # the slide prints one significant figure and a half: 5.5e5
    items["Slide: architecture sizes"] = {
        "status": SETTINGS_MATCH if within else V.DIFFERS, "files": [],
        "note": f"DnCNN (17 layers, 64 channels, grey; the KAIR architecture) has {n_params:,} parameters vs the "
                "slide's 5.5e5 (tolerance 5%); the slide's other networks belong to other papers"}

    write_plots(prm, PAPER, PLOTS, curves(prm))
    # every Zhang et al. cell we run is a headline number (at most 8: BM3D x 3 sigmas + DnCNN-S, two sets)
    write_summary(prm, PAPER, items, claims, comparisons, scale, "paper" if code_profile(prm) == "paper" else "analogue",
                  headline=[c.cell for c in comparisons if c.measured is not None])


def four_panels(prm, plt, res):
    """One figure, four stories, one denoiser."""
    inv = np.load(sorted((res / "inverse_arrays").glob("*.npz"))[0])
    task = next(k.split("/")[0] for k in inv.files if k.endswith("/measured"))
    syn = np.load(res / "synthesis.npz")
    per = np.load(sorted((res / "perception_arrays").glob("*.npz"))[0])
    sn = np.load(sorted((res / "snips_arrays").glob("*.npz"))[0])
    sn_task = next(k[: -len("_samples")] for k in sn.files if k.endswith("_samples") and k.startswith("sr"))\
        if any(k.startswith("sr") and k.endswith("_samples") for k in sn.files) else \
        next(k[: -len("_samples")] for k in sn.files if k.endswith("_samples"))
    fig, axes = plt.subplots(2, 6, figsize=(12, 4.6))
    show_image(axes[0][0], inv[f"{task}/measured"], f"1. inverse problem: {task}")
    show_image(axes[0][1], inv[f"{task}/RED-FP"], "RED (fixed point)")
    show_image(axes[0][2], inv["clean"], "original")
    show_image(axes[0][3], syn["song_ermon"][0], "2. synthesis: Song & Ermon")
    show_image(axes[0][4], syn["kadkhodaie"][0], "Kadkhodaie & Simoncelli")
    show_image(axes[0][5], syn["kadkhodaie"][1 % len(syn["kadkhodaie"])], "")
    stoch = next(k for k in per.files if k.startswith("stochastic"))
    show_image(axes[1][0], per["noisy"][0], f"3. noisy, sigma {prm['perception']['sigma0']}/255")
    show_image(axes[1][1], per[next(k for k in per.files if k.startswith("MMSE"))][0], "MMSE (one denoiser call)")
    show_image(axes[1][2], per[stoch][0], "posterior sample (Kawar et al.)")
    show_image(axes[1][3], sn[f"{sn_task}_measured"][0], f"4. {sn_task}: pseudo-inverse")
    show_image(axes[1][4], sn[f"{sn_task}_samples"][0], "SNIPS sample 1")
    show_image(axes[1][5], sn[f"{sn_task}_samples"][min(1, len(sn[f"{sn_task}_samples"]) - 1)], "SNIPS sample 2")
    fig.suptitle("One MMSE denoiser: (1) solves inverse problems, (2) synthesises, (3) denoises perceptually, "
                 "(4) solves inverse problems perceptually", fontsize=9)
    return save_figure(runtime.figures_dir(prm, PAPER) / "four_discoveries.png", fig)
