"""Image-quality metrics with each paper's convention written down.

All inputs are float tensors (N, C, H, W) in [0, 1]; every per-image metric returns a float64 tensor of
shape (N,), so that callers can average, bootstrap or pair them per image.

Networks (LPIPS backbones, the FID Inception) are resolved through the project's asset registry and never
downloaded by the `lpips` / `pytorch_fid` packages themselves. When a file is missing we raise
`MetricUnavailable`; we never fall back to random weights, because a number from an untrained network
would look like a real LPIPS/FID and silently poison a comparison with the papers.
"""
from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MetricUnavailable", "mse", "psnr", "PSNR_CONVENTIONS", "psnr_for", "ssim", "LPIPS",
    "LPIPS_BACKBONES", "FID_INCEPTION", "lpips_available", "fid", "fid_available",
    "fid_features", "fid_statistics", "frechet_distance", "frechet_distance_features", "map_backbone_state",
]

LPIPS_BACKBONES = {
    "alex": "metrics/lpips_backbones/alexnet-owt-7be5be79.pth",
    "vgg": "metrics/lpips_backbones/vgg16-397923af.pth",
}
FID_INCEPTION = "metrics/fid_inception/pt_inception-2015-12-05-6726825d.pth"


class MetricUnavailable(RuntimeError):
    """A metric cannot be computed here (its network weights are not available)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------
def _check_pair(x: torch.Tensor, ref: torch.Tensor, name: str) -> None:
    if not (torch.is_tensor(x) and torch.is_tensor(ref)):
        raise TypeError(f"{name}: expected two torch tensors, got {type(x).__name__} and {type(ref).__name__}")
    if x.ndim != 4 or ref.ndim != 4:
        raise ValueError(f"{name}: expected (N, C, H, W) tensors, got shapes {tuple(x.shape)} and {tuple(ref.shape)}")
    if x.shape != ref.shape:
        raise ValueError(f"{name}: shapes differ: x {tuple(x.shape)} vs ref {tuple(ref.shape)}")


# --------------------------------------------------------------------------------------------------
# MSE / PSNR
# --------------------------------------------------------------------------------------------------
def mse(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over C, H, W, in float64 (float32 sums lose ~1e-7 relative)."""
    _check_pair(x, ref, "mse")
    d = x.detach().double() - ref.detach().double()
    return d.pow(2).flatten(1).mean(dim=1)


def psnr(x: torch.Tensor, ref: torch.Tensor, *, data_range: float | str = 1.0, clip: bool = True,
         convention: str = "mean_of_psnr") -> torch.Tensor:
    """PSNR = 10 log10(R^2 / MSE).

    data_range: the peak R. A float, or "max_gt" for Xie et al.'s official code, which uses R = max(gt) of each
        reference image instead of the nominal range (a quirk: it raises PSNR on dark images).
    clip: clamp x to [0, R] first (outputs of samplers overshoot; Mohan clamps to [0, 255]). With "max_gt" we
        clamp to the nominal [0, 1] range of project images, since the quirk only changes the peak in the formula.
    convention:
        "mean_of_psnr"     -> per-image PSNR, shape (N,); the papers average these (SNIPS/Kawar, skimage loops).
        "psnr_of_mean_mse" -> one 0-d tensor, 10 log10(R^2 / mean_i MSE_i). It is never larger than the
                              mean of per-image PSNRs (Jensen); provided to quantify that gap.
    A zero MSE gives +inf, as skimage does.
    """
    _check_pair(x, ref, "psnr")
    if data_range == "max_gt":
        peak = ref.detach().double().flatten(1).amax(dim=1)
        clip_max = 1.0
    elif isinstance(data_range, str):
        raise ValueError(f"psnr: data_range must be a number or 'max_gt', got {data_range!r}")
    else:
        peak = torch.full((x.shape[0],), float(data_range), dtype=torch.float64)
        clip_max = float(data_range)
    if clip:
        x = x.clamp(0.0, clip_max)
    err = mse(x, ref)
    if convention == "mean_of_psnr":
        return 10.0 * torch.log10(peak.pow(2) / err)
    if convention == "psnr_of_mean_mse":
        if data_range == "max_gt":
            raise ValueError("psnr: 'psnr_of_mean_mse' needs one peak for all images, not 'max_gt'")
        return 10.0 * torch.log10(peak[0].pow(2) / err.mean())
    raise ValueError(f"psnr: unknown convention {convention!r} (use 'mean_of_psnr' or 'psnr_of_mean_mse')")


# Each paper's PSNR, as far as its text and official code show it (see shared notes/original-code-facts.md).
# Images in this project live in [0, 1], so "data_range 1" is the same number as "255 on 8-bit images".
PSNR_CONVENTIONS: dict[str, dict] = {
    "mohan2020": dict(data_range=1.0, clip=True, convention="mean_of_psnr",
                      note="skimage PSNR on outputs clamped to [0, 255]; data_range 1 on [0, 1] is identical"),
    "kadkhodaie2021": dict(data_range=1.0, clip=True, convention="mean_of_psnr",
                           note="same lab and tooling as mohan2020 (skimage, images in [0, 1])"),
    "kawar2021": dict(data_range=1.0, clip=True, convention="mean_of_psnr",
                      note="SNIPS code: mean over images of 10*log10(1/MSE) on [0, 1]; whether SNIPS clamps its "
                           "samples is not documented in our notes, the final sample is in [0, 1] up to noise"),
    "xie2023": dict(data_range="max_gt", clip=True, convention="mean_of_psnr",
                    note="official code: data_range = max(gt) per image (not 255), a quirk kept as a setting"),
    "chung2023": dict(data_range=1.0, clip=True, convention="mean_of_psnr",
                      note="DPS metric code: skimage peak_signal_noise_ratio on [0, 1] images (data_range 1)"),
}


def psnr_for(paper: str, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR with `paper`'s convention (a key of PSNR_CONVENTIONS)."""
    if paper not in PSNR_CONVENTIONS:
        raise KeyError(f"no PSNR convention recorded for {paper!r}; known: {sorted(PSNR_CONVENTIONS)}")
    c = PSNR_CONVENTIONS[paper]
    return psnr(x, ref, data_range=c["data_range"], clip=c["clip"], convention=c["convention"])


# --------------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------------
def ssim(x: torch.Tensor, ref: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM via skimage.metrics.structural_similarity with skimage's defaults:
    7x7 uniform window (gaussian_weights=False), K1=0.01, K2=0.03, sample covariance, mean over the
    valid (uncropped) window positions; colour images use channel_axis (SSIM per channel, then averaged).
    Images must be at least 7x7. No clipping (callers decide; DPS's code does not clip for SSIM).
    """
    from skimage.metrics import structural_similarity

    _check_pair(x, ref, "ssim")
    xs = x.detach().double().cpu().numpy()
    rs = ref.detach().double().cpu().numpy()
    out = []
    for xi, ri in zip(xs, rs):
        if xi.shape[0] == 1:
            out.append(structural_similarity(ri[0], xi[0], data_range=data_range))
        else:
            out.append(structural_similarity(ri, xi, data_range=data_range, channel_axis=0))
    return torch.tensor(out, dtype=torch.float64)


# --------------------------------------------------------------------------------------------------
# asset resolution (lazy: the registry is another layer and may be absent in a bare checkout)
# --------------------------------------------------------------------------------------------------
def _fetch_asset(name: str, *, offline: bool | None = None) -> Path:
    """Path of a registry asset, or MetricUnavailable saying why not. offline=True only looks at local
    copies (cache / mirror); None lets the registry decide (it may download)."""
    try:
        registry = importlib.import_module("replicate.assets.registry")
    except ImportError as e:
        raise MetricUnavailable(f"cannot resolve {name}: asset registry not importable ({e})") from e
    try:
        return Path(registry.fetch(name) if offline is None else registry.fetch(name, offline=offline))
    except registry.AssetUnavailable as e:
        raise MetricUnavailable(
            f"{name} is not available here ({e}); place the file in the asset mirror to enable this metric"
        ) from e


def _available(name: str) -> tuple[bool, str]:
    # a cheap probe: no download attempt (offline retries would take seconds per call)
    try:
        return True, str(_fetch_asset(name, offline=True))
    except MetricUnavailable as e:
        return False, e.reason


def lpips_available(net: str = "alex") -> tuple[bool, str]:
    """(True, path of the backbone file) or (False, reason), from local copies only (no download)."""
    if net not in LPIPS_BACKBONES:
        return False, f"unknown LPIPS net {net!r}; known: {sorted(LPIPS_BACKBONES)}"
    return _available(LPIPS_BACKBONES[net])


def fid_available() -> tuple[bool, str]:
    """(True, path of the FID Inception weights) or (False, reason), from local copies only (no download)."""
    return _available(FID_INCEPTION)


# --------------------------------------------------------------------------------------------------
# LPIPS
# --------------------------------------------------------------------------------------------------
def _load_torch_state(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def map_backbone_state(net: torch.nn.Module, tv_state: dict) -> dict:
    """Rename torchvision `features.N.*` keys onto lpips' slices (`sliceK.N.*`).

    lpips.pretrained_networks splits torchvision's `.features` Sequential into slices but keeps each layer's
    original index as its module name, so `sliceK.N.weight` is `features.N.weight`. We require an exact
    one-to-one match: every backbone parameter must come from the file and every `features.*` tensor in the
    file must be used (a partial load would leave random layers in the network).
    """
    wanted = {}
    for key in net.state_dict():
        _slice, rest = key.split(".", 1)
        wanted[key] = "features." + rest
    file_keys = {k for k in tv_state if k.startswith("features.")}
    missing = sorted(set(wanted.values()) - file_keys)
    unused = sorted(file_keys - set(wanted.values()))
    if missing or unused:
        raise ValueError(f"LPIPS backbone file does not match the network: missing {missing[:5]}, unused {unused[:5]}")
    return {k: tv_state[v] for k, v in wanted.items()}


class LPIPS:
    """LPIPS v0.1 (Zhang et al. 2018), `net` in {"alex", "vgg"}; DPS reports LPIPS-VGG, Kawar LPIPS-Alex
    (the lpips default). Inputs in [0, 1] are mapped to [-1, 1]; grayscale is repeated to 3 channels.

    The linear calibration layers ship inside the lpips package (pretrained=True); the torchvision backbone
    is built untrained (pnet_rand=True, so lpips does not download) and then filled from the registry file.
    """

    def __init__(self, net: str = "alex", *, device: str | torch.device = "cpu"):
        import lpips

        if net not in LPIPS_BACKBONES:
            raise ValueError(f"LPIPS: net must be one of {sorted(LPIPS_BACKBONES)}, got {net!r}")
        path = _fetch_asset(LPIPS_BACKBONES[net])  # before building anything: fail fast and clearly
        with warnings.catch_warnings():  # lpips calls torchvision's deprecated `pretrained=False`
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
        model.net.load_state_dict(map_backbone_state(model.net, _load_torch_state(path)), strict=True)
        # lpips loads its linear layers with strict=False; make sure they really came from its v0.1 file
        lin_file = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
        own = model.state_dict()
        for key, value in _load_torch_state(lin_file).items():
            if key not in own or not torch.equal(own[key], value):
                raise RuntimeError(f"LPIPS linear layer {key} was not loaded from {lin_file}")
        self.net_name = net
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, ref: torch.Tensor, *, batch_size: int = 16) -> torch.Tensor:
        _check_pair(x, ref, "lpips")
        if x.shape[1] not in (1, 3):
            raise ValueError(f"lpips: expected 1 or 3 channels, got {x.shape[1]}")
        out = []
        for i in range(0, x.shape[0], batch_size):
            a = x[i:i + batch_size].float().to(self.device).expand(-1, 3, -1, -1)
            b = ref[i:i + batch_size].float().to(self.device).expand(-1, 3, -1, -1)
            out.append(self.model(a, b, normalize=True).flatten().double().cpu())
        return torch.cat(out)


# --------------------------------------------------------------------------------------------------
# FID
# --------------------------------------------------------------------------------------------------
class _FIDInceptionPool3(torch.nn.Module):
    """pytorch_fid's InceptionV3 up to the 2048-d pool3 features, built without any download.

    Same construction as pytorch_fid.inception.fid_inception_v3 (torchvision Inception with the FID blocks
    patched in, 1008 classes, no aux head), the same layer order as InceptionV3's four blocks, the same input
    handling: bilinear resize to 299x299 (align_corners=False) and [0, 1] -> [-1, 1].
    """

    @staticmethod
    def build_network() -> torch.nn.Module:
        """The untrained FID Inception (no download): pytorch_fid.fid_inception_v3 minus its weight fetch."""
        from pytorch_fid import inception as pfi

        net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = pfi.FIDInceptionE_1(1280)
        net.Mixed_7c = pfi.FIDInceptionE_2(2048)
        return net

    def __init__(self, state: dict):
        super().__init__()
        net = self.build_network()
        net.load_state_dict(state, strict=True)
        self.body = torch.nn.Sequential(
            net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, torch.nn.MaxPool2d(3, stride=2),
            net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, torch.nn.MaxPool2d(3, stride=2),
            net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d,
            net.Mixed_6e, net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, torch.nn.AdaptiveAvgPool2d(1),
        )
        self.eval()

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.body(2 * x - 1).flatten(1)


def _batches(images: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterable[torch.Tensor]:
    if torch.is_tensor(images):
        for i in range(0, images.shape[0], batch_size):
            yield images[i:i + batch_size]
    else:
        yield from images


def fid_features(images, model: torch.nn.Module, *, batch_size: int = 50,
                 device: str | torch.device = "cpu") -> np.ndarray:
    """(N, 2048) float64 pool3 features; `images` is a tensor or an iterable of (B, C, H, W) batches in [0, 1]."""
    feats = []
    for b in _batches(images, batch_size):
        if b.ndim != 4 or b.shape[1] not in (1, 3):
            raise ValueError(f"fid: expected (N, 1|3, H, W) batches, got {tuple(b.shape)}")
        feats.append(model(b.float().to(device).expand(-1, 3, -1, -1)).double().cpu().numpy())
    f = np.concatenate(feats)
    if f.shape[0] < 2:
        raise ValueError("fid: need at least 2 images per set for a covariance")
    return f


def fid_statistics(images, model: torch.nn.Module, *, batch_size: int = 50,
                   device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray, int]:
    """(mean, covariance, count) of pool3 features, as pytorch-fid stores them (np.cov, ddof 1)."""
    f = fid_features(images, model, batch_size=batch_size, device=device)
    return f.mean(axis=0), np.cov(f, rowvar=False), f.shape[0]


def fid(real, fake, *, batch_size: int = 50, device: str | torch.device = "cpu") -> float:
    """FID between two image sets (tensors in [0, 1] or iterables of batches), with pytorch-fid's network and
    preprocessing. FID is biased upwards at small N: compare only numbers computed at equal N (DPS uses 1k)."""
    state = _load_torch_state(_fetch_asset(FID_INCEPTION))
    model = _FIDInceptionPool3(state).to(device)
    f1 = fid_features(real, model, batch_size=batch_size, device=device)
    f2 = fid_features(fake, model, batch_size=batch_size, device=device)
    return frechet_distance_features(f1, f2)


def frechet_distance_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets (rows = samples, ddof 1).

    With A = (F1 - mu1)^T / sqrt(n1 - 1) and B likewise, S1 = A A^T and S2 = B B^T, and the nonzero
    eigenvalues of S1 S2 are the squared singular values of M = A^T B (n1 x n2). Hence
    Tr((S1 S2)^{1/2}) = nuclear norm of M: exact for the sample covariances, and for n < 2048 (DPS: 1k
    images, rank-deficient covariances) far cheaper and better conditioned than a 2048x2048 matrix root.
    For large sets we fall back to the covariance route.
    """
    from scipy import linalg

    f1, f2 = np.asarray(f1, dtype=np.float64), np.asarray(f2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"frechet_distance_features: expected (n, d) arrays with equal d, got {f1.shape}, {f2.shape}")
    n1, n2, d = f1.shape[0], f2.shape[0], f1.shape[1]
    if n1 < 2 or n2 < 2:
        raise ValueError("frechet_distance_features: need at least 2 samples per set")
    if n1 * n2 > d * d:
        return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    mu1, mu2 = f1.mean(0), f2.mean(0)
    a = (f1 - mu1).T / np.sqrt(n1 - 1)
    b = (f2 - mu2).T / np.sqrt(n2 - 1)
    nuclear = linalg.svdvals(a.T @ b).sum()
    diff = mu1 - mu2
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * nuclear)


def frechet_distance(mu1, s1, mu2, s2, *, method: str = "eigh", eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2}).

    method "eigh" (default): Tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i) with lambda_i the eigenvalues of the
        symmetric PSD matrix S1^{1/2} S2 S1^{1/2} (same spectrum as S1 S2). Two symmetric eigendecompositions:
        a few seconds for 2048x2048, no complex round-off, negative round-off eigenvalues clipped to 0.
    method "sqrtm": pytorch_fid.calculate_frechet_distance's algorithm (scipy sqrtm of S1 S2, eps * I retry
        when singular), for bit-level comparison with pytorch-fid. ~2 minutes for 2048x2048 on one core here.
        We do not call pytorch-fid's function itself: with SciPy 1.17 `sqrtm(..., disp=False)` returns one
        value and its tuple unpacking fails.
    Both agree to ~1e-8 relative on well-conditioned covariances (tested).
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=np.float64)), np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1, s2 = np.atleast_2d(np.asarray(s1, dtype=np.float64)), np.atleast_2d(np.asarray(s2, dtype=np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"frechet_distance: shapes differ: {mu1.shape}/{mu2.shape}, {s1.shape}/{s2.shape}")
    if method == "eigh":
        w, v = linalg.eigh((s1 + s1.T) / 2)
        root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        lam = linalg.eigvalsh(root1 @ s2 @ root1)
        tr_covmean = float(np.sqrt(np.clip(lam, 0, None)).sum())
    elif method == "sqrtm":
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
                raise ValueError(f"frechet_distance: imaginary component {np.max(np.abs(covmean.imag))}")
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    else:
        raise ValueError(f"frechet_distance: method must be 'eigh' or 'sqrtm', got {method!r}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
