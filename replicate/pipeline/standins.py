"""Stand-in assets for the `dryrun` profile (issue 18): files in the real formats, with made-up content.

    python -m replicate.pipeline.standins [--out DIR] [--sets SET ...] [--force]

writes, for every registry set the dry run cannot have for real here (STANDIN_SETS), a file at each of its assets'
real relative paths (``<host>/<url path>``) under the stand-in folder (``--out``, else ``REPLICATE_STANDINS``, else
``data/standins/``; never the download cache, never a mirror), and lists them with their sha256 in
``STANDIN_HASHES.tsv`` there. Everything is generated from fixed seeds: the same bytes on every machine (tested).
The asset registry hands these files out only under the dryrun profile (replicate.assets.registry: after the cache
and the real mirrors, before the network) and refuses them everywhere else.

What each stand-in is (the readers of the paper profile open them unchanged):

  datasets/celeba          img_align_celeba.zip (img_align_celeba/<6 digits>.jpg, procedural 178x218 faces, JPEG) and
                           list_eval_partition.txt (train / val / test labels 0 / 1 / 2, CelebA's real file names)
  datasets/lsun_*          <category>_{train,val}_lmdb.zip: an lmdb database (data.mdb) whose keys are 40-hex ids and
                           whose values are WebP images with a short side of 256 px, as LSUN's
  datasets/ffhq            images1024x1024.zip: FFHQ's 70,000 member names (images1024x1024/<thousands>/<5 digits>.png);
                           the images the paper profile's readers take first (00000-00003 for DPS, the first four of
                           NCSNv2's test split) are 1024x1024 procedural faces, the others 8x8 placeholders (a zip of
                           70,000 full-size PNGs would be ~100 GB)
  datasets/imagenet_val    ILSVRC2012_img_val.tar: a few ILSVRC2012_val_<8 digits>.JPEG files, one smaller than 256 px
                           (the DPS reader skips those)
  datasets/div2k           DIV2K_{train,valid}_HR.zip: a few 2040x1356 PNGs under DIV2K_{train,valid}_HR/<4 digits>.png
  weights/ncsnv2_*         [model_state ("module." keys, the sigmas buffer = the config's geometric ladder),
                           optimizer state (no moments), epoch, step, EMA shadow (the parameters)], full size
  weights/dps_ffhq,        the ADM state dicts of ffhq_10m.pt (93.6 M parameters) and 256x256_diffusion_uncond.pt
  weights/guided_diffusion_imagenet256   (552.8 M), full size
  weights/bkse_gopro       GOPRO_wVAE.pth: the KernelWizard state dict (GOPRO_wVAE hyper-parameters)
  metrics/lpips_backbones  torchvision alexnet / vgg16 state dicts (features and classifier)
  metrics/fid_inception    pytorch-fid's FID Inception-v3 state dict

Every floating-point tensor of a checkpoint holds the deterministic reference fill
(replicate.denoisers.reference_fill: the recipe of shared/reference, keyed by the state-dict name), so the networks
compute finite, O(1) outputs; integer buffers are zero. The names and shapes are those of the project's networks,
which the architecture tests match to the originals. Test sets (Set12, CBSD68, Kodak, CSet9, ...), the authors' CPU
checkpoints and the LPIPS linear layers are not generated: the dry run reads the real files (the mirror CI has).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from replicate.assets import registry as R
from replicate.io import atomic_path, write_text

GENERATOR = "standins-v1"   # bump when any stand-in's bytes change: existing files are then regenerated
# the registry sets the dry run gets as stand-ins (none of their files is in the mirror or downloadable here)
STANDIN_SETS = ("datasets/celeba", "datasets/div2k", "datasets/ffhq", "datasets/imagenet_val", "datasets/lsun_bedroom",
                "datasets/lsun_tower", "metrics/fid_inception", "metrics/lpips_backbones", "weights/bkse_gopro",
                "weights/dps_ffhq", "weights/guided_diffusion_imagenet256", "weights/ncsnv2_bedroom",
                "weights/ncsnv2_celeba", "weights/ncsnv2_ffhq", "weights/ncsnv2_tower")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FULL_SIZE_FFHQ = 4          # FFHQ images at 1024 px: the first k of DPS's order and of NCSNv2's test split


# ------------------------------------------------------------------------------------------------ images
def _rng(*key) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "little"))


def scene(width: int, height: int, *key, face: bool = False):
    """A procedural RGB image (PIL): a smooth two-colour gradient, a few flat shapes and, for faces, a face (skin
    ellipse, eyes, mouth) centred as in aligned face datasets. Deterministic in `key`."""
    from PIL import Image, ImageDraw

    g = _rng("scene", width, height, face, *key)
    c0, c1 = g.integers(0, 256, 3), g.integers(0, 256, 3)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    s = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    mix = np.clip(0.6 * t + 0.4 * s, 0, 1)
    base = (c0 * (1 - mix) + c1 * mix).astype(np.uint8)
    im = Image.fromarray(np.ascontiguousarray(np.broadcast_to(base, (height, width, 3))))
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = g.integers(0, width), g.integers(0, height)
        w, h = g.integers(width // 10, width // 3), g.integers(height // 10, height // 3)
        fill = tuple(int(v) for v in g.integers(0, 256, 3))
        (draw.ellipse if g.random() < 0.5 else draw.rectangle)([x0, y0, x0 + w, y0 + h], fill=fill)
    if face:
        cx, cy, rx, ry = width / 2, height * 0.55, width * 0.28, height * 0.3
        skin = tuple(int(v) for v in (g.integers(150, 240), g.integers(110, 190), g.integers(90, 160)))
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=skin)
        for side in (-1, 1):
            ex, ey, er = cx + side * rx * 0.4, cy - ry * 0.2, rx * 0.12
            draw.ellipse([ex - er, ey - er * 0.6, ex + er, ey + er * 0.6], fill=(250, 250, 250))
            draw.ellipse([ex - er * 0.4, ey - er * 0.4, ex + er * 0.4, ey + er * 0.4], fill=(40, 30, 20))
        draw.rectangle([cx - rx * 0.35, cy + ry * 0.45, cx + rx * 0.35, cy + ry * 0.55], fill=(150, 60, 60))
    return im


def encode(im, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def _zip(target: Path, members) -> None:
    """A zip archive of (name, bytes) members, stored (images are compressed already), fixed dates."""
    with atomic_path(target, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            z.writestr(info, data)


def celeba(files: dict[str, Path]) -> None:
    """CelebA's aligned images and partition list: 2 train, 1 val, 4 test images (CelebA's real file names)."""
    names = {"000001.jpg": 0, "000002.jpg": 0, "162771.jpg": 1, "182638.jpg": 2, "182639.jpg": 2, "182640.jpg": 2,
             "182641.jpg": 2}
    _zip(files["datasets/celeba/img_align_celeba.zip"],
         ((f"img_align_celeba/{n}", encode(scene(178, 218, "celeba", n, face=True), "JPEG", quality=95))
          for n in sorted(names)))
    write_text(files["datasets/celeba/list_eval_partition.txt"], "".join(f"{n} {p}\n" for n, p in names.items()))


def lsun(files: dict[str, Path], category: str) -> None:
    """LSUN's lmdb databases (zipped as LSUN distributes them): keys = 40-hex ids, values = WebP images (short
    side 256); 2 images in train, 3 in val. lmdb's data.mdb only (the readers open it without a lock file)."""
    import tempfile

    import lmdb

    for split, count in (("train", 2), ("val", 3)):
        with tempfile.TemporaryDirectory() as tmp:
            env = lmdb.open(tmp, map_size=1 << 26, subdir=True, lock=False, meminit=True)
            with env.begin(write=True) as txn:
                for i in range(count):
                    key = hashlib.sha1(f"standin/{category}/{split}/{i}".encode()).hexdigest().encode()
                    w, h = (341, 256) if i % 2 == 0 else (256, 320)
                    txn.put(key, encode(scene(w, h, "lsun", category, split, i), "WEBP", quality=80, method=4))
            env.close()
            data = (Path(tmp) / "data.mdb").read_bytes()
        _zip(files[f"datasets/lsun_{category}/{category}_{split}_lmdb.zip"],
             [(f"{category}_{split}_lmdb/data.mdb", data)])


def ffhq(files: dict[str, Path]) -> None:
    """FFHQ's 70,000-member zip (see the module doc: the first images of each reader's order at 1024 px)."""
    from replicate.datasets_ncsn import FFHQ_TOTAL, ffhq_test_indices

    full = set(range(FULL_SIZE_FFHQ)) | set(ffhq_test_indices()[:FULL_SIZE_FFHQ])
    placeholder = encode(scene(8, 8, "ffhq", "placeholder"), "PNG")

    def members():
        for k in range(FFHQ_TOTAL):
            data = encode(scene(1024, 1024, "ffhq", k, face=True), "PNG") if k in full else placeholder
            yield f"images1024x1024/{k // 1000 * 1000:05d}/{k:05d}.png", data

    _zip(files["datasets/ffhq/images1024x1024.zip"], members())


def imagenet(files: dict[str, Path]) -> None:
    """The ILSVRC2012 validation tar: four JPEGs, the second smaller than 256 px."""
    sizes = [(500, 375), (200, 150), (375, 500), (500, 333)]
    target = files["datasets/imagenet_val/ILSVRC2012_img_val.tar"]
    with atomic_path(target, suffix=".tar") as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i, (w, h) in enumerate(sizes, start=1):
            data = encode(scene(w, h, "imagenet", i), "JPEG", quality=90)
            info = tarfile.TarInfo(f"ILSVRC2012_val_{i:08d}.JPEG")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))


def div2k(files: dict[str, Path]) -> None:
    """DIV2K's HR zips: three training and one validation image of DIV2K's size (2040 x 1356)."""
    for split, first, count in (("train", 1, 3), ("valid", 801, 1)):
        _zip(files[f"datasets/div2k/DIV2K_{split}_HR.zip"],
             ((f"DIV2K_{split}_HR/{k:04d}.png", encode(scene(2040, 1356, "div2k", k), "PNG"))
              for k in range(first, first + count)))


# ------------------------------------------------------------------------------------------------ checkpoints
def filled_state(module_factory, keep: dict | None = None) -> dict[str, torch.Tensor]:
    """The state dict of the module the factory builds (on the meta device: no memory for random weights), every
    floating tensor with the reference fill, integer buffers zero; `keep`: tensors to use as they are."""
    from replicate.denoisers.reference_fill import reference_value

    with torch.device("meta"):
        shapes = {k: (tuple(v.shape), v.dtype) for k, v in module_factory().state_dict().items()}
    out = {}
    for name, (shape, dtype) in shapes.items():
        if keep and name in keep:
            out[name] = keep[name].to(dtype).clone()
        elif dtype.is_floating_point:
            out[name] = reference_value(name, shape, dtype)
        else:
            out[name] = torch.zeros(shape, dtype=dtype)
    return out


def _save(target: Path, obj) -> None:
    """torch.save, atomically, to a fixed temporary name (torch names the archive's top folder after the file: a
    random temporary name would make the bytes differ from run to run)."""
    import os

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def ncsnv2(files: dict[str, Path], set_name: str) -> None:
    """An official-format NCSNv2 checkpoint list; the EMA shadow shares the model state's tensors (saved once)."""
    from replicate.denoisers.ncsnv2 import NCSNV2_CONFIGS, build_ncsnv2, geometric_sigmas

    config = set_name.rsplit("_", 1)[1]
    c = NCSNV2_CONFIGS[config]
    state = filled_state(lambda: build_ncsnv2(config),
                         keep={"sigmas": geometric_sigmas(c["sigma_begin"], c["sigma_end"], c["num_classes"])})
    with torch.device("meta"):
        params = [k for k, _ in build_ncsnv2(config).named_parameters()]
    optim = {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                                            "amsgrad": False, "params": list(range(len(params)))}]}
    states = [{f"module.{k}": v for k, v in state.items()}, optim, 0, int(c["ckpt_id"]), {k: state[k] for k in params}]
    (asset,) = R.assets_in(set_name)
    _save(files[asset.name], states)


def adm(files: dict[str, Path], set_name: str) -> None:
    from replicate.denoisers.adm import build_adm

    config = {"weights/dps_ffhq": "ffhq256_dps", "weights/guided_diffusion_imagenet256": "imagenet256_uncond"}[set_name]
    (asset,) = R.assets_in(set_name)
    _save(files[asset.name], filled_state(lambda: build_adm(config)))


def bkse(files: dict[str, Path]) -> None:
    from replicate.operators.bkse import GOPRO_WVAE, KernelWizard

    _save(files["weights/bkse_gopro/GOPRO_wVAE.pth"], filled_state(lambda: KernelWizard(**GOPRO_WVAE)))


def lpips_backbones(files: dict[str, Path]) -> None:
    import torchvision

    for name, build in (("alexnet-owt-7be5be79.pth", torchvision.models.alexnet),
                        ("vgg16-397923af.pth", torchvision.models.vgg16)):
        _save(files[f"metrics/lpips_backbones/{name}"], filled_state(lambda b=build: b(weights=None)))


def fid_inception(files: dict[str, Path]) -> None:
    from replicate.metrics import _FIDInceptionPool3

    _save(files["metrics/fid_inception/pt_inception-2015-12-05-6726825d.pth"],
          filled_state(_FIDInceptionPool3.build_network))


MAKERS = {
    "datasets/celeba": celeba,
    "datasets/lsun_bedroom": lambda f: lsun(f, "bedroom"),
    "datasets/lsun_tower": lambda f: lsun(f, "tower"),
    "datasets/ffhq": ffhq,
    "datasets/imagenet_val": imagenet,
    "datasets/div2k": div2k,
    "weights/ncsnv2_celeba": lambda f: ncsnv2(f, "weights/ncsnv2_celeba"),
    "weights/ncsnv2_bedroom": lambda f: ncsnv2(f, "weights/ncsnv2_bedroom"),
    "weights/ncsnv2_tower": lambda f: ncsnv2(f, "weights/ncsnv2_tower"),
    "weights/ncsnv2_ffhq": lambda f: ncsnv2(f, "weights/ncsnv2_ffhq"),
    "weights/dps_ffhq": lambda f: adm(f, "weights/dps_ffhq"),
    "weights/guided_diffusion_imagenet256": lambda f: adm(f, "weights/guided_diffusion_imagenet256"),
    "weights/bkse_gopro": bkse,
    "metrics/lpips_backbones": lpips_backbones,
    "metrics/fid_inception": fid_inception,
}
assert set(MAKERS) == set(STANDIN_SETS)


# ------------------------------------------------------------------------------------------------ the folder
def _write_hashes(root: Path, rows: dict[str, dict]) -> None:
    lines = ["\t".join(R.STANDIN_COLUMNS)]
    lines += ["\t".join(str(rows[n].get(c, "")) for c in R.STANDIN_COLUMNS) for n in sorted(rows)]
    write_text(root / R.STANDIN_HASHES, "\n".join(lines) + "\n")


def _up_to_date(root: Path, set_name: str, rows: dict[str, dict]) -> bool:
    for asset in R.assets_in(set_name):
        row, path = rows.get(asset.name), root / asset.relpath
        if (row is None or row["generator"] != GENERATOR or not path.is_file()
                or path.stat().st_size != int(row["size"]) or str(path.stat().st_mtime_ns) != row.get("mtime_ns")):
            return False
    return True


def generate(root: Path | None = None, sets=STANDIN_SETS, force: bool = False, progress: bool = True) -> Path:
    """Make the stand-ins of `sets` under `root` (default: the registry's stand-in folder) and record their hashes
    there; sets whose files are already there (same generator version and size) are skipped unless `force`."""
    from replicate.progress import bar

    root = Path(root) if root is not None else R.standins_dir()
    unknown = sorted(set(sets) - set(MAKERS))
    if unknown:
        raise KeyError(f"no stand-in for {unknown}; stand-ins exist for {', '.join(STANDIN_SETS)}")
    for mirror in R.mirror_dirs():
        if root.resolve() == mirror.resolve():
            raise ValueError(f"{root} is a mirror of real files: stand-ins go to a folder of their own")
    if root.resolve() == R.cache_dir().resolve():
        raise ValueError(f"{root} is the download cache: stand-ins go to a folder of their own")
    root.mkdir(parents=True, exist_ok=True)
    rows = R.standin_hashes(root)
    for set_name in bar(list(sets), desc="stand-ins", disable=not progress):
        if not force and _up_to_date(root, set_name, rows):
            continue
        files = {a.name: root / a.relpath for a in R.assets_in(set_name)}
        MAKERS[set_name](files)
        for name, path in files.items():
            rows[name] = {"name": name, "relpath": R.get(name).relpath, "size": path.stat().st_size,
                          "sha256": R.sha256_of(path), "generator": GENERATOR, "mtime_ns": path.stat().st_mtime_ns}
        _write_hashes(root, rows)   # after every set: an interrupted run keeps what it finished
    _write_hashes(root, rows)
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m replicate.pipeline.standins", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="the stand-in folder (default: REPLICATE_STANDINS or "
                                                           "data/standins)")
    ap.add_argument("--sets", nargs="+", default=list(STANDIN_SETS), metavar="SET", help="registry sets to make")
    ap.add_argument("--force", action="store_true", help="regenerate files that are already there")
    args = ap.parse_args(argv)
    root = generate(args.out, args.sets, args.force)
    rows = R.standin_hashes(root)
    total = sum(int(r["size"]) for r in rows.values())
    print(f"{len(rows)} stand-in files ({total / 2**30:.2f} GiB) in {root}; hashes in {R.STANDIN_HASHES}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
