"""Atomic file output: nothing half-written is ever left behind or read.

Every writer goes through `atomic_path`, which hands out a temporary name in the
destination directory and renames it over the target only when the block
finished without an exception (rename is atomic on POSIX within one filesystem).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `target`; move it onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are meant to be shared
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(target: str | os.PathLike, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def write_json(target: str | os.PathLike, obj) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(target: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame atomically (no index, stable float format)."""
    with atomic_path(target, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    return Path(target)


def save_figure(target: str | os.PathLike, fig, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    target = Path(target)
    with atomic_path(target, suffix=target.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=target.suffix.lstrip(".") or "png")
    plt.close(fig)
    return target


def save_npz(target: str | os.PathLike, **arrays) -> Path:
    """numpy arrays to a compressed .npz, atomically."""
    import numpy as np

    with atomic_path(target, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(target)


def save_torch(target: str | os.PathLike, obj) -> Path:
    import torch

    with atomic_path(target, suffix=".pt") as tmp:
        torch.save(obj, tmp)
    return Path(target)
