"""Priors by name: every prior of the papers as one ``Denoiser`` D(x, sigma), and the entry for your own.

A prior spec is
  * a registered name: ``"universal"``, ``"ncsnv2"``, ``"adm_ffhq"``, ``"nlm"``, ... (``PRIORS``, ``ALIASES``);
  * ``"package.module:factory"``: your own denoiser (a plugin);
  * a mapping ``{kind: <name> | plugin, target: "package.module:factory", <options>}``; options go to the factory.

A built-in factory is called ``factory(prm, **options)`` (``prm``: the paper's parameters; only ``profile`` is read,
to pick the authors' checkpoint in the paper profile or the self-trained one in mini / smoke). A plugin factory is
called ``factory(**options)`` and returns a ``Denoiser`` or any callable ``D(x, sigma)``: x a float (N, C, H, W)
tensor of noisy images on the [0, 1] scale, sigma an (N,) tensor of noise standard deviations on that scale, the
result the estimate of the clean images (the lecture's "one MMSE denoiser serves every task"):

    # mypriors.py, next to params.yaml
    import torch
    from skimage.restoration import denoise_nl_means

    def nlm():
        def D(x, sigma):
            out = [denoise_nl_means(im.permute(1, 2, 0).double().numpy(), h=0.8 * float(s), sigma=float(s),
                                    channel_axis=-1) for im, s in zip(x, sigma)]
            return torch.stack([torch.as_tensor(o).permute(2, 0, 1) for o in out]).to(x)
        return D

    python -m replicate kadkhodaie2021_inverse --prior mypriors:nlm      # or params.yaml: prior: mypriors:nlm

The top-level ``prior`` of params.yaml (or REPLICATE_PRIOR / ``--prior``) replaces the *learned* prior of every paper
that has one (``REPLACEABLE``: the universal BF-CNN, NCSNv2, ADM) and leaves the analytic controls (the Gaussian
priors whose MMSE denoiser is exact) alone: ``resolve``. Runs with a replaced prior are analogues, never
reproductions (the report says so).
"""
from __future__ import annotations

import importlib
from typing import Callable

import torch

from replicate.denoisers.base import Denoiser
from replicate.denoisers.bm3d import BM3DDenoiser
from replicate.denoisers.classical import NonLocalMeans, TotalVariation, WaveletShrinkage

#: name -> factory(prm, **options) -> Denoiser
PRIORS: dict[str, Callable[..., Denoiser]] = {}
#: names that stand for a kind with fixed options (the checkpoints the papers name)
ALIASES: dict[str, dict] = {
    "adm_ffhq": {"kind": "adm", "asset": "weights/dps_ffhq/ffhq_10m.pt", "config": "ffhq256_dps"},
    "adm_imagenet": {"kind": "adm", "asset": "weights/guided_diffusion_imagenet256/256x256_diffusion_uncond.pt",
                     "config": "imagenet256_uncond"},
}
#: the learned priors a user's prior replaces (analytic priors are controls and stay)
REPLACEABLE = ("universal", "ncsnv2", "adm")


class PriorError(ValueError):
    """A prior spec that names nothing loadable (the message lists the names and the plugin form)."""


class PriorUnavailable(FileNotFoundError):
    """A prior whose published weights cannot be had here (the asset registry's message says how to get them)."""


def register_prior(name: str) -> Callable[[Callable], Callable]:
    """Decorator: make ``factory(prm, **options) -> Denoiser`` loadable as ``name``."""

    def deco(factory: Callable) -> Callable:
        if name in PRIORS and PRIORS[name] is not factory:
            raise ValueError(f"prior name {name!r} is already registered")
        PRIORS[name] = factory
        return factory

    return deco


def as_spec(spec) -> dict:
    """A spec as a mapping with ``kind`` (and ``target`` for a plugin)."""
    if isinstance(spec, dict):
        if "kind" not in spec:
            raise PriorError(f"a prior mapping needs a 'kind' (a name or 'plugin'), got {spec}")
        out = dict(spec)
    elif isinstance(spec, str) and ":" in spec:
        out = {"kind": "plugin", "target": spec}
    elif isinstance(spec, str):
        out = {"kind": spec}
    else:
        raise PriorError(f"a prior is a name, 'module:factory' or a mapping with 'kind', got {spec!r}")
    while out["kind"] in ALIASES:
        out = {**ALIASES[out.pop("kind")], **out}
    if out["kind"] == "plugin" and ":" not in str(out.get("target", "")):
        raise PriorError(f"a plugin prior needs target: 'package.module:factory', got {out.get('target')!r}")
    return out


def describe(spec) -> str:
    """A short name for reports and folder names: the plugin target or the kind."""
    s = as_spec(spec)
    return s["target"] if s["kind"] == "plugin" else s["kind"]


def resolve(default, override) -> dict:
    """The prior a paper runs: ``override`` (the top-level ``prior``; None or "default" for none) replaces
    ``default`` when the default is a learned prior (REPLACEABLE); analytic priors are kept."""
    spec = as_spec(default)
    if override in (None, "default") or spec["kind"] not in REPLACEABLE:
        return spec
    return as_spec(override)


def frozen(den):
    """A prior in eval mode with its parameters frozen: samplers differentiate through it with respect to the image
    only (DPS, MCG), and without frozen parameters autograd would also compute every weight's gradient (4x the time of
    a forward pass of the 552 M-parameter ImageNet ADM on a CPU, against 1.7x frozen)."""
    if isinstance(den, torch.nn.Module):
        den.eval().requires_grad_(False)
    return den


def load_prior(spec, prm: dict | None = None) -> Denoiser:
    """The Denoiser a spec names, in eval mode with frozen parameters, on the CPU (move it with .to(device))."""
    s = as_spec(spec)
    kind = s.pop("kind")
    if kind == "plugin":
        return _plugin(s.pop("target"), s)
    if kind not in PRIORS:
        raise PriorError(f"unknown prior {kind!r}; known: {', '.join(sorted(set(PRIORS) | set(ALIASES)))}, "
                         "or your own as 'package.module:factory' (see replicate/denoisers/priors.py)")
    return frozen(PRIORS[kind](prm or {}, **s))


# ------------------------------------------------------------------------------------------------ plugins
class FunctionDenoiser(Denoiser):
    """Any callable D(x, sigma) behind the Denoiser interface (input checks, score, residual).

    ``differentiable``: whether gradients flow through it (methods that backpropagate through the prior, DPS and
    MCG, refuse it otherwise); ``max_sigma``: the largest noise level it accepts on the [0, 1] scale."""

    def __init__(self, fn: Callable, *, name: str = "", differentiable: bool = False, max_sigma: float = 1.0):
        super().__init__()
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "plugin")
        self.differentiable = differentiable
        self.max_sigma = max_sigma

    def denoise(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        out = self.fn(y, sigma.reshape(-1))
        if not torch.is_tensor(out) or out.shape != y.shape:
            raise PriorError(f"the plugin prior {self.name} returned "
                             f"{tuple(out.shape) if torch.is_tensor(out) else type(out).__name__} for an input of "
                             f"shape {tuple(y.shape)}: it must return a tensor of the input's shape")
        return out.to(y.dtype)


def _plugin(target: str, options: dict) -> Denoiser:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise PriorError(f"plugin prior {target!r}: cannot import {module_name!r} ({e}); put the module next to "
                         "params.yaml or on PYTHONPATH") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise PriorError(f"plugin prior {target!r}: {module_name} has no {attr!r}")
    made = factory(**options)
    if isinstance(made, Denoiser):
        return frozen(made)
    if not callable(made):
        raise PriorError(f"plugin prior {target!r}: the factory returned {type(made).__name__}, not a Denoiser or a "
                         "callable D(x, sigma)")
    return FunctionDenoiser(made, name=target)


# ------------------------------------------------------------------------------------------------ built-ins
#: the universal bias-free BF-CNN of Kadkhodaie & Simoncelli (paper profile) by channel kind
UNIVERSAL_ASSETS = {
    "gray": "weights/universal_inverse_problem_bfcnn/BSD400_gray/model.pt",
    "color": "weights/universal_inverse_problem_bfcnn/BSD300_color/model.pt",
    "mnist": "weights/universal_inverse_problem_bfcnn/mnist_gray/model.pt",
}
UNIVERSAL_CHECKPOINT_NAMES = {"gray": "BSD400_gray", "color": "BSD300_color", "mnist": "mnist_gray"}


def _fetch(asset: str) -> str:
    from replicate.assets.registry import AssetError, fetch

    try:
        return fetch(asset)
    except AssetError as e:
        raise PriorUnavailable(f"checkpoint {asset}: {e}") from e


def small_bf_dncnn(channels: int, depth: int, features: int):
    """The small bias-free DnCNN the mini / smoke profiles train as their universal prior."""
    from replicate.denoisers.base import NetworkDenoiser
    from replicate.denoisers.bfcnn import DnCNN

    return NetworkDenoiser(DnCNN(channels=channels, depth=depth, features=features, bias=False), output="clean",
                           channels=channels)


@register_prior("universal")
def universal(prm: dict, channels: str = "color") -> Denoiser:
    """The universal bias-free denoiser every downstream paper uses.

    paper profile: the authors' universal BF-CNN of Kadkhodaie & Simoncelli (BSD400 grey, BSD300 colour, MNIST;
    blind, trained on sigma in [0, 100] / 255), fetched through the asset registry; mini / smoke: the small bias-free
    DnCNN that the ``mohan2020_models`` stage trains (data/models/<profile>/mohan2020/universal_<channels>.pt)."""
    if channels not in UNIVERSAL_ASSETS:
        raise PriorError(f"unknown universal prior channels {channels!r}; choose one of {', '.join(UNIVERSAL_ASSETS)}")
    from replicate.params import code_profile

    if code_profile(prm) == "paper":   # the paper profile and its dry run
        from replicate.denoisers.checkpoints import universal_denoiser

        return universal_denoiser(UNIVERSAL_CHECKPOINT_NAMES[channels], _fetch(UNIVERSAL_ASSETS[channels]))
    from replicate import runtime

    path = runtime.models_dir(prm, "mohan2020") / f"universal_{channels}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the mohan2020_models stage trains it "
                                "(dvc repro mohan2020_models)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    arch = state["log"]["config"]["extra"]["arch"]
    model = small_bf_dncnn(arch["channels"], arch["depth"], arch["features"])
    model.load_state_dict(state["model"])
    return model


@register_prior("ncsnv2")
def ncsnv2(prm: dict, checkpoint: str, config: str) -> Denoiser:
    """Song & Ermon's NCSNv2 score network (Kawar et al.'s prior) from the registry set ``checkpoint``."""
    from replicate.assets.registry import assets_in
    from replicate.denoisers.ncsnv2 import NCSNv2Denoiser

    (asset,) = assets_in(checkpoint)
    return NCSNv2Denoiser.from_checkpoint(_fetch(asset), config)


@register_prior("adm")
def adm(prm: dict, asset: str, config: str, clip_denoised: bool = True) -> Denoiser:
    """An ADM (guided-diffusion) eps-network as a denoiser; the diffusion methods use its x0-predictor directly
    (replicate.methods: ``x0_model``), so DPS / DDRM / MCG see exactly the network the DPS code runs."""
    from replicate.denoisers.adm import load_adm_checkpoint
    from replicate.denoisers.vp import ADMDenoiser

    return ADMDenoiser(load_adm_checkpoint(_fetch(asset), config), clip_denoised=clip_denoised)


@register_prior("gaussian")
def gaussian(prm: dict, shape, alpha: float = 2.0, scale: float = 0.2, mean: float = 0.5) -> Denoiser:
    """A stationary Gaussian prior with a 1/f^alpha spectrum: its MMSE denoiser is the exact Wiener filter (the
    analytic control of the samplers; never replaced by a user's prior)."""
    from replicate.denoisers.gaussian import StationaryGaussianPrior

    return StationaryGaussianPrior(tuple(shape), alpha=alpha, scale=scale, mean=mean)


#: the classic-era denoisers (scikit-image's NLM, TV and wavelet shrinkage; the bm3d package), options passed through
CLASSICAL = {"nlm": NonLocalMeans, "tv": TotalVariation, "wavelet": WaveletShrinkage, "bm3d": BM3DDenoiser}
for _name, _cls in CLASSICAL.items():
    register_prior(_name)(lambda prm, _cls=_cls, **options: _cls(**options))
