"""Denoisers: one interface (``D(y, sigma)``), adapters for every prior."""
from .base import Denoiser, DenoiserInputError, NetworkDenoiser, sigma_like

__all__ = ["Denoiser", "DenoiserInputError", "NetworkDenoiser", "sigma_like"]
