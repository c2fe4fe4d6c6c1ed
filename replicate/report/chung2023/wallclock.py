"""Chung et al. 2023 report: the wall-clock table (median seconds per image and NFE per method, this machine) and
DPS's overhead per step."""
from __future__ import annotations

import pandas as pd

from replicate.report.chung2023.common import METHOD_NAMES, PAPER, Context
from replicate.report.common import (NOT_AVAILABLE, NOT_IMPLEMENTED, NOT_RUN_AT_SCALE, PRODUCED, manifests,
                                     markdown_table, rel, write_markdown)


def wallclock(ctx: Context, lin: pd.DataFrame, pr: pd.DataFrame, bench: pd.DataFrame) -> None:
    """Seconds per image per method as run here (not comparable with the paper's GPU) and the items they inform."""
    if not lin.empty:
        wc = lin[lin.status == "ok"].groupby("method")[["seconds_per_image", "nfe"]].median()
        wc = wc.reindex([m for m in METHOD_NAMES if m in wc.index]).reset_index()
        if not pr.empty and "method" in pr:
            extra = pr[pr.method.isin(["er", "hio", "oss"])].groupby("method")[["seconds_per_image", "nfe"]].median()
            wc = pd.concat([wc, extra.reset_index()], ignore_index=True)
        wc.insert(0, "Method", [METHOD_NAMES[m] for m in wc.method])
        prov = manifests(ctx.prm, PAPER).get("chung2023_linear", {}).get("run", {})
        body = (f"Median seconds per image of the run ({prov.get('processor')}, {prov.get('cpu_threads')} "
                f"threads), {', '.join(ctx.sets_here)} at {int(lin.pixels.iloc[0]) // 3} px per channel, NFE as run "
                f"({ctx.prm['steps']}). The paper: RTX 2080Ti, 256 px, 1000 NFE (DPS 78.52 s in its table, ~95 s in "
                "App. D.1).\n\n" + markdown_table(wc.drop(columns="method"), ".3f"))
        if not bench.empty:
            body += "\n## DPS overhead (x0-predictor at one step)\n\n" + markdown_table(bench, ".4f")
        f = write_markdown(ctx.tab_dir / "wallclock.md", f"Wall-clock ({ctx.scale})", body)
        ctx.items["Table (wall-clock)"] = {"status": PRODUCED, "files": [rel(f)],
                                       "note": "times of this machine and model; not comparable with the paper's GPU"}
        if not bench.empty:
            b = bench.set_index("what").seconds
            ctx.items["Claim: runtime about 95 s (FFHQ) and 600 s (ImageNet) per image"] = {
                "status": NOT_RUN_AT_SCALE, "files": [rel(f)],
                "note": f"the claim is about an RTX 2080Ti at 256 px; here ({bench.device.iloc[0]}, prior "
                        f"{ctx.prm['prior']}) one DPS step takes {b.get('forward+backward per step', 0):.4f} s "
                        f"(forward+backward, {b.get('DPS overhead factor', 0):.2f}x a forward) -> "
                        f"{b.get('DPS projected per image at 1000 NFE', 0):.1f} s at 1000 NFE for one "
                        f"{int(bench.pixels.iloc[0]) // 3}-px-per-channel image"}
    ctx.items["Claim: DPS faster than GAN-based optimization"] = {
        "status": NOT_IMPLEMENTED, "files": [], "note": "the BKS-styleGAN2 / BKS-generic baselines are not implemented: "
                                                       "they need StyleGAN2 FFHQ weights, which the registry does not list"}
    ctx.items.setdefault("Claim: MCG fails on SR even without noise", {
        "status": NOT_RUN_AT_SCALE, "files": [], "note": "no noiseless SR runs in this profile's ablations"})
    for key in ("Fig. 9", "Fig. 10", "Fig. 12"):
        ctx.items.setdefault(key, {"status": NOT_RUN_AT_SCALE, "files": [], "note": "see the ablation figures"})
