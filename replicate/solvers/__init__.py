"""Iterative (non-diffusion) solvers, one module each: PnP-ADMM, ADMM-TV and ER / HIO / OSS phase retrieval (the
Chung et al. 2023 baselines), and the modules other papers add (plug_and_play, score_denoise)."""
