"""Safe loading of the published bias-free denoiser checkpoints.

The Mohan et al. checkpoints are legacy training pickles
``{step, score, last_step, best_step, best_score, model: [state_dict], optimizer, scheduler,
args: argparse.Namespace}``. A plain ``torch.load`` would unpickle (and could run) arbitrary
code; we use the restricted ``weights_only=True`` unpickler instead and allow-list exactly one
class beyond tensors and containers:

  * ``argparse.Namespace`` -- the training arguments stored under ``args``; it only holds
    strings, numbers, booleans and None. (Verified on all 24 files: the optimizer and scheduler
    entries are plain dicts/lists/None and need nothing else.)

The Kadkhodaie & Simoncelli and KAIR files are plain state dicts and need no allow-list at all.

File paths come from the caller (the asset registry locates and verifies the files).
"""
from __future__ import annotations

import argparse
import os

import torch
from torch import nn

from .base import NetworkDenoiser
from .bfcnn import BFCNN, RCNN, DnCNN, KAIRDnCNN, UNet

#: classes the restricted unpickler may construct, beyond what weights_only allows by default
SAFE_GLOBALS = [argparse.Namespace]

MOHAN_ARCHS = ("dncnn", "unet", "rcnn")
MOHAN_VARIANTS = ("bias", "bias_free")
MOHAN_RANGES = ("0-10", "0-30", "0-55", "0-100")
UNIVERSAL_CHANNELS = {"BSD300_color": 3, "BSD400_gray": 1, "mnist_gray": 1}


def safe_load(path: str | os.PathLike) -> dict:
    """Load a checkpoint on CPU with the restricted unpickler (no arbitrary code execution)."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise TypeError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    return obj


def _check(choice: str, allowed: tuple, what: str) -> None:
    if choice not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {choice!r}")


def _build_mohan(arch: str, bias: bool, args: dict) -> nn.Module:
    if arch == "dncnn":
        return DnCNN(
            channels=args.get("in_channels", 1),
            depth=args.get("num_layers", 20),
            features=args.get("hidden_size", 64),
            bias=bias,
        )
    if arch == "unet":
        return UNet(bias=bias, residual=bool(args.get("residual", False)))
    return RCNN(
        bias=bias,
        stages=args.get("max_stage", 4),
        hidden=args.get("num_layers", 5),
        features=args.get("hidden_size", 64),
    )


def load_mohan_checkpoint(arch: str, variant: str, train_range: str, path) -> tuple[nn.Module, dict]:
    """Load one of the 24 Mohan et al. checkpoints (``pretrained/<arch>/<variant>/<range>.pt``).

    Returns ``(module, meta)``; the module is in eval mode, takes [0, 1] images and returns the
    CLEAN estimate. ``meta`` holds the training noise range on the 0-255 scale
    (``noise_min``, ``noise_max``) and ``noise_range_swapped``: the DnCNN files store
    ``min_noise``/``max_noise`` the wrong way round (min=55, max=0); training drew
    sigma ~ U between the two either way, so we just sort them and record that we did.
    """
    _check(arch, MOHAN_ARCHS, "arch")
    _check(variant, MOHAN_VARIANTS, "variant")
    _check(train_range, MOHAN_RANGES, "train_range")
    ckpt = safe_load(path)
    args = vars(ckpt["args"])
    bias = variant == "bias"
    if args.get("model") != arch or bool(args.get("bias")) != bias:
        raise ValueError(
            f"{path}: checkpoint is model={args.get('model')!r} bias={args.get('bias')!r}, "
            f"asked for {arch}/{variant}"
        )
    lo, hi = float(args["min_noise"]), float(args["max_noise"])
    swapped = lo > hi
    lo, hi = min(lo, hi), max(lo, hi)
    want_lo, want_hi = (float(v) for v in train_range.split("-"))
    if (lo, hi) != (want_lo, want_hi):
        raise ValueError(f"{path}: checkpoint was trained on sigma {lo:g}-{hi:g}, asked for {train_range}")

    net = _build_mohan(arch, bias, args)
    net.load_state_dict(ckpt["model"][0], strict=True)
    net.eval()
    meta = {
        "arch": arch,
        "variant": variant,
        "train_range": train_range,
        "noise_min": lo,  # 0-255 scale
        "noise_max": hi,
        "noise_range_swapped": swapped,
        "output": "clean",
        "best_score": ckpt.get("best_score"),  # validation PSNR (Set12) logged in training; None for DnCNN
        "step": ckpt.get("step"),
        "path": str(path),
    }
    return net, meta


def load_universal_bfcnn(which: str, path) -> BFCNN:
    """Load a Kadkhodaie & Simoncelli BF-CNN (``denoisers/BF_CNN/<which>/noise_range_0to100/model.pt``).

    The module is in eval mode, takes [0, 1] images and returns the RESIDUAL (noise estimate).
    """
    _check(which, tuple(UNIVERSAL_CHANNELS), "which")
    state = safe_load(path)
    net = BFCNN(channels=UNIVERSAL_CHANNELS[which])
    net.load_state_dict(state, strict=True)
    return net.eval()


def load_kair_dncnn(path) -> KAIRDnCNN:
    """Load KAIR's ``model_zoo/dncnn_25.pth`` (grey, trained at sigma = 25/255 only); returns clean."""
    net = KAIRDnCNN(channels=1)
    net.load_state_dict(safe_load(path), strict=True)
    return net.eval()


def mohan_denoiser(arch: str, variant: str, train_range: str, path) -> NetworkDenoiser:
    """Project denoiser around a Mohan et al. network (blind, grey, [0, 1] in, clean out).

    The loading metadata is kept as ``.meta`` on the returned denoiser.
    """
    net, meta = load_mohan_checkpoint(arch, variant, train_range, path)
    den = NetworkDenoiser(net, input_range="01", output="clean", channels=1)
    den.meta = meta
    return den.eval()


def universal_denoiser(which: str, path) -> NetworkDenoiser:
    """Project denoiser around a universal BF-CNN (blind, [0, 1] in, residual out)."""
    net = load_universal_bfcnn(which, path)
    den = NetworkDenoiser(net, input_range="01", output="residual", channels=UNIVERSAL_CHANNELS[which])
    return den.eval()


def kair_denoiser(path) -> NetworkDenoiser:
    """Project denoiser around KAIR's DnCNN-25 (non-blind in truth: trained at sigma 25/255 only)."""
    return NetworkDenoiser(load_kair_dncnn(path), input_range="01", output="clean", channels=1).eval()
