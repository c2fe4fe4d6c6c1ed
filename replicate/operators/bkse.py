"""The bkse blur network ("KernelWizard") that DPS uses as its non-uniform blur forward model.

Source: Tran et al. 2021, "Explore Image Deblurring via Encoded Blur Kernel Space" (CVPR), code at
github.com/VinAIResearch/blur-kernel-space-exploring (bkse). Written here from a reading of
``models/kernel_encoding/kernel_wizard.py``, ``models/arch_util.py`` (``get_norm_layer``),
``models/backbones/resnet.py`` (``ResnetBlock``, ``ResidualBlock_noBN``) and ``models/backbones/unet_parts.py``
(``UnetSkipConnectionBlock``, the ConvTranspose2d variant). DPS (Chung et al. 2023, ``guided_diffusion/
measurements.py``, NonlinearBlurOperator) builds the network from ``bkse/options/generate_blur/default.yml``,
whose ``KernelWizard`` block equals the one of ``options/GOPRO/wVAE.yml``:

    input_nc 3, nf 64, front_RBs 10, back_RBs 20, N_frames 1, kernel_dim 512, use_vae true,
    KernelExtractor: norm none, use_sharp true, n_blocks 4, padding_type reflect, use_dropout false,
    Adapter: norm none, use_dropout false.

These are the defaults below (N_frames is read by nothing in the network). Only norm "none" and no dropout are
implemented: they are what the checkpoint was trained with, and another norm would change which convolutions have
biases (bkse gives convolutions a bias only with instance norm).

The network has four parts, all in the checkpoint (state-dict names as in bkse, so ``GOPRO_wVAE.pth`` loads with
strict=True; 159 tensors, 115.3 M parameters, 92 M of them in the encoder):

  feature_extractor  conv 3->64, two stride-2 convs (1/4 resolution), LeakyReLU(0.1), 10 residual blocks (no BN)
  kernel_extractor   the encoder F(sharp, blur) -> (mean, log-variance) of the 512-channel blur code; trained with
                     the rest, stored in the checkpoint, but not run by ``adapt_kernel``
  adapter            the generator G: a 5-level U-Net on the 64-channel features whose innermost level concatenates
                     the blur code to its 512 channels; Tanh output
  recon_trunk        20 residual blocks, two conv + PixelShuffle(2) upsamplings back to full size, 3 output channels

``adapt_kernel(x, k)`` (bkse's ``adaptKernel``) = x + recon_trunk(adapter(feature_extractor(x), k)): the image enters
on [0, 1] and the network predicts the blurred image as a residual. The blur code's spatial size is fixed by the
image: H/128 x W/128 (2 x 2 for the 256 px images of DPS), and H, W must be multiples of 128.

The published weights are a plain state dict (bkse's ``save_network`` saves ``network.state_dict()`` with tensors on
the CPU; DPS and bkse's ``generate_blur.py`` load it with ``model.load_state_dict(torch.load(path))``).
``load_kernel_wizard`` also accepts a dict nesting it under a usual key and strips a DataParallel "module." prefix.
The implementation is checked against the original code's module tree, not against the weights, which are not
available here. One point the code history leaves open: an earlier bkse revision of the U-Net block upsampled with
bilinear interpolation + a 5x5 double conv instead of the 4x4 transposed conv used here (the later revision, the one
under models/backbones that kernel_wizard.py imports, also as vendored with DPS-style code by other projects). The
two have different state-dict names, so a checkpoint of the other variant fails to load with a clear error rather
than silently running a different network.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

GOPRO_WVAE = dict(input_nc=3, nf=64, front_RBs=10, back_RBs=20, kernel_dim=512, use_vae=True, use_sharp=True,
                  extractor_blocks=4)


def _init_residual(convs, scale: float = 0.1) -> None:
    # bkse initialises the convolutions of its BN-free residual blocks with Kaiming-normal (fan_in) scaled by 0.1 and
    # zero biases, so that a freshly built network starts close to the identity. Irrelevant once weights are loaded,
    # so skipped on the meta device (where load_kernel_wizard builds; normal_ there costs seconds of lazy imports).
    for conv in convs:
        if conv.weight.is_meta:
            continue
        nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
        conv.weight.data.mul_(scale)
        nn.init.zeros_(conv.bias)


class ResidualBlockNoBN(nn.Module):
    """x + conv(relu(conv(x))), 3x3 convolutions with bias (bkse ``ResidualBlock_noBN``; names conv1, conv2)."""

    def __init__(self, nf: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        _init_residual([self.conv1, self.conv2])

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class ReflectResBlock(nn.Module):
    """x + [pad, conv, norm, relu, pad, conv, norm](x) (bkse ``ResnetBlock``, reflect padding, norm "none").

    The norm slots hold nn.Identity: they carry no parameters but keep the Sequential indices of the original, which
    name the two convolutions ``conv_block.1`` and ``conv_block.5`` in the checkpoint. No bias (norm "none").
    """

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=False), nn.Identity(), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=False), nn.Identity())

    def forward(self, x):
        return x + self.conv_block(x)


class KernelExtractor(nn.Module):
    """F(sharp features, blur features) -> blur code (mean, log-variance when use_vae), bkse ``KernelExtractor``.

    Input: the two 64-channel feature maps concatenated (128 channels, use_sharp). A 7x7 conv, five stride-2 3x3
    convs whose widths double from nf but are capped at the output width (2 * kernel_dim = 1024 with the VAE), then
    residual blocks at that width. Norm "none" -> Identity slots, no biases. Resolution: features / 32.
    """

    def __init__(self, nf: int = 64, kernel_dim: int = 512, use_vae: bool = True, use_sharp: bool = True,
                 n_blocks: int = 4):
        super().__init__()
        self.kernel_dim = kernel_dim
        self.use_vae = use_vae
        in_ch = 2 * nf if use_sharp else nf
        out_ch = 2 * kernel_dim if use_vae else kernel_dim
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, nf, 7, padding=0, bias=False),
                                   nn.Identity(), nn.ReLU()]
        for i in range(5):
            # widths as in bkse: min(nf * 2^i, out) -> min(nf * 2^(i+1), out)
            layers += [nn.Conv2d(min(nf * 2 ** i, out_ch), min(nf * 2 ** (i + 1), out_ch), 3, stride=2, padding=1,
                                 bias=False), nn.Identity(), nn.ReLU()]
        layers += [ReflectResBlock(out_ch) for _ in range(n_blocks)]
        self.model = nn.Sequential(*layers)

    def forward(self, sharp_feat, blur_feat):
        out = self.model(torch.cat((sharp_feat, blur_feat), dim=1))
        if self.use_vae:
            return out[:, :self.kernel_dim], out[:, self.kernel_dim:]
        return out, torch.zeros_like(out)


class UNetLevel(nn.Module):
    """One level of the adapter U-Net (bkse ``UnetSkipConnectionBlock`` with ConvTranspose2d upsampling).

    down: [LeakyReLU(0.2)] + conv 4x4 stride 2 (+ Identity norm slot on middle levels); up: ReLU, transposed conv
    4x4 stride 2 (+ Identity norm slot, or Tanh on the outermost level). Only the outermost transposed conv has a
    bias (it is built without the bias flag in bkse, i.e. with PyTorch's default). Parameter names follow the
    Sequential indices: ``down.0`` (outermost) or ``down.1`` (others), ``up.1``.

    The innermost level concatenates the blur code after its down-sampled features; inner levels return
    cat(up(...), skip). bkse's LeakyReLU is in-place, so the skip that is concatenated is LeakyReLU(x), not x; this is
    reproduced explicitly. The outermost level has no skip.
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 kind: str = "middle"):
        super().__init__()
        if kind not in ("outermost", "middle", "innermost"):
            raise ValueError(f"kind must be outermost, middle or innermost, got {kind!r}")
        self.kind = kind
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=False)
        # index 0 of the middle/innermost down path is the (parameter-free) LeakyReLU, applied in forward() instead
        # because its output is also the skip; nn.Identity keeps the index of the conv at 1.
        if kind == "outermost":
            self.down = nn.Sequential(down_conv)
        elif kind == "innermost":
            self.down = nn.Sequential(nn.Identity(), down_conv)
        else:
            self.down = nn.Sequential(nn.Identity(), down_conv, nn.Identity())
        if submodule is not None:
            self.submodule = submodule
        up_conv = nn.ConvTranspose2d(2 * inner_nc, outer_nc, 4, stride=2, padding=1, bias=kind == "outermost")
        self.up = nn.Sequential(nn.ReLU(), up_conv, nn.Tanh() if kind == "outermost" else nn.Identity())

    def forward(self, x, code):
        if self.kind == "outermost":
            return self.up(self.submodule(self.down(x), code))
        skip = F.leaky_relu(x, 0.2)
        h = self.down(skip)
        h = torch.cat((h, code), dim=1) if self.kind == "innermost" else self.submodule(h, code)
        return torch.cat((self.up(h), skip), dim=1)


class KernelAdapter(nn.Module):
    """G(features, blur code): the 5-level U-Net of bkse ``KernelAdapter`` (nf -> 2nf -> 4nf -> 8nf -> 8nf)."""

    def __init__(self, nf: int = 64):
        super().__init__()
        level = UNetLevel(8 * nf, 8 * nf, kind="innermost")
        level = UNetLevel(4 * nf, 8 * nf, submodule=level)
        level = UNetLevel(2 * nf, 4 * nf, submodule=level)
        level = UNetLevel(nf, 2 * nf, submodule=level)
        self.model = UNetLevel(nf, nf, input_nc=nf, submodule=level, kind="outermost")

    def forward(self, feat, code):
        return self.model(feat, code)


class KernelWizard(nn.Module):
    """The bkse KernelWizard with the GOPRO_wVAE hyper-parameters as defaults (see the module docstring).

    ``forward(x01, code)`` is ``adapt_kernel``: blur an image on [0, 1] with a blur code of shape (1 or N, kernel_dim,
    H/128, W/128). ``encode_kernel(sharp, blurred)`` is bkse's ``forward`` (the encoder F).
    """

    DOWNSCALE = 128  # features at 1/4, then five stride-2 U-Net levels: the code lives at 1/128 of the image

    def __init__(self, input_nc: int = 3, nf: int = 64, front_RBs: int = 10, back_RBs: int = 20, kernel_dim: int = 512,
                 use_vae: bool = True, use_sharp: bool = True, extractor_blocks: int = 4):
        super().__init__()
        if nf * 8 != kernel_dim:
            # the innermost U-Net level concatenates its 8*nf channels with the code and its transposed conv expects
            # 2 * 8 * nf inputs, so the code width has to be 8 * nf (512 for nf = 64, as in bkse)
            raise ValueError(f"kernel_dim must be 8 * nf for the adapter U-Net, got nf={nf}, kernel_dim={kernel_dim}")
        self.kernel_dim = kernel_dim
        self.feature_extractor = nn.Sequential(
            nn.Conv2d(input_nc, nf, 3, 1, 1, bias=True), nn.LeakyReLU(0.1),
            nn.Conv2d(nf, nf, 3, 2, 1, bias=True), nn.LeakyReLU(0.1),
            nn.Conv2d(nf, nf, 3, 2, 1, bias=True), nn.LeakyReLU(0.1),
            *[ResidualBlockNoBN(nf) for _ in range(front_RBs)])
        self.kernel_extractor = KernelExtractor(nf, kernel_dim, use_vae, use_sharp, extractor_blocks)
        self.adapter = KernelAdapter(nf)
        self.recon_trunk = nn.Sequential(
            *[ResidualBlockNoBN(nf) for _ in range(back_RBs)],
            nn.Conv2d(nf, 4 * nf, 3, 1, 1, bias=True), nn.PixelShuffle(2), nn.LeakyReLU(0.1),
            # bkse writes the second upsampling and the last convs with a literal 64 channels (= nf for GOPRO)
            nn.Conv2d(nf, 4 * 64, 3, 1, 1, bias=True), nn.PixelShuffle(2), nn.LeakyReLU(0.1),
            nn.Conv2d(64, 64, 3, 1, 1, bias=True), nn.LeakyReLU(0.1),
            nn.Conv2d(64, input_nc, 3, 1, 1, bias=True))

    def code_shape(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Shape of the blur code for an image of this size: (1, kernel_dim, H/128, W/128)."""
        return (1, self.kernel_dim, height // self.DOWNSCALE, width // self.DOWNSCALE)

    def _check(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if h % self.DOWNSCALE or w % self.DOWNSCALE:
            raise ValueError(f"the bkse network needs H and W divisible by {self.DOWNSCALE} (U-Net skips must line "
                             f"up), got {h}x{w}")
        want = self.code_shape(h, w)
        if code.dim() != 4 or tuple(code.shape[1:]) != want[1:] or code.shape[0] not in (1, n):
            raise ValueError(f"blur code of shape {tuple(code.shape)} does not fit a {h}x{w} image: need "
                             f"(1 or {n}, {want[1]}, {want[2]}, {want[3]})")
        # bkse concatenates the code as given, which only works for batch 1 (what DPS uses); one code for the batch
        return code.expand(n, -1, -1, -1)

    def adapt_kernel(self, x01: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Blur ``x01`` (N, 3, H, W) on [0, 1] with blur code ``code``: x + recon(G(features(x), code)). Not clamped."""
        code = self._check(x01, code).to(dtype=x01.dtype, device=x01.device)
        return x01 + self.recon_trunk(self.adapter(self.feature_extractor(x01), code))

    adaptKernel = adapt_kernel  # the name DPS and bkse call

    def forward(self, x01: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.adapt_kernel(x01, code)

    def encode_kernel(self, sharp: torch.Tensor, blurred: torch.Tensor):
        """bkse ``KernelWizard.forward``: the blur code of a (sharp, blurred) pair, (mean, log-variance)."""
        return self.kernel_extractor(self.feature_extractor(sharp), self.feature_extractor(blurred))


class BkseCheckpointError(ValueError):
    """The file's tensors do not fit the GOPRO_wVAE KernelWizard."""


_NEST_KEYS = ("state_dict", "params", "params_ema", "model", "net", "network", "netG")


def _unnest(obj, path) -> dict:
    # bkse stores the state dict itself; accept the common wrappers too, in case the file was re-saved
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in _NEST_KEYS:
            if isinstance(obj.get(key), Mapping):
                return _unnest(obj[key], path)
    if not isinstance(obj, Mapping):
        raise BkseCheckpointError(f"{os.fspath(path)!r} holds a {type(obj).__name__}, not a state dict; it is not "
                                  "the bkse GOPRO_wVAE checkpoint")
    # checkpoints saved from nn.DataParallel prefix every key with "module." (bkse's own loader strips it)
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_kernel_wizard(path: str | os.PathLike, map_location="cpu") -> KernelWizard:
    """Build the GOPRO_wVAE KernelWizard, load ``path`` (strict), freeze it and put it in eval mode.

    Raises BkseCheckpointError listing a few missing / unexpected / mis-shaped keys when the file does not fit.
    """
    state = _unnest(torch.load(os.fspath(path), map_location=map_location, weights_only=True), path)
    # build on the meta device: the random initialisation of ~115 M parameters would be thrown away by the load
    with torch.device("meta"):
        net = KernelWizard(**GOPRO_WVAE)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state)
                   if not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != expected[k])
    if missing or unexpected or wrong:
        def few(keys, n=5):
            return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "") if keys else "none"
        raise BkseCheckpointError(
            f"{os.fspath(path)!r} is not the bkse GOPRO_wVAE checkpoint (KernelWizard of options/GOPRO/wVAE.yml): "
            f"missing keys: {few(missing)}; unexpected keys: {few(unexpected)}; wrong shapes: "
            + (", ".join(f"{k} {tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else type(state[k])} "
                         f"(expected {expected[k]})" for k in wrong[:5]) if wrong else "none"))
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    net.eval().requires_grad_(False)
    return net
