"""Regenerate ``registry.tsv`` from the mirror's MANIFEST.tsv plus the hand-kept list below.

    python -m replicate.assets.build_registry [--manifest PATH] [--out PATH]

The registry is the single list of every external file the project can use. Two sources feed it:

* ``MANIFEST.tsv`` of the offline mirror (test sets, training sets, small pretrained denoisers): URLs pinned
  to commits, with size and sha256, so those rows are fully verifiable;
* ``EXTRA_ASSETS`` below: metric networks, large checkpoints and data sets that the papers use but that are
  not in the mirror. Kept here as plain data so a reviewer can check every URL and hash in one place.

Hash column forms (interpreted by ``registry.Asset.hash_source``):
  * 64 hex digits       -- full sha256, checked on every fetch ("published");
  * ``prefix:<hex>``    -- torch-hub style file names embed the first 8 hex digits of the sha256; only that
                           prefix is checked, the full hash is recorded on first download ("prefix");
  * ``unknown``         -- the publisher gives no hash (Google Drive, login-only sites); the hash is recorded
                           on first download into ``<cache>/RECORDED_HASHES.tsv`` and checked after that
                           ("recorded", trust on first use).

URL forms:
  * ``http(s)://...``                                   -- downloadable by plain HTTP (maybe behind a login);
  * ``https://drive.google.com/drive/folders/<id>/<path>`` -- file ``<path>`` inside a shared Drive folder.
    Not a real download URL (Drive needs a browser): the user downloads it by hand and puts it at
    ``<mirror>/<relpath>``; the path is kept in the URL so every file has its own unique place;
  * ``https://drive.google.com/file/d/<id>/<name>``      -- a single Drive file, likewise manual;
  * ``pkg://<python package>/<path>``                     -- a file shipped inside an installed pip package.
"""
from __future__ import annotations

import argparse
import csv
import io
import posixpath
from pathlib import Path
from urllib.parse import urlsplit

from replicate.io import write_text

COLUMNS = ("name", "set", "url", "size", "sha256", "licence", "note")
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "registry.tsv"
DEFAULT_MANIFEST = HERE.parents[2] / "shared" / "mirror" / "MANIFEST.tsv"

NCSNV2_DRIVE = "https://drive.google.com/drive/folders/1217uhIvLg9ZrYNKOR3XTRFSurt4miQrd"
DPS_DRIVE = "https://drive.google.com/drive/folders/1jElnRoFv7b31fG0v6pTSQkelbSX3xGZh"
CELEBA_DRIVE = "https://drive.google.com/drive/folders/0B7EVK8r0v71pWEZsZE9oNnFzTm8"
FFHQ_DRIVE = "https://drive.google.com/drive/folders/1u2xu7bSrWxrbUxk-dT-UvEJq8IjdmNTP"
NCSNV2_LICENCE = "unverified: see LICENSE of github.com/ermongroup/ncsnv2"
LPIPS_PKG_NOTE = (
    "ships inside the lpips pip package (no download); sha256 = the file in the lpips 0.1.4 wheel; "
    "upstream github.com/richzhang/PerceptualSimilarity lpips/weights/v0.1/"
)


def _ncsnv2(doc: str, step: int, data: str) -> dict:
    return dict(
        name=f"weights/ncsnv2_{doc}/checkpoint_{step}.pth",
        set=f"weights/ncsnv2_{doc}",
        url=f"{NCSNV2_DRIVE}/exp/logs/{doc}/checkpoint_{step}.pth",
        sha256="unknown",
        licence=NCSNV2_LICENCE,
        note=f"NCSNv2 {data} score network (ermongroup/ncsnv2); Google Drive, manual download; "
        "list [model, optim, epoch, step, ema], EMA weights last",
    )


#: Files not in the mirror. ``size`` may be omitted (unknown); ``sha256`` as described in the module doc.
EXTRA_ASSETS: list[dict] = [
    # --- metric networks -------------------------------------------------------------------------------
    dict(
        name="metrics/lpips_backbones/alexnet-owt-7be5be79.pth",
        set="metrics/lpips_backbones",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        sha256="prefix:7be5be79",
        licence="BSD-3-Clause (torchvision); ImageNet-trained weights",
        note="torchvision AlexNet, backbone of LPIPS-Alex v0.1",
    ),
    dict(
        name="metrics/lpips_backbones/vgg16-397923af.pth",
        set="metrics/lpips_backbones",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        sha256="prefix:397923af",
        licence="BSD-3-Clause (torchvision); ImageNet-trained weights",
        note="torchvision VGG16, backbone of LPIPS-VGG v0.1 (the DPS metric)",
    ),
    dict(
        name="metrics/lpips_linear/alex.pth",
        set="metrics/lpips_linear",
        url="pkg://lpips/weights/v0.1/alex.pth",
        size=6009,
        sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        licence="BSD-2-Clause (lpips)",
        note="LPIPS v0.1 linear layers for AlexNet; " + LPIPS_PKG_NOTE,
    ),
    dict(
        name="metrics/lpips_linear/vgg.pth",
        set="metrics/lpips_linear",
        url="pkg://lpips/weights/v0.1/vgg.pth",
        size=7289,
        sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        licence="BSD-2-Clause (lpips)",
        note="LPIPS v0.1 linear layers for VGG16; " + LPIPS_PKG_NOTE,
    ),
    dict(
        name="metrics/lpips_linear/squeeze.pth",
        set="metrics/lpips_linear",
        url="pkg://lpips/weights/v0.1/squeeze.pth",
        size=10811,
        sha256="4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
        licence="BSD-2-Clause (lpips)",
        note="LPIPS v0.1 linear layers for SqueezeNet; " + LPIPS_PKG_NOTE,
    ),
    dict(
        name="metrics/fid_inception/pt_inception-2015-12-05-6726825d.pth",
        set="metrics/fid_inception",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        sha256="prefix:6726825d",
        licence="Apache-2.0 (pytorch-fid); port of the TF FID Inception graph",
        note="FID Inception-v3 (pytorch-fid); file-name suffix read as a torch-hub sha256 prefix "
        "(pytorch-fid itself does not check it)",
    ),
    # --- large pretrained priors (publishers give no hash) ---------------------------------------------
    _ncsnv2("celeba", 210000, "CelebA 64x64"),
    _ncsnv2("bedroom", 150000, "LSUN bedroom 128x128"),
    _ncsnv2("tower", 150000, "LSUN tower 128x128"),
    _ncsnv2("ffhq", 80000, "FFHQ 256x256"),
    dict(
        name="weights/dps_ffhq/ffhq_10m.pt",
        set="weights/dps_ffhq",
        url=f"{DPS_DRIVE}/ffhq_10m.pt",
        sha256="unknown",
        licence="unverified: see LICENSE of github.com/DPS2022/diffusion-posterior-sampling",
        note="DPS FFHQ 256 unconditional ADM; Google Drive, manual download; the DPS code expects models/ffhq_10m.pt",
    ),
    dict(
        name="weights/bkse_gopro/GOPRO_wVAE.pth",
        set="weights/bkse_gopro",
        url="https://drive.google.com/file/d/1QMUY8mxUMgEJty2Gk7UY0WYmyyYRY7vS/GOPRO_wVAE.pth",
        sha256="unknown",
        licence="unverified: see LICENSE of github.com/VinAIResearch/blur-kernel-space-exploring",
        note="bkse KernelWizard trained on GOPRO with the VAE (Tran et al. 2021): DPS's non-uniform blur forward "
             "model (Table 4); Google Drive, manual download (file id as used by third-party install scripts of "
             "DPS-style code, unverified here); the DPS code expects bkse/experiments/pretrained/GOPRO_wVAE.pth",
    ),
    dict(
        name="weights/guided_diffusion_imagenet256/256x256_diffusion_uncond.pt",
        set="weights/guided_diffusion_imagenet256",
        url="https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
        sha256="unknown",
        licence="MIT (openai/guided-diffusion)",
        note="ImageNet 256 unconditional ADM; the DPS ImageNet config calls it models/imagenet256.pt",
    ),
    # --- data sets not in the mirror --------------------------------------------------------------------
    dict(
        name="datasets/celeba/img_align_celeba.zip",
        set="datasets/celeba",
        url=f"{CELEBA_DRIVE}/Img/img_align_celeba.zip",
        sha256="unknown",
        licence="CelebA agreement: non-commercial research only, no redistribution",
        note="aligned CelebA (NCSNv2: CenterCrop 140 -> 64); Google Drive, manual download; "
        "torchvision lists md5 00d2c5bc6d35e252742224ab0c1e8fcb",
    ),
    dict(
        name="datasets/celeba/list_eval_partition.txt",
        set="datasets/celeba",
        url=f"{CELEBA_DRIVE}/Eval/list_eval_partition.txt",
        sha256="unknown",
        licence="CelebA agreement: non-commercial research only, no redistribution",
        note="train/val/test split of CelebA; Google Drive, manual download",
    ),
    *[
        dict(
            name=f"datasets/lsun_{category}/{category}_{split}_lmdb.zip",
            set=f"datasets/lsun_{category}",
            url=f"http://dl.yf.io/lsun/scenes/{category}_{split}_lmdb.zip",
            sha256="unknown",
            licence="LSUN terms: research use",
            note=f"LSUN {category} {split} lmdb (NCSNv2 tests on the val lmdb)",
        )
        for category in ("bedroom", "tower")
        for split in ("train", "val")
    ],
    dict(
        name="datasets/ffhq/images1024x1024.zip",
        set="datasets/ffhq",
        url=f"{FFHQ_DRIVE}/zips/images1024x1024.zip",
        sha256="unknown",
        licence="CC BY-NC-SA 4.0 (dataset); images under their Flickr licences",
        note="FFHQ 1024 px (89 GB); DPS evaluates on 00000-00999 at 256 px; Google Drive, manual download; "
        "path in the folder per github.com/NVlabs/ffhq-dataset (unverified here); "
        "ffhq-dataset-v2.json there lists per-image md5",
    ),
    dict(
        name="datasets/imagenet_val/ILSVRC2012_img_val.tar",
        set="datasets/imagenet_val",
        url="https://image-net.org/data/ILSVRC/2012/ILSVRC2012_img_val.tar",
        sha256="unknown",
        licence="ImageNet terms of access: non-commercial research, login required",
        note="ILSVRC2012 validation images (6.3 GB); needs an image-net.org login, usually a manual download; "
        "torchvision lists md5 29b22e2961454d5413ddabcf34fc5622",
    ),
    *[
        dict(
            name=f"datasets/div2k/DIV2K_{split}_HR.zip",
            set="datasets/div2k",
            url=f"http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_{split}_HR.zip",
            sha256="unknown",
            licence="DIV2K (NTIRE challenge): academic research use",
            note=f"DIV2K {split} high-resolution images",
        )
        for split in ("train", "valid")
    ],
]


def _after(marker: str):
    """Name rule: the part of the URL path after `marker` (for sets whose basenames repeat)."""

    def rule(url_path: str) -> str:
        return url_path.split(marker, 1)[1]

    return rule


def _bfcnn_rule(url_path: str) -> str:
    # .../denoisers/BF_CNN/<training set>/noise_range_0to100/model.pt -> <training set>/model.pt
    parts = url_path.split("/BF_CNN/", 1)[1].split("/")
    return f"{parts[0]}/{parts[-1]}"


#: Sets whose files share basenames: how to derive a unique in-set name from the URL path.
NAME_RULES = {
    "weights/bias_free_denoising": _after("/pretrained/"),
    "weights/universal_inverse_problem_bfcnn": _bfcnn_rule,
}


def manifest_rows(manifest: Path) -> list[dict]:
    """One registry row per MANIFEST.tsv row, with a short unique name."""
    with open(manifest, newline="") as handle:
        records = list(csv.DictReader(handle, delimiter="\t"))
    rows = []
    for rec in records:
        url_path = urlsplit(rec["url"]).path
        rule = NAME_RULES.get(rec["set"], posixpath.basename)
        rows.append(
            dict(
                name=f"{rec['set']}/{rule(url_path)}",
                set=rec["set"],
                url=rec["url"],
                size=int(rec["size"]),
                sha256=rec["sha256"].lower(),
                licence=rec["license_note"],
                note="in the offline mirror",
            )
        )
    return rows


def build_rows(manifest: Path) -> list[dict]:
    rows = manifest_rows(manifest) + [dict(r) for r in EXTRA_ASSETS]
    names = [r["name"] for r in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"registry names must be unique; add a NAME_RULES entry for: {duplicates[:5]}")
    urls = [r["url"] for r in rows]
    if len(set(urls)) != len(urls):
        raise ValueError("two registry rows share one URL (they would share one cache path)")
    return sorted(rows, key=lambda r: r["name"])


def render_tsv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for row in rows:
        size = row.get("size")
        writer.writerow([row["name"], row["set"], row["url"], "" if size is None else size,
                         row["sha256"], row["licence"], row.get("note", "")])
    return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows = build_rows(args.manifest)
    write_text(args.out, render_tsv(rows))
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
