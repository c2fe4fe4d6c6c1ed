"""NCSNv2 score networks (Song & Ermon 2020) and their denoiser adapter.

(One module of ~460 lines on purpose: the three architectures, their configs, the checkpoint loader and the adapter
must stay parameter-for-parameter in step with the released code; tests/test_ncsnv2.py checks them together.)

Kawar, Vaksman & Elad (2021) and SNIPS sample with the public NCSNv2 checkpoints: CelebA 64
(``NCSNv2``), LSUN bedroom / tower 128 (``NCSNv2Deeper``) and FFHQ 256 (``NCSNv2Deepest``).
The modules below reproduce those networks parameter for parameter (state-dict keys, shapes,
registration order) so the official checkpoints load strictly; numeric agreement with the
original code is checked against ``tests/fixtures/reference/probes`` (from shared/reference).

Conventions of the original (kept here, hidden from the samplers by ``NCSNv2Denoiser``):
  * ``net(x, labels)``: x in [0, 1] (mapped to 2x - 1 inside), labels = integer index into a
    geometric ladder ``sigmas`` (sigma on the [0, 1] data scale, sigma_begin up to 348!);
  * the output is the score w.r.t. x at level ``sigmas[labels]`` (the last layer divides by it),
    so the MMSE denoiser is ``x + sigma^2 * s(x, i)``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .base import Denoiser, sigma_like
from .ladders import geometric_ladder

NCSNV2_DRIVE_FOLDER = "https://drive.google.com/drive/folders/1217uhIvLg9ZrYNKOR3XTRFSurt4miQrd"

# Values from the official configs (ermongroup/ncsnv2 configs/*.yml); checkpoints are expected at
# exp/logs/<doc>/checkpoint_<ckpt_id>.pth inside the Drive folder above (no sizes/hashes published).
def _ncsnv2_config(doc: str, image_size: int, cls: str, sigma_begin: float, num_classes: int, ckpt_id: int,
                   step_lr: float, n_steps_each: int) -> dict:
    """One official config; what all four share (3 channels, sigma_end 0.01, ngf 128, not rescaled) is written once."""
    return dict(image_size=image_size, channels=3, **{"class": cls}, sigma_begin=sigma_begin, sigma_end=0.01,
                num_classes=num_classes, ngf=128, ckpt_id=ckpt_id, step_lr=step_lr, n_steps_each=n_steps_each,
                rescaled=False, doc=doc, drive_folder=NCSNV2_DRIVE_FOLDER,
                ckpt_path=f"exp/logs/{doc}/checkpoint_{ckpt_id}.pth")


NCSNV2_CONFIGS: dict[str, dict] = {
    "celeba": _ncsnv2_config("celeba", 64, "NCSNv2", 90.0, 500, 210000, 3.3e-6, 5),
    "bedroom": _ncsnv2_config("bedroom", 128, "NCSNv2Deeper", 190.0, 1086, 150000, 1.8e-6, 3),
    "tower": _ncsnv2_config("tower", 128, "NCSNv2Deeper", 190.0, 1086, 150000, 1.8e-6, 3),
    "ffhq": _ncsnv2_config("ffhq", 256, "NCSNv2Deepest", 348.0, 2311, 80000, 9e-7, 3),
}


def geometric_sigmas(sigma_begin: float, sigma_end: float, num_classes: int) -> torch.Tensor:
    """Decreasing geometric ladder, computed in float64 then cast to float32 as the original does (there with
    numpy: its float64 values can differ from torch's in the last bit, the float32 ones were identical on the three
    released ladders and on 2000 random ones)."""
    return geometric_ladder(sigma_begin, sigma_end, count=num_classes, dtype=torch.float64).float()


# ----------------------------------------------------------------------------- building blocks


class InstanceNormPlus(nn.Module):
    """InstanceNorm++: instance norm that re-injects the (normalised) per-channel means.

    Plain instance norm discards each channel's mean, i.e. colour shifts; ++ adds back
    alpha * (mean_c - mean over channels) / std over channels, then a per-channel affine map.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.alpha = nn.Parameter(torch.ones(num_features))
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=(2, 3))                                  # (N, C)
        # torch.var's default (unbiased) estimator across channels, as in the original
        mu_hat = (mu - mu.mean(-1, keepdim=True)) / torch.sqrt(mu.var(-1, keepdim=True) + self.eps)
        h = F.instance_norm(x, eps=self.eps) + mu_hat[..., None, None] * self.alpha[:, None, None]
        return self.gamma[:, None, None] * h + self.beta[:, None, None]


class ConvMeanPool(nn.Module):
    """Convolution followed by 2x2 average pooling (the attribute name ``conv`` is checkpoint-visible)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(x), 2)


def _conv3x3(c_in: int, c_out: int, dilation: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation, bias=bias)


class ResidualBlock(nn.Module):
    """Pre-activation residual block: norm -> ELU -> conv -> norm -> ELU -> conv, plus shortcut.

    ``down=True`` without dilation halves the resolution (conv then mean-pool). With a dilation the
    original code's "down" block does NOT change the resolution; it only widens the receptive field
    (RefineNet-style dilated stages). This quirk is reproduced because checkpoints depend on it.
    """

    def __init__(self, c_in: int, c_out: int, down: bool = False, dilation: int | None = None):
        super().__init__()
        d = dilation or 1
        c_mid = c_in if down else c_out  # a "down" block keeps c_in until its last conv
        # registration order (conv1, normalize2, conv2, shortcut, normalize1) follows the original
        self.conv1 = _conv3x3(c_in, c_mid, d)
        self.normalize2 = InstanceNormPlus(c_mid)
        if down and dilation is None:
            self.conv2 = ConvMeanPool(c_mid, c_out, 3)
            self.shortcut = ConvMeanPool(c_in, c_out, 1)
        else:
            self.conv2 = _conv3x3(c_mid, c_out, d)
            if down or c_in != c_out:
                self.shortcut = _conv3x3(c_in, c_out, d)
        self.normalize1 = InstanceNormPlus(c_in)
        self.identity_shortcut = not (down or c_in != c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.elu(self.normalize1(x)))
        h = self.conv2(F.elu(self.normalize2(h)))
        return h + (x if self.identity_shortcut else self.shortcut(x))


class RCUBlock(nn.Module):
    """Residual conv units: n_blocks x (ELU -> conv -> ELU -> conv, + skip); bias-free convs."""

    def __init__(self, features: int, n_blocks: int, n_stages: int = 2):
        super().__init__()
        self.names = [[f"{i + 1}_{j + 1}_conv" for j in range(n_stages)] for i in range(n_blocks)]
        for block in self.names:
            for name in block:  # names like "1_2_conv" are not identifiers, hence add_module
                self.add_module(name, _conv3x3(features, features, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.names:
            h = x
            for name in block:
                h = getattr(self, name)(F.elu(h))
            x = x + h
        return x


class CRPBlock(nn.Module):
    """Chained residual pooling: ELU, then a chain of (5x5 max-pool -> conv) summed into the input."""

    def __init__(self, features: int, n_stages: int = 2):
        super().__init__()
        self.convs = nn.ModuleList(_conv3x3(features, features, bias=False) for _ in range(n_stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.elu(x)
        path = x
        for conv in self.convs:
            path = conv(F.max_pool2d(path, kernel_size=5, stride=1, padding=2))
            x = x + path
        return x


class MSFBlock(nn.Module):
    """Multi-resolution fusion: conv each input, resize bilinearly (align_corners=True), sum."""

    def __init__(self, in_planes: list[int], features: int):
        super().__init__()
        self.convs = nn.ModuleList(_conv3x3(c, features) for c in in_planes)

    def forward(self, xs: list[torch.Tensor], shape) -> torch.Tensor:
        out = 0
        for conv, x in zip(self.convs, xs):
            out = out + F.interpolate(conv(x), size=tuple(shape), mode="bilinear", align_corners=True)
        return out


class RefineBlock(nn.Module):
    """RefineNet block: adapt each input (RCU x2), fuse (MSF), pool (CRP), output RCU (x3 at the end)."""

    def __init__(self, in_planes: list[int], features: int, start: bool = False, end: bool = False):
        super().__init__()
        self.adapt_convs = nn.ModuleList(RCUBlock(c, 2) for c in in_planes)
        self.output_convs = RCUBlock(features, 3 if end else 1)
        self.msf = None if start else MSFBlock(in_planes, features)
        self.crp = CRPBlock(features)

    def forward(self, xs: list[torch.Tensor], shape) -> torch.Tensor:
        hs = [adapt(x) for adapt, x in zip(self.adapt_convs, xs)]
        h = hs[0] if self.msf is None else self.msf(hs, shape)
        return self.output_convs(self.crp(h))


# ----------------------------------------------------------------------------- networks

# Encoder stages, shallow to deep: (stage name, width in units of ngf, down, dilation, refine name).
# Refine blocks run deep to shallow; each outputs the width of the next shallower stage.
_STAGES = {
    "NCSNv2": [
        ("res1", 1, False, None, "refine4"),
        ("res2", 2, True, None, "refine3"),
        ("res3", 2, True, 2, "refine2"),
        ("res4", 2, True, 4, "refine1"),
    ],
    "NCSNv2Deeper": [
        ("res1", 1, False, None, "refine5"),
        ("res2", 2, True, None, "refine4"),
        ("res3", 2, True, None, "refine3"),
        ("res4", 4, True, 2, "refine2"),
        ("res5", 4, True, 4, "refine1"),
    ],
    "NCSNv2Deepest": [
        ("res1", 1, False, None, "refine5"),
        ("res2", 2, True, None, "refine4"),
        ("res3", 2, True, None, "refine3"),
        ("res31", 2, True, None, "refine31"),
        ("res4", 4, True, 2, "refine2"),
        ("res5", 4, True, 4, "refine1"),
    ],
}


class _NCSNv2Base(nn.Module):
    """Shared NCSNv2 body; subclasses only pick their stage table (see ``_STAGES``)."""

    arch: str = ""

    def __init__(
        self,
        *,
        ngf: int = 128,
        channels: int = 3,
        num_classes: int,
        sigma_begin: float,
        sigma_end: float,
        rescaled: bool = False,
        image_size: int | None = None,
    ):
        super().__init__()
        stages = _STAGES[self.arch]
        self.rescaled = rescaled
        self.image_size = image_size
        self.register_buffer("sigmas", geometric_sigmas(sigma_begin, sigma_end, num_classes))
        self.begin_conv = nn.Conv2d(channels, ngf, 3, padding=1)
        self.normalizer = InstanceNormPlus(ngf)
        self.end_conv = nn.Conv2d(ngf, channels, 3, padding=1)

        widths = [w * ngf for _, w, _, _, _ in stages]
        c_prev = ngf
        for (name, _, down, dil, _), c in zip(stages, widths):
            self.add_module(name, nn.ModuleList([ResidualBlock(c_prev, c, down, dil), ResidualBlock(c, c, dilation=dil)]))
            c_prev = c

        refines = {}
        for k, (_, _, _, _, rname) in enumerate(stages):
            features = widths[k - 1] if k > 0 else widths[0]
            start, end = k == len(stages) - 1, k == 0
            in_planes = [widths[k]] if start else [widths[k], widths[k]]
            refines[rname] = RefineBlock(in_planes, features, start=start, end=end)
        # the original registers refine blocks in name order (refine1, 2, 3, 31, 4, 5)
        for rname in sorted(refines):
            self.add_module(rname, refines[rname])
        self._stage_names = [s[0] for s in stages]
        self._refine_names = [s[4] for s in stages]

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = x if self.rescaled else 2.0 * x - 1.0
        h = self.begin_conv(h)
        skips = []
        for name in self._stage_names:
            for block in getattr(self, name):
                h = block(h)
            skips.append(h)
        ref = None
        for name, skip in zip(reversed(self._refine_names), reversed(skips)):
            xs = [skip] if ref is None else [skip, ref]
            ref = getattr(self, name)(xs, skip.shape[2:])
        out = self.end_conv(F.elu(self.normalizer(ref)))
        return out / self.sigmas[labels].view(-1, *([1] * (x.ndim - 1)))


class NCSNv2(_NCSNv2Base):
    """CelebA 64 architecture (4 stages, last two dilated 2 and 4)."""

    arch = "NCSNv2"


class NCSNv2Deeper(_NCSNv2Base):
    """LSUN 128 architecture (5 stages, widths up to 4 ngf)."""

    arch = "NCSNv2Deeper"


class NCSNv2Deepest(_NCSNv2Base):
    """FFHQ 256 architecture (6 stages, an extra 2-ngf downsampling stage ``res31``)."""

    arch = "NCSNv2Deepest"


_CLASSES = {c.arch: c for c in (NCSNv2, NCSNv2Deeper, NCSNv2Deepest)}


def build_ncsnv2(config: str | dict) -> _NCSNv2Base:
    """An (untrained) network for a name in ``NCSNV2_CONFIGS`` or a dict with the same fields
    (``class``, ngf, channels, num_classes, sigma_begin, sigma_end; optional rescaled, image_size)."""
    if isinstance(config, str):
        if config not in NCSNV2_CONFIGS:
            raise KeyError(f"unknown NCSNv2 config {config!r}; choose from {sorted(NCSNV2_CONFIGS)}")
        config = NCSNV2_CONFIGS[config]
    c = config
    return _CLASSES[c["class"]](
        ngf=c["ngf"], channels=c["channels"], num_classes=c["num_classes"], sigma_begin=c["sigma_begin"],
        sigma_end=c["sigma_end"], rescaled=c.get("rescaled", False), image_size=c.get("image_size"),
    )


# ----------------------------------------------------------------------------- checkpoints


def _strip_module(state: dict) -> dict:
    """Drop the ``module.`` prefix nn.DataParallel adds to every key."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def load_ncsnv2_checkpoint(path, config_name: str | dict, *, ema: bool = True, trusted_pickle: bool = False,
                           map_location="cpu") -> _NCSNv2Base:
    """Load an official NCSNv2 checkpoint ``[model_state, optim_state, epoch, step, ema_state]``.

    ``states[0]`` holds the DataParallel-wrapped full state dict (``module.`` keys, with the
    ``sigmas`` buffer); ``states[-1]`` holds the EMA shadow, which in the original EMAHelper is a
    dict of the *parameters only* (unwrapped names, no buffers). The original sampler therefore
    loads states[0] and then overwrites the parameters with the EMA shadow; we do the same, both
    strictly: every key must match. ``ema=False`` keeps the raw training weights of states[0].
    ``config_name`` is a key of ``NCSNV2_CONFIGS`` (or a config dict, see ``build_ncsnv2``).

    The file is opened with ``torch.load(weights_only=True)`` (no arbitrary code execution); if
    that fails, an error explains why, and ``trusted_pickle=True`` allows a full unpickle for files
    from a source you trust.
    """
    path = Path(path)
    try:
        states = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with context below
        if not trusted_pickle:
            raise RuntimeError(
                f"could not load {path} with torch.load(weights_only=True): {e}\n"
                "The official NCSNv2 checkpoints are plain tensors/dicts/lists and should load safely; "
                "pass trusted_pickle=True only if you trust the file's origin."
            ) from e
        states = torch.load(path, map_location=map_location, weights_only=False)
    if isinstance(states, dict):  # a bare state dict (e.g. re-saved by this project)
        states = [states]
    if not isinstance(states, (list, tuple)) or not states or not isinstance(states[0], dict):
        raise ValueError(f"{path}: expected a list [model_state, optim_state, epoch, step, ema_state], "
                         f"got {type(states).__name__}")
    net = build_ncsnv2(config_name)
    net.load_state_dict(_strip_module(states[0]), strict=True)
    if ema:
        if len(states) < 2 or not isinstance(states[-1], dict):
            raise ValueError(f"{path}: no EMA state (states[-1]); use ema=False for the raw weights")
        shadow = _strip_module(states[-1])
        params = dict(net.named_parameters())
        missing, unexpected = params.keys() - shadow.keys(), shadow.keys() - params.keys()
        if missing or unexpected:
            raise KeyError(f"{path}: EMA state does not match the network's parameters: "
                           f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
        with torch.no_grad():
            for name, p in params.items():
                if shadow[name].shape != p.shape:
                    raise ValueError(f"{path}: EMA {name} has shape {tuple(shadow[name].shape)}, "
                                     f"expected {tuple(p.shape)}")
                p.copy_(shadow[name])
    return net.eval().requires_grad_(False)   # a pretrained prior: gradients only with respect to the image


# ----------------------------------------------------------------------------- denoiser adapter


class NCSNv2Denoiser(Denoiser):
    """MMSE denoiser from an NCSNv2 score network: ``D(y, sigma) = y + sigma_i^2 s(y, i)``.

    The network only knows its ladder levels, so sigma is mapped to the level i nearest in log.
    Requests farther than ``rtol`` (1 %) from every level raise a ValueError, unless ``snap=True``,
    which silently uses the nearest level (outside the ladder this means the end levels). The
    ladders are dense (adjacent levels 0.9-1.8 % apart), so in practice only sigmas outside
    [sigma_end, sigma_begin] are refused. D uses sigma_i, the level the network actually evaluated,
    and ``score`` returns the network's score at that level (not rescaled to the requested sigma).
    """

    channels = 3
    differentiable = True
    blind = False

    def __init__(self, net: _NCSNv2Base, *, snap: bool = False, rtol: float = 0.01):
        super().__init__()
        self.net = net
        self.snap = snap
        self.rtol = rtol
        self.channels = net.begin_conv.in_channels
        # the ladder reaches 90 to 348 on the [0, 1] scale; level_index refuses what lies outside it (unless snap)
        self.max_sigma = float("inf")

    @property
    def sigmas(self) -> torch.Tensor:
        """The network's sigma ladder (decreasing, [0, 1] data scale)."""
        return self.net.sigmas

    def level_index(self, sigma) -> torch.Tensor:
        """Index (LongTensor, same shape as sigma) of the ladder level nearest to sigma in log."""
        ladder = self.sigmas
        s = torch.as_tensor(sigma, dtype=torch.float64, device=ladder.device)
        if (s <= 0).any():
            raise ValueError("sigma must be positive")
        dist = (s.log()[..., None] - ladder.double().log()).abs()
        idx = dist.argmin(-1)
        if not self.snap:
            rel = (s / ladder.double()[idx] - 1.0).abs()
            if (rel > self.rtol).any():
                bad = s[rel > self.rtol].flatten()[0].item()
                raise ValueError(
                    f"sigma={bad:.6g} is more than {self.rtol:.0%} from every NCSNv2 level "
                    f"[{ladder[-1].item():.4g} .. {ladder[0].item():.4g}]; pass snap=True to use the nearest level"
                )
        return idx

    def score_at_level(self, y: torch.Tensor, idx) -> torch.Tensor:
        """Network score at ladder level(s) ``idx`` (int or LongTensor of shape (N,)), as Kawar's samplers use."""
        labels = torch.as_tensor(idx, dtype=torch.long, device=y.device)
        if labels.ndim == 0:
            labels = labels.expand(y.shape[0])
        return self.net(y, labels)

    def denoise(self, y: torch.Tensor, sigma4: torch.Tensor) -> torch.Tensor:
        idx = self.level_index(sigma4.flatten()).to(y.device)
        s_i = self.sigmas.to(y.device, y.dtype)[idx].view(-1, *([1] * (y.ndim - 1)))
        return y + s_i**2 * self.score_at_level(y, idx)

    def score(self, y: torch.Tensor, sigma) -> torch.Tensor:
        sig = sigma_like(sigma, y).flatten()  # validates the shape like forward() does
        return self.score_at_level(y, self.level_index(sig).to(y.device))

    @classmethod
    def from_checkpoint(cls, path, config_name: str | dict, *, ema: bool = True, snap: bool = False) -> "NCSNv2Denoiser":
        return cls(load_ncsnv2_checkpoint(path, config_name, ema=ema), snap=snap)


__all__ = [
    "NCSNV2_CONFIGS", "NCSNV2_DRIVE_FOLDER", "NCSNv2", "NCSNv2Deeper", "NCSNv2Deepest", "NCSNv2Denoiser",
    "InstanceNormPlus", "build_ncsnv2", "geometric_sigmas", "load_ncsnv2_checkpoint",
]
