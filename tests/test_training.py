"""Training recipe: patches, blind noise, a few steps lower the loss, resumable checkpoints."""
from __future__ import annotations

import torch

from replicate.denoisers.base import NetworkDenoiser
from replicate.denoisers.bfcnn import DnCNN
from replicate.training import TrainConfig, extract_patches, train_denoiser


def test_extract_patches_matches_slicing():
    img = torch.arange(2 * 6 * 7, dtype=torch.float32).view(2, 6, 7)
    p = extract_patches([img], patch=3, stride=2)
    assert p.shape == (2 * 3, 2, 3, 3)  # rows 0,2 ; cols 0,2,4
    assert torch.equal(p[0], img[:, 0:3, 0:3]) and torch.equal(p[2], img[:, 0:3, 4:7])
    assert torch.equal(p[3], img[:, 2:5, 0:3])


def tiny(bias=False):
    torch.manual_seed(0)
    return NetworkDenoiser(DnCNN(channels=1, depth=3, features=8, bias=bias), output="clean", channels=1)


def test_few_steps_lower_the_loss_and_resume(tmp_path):
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1, 1, 8, 8, generator=gen)
    images = [torch.nn.functional.interpolate(base, size=64, mode="bilinear", align_corners=False)[0]
              + 0.05 * torch.rand(1, 64, 64, generator=gen)]
    patches = extract_patches(images, 16, 8)
    cfg = TrainConfig(noise_max=50, patch=16, stride=8, batch=16, epochs=40 * 16 / len(patches) + 0.01,
                      milestones=(1000,), checkpoint_every=10)
    model = tiny()
    log = train_denoiser(model, patches, cfg, tmp_path / "ckpt.pt", progress=False)
    first, last = sum(log["loss"][:5]) / 5, sum(log["loss"][-5:]) / 5
    assert last < 0.7 * first, (first, last)
    # a rerun with the same configuration resumes at the end and trains no further
    again = tiny()
    log2 = train_denoiser(again, patches, cfg, tmp_path / "ckpt.pt", progress=False)
    assert len(log2["loss"]) == len(log["loss"])
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
