"""The universal bias-free denoiser every downstream paper uses as its prior.

  * `paper` profile: the authors' universal BF-CNN of Kadkhodaie & Simoncelli (BSD400 grey, BSD300 colour, MNIST;
    blind, trained on sigma in [0, 100] / 255), fetched through the asset registry;
  * `mini` / `smoke`: the small bias-free DnCNNs that the `mohan2020_models` stage trains on embedded data
    (`data/models/<profile>/mohan2020/universal_<gray|color>.pt`).
"""
from __future__ import annotations

import torch

from replicate import runtime
from replicate.denoisers.base import Denoiser, NetworkDenoiser

UNIVERSAL_ASSETS = {
    "gray": "weights/universal_inverse_problem_bfcnn/BSD400_gray/model.pt",
    "color": "weights/universal_inverse_problem_bfcnn/BSD300_color/model.pt",
    "mnist": "weights/universal_inverse_problem_bfcnn/mnist_gray/model.pt",
}
UNIVERSAL_CHECKPOINT_NAMES = {"gray": "BSD400_gray", "color": "BSD300_color", "mnist": "mnist_gray"}


def small_bf_dncnn(channels: int, depth: int, features: int) -> NetworkDenoiser:
    from replicate.denoisers.bfcnn import DnCNN

    return NetworkDenoiser(DnCNN(channels=channels, depth=depth, features=features, bias=False), output="clean",
                           channels=channels)


def universal_denoiser(prm: dict, kind: str = "color") -> Denoiser:
    """The universal prior for the active profile (`prm` of any paper section; only profile is read)."""
    if kind not in UNIVERSAL_ASSETS:
        raise KeyError(f"unknown universal prior {kind!r}; choose one of {', '.join(UNIVERSAL_ASSETS)}")
    if prm["profile"] == "paper":
        from replicate.assets.registry import fetch
        from replicate.denoisers.checkpoints import universal_denoiser as load

        return load(UNIVERSAL_CHECKPOINT_NAMES[kind], fetch(UNIVERSAL_ASSETS[kind])).eval()
    path = runtime.models_dir(prm, "mohan2020") / f"universal_{kind}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the mohan2020_models stage trains it "
                                "(dvc repro mohan2020_models)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    arch = state["log"]["config"]["extra"]["arch"]
    model = small_bf_dncnn(arch["channels"], arch["depth"], arch["features"])
    model.load_state_dict(state["model"])
    return model.eval()
