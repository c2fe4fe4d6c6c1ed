"""Cost model (issue 8): measured seconds per image, and the projected GPU-hours of the full `paper` profile.

    python -m replicate.report.costs            # active profile -> tables/<profile>/costs.md
    build_costs(prm)                            # the same, as a pipeline stage (STAGES["costs"])

Measured: every per-image (or per-sample) results CSV under results/<profile>/<paper>/ with a timing column, grouped by
method, on the hardware recorded in tables/<profile>/<paper>/summary.json (replicate.runtime.provenance()).

Projected: GPU-hours = evaluations x seconds per evaluation / 3600, where
  * evaluations = images x tasks x methods x samples, per table, as stated in WORKLOADS from
    shared/published/experiments.md (the count of each table's runs in the papers);
  * seconds per evaluation is either the papers' own published GPU time per image (chung2023, kawar2021), or this
    project's measured median, scaled to the paper's image size (x paper pixels / measured pixels) and network size
    (x MODEL_SCALE) and divided by an ASSUMED CPU->GPU speed factor (CPU_TO_GPU). Both scalings are assumptions
    (cost linear in pixels and in parameters, as for convolutional networks); the table says which basis each row has.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from replicate import runtime
from replicate.io import write_text
from replicate.runtime import ASSUMED_CPU_TO_GPU as CPU_TO_GPU  # an assumption, stated in the output

PAPERS = ("mohan2020", "kadkhodaie2021", "kawar2021", "chung2023", "xie2023", "elad_lecture")
ITEM_COLUMNS = ("image_index", "image", "sample")  # a per-image (per-sample) results file has one of these
METHOD_COLUMNS = ("method", "model", "denoiser", "prior", "sampler")
NOT_PER_IMAGE = {"denoiser_seconds", "seconds_total", "seconds_denoiser"}  # parts of another timing, or totals


@dataclass(frozen=True)
class Workload:
    """One table's runs in the paper: images x tasks x methods x samples evaluations."""
    paper: str
    table: str
    images: int
    tasks: int
    methods: int
    samples: int
    pixels: int  # per image, at the paper's resolution
    basis: str  # "measured:<csv stem>:<timing column>[:<method>]" or "published:<seconds per image>"
    source: str  # where the counts come from

    @property
    def evaluations(self) -> int:
        """Network evaluations of the whole workload: images x tasks x methods x samples."""
        return self.images * self.tasks * self.methods * self.samples


# set68 481x321 (68), set12 7 x 256^2 + 5 x 512^2, kodak 768x512 (23): mean pixels of the 103 test images
_MOHAN_PIXELS = (68 * 481 * 321 + 7 * 256 ** 2 + 5 * 512 ** 2 + 23 * 768 * 512) // 103
WORKLOADS = [
    Workload("mohan2020", "generalisation curves (Sec. 5, M6)", 103, 10, 24, 1, _MOHAN_PIXELS,
             "measured:generalization:seconds_per_image",
             "params.yaml paper profile: set68+set12+kodak23, 10 test sigmas, 3 archs x 2 variants x 4 ranges"),
    Workload("kadkhodaie2021", "Figs. 3-8 (L1-L5)", 3, 7, 1, 3, 256 * 256, "measured:inverse:seconds:denoiser_prior",
             "experiments.md 4: 7 problem settings, 3 images and 3 restorations each; image size UNKNOWN (256^2 assumed)"),
    Workload("kawar2021", "Table 1 CelebA (K1, K2)", 64, 5, 1, 1, 64 * 64, "published:15",
             "experiments.md 1.2: 64 images x 5 sigma0; '~2 minutes for 8 CelebA images' (GPU UNKNOWN)"),
    Workload("kawar2021", "Table 1 LSUN bedroom (K1)", 64, 3, 1, 1, 128 * 128, "published:60",
             "64 images x 3 sigma0; 4x CelebA's pixels at CelebA's time per pixel (assumption)"),
    Workload("chung2023", "Table 1 + 6 FFHQ (D1, D3)", 1000, 5, 3, 1, 256 * 256, "published:95",
             "1k images x 5 tasks; DPS, MCG, Score-SDE at DPS's 95 s/image (2080Ti, 1000 NFE); DDRM (20 NFE), "
             "PnP-ADMM, ADMM-TV neglected"),
    Workload("chung2023", "Table 2 + 7 ImageNet (D2, D3)", 1000, 5, 3, 1, 256 * 256, "published:600",
             "as Table 1 at DPS's 600 s/image on ImageNet"),
    Workload("chung2023", "Table 3 phase retrieval (D4)", 1000, 1, 1, 4, 256 * 256, "published:95",
             "DPS, 4 samples per image (ER/HIO/OSS are CPU iterations, neglected)"),
    Workload("chung2023", "Table 4 non-uniform deblur (D5)", 1000, 1, 2, 1, 256 * 256, "published:95",
             "DPS and MCG (the BKS baselines neglected)"),
    Workload("chung2023", "Table 5 step schedules (D6)", 100, 1, 5, 1, 256 * 256, "published:95",
             "100 FFHQ images x 5 step-size schedules"),
]
# network size of the measured runs relative to the paper's (cost ~ parameters for conv nets): the mini and smoke
# DnCNNs of mohan2020 have 56k and ~0.7k parameters, the authors' 668k (results/*/mohan2020/models.csv)
MODEL_SCALE = {("mohan2020", "mini"): 668225 / 56481, ("mohan2020", "smoke"): 668225 / 720,
               ("kadkhodaie2021", "mini"): 668225 / 56481, ("kadkhodaie2021", "smoke"): 668225 / 720}


def timing_columns(frame: pd.DataFrame) -> dict[str, str | None]:
    """{timing column: the method it times, or None when the row's method column says}.

    seconds_per_image, seconds, sampler_seconds: per row; seconds_<method>[_per_sample]: that method's time.
    """
    out = {}
    for col in frame.columns:
        if col in NOT_PER_IMAGE or not pd.api.types.is_numeric_dtype(frame[col]):
            continue
        if col in ("seconds_per_image", "seconds", "sampler_seconds"):
            out[col] = None
        elif col.startswith("seconds_"):
            out[col] = col[len("seconds_"):].removesuffix("_per_sample")
    return out


def measured(profile: str, root: Path | None = None) -> pd.DataFrame:
    """One row per (paper, results file, timing column, method): median seconds per image over its rows."""
    root = root or runtime.project_root()
    rows = []
    for paper in PAPERS:
        for csv in sorted((root / "results" / profile / paper).glob("*.csv")):
            frame = pd.read_csv(csv)
            if not any(c in frame.columns for c in ITEM_COLUMNS):
                continue  # per-model or per-run summaries (training times), not per image
            method_col = next((c for c in METHOD_COLUMNS if c in frame.columns), None)
            for col, method in timing_columns(frame).items():
                groups = [(method, frame)] if method or not method_col else frame.groupby(method_col, sort=True)
                for name, part in groups:
                    seconds = part[col].dropna()
                    if seconds.empty:
                        continue
                    rows.append({"paper": paper, "file": csv.stem, "column": col, "method": str(name or "all"),
                                 "rows": len(seconds), "median_s": float(seconds.median()),
                                 "pixels": float(part["pixels"].median()) if "pixels" in part else math.nan,
                                 "hardware": hardware(root, profile, paper)})
    return pd.DataFrame(rows, columns=["paper", "file", "column", "method", "rows", "median_s", "pixels", "hardware"])


@lru_cache(maxsize=None)
def hardware(root: Path, profile: str, paper: str) -> str:
    """Where a paper's results of this profile were computed, from its stages' manifests (first one found)."""
    manifests = sorted((root / "results" / profile / "manifests").glob(f"{paper}_*.json"))
    prov = json.loads(manifests[0].read_text()).get("run", {}) if manifests else {}
    if not prov:
        return "unknown (no manifest)"
    gpu = f", GPU {prov['cuda']}" if prov.get("cuda") else ", no GPU"
    return f"{prov.get('processor', '?')}, {prov.get('cpu_threads', '?')} threads{gpu}"


def projection(meas: pd.DataFrame, profile: str, cpu_to_gpu: float = CPU_TO_GPU) -> pd.DataFrame:
    """Projected GPU time of every paper-profile workload: the measured (or published) seconds per evaluation,
    scaled by the pixels and divided by the assumed CPU-to-GPU speed factor."""
    rows = []
    for w in WORKLOADS:
        kind, _, rest = w.basis.partition(":")
        if kind == "published":
            per_eval, how = float(rest), "published GPU s/image"
        else:
            stem, column, method = (rest.split(":") + [None])[:3]
            sel = meas[(meas.paper == w.paper) & (meas.file == stem) & (meas.column == column)]
            if method:
                sel = sel[sel.method == method]
            if sel.empty:
                rows.append({**_describe(w), "seconds_per_evaluation": math.nan, "gpu_hours": math.nan,
                             "basis": f"not measured in results/{profile}/{w.paper}/{stem}.csv"})
                continue
            cpu_s = float((sel.median_s * sel.rows).sum() / sel.rows.sum())  # row-weighted over methods
            pixels = float(sel.pixels.median())
            scale_px = w.pixels / pixels if not math.isnan(pixels) else 1.0
            scale_model = MODEL_SCALE.get((w.paper, profile), 1.0)
            per_eval = cpu_s * scale_px * scale_model / cpu_to_gpu
            px = "pixels not recorded, not scaled" if math.isnan(pixels) else f"{scale_px:.3g} pixels"
            how = (f"measured {cpu_s:.3g} s (CPU, {stem}.csv{', ' + method if method else ''}) x {px} x "
                   f"{scale_model:.3g} model size / {cpu_to_gpu:g} (assumed CPU->GPU)")
        rows.append({**_describe(w), "seconds_per_evaluation": per_eval,
                     "gpu_hours": w.evaluations * per_eval / 3600, "basis": how})
    return pd.DataFrame(rows)


def _describe(w: Workload) -> dict:
    return {"paper": w.paper, "table": w.table,
            "workload": f"{w.images} x {w.tasks} x {w.methods} x {w.samples}", "evaluations": w.evaluations,
            "source": w.source}


def markdown(meas: pd.DataFrame, proj: pd.DataFrame, profile: str, cpu_to_gpu: float) -> str:
    """costs.md: the measured seconds per image and the projected GPU-hours, with the assumption stated."""
    lines = [f"# Costs ({profile} profile)", "",
             "## Measured seconds per image", "",
             f"Median over the rows of each per-image results file under `results/{profile}/`, per method.", "",
             "| paper | file | timing column | method | rows | s / image | pixels | hardware |", "|---|---|---|---|---:|---:|---:|---|"]
    for r in meas.itertuples():
        px = "" if math.isnan(r.pixels) else f"{r.pixels:.0f}"
        lines.append(f"| {r.paper} | {r.file} | {r.column} | {r.method} | {r.rows} | {r.median_s:.4g} | {px} | "
                     f"{r.hardware} |")
    if meas.empty:
        lines.append("| (no per-image results with timing columns yet) | | | | | | | |")
    total = proj.gpu_hours.sum(min_count=1)
    lines += ["", "## Projected GPU-hours of the full `paper` profile", "",
              f"**Assumptions**: measured CPU times are converted with an *assumed* CPU->GPU speed factor of "
              f"{cpu_to_gpu:g}x and scaled linearly to the paper's pixels and network size; published GPU times are "
              "the papers' own (their GPUs). Evaluations = images x tasks x methods x samples, counted from "
              "shared/published/experiments.md. Training (xie2023's 5000-step U-Nets, NCSNv2/ADM) is not "
              "included: it is not per image, and the paper profile uses released checkpoints where they exist.", "",
              "| paper | table | images x tasks x methods x samples | evaluations | GPU s / evaluation | GPU-hours | "
              "basis | source |", "|---|---|---|---:|---:|---:|---|---|"]
    for r in proj.itertuples():
        s = "n/a" if math.isnan(r.seconds_per_evaluation) else f"{r.seconds_per_evaluation:.3g}"
        h = "n/a" if math.isnan(r.gpu_hours) else f"{r.gpu_hours:.3g}"
        lines.append(f"| {r.paper} | {r.table} | {r.workload} | {r.evaluations} | {s} | {h} | {r.basis} | "
                     f"{r.source} |")
    lines += ["", f"Total (rows with a basis): **{total:.0f} GPU-hours**; on a cluster with the slurm launcher this "
              "divides by the number of GPUs working at once (see replicate/scaleout/README.md)."
              if not math.isnan(total) else "Total: n/a", ""]
    return "\n".join(lines)


def build_costs(prm: dict, cpu_to_gpu: float = CPU_TO_GPU) -> Path:
    """The `costs` stage: tables/<profile>/costs.md from results/<profile>/*/*.csv."""
    meas = measured(prm["profile"])
    proj = projection(meas, prm["profile"], cpu_to_gpu)
    out = runtime.project_root() / "tables" / prm["profile"] / "costs.md"
    return write_text(out, markdown(meas, proj, prm["profile"], cpu_to_gpu))




def main(argv=None) -> int:
    """`python -m replicate.report.costs [--profile P]`: write tables/<profile>/costs.md."""
    from replicate import params as P

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=None, help="default: the active profile (params.yaml / REPLICATE_PROFILE)")
    ap.add_argument("--cpu-to-gpu", type=float, default=CPU_TO_GPU, help="assumed CPU->GPU speed factor")
    args = ap.parse_args(argv)
    profile = args.profile or P.active_profile()
    print(f"wrote {build_costs({'profile': profile}, args.cpu_to_gpu)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
