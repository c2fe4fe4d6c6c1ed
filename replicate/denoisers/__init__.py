"""Denoisers: one interface (``D(y, sigma)``), adapters for every prior."""
from .base import Denoiser, NetworkDenoiser, sigma_like

__all__ = ["Denoiser", "NetworkDenoiser", "sigma_like"]
