"""A tiny per-item work function with the shape of a real stage's, for the scale-out tests and examples.

It lives in the package (not in tests/) because workers of the local pool and of submitit import it by name.
"""
from __future__ import annotations

import os
import signal
import time
import zlib
from pathlib import Path


def rows(set_name: str, index: int, *, seed: int = 0, samples: int = 2, sleep_s: float = 0.0,
         fail_once: tuple = (), kill_once: tuple = (), markers: str | None = None) -> list[dict]:
    """`samples` rows for image `index`: statistics of noise seeded by (seed, set, index, sample) only, as
    replicate.seeding does (full-precision floats, as a real metric). numpy rather than torch keeps workers light.

    fail_once / kill_once: indices that raise / kill -9 their own process the first time they run (a file under
    `markers` remembers it), to test retries and resumption.
    """
    import numpy as np

    for indices, action in ((fail_once, "fail"), (kill_once, "kill")):
        if index in indices:
            marker = Path(markers) / f"{action}-{set_name}-{index}"
            if not marker.exists():
                marker.touch()
                if action == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(f"planned failure of {set_name}/{index}")
    time.sleep(sleep_s)
    out = []
    for sample in range(samples):
        noise = np.random.default_rng([seed, zlib.crc32(set_name.encode()), index, sample]).standard_normal(64)
        out.append({"set": set_name, "image_index": index, "sample": sample, "mean": float(noise.mean()),
                    "norm": float(np.linalg.norm(noise)), "max": noise.max()})
    return out
