"""Chung, Kim, McCann, Klasky, Ye 2023: Diffusion Posterior Sampling (DPS) for general noisy inverse problems.

Stages (chung2023_* in dvc.yaml), per-image results under results/<profile>/chung2023/:
  linear          Tables 1/2/6/7 + Poisson (Fig. 5): every method on every noisy linear task, per image and sample:
                  PSNR, SSIM, LPIPS (where its backbone is here), measurement fit, seconds, NFE
  phase_retrieval Table 3: DPS (best of ``best_of`` samples) vs ER / HIO / OSS (best of 4 restarts)
  ablations       Table 5 (step-size schedules), Fig. 8 (step-size sweep), Fig. 11 (LPIPS/PSNR vs NFE, DPS vs DDRM),
                  App. C.4 Poisson likelihood variants
  benchmark       wall-clock table: seconds per image per method, DPS overhead (forward + backward vs forward only)
  nonuniform      Table 4: DPS and MCG on non-uniform deblurring through the bkse blur network (its own image sets:
                  H, W multiples of 128); "not available here" without the network's weights
  jensen_gap      Remark 2 measured: on an analytic Gaussian prior (exact posterior known), the error of DPS's
                  approximation p(y | x_t) ~ p(y | x0_hat) against the same sampler with the exact p(y | x_t), over
                  a range of measurement noise levels
  report          tables, figures, claims (replicate/report/chung2023.py)

Priors: ``prior: universal`` wraps the project's universal bias-free denoiser as a VP x0-predictor
(vp.DenoiserX0; mini/smoke: self-trained small BF-DnCNN; paper CPU part: the authors' BF-CNN);
``prior: adm_ffhq`` / ``adm_imagenet``: the DPS / guided-diffusion checkpoints (paper profile on a GPU). Data and
checkpoints that the asset registry cannot provide are listed in the stage's ``<stage>_availability.csv`` with the
reason, instead of rows; the report then says "not available here".

Scale conventions: images on [0, 1] in this module; the diffusion runs on [-1, 1] as the DPS code; the Gaussian
measurement noise sigma_y = 0.05 refers to the [-1, 1] scale (0.025 on [0, 1]); Poisson noise: 255 * rate photons per
unit intensity (replicate/noise/measurement.py).
"""
from __future__ import annotations

from replicate.experiments.chung2023.benchmark import stage_benchmark
from replicate.experiments.chung2023.common import (LINEAR_METHODS, METHOD_NAMES, PAPER, PR_METHODS, Unavailable,
                                                    compensation, effective, image_sets, make_noise, method_settings,
                                                    run_method)
from replicate.experiments.chung2023.jensen_gap import jensen_gap_rows, stage_jensen_gap
from replicate.experiments.chung2023.linear import ablation_rows, linear_rows, plan_ablations, plan_linear
from replicate.experiments.chung2023.nonuniform import (_nonuniform_view, nonuniform_operator, nonuniform_rows,
                                                        plan_nonuniform)
from replicate.experiments.chung2023.phase_retrieval import phase_retrieval_rows, plan_phase_retrieval
from replicate.pipeline.stage import Stage, per_image_stage

RESULTS = "results/{profile}/chung2023/"
UNIVERSAL = ("data/models/{profile}/mohan2020",)   # the universal prior of mini / smoke


STAGES = [
    per_image_stage(PAPER, "linear", linear_rows, plan_linear, inputs=UNIVERSAL, arrays=True, availability=True,
                    about="Tables 1/2/6/7 + Poisson: every method on every noisy linear task, per image and sample"),
    per_image_stage(PAPER, "phase_retrieval", phase_retrieval_rows, plan_phase_retrieval, inputs=UNIVERSAL,
                    arrays=True, availability=True,
                    about="Table 3: DPS (best of k samples) vs ER / HIO / OSS (best of 4 restarts)"),
    per_image_stage(PAPER, "ablations", ablation_rows, plan_ablations, inputs=UNIVERSAL, availability=True,
                    about="Table 5, Figs. 8 and 11, App. C.4: step-size schedules and sizes, NFE, Poisson likelihoods"),
    Stage("chung2023_benchmark", PAPER, stage_benchmark, inputs=UNIVERSAL,
          outs=(RESULTS + "benchmark.csv", RESULTS + "benchmark_availability.csv"),
          about="wall-clock: forward vs forward + backward of the x0-predictor, DPS's overhead"),
    per_image_stage(PAPER, "nonuniform", nonuniform_rows, plan_nonuniform, inputs=UNIVERSAL, arrays=True,
                    availability=True,
                    about="Table 4: DPS and MCG on non-uniform deblurring through the bkse blur network"),
    Stage("chung2023_jensen_gap", PAPER, stage_jensen_gap, outs=(RESULTS + "jensen_gap.csv",),
          about="Remark 2 measured: DPS's approximation of p(y | x_t) vs the exact one on a Gaussian prior"),
]

__all__ = ["LINEAR_METHODS", "METHOD_NAMES", "PAPER", "PR_METHODS", "STAGES", "Unavailable", "ablation_rows",
           "compensation", "effective", "image_sets", "jensen_gap_rows", "linear_rows", "make_noise", "method_settings",
           "nonuniform_operator", "nonuniform_rows", "phase_retrieval_rows", "run_method", "_nonuniform_view"]
