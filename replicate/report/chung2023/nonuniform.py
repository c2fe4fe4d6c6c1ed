"""Chung et al. 2023 report, Table 4: non-uniform deblurring through the bkse blur network (measured rows where
the network ran, the published numbers beside them, the reason for every cell not measured here)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from replicate.report import verdicts as V
from replicate.report.chung2023.common import (METHOD_NAMES, PAPER, PUBLISHED_METHOD, _comparison, _mosaic, _perceptual,
                                              _unavailable)
from replicate.report.common import NOT_AVAILABLE, NOT_RUN_AT_SCALE, PRODUCED, markdown_table, rel, write_markdown

BKS_NOT_IMPLEMENTED = ("not implemented: blind kernel search over the bkse kernel space with a StyleGAN2 FFHQ "
                       "generator (BKS-styleGAN2) or a hyper-Laplacian image prior (BKS-generic), Tran et al. 2021; "
                       "outside this repository's denoiser-prior scope")


T4_COLUMNS = {"lpips": "LPIPS", "psnr": "PSNR", "ssim": "SSIM", "fit_y": "fit to y", "seconds_per_image": "s/image"}


def _table4(plt, nonu, res, prm, items, claims, comparisons, fig_dir, tab_dir, scale, why_lpips, why_fid, not_run,
            kw):
    """Table 4 layout (non-uniform deblurring): measured rows where the bkse network ran, published numbers beside
    them, and the reason for every cell that is not measured here."""
    from replicate.report.published import load_published

    unavailable = _unavailable(res, "nonuniform")  # its own: set names are shared with the other stages
    ok = nonu[nonu.status == "ok"] if not nonu.empty and "status" in nonu else pd.DataFrame()
    published = load_published(PAPER).query("table == 'table4'")
    pub = published.pivot_table(index="method", columns="metric", values="value")
    measured = ok.groupby("method")[["lpips", "psnr", "ssim", "fit_y", "seconds_per_image"]].mean() \
        if not ok.empty else pd.DataFrame()
    rows = []
    for method in ("DPS (ours)", "BKS-styleGAN2", "BKS-generic", "MCG"):
        key = next((k for k, v in PUBLISHED_METHOD.items() if v == method), None)
        row = {"Method": method, "published FID": pub.loc[method, "fid"] if method in pub.index else np.nan,
               "published LPIPS": pub.loc[method, "lpips"] if method in pub.index else np.nan}
        if key in measured.index:
            row.update({f"measured {T4_COLUMNS[c]}": measured.loc[key, c] for c in measured.columns})
            row["status"] = "measured"
        elif key is None:
            row["status"] = "not implemented"
        else:
            row["status"] = "not available here" if unavailable else "not run"
        rows.append(row)
    body = (f"Non-uniform deblurring through the bkse blur network, Gaussian noise sigma_y = {prm['noise']['sigma']} "
            f"on [-1, 1], methods {prm['nonuniform']['methods']}, DPS step ζ' {prm['dps_scale']['deblur_nonuniform']} "
            f"(code scale {2 * prm['dps_scale']['deblur_nonuniform']:g}, configs/nonlinear_deblur_config.yaml). "
            f"{why_lpips}{why_fid}.\n\n"
            + markdown_table(pd.DataFrame(rows), ".3f"))
    if unavailable:
        body += "\n## Not available here\n\n" + "\n".join(f"* `{k}`: {v.splitlines()[0]}"
                                                              for k, v in unavailable.items()) + "\n"
        detail = next(iter(unavailable.values()))
        body += "\nFull reason:\n\n```\n" + detail + "\n```\n"
    body += f"\nBKS-styleGAN2 / BKS-generic: {BKS_NOT_IMPLEMENTED}.\n"
    f = write_markdown(tab_dir / "table4_nonuniform_deblur.md", f"Table 4 layout: non-uniform deblurring ({scale})",
                       body)
    on_ffhq = not ok.empty and "ffhq" in set(ok.set)
    if not_run:
        status, note = NOT_RUN_AT_SCALE, "nonuniform stage not run"
    elif ok.empty:
        status = NOT_AVAILABLE
        note = ("; ".join(sorted({v.splitlines()[0] for v in unavailable.values()}))[:400]
                or "nonuniform stage has no rows")
    else:
        status = PRODUCED if on_ffhq else NOT_AVAILABLE
        note = f"measured on {', '.join(sorted(set(ok.set)))}" + ("" if on_ffhq else "; FFHQ not run here")
    items["Table 4"] = {"status": status, "files": [rel(f)], "note": note + f"; BKS rows {BKS_NOT_IMPLEMENTED[:15]}"}
    for _, r in published.iterrows():
        key = next((k for k, v in PUBLISHED_METHOD.items() if v == r.method), None)
        sub = ok[(ok.set == "ffhq") & (ok.method == key)] if on_ffhq and key else pd.DataFrame()
        if key is None:
            why = BKS_NOT_IMPLEMENTED.split(":")[0]
        elif unavailable:
            why = next(iter(unavailable.values()))
        else:
            why = f"{r.metric} not computable here" if on_ffhq else f"FFHQ not part of the {scale} run"
        comparisons.append(_comparison("Table 4", "table4.csv", r, sub, why, kw["setting"]))
    if not ok.empty:
        metric, lower = _perceptual(ok)
        pv = ok.groupby(["set", "image_index", "method"])[metric].mean().unstack("method")
        if {"dps", "mcg"} <= set(pv.columns):
            d = pv[["dps", "mcg"]].dropna()
            a, b = (d.mcg, d.dps) if lower else (d.dps, d.mcg)
            claims.append(V.superiority("nonuniform-dps-beats-mcg", f"DPS beats MCG on non-uniform deblurring "
                                        f"({metric.upper()})", a, b, catalog=["Table 4"], **kw))
        files = _nonuniform_grids(plt, res, fig_dir)
        items["Fig. 6"]["files"] += [rel(p) for p in files]
        items["Fig. 6"]["note"] = "phase retrieval and non-uniform deblurring panels"


def _nonuniform_grids(plt, res, fig_dir) -> list:
    out = []
    for path in sorted((res / "nonuniform_arrays").glob("*.pt")):
        ex = torch.load(path, weights_only=False)
        methods = [m for m in METHOD_NAMES if m in ex]
        tiles = [ex["measurement"]] + [ex[m][s] for m in methods for s in range(ex[m].shape[0])] + [ex["clean"]]
        labels = ["y (bkse blur)"] + [METHOD_NAMES[m] + (f" #{s + 1}" if s else "") for m in methods
                                      for s in range(ex[m].shape[0])] + ["ground truth"]
        out.append(_mosaic(plt, [tiles], [labels], fig_dir / f"grid_nonuniform_{path.stem}.png",
                           f"{ex['image']}: non-uniform deblurring"))
    return out
