"""Chung et al. 2023 report, Table 3: Fourier phase retrieval, DPS vs ER / HIO / OSS, and Fig. 6's panel."""
from __future__ import annotations

import pandas as pd

from replicate.report import verdicts as V
from replicate.report.chung2023.common import METHOD_NAMES, Context, _perceptual
from replicate.report.common import NOT_AVAILABLE, NOT_RUN_AT_SCALE, PRODUCED, markdown_table, rel, write_markdown


def table3(ctx: Context, pr: pd.DataFrame, ex_files: dict) -> None:
    """Table 3 in the paper's layout (means per method), DPS vs each baseline, and the Fig. 6 item."""
    if not pr.empty and "method" in pr and (pr.get("status") == "ok").any():
        p = ctx.prm["phase_retrieval"]
        pm = _perceptual(pr)[0]
        t3 = pr.groupby("method")[["psnr", "psnr_flip_aligned", "ssim", "lpips", "residual", "seconds_per_image"]]
        t3 = t3.mean().reindex([m for m in ("dps", "oss", "hio", "er") if m in set(pr.method)]).reset_index()
        t3.insert(0, "Method", [METHOD_NAMES[m] for m in t3.method])
        f = write_markdown(ctx.tab_dir / "table3_phase_retrieval.md",
                           f"Table 3 layout: Fourier phase retrieval ({ctx.scale})",
                           f"{pr.image_index.nunique()} images of {', '.join(pr.set.unique())}; oversampling "
                           f"{p['oversample']}; DPS best of {p['best_of']}, ER/HIO/OSS best of {p['restarts']} x "
                           f"{p['iters']} iterations. psnr_flip_aligned: the better of the estimate and its 180-degree "
                           f"rotation (an ambiguity of the measurement). {ctx.why_lpips}{ctx.why_fid}.\n\n"
                           + markdown_table(t3.drop(columns="method"), ".3f"))
        ds_ok = "ffhq" in set(pr.set)
        ctx.items["Table 3"] = {"status": PRODUCED if ds_ok else NOT_AVAILABLE, "files": [rel(f)],
                                "note": ("" if ds_ok else "FFHQ / DPS checkpoint not available here; ") +
                                        f"measured on {', '.join(pr.set.unique())}"}
        pvp = pr.pivot_table(index=["set", "image_index"], columns="method", values=pm)
        for base in [m for m in ("er", "hio", "oss") if m in pvp.columns and "dps" in pvp.columns]:
            d = pvp[["dps", base]].dropna()
            a, b = (d[base], d["dps"]) if pm == "lpips" else (d["dps"], d[base])
            ctx.claims.append(V.superiority(
                f"pr-dps-beats-{base}", f"DPS beats {METHOD_NAMES[base]} on phase retrieval ({pm.upper()})", a, b,
                catalog=["Claim: DPS outperforms phase-retrieval baselines by a large margin"], **ctx.kw))
    else:
        not_run = "phase_retrieval" in ctx.not_run
        ctx.items["Table 3"] = {"status": NOT_RUN_AT_SCALE if not_run else NOT_AVAILABLE, "files": [],
                                "note": "phase_retrieval stage not run" if not_run else
                                "phase_retrieval stage has no rows: " + "; ".join(ctx.missing.values())[:300]}
    ctx.items["Fig. 6"] = {"status": PRODUCED if ex_files.get("phase_retrieval") else NOT_AVAILABLE,
                           "files": [rel(f) for f in ex_files.get("phase_retrieval", [])],
                           "note": "phase retrieval panel only; non-uniform deblurring needs the bkse GOPRO weights"}
