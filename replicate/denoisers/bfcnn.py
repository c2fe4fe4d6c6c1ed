"""Bias-free (and biased) denoising CNNs of Mohan et al. 2020 and Kadkhodaie & Simoncelli 2021.

Every module below is laid out so that the public checkpoints load with ``strict=True``:
module and parameter names and shapes were read from the checkpoint files themselves
(see ``replicate.denoisers.checkpoints``). All networks take images on [0, 1] (N, C, H, W)
and are blind (no noise-level input).

What each forward returns (matches the original code):
  * ``DnCNN``      -> clean estimate ``y - net(y)`` (the residual connection is inside);
  * ``UNet``       -> clean estimate (all published checkpoints have ``residual=False``);
  * ``RCNN``       -> clean estimate after 4 recurrent stages;
  * ``BFCNN``      -> the RESIDUAL / noise estimate ``f(y)`` (Kadkhodaie & Simoncelli);
  * ``KAIRDnCNN``  -> clean estimate ``y - net(y)``.

A network is "bias-free" when every additive constant is removed, so that in eval mode it
is a piecewise-linear map that is exactly homogeneous of degree 1: f(a y) = a f(y), a > 0.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BFBatchNorm2d(nn.BatchNorm2d):
    """Mohan's bias-free batch norm: ``x / (std + eps) * weight`` per channel.

    No mean subtraction and no additive ``bias`` (beta), so the layer stays linear in x.
    It subclasses ``nn.BatchNorm2d`` only so that its state dict keeps the same five
    entries (weight, bias, running_mean, running_var, num_batches_tracked) the published
    checkpoints hold; ``bias`` and ``running_mean`` are stored but never used.
    Note eps is added to the *standard deviation*, not to the variance, as in the original.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            # original trains with the unbiased per-channel variance of the batch
            var = x.transpose(0, 1).reshape(x.shape[1], -1).var(dim=1)
            with torch.no_grad():
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var)
        else:
            var = self.running_var
        scale = self.weight / (var.sqrt() + self.eps)
        return x * scale.view(1, -1, 1, 1)


class DnCNN(nn.Module):
    """DnCNN as used by Mohan et al.: conv+ReLU, (depth-2) x [conv, BN, ReLU], conv; returns y - out.

    ``bias=False`` gives BF-DnCNN: convolutions without bias and ``BFBatchNorm2d``.
    """

    def __init__(self, channels: int = 1, depth: int = 20, features: int = 64, bias: bool = True):
        super().__init__()
        norm = nn.BatchNorm2d if bias else BFBatchNorm2d
        self.first_layer = nn.Conv2d(channels, features, 3, padding=1, bias=bias)
        self.hidden_layer_list = nn.ModuleList(
            nn.Conv2d(features, features, 3, padding=1, bias=bias) for _ in range(depth - 2)
        )
        self.bn_layer_list = nn.ModuleList(norm(features) for _ in range(depth - 2))
        self.last_layer = nn.Conv2d(features, channels, 3, padding=1, bias=bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.first_layer(y))
        for conv, bn in zip(self.hidden_layer_list, self.bn_layer_list):
            out = F.relu(bn(conv(out)))
        return y - self.last_layer(out)


class UNet(nn.Module):
    """Mohan's small UNet: one stride-2 down / transposed-conv up level, 32/64 channels,
    dilated convolutions (2 and 4) at the coarse scale, one skip connection. No normalisation.

    The last convolution never has a bias (even in the biased variant), as in the original.
    Odd heights/widths are zero-padded by one row/column at the bottom/right and cropped back.
    """

    def __init__(self, bias: bool = True, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2, bias=bias)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1, bias=bias)
        self.conv3 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=bias)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1, bias=bias)
        self.conv5 = nn.Conv2d(64, 64, 3, dilation=2, padding=2, bias=bias)
        self.conv6 = nn.Conv2d(64, 64, 3, dilation=4, padding=4, bias=bias)
        self.conv7 = nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1, bias=bias)
        self.conv8 = nn.Conv2d(96, 32, 3, padding=1, bias=bias)
        self.conv9 = nn.Conv2d(32, 1, 5, padding=2, bias=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h, w = y.shape[-2:]
        # the down/up pair needs even sizes; zero padding keeps the map homogeneous
        x = F.pad(y, (0, w % 2, 0, h % 2))
        skip = F.relu(self.conv2(F.relu(self.conv1(x))))
        out = F.relu(self.conv3(skip))
        out = F.relu(self.conv4(out))
        out = F.relu(self.conv5(out))
        out = F.relu(self.conv6(out))
        out = F.relu(self.conv7(out))
        out = F.relu(self.conv8(torch.cat([out, skip], dim=1)))
        out = self.conv9(out)
        if self.residual:
            out = x - out
        return out[..., :h, :w]


class _SingleStageCNN(nn.Module):
    """Plain conv/ReLU stack shared by all RCNN stages (no normalisation, no last-layer bias)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, features: int, bias: bool):
        super().__init__()
        self.first_layer = nn.Conv2d(in_channels, features, 3, padding=1, bias=bias)
        self.hidden_layer_list = nn.ModuleList(
            nn.Conv2d(features, features, 3, padding=1, bias=bias) for _ in range(hidden)
        )
        self.last_layer = nn.Conv2d(features, out_channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.first_layer(x))
        for conv in self.hidden_layer_list:
            out = F.relu(conv(out))
        return self.last_layer(out)


class RCNN(nn.Module):
    """Mohan's recurrent CNN: ``prev = y``; repeat ``stages`` times ``prev = cnn([y, prev])``.

    The same 7-conv network (5 hidden layers) is applied at every stage; output is the clean
    estimate. The original trains with a random number of stages (1..4); at evaluation it
    always uses all of them, which is what this module does (deterministic).
    """

    def __init__(self, bias: bool = True, stages: int = 4, hidden: int = 5, features: int = 64):
        super().__init__()
        self.stages = stages
        self.cnn = _SingleStageCNN(2, 1, hidden, features, bias)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        prev = y
        for _ in range(self.stages):
            prev = self.cnn(torch.cat([y, prev], dim=1))
        return prev


class BFCNN(nn.Module):
    """The universal BF-CNN of Kadkhodaie & Simoncelli 2021; returns the RESIDUAL f(y) = y - D(y).

    ``depth`` bias-free 3x3 convolutions; after each hidden one a bias-free batch norm that
    divides by ``running_sd`` and multiplies by ``gammas`` (both shaped (1, C, 1, 1)), then ReLU.
    Here the eps (1e-5) sits inside the square root at training time and is already folded
    into the stored ``running_sd``, so evaluation divides by ``running_sd`` alone.
    """

    def __init__(self, channels: int = 1, depth: int = 20, features: int = 64):
        super().__init__()
        self.conv_layers = nn.ModuleList([nn.Conv2d(channels, features, 3, padding=1, bias=False)])
        self.conv_layers.extend(nn.Conv2d(features, features, 3, padding=1, bias=False) for _ in range(depth - 2))
        self.conv_layers.append(nn.Conv2d(features, channels, 3, padding=1, bias=False))
        # ParameterLists (not buffers) because that is what the checkpoint keys name
        self.running_sd = nn.ParameterList(
            nn.Parameter(torch.ones(1, features, 1, 1), requires_grad=False) for _ in range(depth - 2)
        )
        self.gammas = nn.ParameterList(nn.Parameter(torch.ones(1, features, 1, 1)) for _ in range(depth - 2))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv_layers[0](y))
        for conv, sd, gamma in zip(self.conv_layers[1:-1], self.running_sd, self.gammas):
            x = conv(x)
            if self.training:
                batch_sd = torch.sqrt(x.var(dim=(0, 2, 3), keepdim=True, unbiased=False) + 1e-5)
                with torch.no_grad():
                    sd.mul_(0.9).add_(0.1 * batch_sd)
                x = x / batch_sd
            else:
                x = x / sd
            x = F.relu(x * gamma)
        return self.conv_layers[-1](x)


class KAIRDnCNN(nn.Module):
    """KAIR's DnCNN (``model_zoo/dncnn_25.pth``): 17 biased convs with ReLUs, batch norm merged
    into the convolutions, as one ``nn.Sequential`` named ``model``; returns y - model(y)."""

    def __init__(self, channels: int = 1, depth: int = 17, features: int = 64):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU()]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y - self.model(y)
