"""The NCSNv2 data preprocessing that Kawar et al. use "exactly as in [40]" (Song & Ermon 2020, ermongroup/ncsnv2).

    CelebA        CenterCrop(140) -> Resize(64)                      (datasets/__init__.py, config celeba.yml)
    LSUN          Resize(128) -> CenterCrop(128)  (short side to 128, then the central square; bedroom / tower)
    FFHQ          256 x 256 (the NCSNv2 FFHQ lmdb holds 256 px images; here: Resize(256) of the 1024 px PNGs)

The paper's words for LSUN are "center cropped and resized to 128 x 128"; the NCSNv2 code resizes first and then
crops.  Both give the central square at 128 px and differ only in interpolation; the code's order is the default
(``lsun_order="resize_crop"``), the paper's reading is the setting ``"crop_resize"``.
Resizing is torchvision's (PIL, bilinear with antialiasing), what NCSNv2's transforms do on PIL images.

Test images: NCSNv2 evaluates CelebA on its official test split (list_eval_partition.txt, partition 2), LSUN on the
``*_val`` lmdb, FFHQ on the last 10 % of a ``np.random.seed(2019)`` shuffle of the 70,000 indices.  Kawar et al. do
not say which 64 images they used; we take the first n test images in that order and record their indices/names.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch

from replicate.data import Image, to_float

CELEBA_CROP, CELEBA_SIZE = 140, 64
LSUN_SIZE = 128
FFHQ_SIZE = 256
FFHQ_TOTAL = 70000


def _pil(img):
    """numpy HWC uint8 / (C, H, W) float tensor / PIL image -> PIL image."""
    from PIL import Image as PILImage

    if isinstance(img, PILImage.Image):
        return img
    if isinstance(img, torch.Tensor):
        a = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return PILImage.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
    return PILImage.fromarray(np.asarray(img))


def _center_crop(im, size: int):
    import torchvision.transforms.functional as TF

    if min(im.size) < size:
        raise ValueError(f"cannot center-crop {size}x{size} from an image of size {im.size[0]}x{im.size[1]}")
    return TF.center_crop(im, [size, size])


def _resize(im, size):
    """size: int (short side, aspect kept, as transforms.Resize(int)) or (h, w)."""
    import torchvision.transforms.functional as TF

    return TF.resize(im, size if isinstance(size, int) else list(size), interpolation=TF.InterpolationMode.BILINEAR,
                     antialias=True)


def celeba_transform(img) -> torch.Tensor:
    """NCSNv2 CelebA: CenterCrop(140) then Resize(64) -> (3, 64, 64) float in [0, 1]."""
    return to_float(np.asarray(_resize(_center_crop(_pil(img), CELEBA_CROP), CELEBA_SIZE)))


def lsun_transform(img, size: int = LSUN_SIZE, order: str = "resize_crop") -> torch.Tensor:
    """NCSNv2 LSUN: Resize(size) (short side) then CenterCrop(size); ``order="crop_resize"`` = the paper's wording."""
    im = _pil(img)
    if order == "resize_crop":
        out = _center_crop(_resize(im, size), size)
    elif order == "crop_resize":
        out = _resize(_center_crop(im, min(im.size)), (size, size))
    else:
        raise ValueError(f"order must be 'resize_crop' or 'crop_resize', got {order!r}")
    return to_float(np.asarray(out))


def ffhq_transform(img, size: int = FFHQ_SIZE) -> torch.Tensor:
    """FFHQ at 256 x 256 (the images are square)."""
    return to_float(np.asarray(_resize(_pil(img), (size, size))))


def square_transform(img, size: int) -> torch.Tensor:
    """The LSUN recipe at any size: central square, resized. Used to make small faces-sized inputs in mini."""
    return lsun_transform(img, size, order="crop_resize")


# ------------------------------------------------------------------------------------------------ test images
def ffhq_test_indices(n_total: int = FFHQ_TOTAL) -> list[int]:
    """NCSNv2's FFHQ test split: indices shuffled with np.random.seed(2019); the last 10 % are the test set."""
    indices = list(range(n_total))
    state = np.random.get_state()  # NCSNv2 seeds the global RNG and restores it; we do the same
    try:
        np.random.seed(2019)
        np.random.shuffle(indices)
    finally:
        np.random.set_state(state)
    return indices[int(n_total * 0.9):]


def celeba_test_names(partition_file: str | Path) -> list[str]:
    """File names of CelebA's official test partition (label 2), in file order."""
    names = []
    for line in Path(partition_file).read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "2":
            names.append(parts[0])
    return names


def load_celeba(zip_path, partition_file, n: int) -> list[Image]:
    names = celeba_test_names(partition_file)[:n]
    from PIL import Image as PILImage

    out = []
    with zipfile.ZipFile(zip_path) as z:
        members = {Path(m).name: m for m in z.namelist() if m.endswith(".jpg")}
        for name in names:
            with z.open(members[name]) as fh:
                out.append(Image(name, celeba_transform(PILImage.open(io.BytesIO(fh.read())).convert("RGB"))))
    return out


def load_ffhq(zip_path, n: int) -> list[Image]:
    from PIL import Image as PILImage

    out = []
    with zipfile.ZipFile(zip_path) as z:
        members = sorted(m for m in z.namelist() if m.endswith(".png"))
        if len(members) != FFHQ_TOTAL:
            raise ValueError(f"{zip_path}: expected {FFHQ_TOTAL} PNGs, found {len(members)}")
        for idx in ffhq_test_indices()[:n]:
            with z.open(members[idx]) as fh:
                out.append(Image(f"{idx:05d}", ffhq_transform(PILImage.open(io.BytesIO(fh.read())).convert("RGB"))))
    return out


def load_lsun(zip_path, n: int, order: str = "resize_crop") -> list[Image]:
    """First n images of an LSUN ``*_val_lmdb.zip`` (needs the `lmdb` package, as NCSNv2's LSUN loader)."""
    try:
        import lmdb
    except ImportError as e:
        raise ImportError("reading LSUN needs the `lmdb` package (the NCSNv2 loader uses it): install lmdb") from e
    import tempfile

    from PIL import Image as PILImage

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(zip_path).extractall(tmp)
        db_dir = next(p.parent for p in Path(tmp).rglob("data.mdb"))
        env = lmdb.open(str(db_dir), readonly=True, lock=False, readahead=False, meminit=False)
        with env.begin(write=False) as txn:
            for k, (key, value) in enumerate(txn.cursor()):
                if k >= n:
                    break
                im = PILImage.open(io.BytesIO(value)).convert("RGB")
                out.append(Image(key.decode(), lsun_transform(im, LSUN_SIZE, order)))
    return out


# registry set names and loaders of the paper's four datasets
DATASETS = {
    "celeba": {"registry": "datasets/celeba", "checkpoint": "weights/ncsnv2_celeba", "config": "celeba"},
    "lsun_bedroom": {"registry": "datasets/lsun_bedroom", "checkpoint": "weights/ncsnv2_bedroom", "config": "bedroom"},
    "lsun_tower": {"registry": "datasets/lsun_tower", "checkpoint": "weights/ncsnv2_tower", "config": "tower"},
    "ffhq": {"registry": "datasets/ffhq", "checkpoint": "weights/ncsnv2_ffhq", "config": "ffhq"},
}


def load_dataset(name: str, n: int, lsun_order: str = "resize_crop") -> list[Image]:
    """n test images of one of the paper's datasets, fetched and verified through the asset registry."""
    from replicate.assets.registry import fetch

    if name == "celeba":
        return load_celeba(fetch("datasets/celeba/img_align_celeba.zip"),
                           fetch("datasets/celeba/list_eval_partition.txt"), n)
    if name == "ffhq":
        return load_ffhq(fetch("datasets/ffhq/images1024x1024.zip"), n)
    if name in ("lsun_bedroom", "lsun_tower"):
        cat = name.split("_")[1]
        return load_lsun(fetch(f"datasets/{name}/{cat}_val_lmdb.zip"), n, lsun_order)
    raise KeyError(f"unknown NCSNv2 dataset {name!r}; choose one of {', '.join(DATASETS)}")
