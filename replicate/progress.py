"""Progress bars for long work: a tqdm bar with an ETA, throttled to one update every 10 s when stderr is not a
terminal (logs of DVC, CI or Slurm get a readable line now and then, not thousands of carriage returns)."""
from __future__ import annotations

import sys


def bar(iterable=None, **kwargs):
    from tqdm.auto import tqdm

    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("maxinterval", 60.0)
        kwargs.setdefault("ascii", True)
    return tqdm(iterable, **kwargs)
