"""Shared test set-up: single-threaded, deterministic torch; the offline mirror when it is beside the checkout."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_MIRROR = REPO.parent / "shared" / "mirror"

torch.set_num_threads(int(os.environ.get("REPLICATE_TEST_THREADS", "1")))
os.environ.setdefault("REPLICATE_OFFLINE", "1")  # tests never reach for the network


@pytest.fixture
def mirror() -> Path:
    """The offline mirror (../shared/mirror or $REPLICATE_MIRROR); tests that need it are skipped without it."""
    env = os.environ.get("REPLICATE_MIRROR")
    path = Path(env.split(os.pathsep)[0]) if env else SHARED_MIRROR
    if not path.is_dir():
        pytest.skip(f"no offline mirror at {path} (set REPLICATE_MIRROR)")
    return path
