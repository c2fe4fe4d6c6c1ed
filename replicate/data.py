"""Image sets: the embedded `mini` sets (no downloads) and the papers' test/training sets (via the registry).

Every loader returns a list of `Image(name, pixels)` with pixels a float32 tensor (C, H, W) in [0, 1], in a fixed
order, so that per-image results can be recorded by index and name.

Embedded data (profile `mini`):
  * scikit-image's bundled photographs (they ship inside the pip package, no download);
  * dead-leaves images (Matheron; Lee, Mumford & Huang 2001): occluding disks with radii drawn from a power law
    r^-3, a standard procedural model of natural-image statistics (scale invariance, sharp edges), generated from a seed.
Training and test images are disjoint by construction (different photographs; dead leaves only for training).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# scikit-image photographs split into disjoint train / test sets (all ship with the package)
SKIMAGE_GRAY_TEST = ("camera", "coins", "moon", "clock", "text")
SKIMAGE_GRAY_TRAIN = ("grass", "gravel", "brick", "page")
SKIMAGE_COLOR_TEST = ("astronaut", "chelsea", "coffee", "rocket")
SKIMAGE_COLOR_TRAIN = ("immunohistochemistry", "hubble_deep_field", "retina")

# the papers' sets as registered in replicate/assets/registry.tsv (files in the mirror)
MIRROR_SETS = {
    "set12": "testsets/set12",
    "bsd68_gray": "testsets/bsd68_gray",
    "cbsd68": "testsets/cbsd68",
    "kodak24": "testsets/kodak24",
    "kodak23_gray": "testsets/kodak23_gray_ras",
    "cset9": "testsets/cset9",
    "set5_color": "testsets/set5_color",
    "set14_color": "testsets/set14_color",
    "bsd100_color": "testsets/bsd100_color",
    "train400": "trainsets/train400",
    "cbsd432": "trainsets/cbsd432",
}


@dataclass(frozen=True)
class Image:
    name: str
    pixels: torch.Tensor  # (C, H, W) float32 in [0, 1]

    @property
    def shape(self):
        return tuple(self.pixels.shape)


class ImageSizeError(ValueError):
    pass


def to_float(array: np.ndarray) -> torch.Tensor:
    """uint8/bool/float HxW or HxWxC array -> float32 (C, H, W) in [0, 1]."""
    a = np.asarray(array)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    elif a.dtype == bool:
        a = a.astype(np.float32)
    else:
        a = a.astype(np.float32)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3:
        a = a[..., :3].transpose(2, 0, 1)  # drop alpha
    else:
        raise ImageSizeError(f"expected a 2-D or 3-D image array, got shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a)).clamp_(0, 1)


def to_gray(x: torch.Tensor) -> torch.Tensor:
    """RGB -> luma with the ITU-R BT.601 weights (as MATLAB's rgb2gray, used to make BSD68 grey)."""
    if x.shape[-3] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(-3, keepdim=True)


def center_crop(x: torch.Tensor, height: int, width: int | None = None) -> torch.Tensor:
    width = width or height
    h, w = x.shape[-2:]
    if h < height or w < width:
        raise ImageSizeError(f"image of size {h}x{w} is smaller than the requested crop {height}x{width}")
    top, left = (h - height) // 2, (w - width) // 2
    return x[..., top : top + height, left : left + width]


def crop_to_multiple(x: torch.Tensor, k: int) -> torch.Tensor:
    """Centre-crop so both sides are multiples of k (Xie et al. crop test images to multiples of 32)."""
    h, w = x.shape[-2:]
    return center_crop(x, h - h % k, w - w % k)


def require_size(images: list[Image], height: int, width: int, channels: int | None = None, what: str = "") -> None:
    """Fail early, with a clear message, on images a fixed-size model cannot take."""
    for im in images:
        c, h, w = im.shape
        if (h, w) != (height, width) or (channels is not None and c != channels):
            raise ImageSizeError(
                f"{what or 'this model'} needs {channels or 'C'}x{height}x{width} images, but {im.name} is "
                f"{c}x{h}x{w}; preprocess it (centre crop / resize) as the data stage does"
            )


def dead_leaves(n: int, size: int, channels: int = 1, *, seed: int = 0, rmin: float = 1.0, rmax: float = None,
                coverage: int = 3000) -> torch.Tensor:
    """`n` dead-leaves images (n, C, size, size) in [0, 1]; radii ~ r^-3 on [rmin, rmax] (scale invariant)."""
    rmax = rmax or size / 4
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.empty((n, channels, size, size), dtype=np.float32)
    for i in range(n):
        img = np.full((channels, size, size), np.nan, dtype=np.float32)
        # inverse-CDF sampling of p(r) ~ r^-3 on [rmin, rmax]
        u = rng.random(coverage)
        r = 1.0 / np.sqrt(1.0 / rmin**2 - u * (1.0 / rmin**2 - 1.0 / rmax**2))
        cx, cy = rng.random(coverage) * size, rng.random(coverage) * size
        colors = rng.random((coverage, channels)).astype(np.float32)
        for k in range(coverage):  # front to back: a pixel keeps the first disk that covers it
            if k % 64 == 0 and not np.isnan(img[0]).any():
                break  # fully covered: later disks are hidden
            x0, x1 = int(max(cx[k] - r[k], 0)), int(min(cx[k] + r[k] + 1, size))
            y0, y1 = int(max(cy[k] - r[k], 0)), int(min(cy[k] + r[k] + 1, size))
            if x0 >= x1 or y0 >= y1:
                continue
            patch = img[:, y0:y1, x0:x1]
            disk = (xx[y0:y1, x0:x1] - cx[k]) ** 2 + (yy[y0:y1, x0:x1] - cy[k]) ** 2 <= r[k] ** 2
            free = disk & np.isnan(patch[0])
            patch[:, free] = colors[k][:, None]
        img[np.isnan(img)] = rng.random()
        out[i] = img
    return torch.from_numpy(out)


def skimage_set(names, *, gray: bool = False, crop: int | None = None) -> list[Image]:
    import skimage.data

    images = []
    for name in names:
        x = to_float(getattr(skimage.data, name)())
        x = to_gray(x) if gray else (x if x.shape[0] == 3 else x.expand(3, -1, -1).clone())
        if crop:
            x = center_crop(x, crop)
        images.append(Image(name, x.contiguous()))
    return images


def zip_images_uint8(zip_path: str | Path, limit: int | None = None, progress: bool = True) -> list[torch.Tensor]:
    """The PNG/JPEG members of a zip archive in name order, as (3, H, W) uint8 RGB tensors (DIV2K: 800 2K images are
    ~6.6 GB as uint8, four times that as float32, so training sets stay 8-bit in memory). Read member by member,
    without unpacking the archive to disk."""
    import zipfile

    from PIL import Image as PILImage
    from replicate.progress import bar as progress_bar

    images = []
    with zipfile.ZipFile(zip_path) as z:
        names = sorted(n for n in z.namelist() if n.lower().endswith((".png", ".jpg", ".jpeg")))
        if not names:
            raise ValueError(f"{zip_path} holds no PNG or JPEG images: is it the right archive?")
        for name in progress_bar(names[:limit] if limit else names, desc=Path(zip_path).name, disable=not progress):
            with z.open(name) as fh, PILImage.open(fh) as im:
                images.append(torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous())
    return images


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> 0-255 uint8 (rounded)."""
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


def read_image_file(path: str | Path) -> torch.Tensor:
    """PNG/JPEG/Sun raster -> (C, H, W) float32 in [0, 1] (PIL reads .ras)."""
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB" if "A" in im.mode or im.mode in ("P", "CMYK") else "L")
        return to_float(np.asarray(im))


def mirror_set(key: str, *, gray: bool | None = None, crop: int | None = None, multiple: int | None = None,
               limit: int | None = None) -> list[Image]:
    """One of the papers' image sets, fetched and verified through the asset registry."""
    from replicate.assets.registry import assets_in, fetch

    if key not in MIRROR_SETS:
        raise KeyError(f"unknown image set {key!r}; known: {', '.join(MIRROR_SETS)}")
    assets = [a for a in assets_in(MIRROR_SETS[key]) if a.url.lower().endswith((".png", ".jpg", ".jpeg", ".ras", ".tif", ".bmp"))]
    assets = assets[:limit] if limit else assets
    images = []
    for asset in assets:
        x = read_image_file(fetch(asset))
        if gray is True:
            x = to_gray(x)
        elif gray is False and x.shape[0] == 1:
            x = x.expand(3, -1, -1).clone()
        if crop:
            x = center_crop(x, crop)
        if multiple:
            x = crop_to_multiple(x, multiple)
        images.append(Image(Path(asset.url).stem, x.contiguous()))
    return images


def load_set(spec: dict) -> list[Image]:
    """Build an image set from a params entry, e.g. {source: skimage_gray_test, crop: 128} or {source: set12}."""
    source = spec["source"]
    crop, limit = spec.get("crop"), spec.get("limit")
    if source == "skimage_gray_test":
        images = skimage_set(SKIMAGE_GRAY_TEST, gray=True, crop=crop)
    elif source == "skimage_color_test":
        images = skimage_set(SKIMAGE_COLOR_TEST, gray=False, crop=crop)
    elif source == "skimage_gray_train":
        images = skimage_set(SKIMAGE_GRAY_TRAIN, gray=True, crop=crop)
    elif source == "skimage_color_train":
        images = skimage_set(SKIMAGE_COLOR_TRAIN, gray=False, crop=crop)
    elif source in MIRROR_SETS:
        images = mirror_set(source, gray=spec.get("gray"), crop=crop, multiple=spec.get("multiple"))
    else:
        raise KeyError(f"unknown image source {source!r}")
    return images[:limit] if limit else images


def batch(images: list[Image]) -> torch.Tensor:
    """Stack same-size images into (N, C, H, W)."""
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ImageSizeError(f"cannot batch images of different sizes {sorted(shapes)}; crop them first")
    return torch.stack([im.pixels for im in images])
