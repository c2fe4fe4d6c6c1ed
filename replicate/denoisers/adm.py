"""The ADM ("guided-diffusion") UNet of Dhariwal & Nichol 2021, as used by DPS (Chung et al. 2023).

Written from the architecture description (Ho et al. 2020 UNet + the ADM changes: BigGAN-style residual
up/down-sampling, scale-shift norm "AdaGN", multi-head attention with a fixed number of channels per head,
learned variance). Module and parameter names follow the original state dict so that the public checkpoints
load with ``strict=True``; ``tests/fixtures/reference/architectures.json`` lists them and
``tests/test_adm.py`` checks names, shapes, counts and a numeric probe of the original network.

The net is an epsilon predictor in the diffusion's own convention: ``net(x_t, t)`` with x_t in [-1, 1]
pixel units (scaled by sqrt(abar_t)) and integer timesteps t in [0, 1000); it returns (N, 6, H, W): the
predicted noise (3 channels) and the learned-range variance interpolation values (3 channels, see vp.py).
``replicate.denoisers.vp`` turns it into an x0-predictor or a project ``Denoiser``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Configs in guided-diffusion's `create_model` vocabulary (values from the DPS repository's model configs).
# `attention_resolutions` are image resolutions (256 // downsampling factor) at which attention is used.
# what both DPS models share: 256 px, learned sigma, 64-channel attention heads, scale-shift norm, up/down resblocks
_ADM_COMMON = dict(image_size=256, channel_mult="", learn_sigma=True, num_heads=4, num_head_channels=64,
                   num_heads_upsample=-1, use_scale_shift_norm=True, dropout=0.0, resblock_updown=True)
ADM_CONFIGS = {
    # DPS: Drive folder -> models/ffhq_10m.pt (no hash published)
    "ffhq256_dps": dict(_ADM_COMMON, num_channels=128, num_res_blocks=1, attention_resolutions="16",
                        checkpoint="ffhq_10m.pt",
                        checkpoint_url="https://drive.google.com/drive/folders/1jElnRoFv7b31fG0v6pTSQkelbSX3xGZh",
                        num_params=93_563_910),
    # DPS expects models/imagenet256.pt = guided-diffusion's unconditional 256x256 model
    "imagenet256_uncond": dict(_ADM_COMMON, num_channels=256, num_res_blocks=2, attention_resolutions="32,16,8",
                               checkpoint="256x256_diffusion_uncond.pt",
                               checkpoint_url="https://openaipublic.blob.core.windows.net/diffusion/jul-2021/"
                                              "256x256_diffusion_uncond.pt",
                               num_params=552_814_086),
}

# guided-diffusion's default channel multipliers per image size (used when channel_mult == "")
_DEFAULT_MULT = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4)}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos(t f_k), sin(t f_k)], f_k = max_period^(-k/half) (cos first, as ADM)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm with 32 groups, always computed in float32 (the original does this for fp16 training)."""

    def __init__(self, channels: int):
        super().__init__(32, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


class ResBlock(nn.Module):
    """Residual block conditioned on the timestep embedding.

    h = conv(SiLU(GN(x))) [resampled between the activation and the conv when up/down];
    scale-shift norm: h = GN(h) * (1 + scale) + shift with (scale, shift) = Linear(SiLU(emb));
    out = skip(x) + conv(Dropout(SiLU(h))). The skip is a 1x1 conv when the width changes.
    """

    def __init__(self, ch: int, emb_ch: int, out_ch: int, *, dropout: float = 0.0,
                 scale_shift: bool = True, up: bool = False, down: bool = False):
        super().__init__()
        self.scale_shift = scale_shift
        self.in_layers = nn.Sequential(GroupNorm32(ch), nn.SiLU(), nn.Conv2d(ch, out_ch, 3, padding=1))
        # parameter-free resampling (nearest up / 2x2 average down), applied to both branches
        self.updown = "up" if up else "down" if down else None
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_ch, 2 * out_ch if scale_shift else out_ch))
        self.out_layers = nn.Sequential(
            GroupNorm32(out_ch), nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        )
        self.skip_connection = nn.Identity() if out_ch == ch else nn.Conv2d(ch, out_ch, 1)

    def _resample(self, z: torch.Tensor) -> torch.Tensor:
        if self.updown == "up":
            return F.interpolate(z, scale_factor=2, mode="nearest")
        return F.avg_pool2d(z, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.updown is not None:
            h = self.in_layers[:-1](x)
            h, x = self._resample(h), self._resample(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).type(h.dtype)[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Self-attention over spatial positions, heads of `head_channels` channels each.

    qkv is laid out per head as [q_h; k_h; v_h] along channels (the original "legacy" order, which
    the checkpoints were trained with); q and k are each scaled by ch^-1/4 before the product.
    """

    def __init__(self, channels: int, head_channels: int):
        super().__init__()
        self.heads = channels // head_channels
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        n, c, *spatial = x.shape
        x = x.reshape(n, c, -1)
        qkv = self.qkv(self.norm(x))
        length = qkv.shape[-1]
        ch = c // self.heads
        q, k, v = qkv.reshape(n * self.heads, 3 * ch, length).split(ch, dim=1)
        s = ch ** -0.25
        w = torch.einsum("bct,bcs->bts", q * s, k * s)
        w = torch.softmax(w.float(), dim=-1).type(w.dtype)
        a = torch.einsum("bts,bcs->bct", w, v).reshape(n, c, length)
        return (x + self.proj_out(a)).reshape(n, c, *spatial)


class EmbedSequential(nn.Sequential):
    """Sequential whose ResBlocks also receive the timestep embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, (ResBlock, AttentionBlock)) else layer(x)
        return x


class ADMUNet(nn.Module):
    """Unconditional ADM UNet: ``forward(x, timesteps) -> (N, out_channels, H, W)``.

    Keyword names follow guided-diffusion's ``create_model``; unknown keys (num_heads, checkpoint names,
    ...) are ignored so ``ADMUNet(**ADM_CONFIGS[name])`` works. The head count is channels // num_head_channels.
    """

    def __init__(self, *, image_size: int = 256, in_channels: int = 3, num_channels: int = 128,
                 num_res_blocks: int = 2, channel_mult=(), attention_resolutions="16",
                 num_head_channels: int = 64, learn_sigma: bool = True, use_scale_shift_norm: bool = True,
                 dropout: float = 0.0, resblock_updown: bool = True, **unused):
        super().__init__()
        if not resblock_updown:
            raise NotImplementedError("only resblock_updown=True (all replicated checkpoints use it)")
        if num_head_channels == -1:
            raise NotImplementedError("only a fixed number of channels per head is implemented")
        if channel_mult in ("", None, ()):
            mult = _DEFAULT_MULT[image_size]
        elif isinstance(channel_mult, str):
            mult = tuple(float(m) for m in channel_mult.split(","))
        else:
            mult = tuple(channel_mult)
        attn_ds = {image_size // int(r) for r in str(attention_resolutions).split(",")}
        mc = num_channels
        emb_ch = 4 * mc
        self.model_channels = mc
        self.out_channels = 2 * in_channels if learn_sigma else in_channels

        def res(ci, co, **kw):
            return ResBlock(ci, emb_ch, co, dropout=dropout, scale_shift=use_scale_shift_norm, **kw)

        self.time_embed = nn.Sequential(nn.Linear(mc, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch))

        # encoder: record the width of every block output, the decoder concatenates them in reverse
        ch = int(mult[0] * mc)
        self.input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(in_channels, ch, 3, padding=1))])
        skip_chans, ds = [ch], 1
        for level, m in enumerate(mult):
            for _ in range(num_res_blocks):
                layers = [res(ch, int(m * mc))]
                ch = int(m * mc)
                if ds in attn_ds:
                    layers.append(AttentionBlock(ch, num_head_channels))
                self.input_blocks.append(EmbedSequential(*layers))
                skip_chans.append(ch)
            if level != len(mult) - 1:
                self.input_blocks.append(EmbedSequential(res(ch, ch, down=True)))
                skip_chans.append(ch)
                ds *= 2

        self.middle_block = EmbedSequential(res(ch, ch), AttentionBlock(ch, num_head_channels), res(ch, ch))

        self.output_blocks = nn.ModuleList()
        for level, m in list(enumerate(mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_chans.pop(), int(m * mc))]
                ch = int(m * mc)
                if ds in attn_ds:
                    layers.append(AttentionBlock(ch, num_head_channels))
                if level and i == num_res_blocks:
                    layers.append(res(ch, ch, up=True))
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))

        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(), nn.Conv2d(ch, self.out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        skips, h = [], x
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)


def build_adm(config_name: str) -> ADMUNet:
    """An ADMUNet with the architecture of ``ADM_CONFIGS[config_name]`` (weights uninitialised/random)."""
    if config_name not in ADM_CONFIGS:
        raise KeyError(f"unknown ADM config {config_name!r}; choose from {sorted(ADM_CONFIGS)}")
    return ADMUNet(**ADM_CONFIGS[config_name])


def load_adm_checkpoint(path, config_name: str, map_location="cpu") -> ADMUNet:
    """Build the config's UNet and load a guided-diffusion/DPS checkpoint (a plain state dict) strictly.

    ``weights_only=True`` refuses pickled code; ``strict=True`` fails loudly on any name/shape mismatch.
    """
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    net = build_adm(config_name)
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)   # a pretrained prior: gradients only with respect to the image
