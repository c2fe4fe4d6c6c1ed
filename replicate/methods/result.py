"""What every method returns: one ``Reconstruction``.

A method is a posterior sampler, a restoration algorithm or a sampler of the prior (no measurement). Each returns
the estimate ``x`` with the bookkeeping a table needs; anything method-specific goes in ``trace`` (per-step
histories) or ``diagnostics`` (per-run or per-image facts: the unclamped estimate, the last iterate, whether each
image converged, wall time)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


class MethodDiverged(RuntimeError):
    """A method's iterate left the finite numbers or never met its stopping rule (the message says which)."""


@dataclass
class Reconstruction:
    """The output of a method.

    x: (N, C, H, W) estimate on the [0, 1] image scale, one row per measurement row (or per sample);
    nfe: denoiser / network evaluations per image (0 for methods without a learned prior);
    trace: per-step histories, each a tensor or list indexed by step (e.g. sigma_t, relative change);
    diagnostics: everything else. Keys with a meaning the report relies on:
        "converged" (N,) bool   the method met its own stopping rule for that row;
        "why" list[str]         per row, "" or why it did not converge;
        "message" str           why the run fell short, with advice ("" if it did not), added to MethodDiverged;
        "last_iterate"          the iterate before a final denoising step, where the method has one;
        "seconds"               wall time of the whole call.
    Method-specific keys are documented by the method's module: e.g. "x_pm1" (diffusion samplers: the unclamped
    [-1, 1] estimate), "steps" / "final_sigma" (coarse-to-fine: per row), "denoiser_seconds" / "overhead" /
    "levels" / "steps" (annealed Langevin: per run).
    """

    x: torch.Tensor
    nfe: int = 0
    trace: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)

    def status(self, k: int) -> str:
        """'ok', or 'diverged: <why>' for row k (what per-image result rows record)."""
        converged = self.diagnostics.get("converged")
        if converged is None or bool(converged[k]):
            return "ok"
        why = self.diagnostics.get("why")
        return f"diverged: {why[k]}" if why and why[k] else "diverged"

    def raise_if_diverged(self) -> "Reconstruction":
        """Raise MethodDiverged naming the rows that did not converge (return self when all did)."""
        converged = self.diagnostics.get("converged")
        if converged is not None and not bool(torch.as_tensor(converged).all()):
            bad = [k for k in range(len(converged)) if not bool(converged[k])]
            message = self.diagnostics.get("message")
            raise MethodDiverged(f"{len(bad)} of {len(converged)} rows did not converge: "
                                 + "; ".join(self.status(k) for k in bad[:3]) + (f". {message}" if message else ""))
        return self
