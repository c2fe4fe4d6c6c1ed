"""The "modified U-Net" of Xie et al. 2023: the guided-diffusion (ADM) U-Net without the timestep embedding.

Official configuration (shared notes/original-code-facts.md): model_channels 128, num_res_blocks 2, channel_mult
(1, 2, 2, 4), no attention, resblock_updown (BigGAN-style residual down/up-sampling), GroupNorm32 + SiLU, zero-initialised
output convolution, out channels = in channels. The width (model_channels), depth and multipliers are settings; the same
network is used for the score (AR-DAE) and for every baseline (supervised, Noisier2Noise, Neighbor2Neighbor), as in
the paper. Widths must be multiples of 32 (GroupNorm with 32 groups, as guided-diffusion).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from replicate.denoisers.adm import GroupNorm32


def zero_module(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        nn.init.zeros_(p)
    return m


class PlainResBlock(nn.Module):
    """ADM's ResBlock with the embedding branch removed: out = skip(x) + conv(SiLU(GN(conv(SiLU(GN(x))))))."""

    def __init__(self, ch: int, out_ch: int, *, dropout: float = 0.0, up: bool = False, down: bool = False):
        super().__init__()
        self.in_layers = nn.Sequential(GroupNorm32(ch), nn.SiLU(), nn.Conv2d(ch, out_ch, 3, padding=1))
        self.updown = "up" if up else "down" if down else None
        self.out_layers = nn.Sequential(GroupNorm32(out_ch), nn.SiLU(), nn.Dropout(dropout),
                                        zero_module(nn.Conv2d(out_ch, out_ch, 3, padding=1)))
        self.skip = nn.Identity() if out_ch == ch else nn.Conv2d(ch, out_ch, 1)

    def _resample(self, z):
        return F.interpolate(z, scale_factor=2, mode="nearest") if self.updown == "up" else F.avg_pool2d(z, 2)

    def forward(self, x):
        if self.updown is not None:
            h = self.in_layers[:-1](x)
            h, x = self._resample(h), self._resample(x)
            h = self.in_layers[-1](h)
        else:
            h = self.in_layers(x)
        return self.skip(x) + self.out_layers(h)


class XieUNet(nn.Module):
    """forward(u) -> (N, in_channels, H, W); H and W must be multiples of 2^(len(channel_mult) - 1)."""

    def __init__(self, in_channels: int = 3, width: int = 128, num_res_blocks: int = 2,
                 channel_mult=(1, 2, 2, 4), dropout: float = 0.0):
        super().__init__()
        if width % 32:
            raise ValueError(f"width must be a multiple of 32 (GroupNorm32), got {width}")
        self.factor = 2 ** (len(channel_mult) - 1)
        ch = int(channel_mult[0] * width)
        self.input_blocks = nn.ModuleList([nn.Conv2d(in_channels, ch, 3, padding=1)])
        skips = [ch]
        for level, m in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.input_blocks.append(PlainResBlock(ch, int(m * width), dropout=dropout))
                ch = int(m * width)
                skips.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(PlainResBlock(ch, ch, dropout=dropout, down=True))
                skips.append(ch)
        self.middle = nn.Sequential(PlainResBlock(ch, ch, dropout=dropout), PlainResBlock(ch, ch, dropout=dropout))
        self.output_blocks = nn.ModuleList()
        for level, m in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [PlainResBlock(ch + skips.pop(), int(m * width), dropout=dropout)]
                ch = int(m * width)
                if level and i == num_res_blocks:
                    layers.append(PlainResBlock(ch, ch, dropout=dropout, up=True))
                self.output_blocks.append(nn.Sequential(*layers))
        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(), zero_module(nn.Conv2d(ch, in_channels, 3, padding=1)))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h, w = u.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"XieUNet needs H and W divisible by {self.factor}, got {h}x{w}; crop the image "
                             f"(replicate.data.crop_to_multiple) first")
        hs, x = [], u
        for block in self.input_blocks:
            x = block(x)
            hs.append(x)
        x = self.middle(x)
        for block in self.output_blocks:
            x = block(torch.cat([x, hs.pop()], dim=1))
        return self.out(x)


class ResidualOutput(nn.Module):
    """u + net(u): the wrapped network predicts a correction to its input. With XieUNet's zero-initialised output
    convolution the direct form net(u) starts from a constant image, the residual form from the identity (the noisy
    input), which is what makes the image-to-image baselines usable after a few hundred CPU steps (xie2023's
    ``baseline_output`` setting); the score network of the method is never wrapped."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u + self.net(u)
