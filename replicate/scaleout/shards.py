"""Shards of a per-item stage and its per-item result files (the "parts").

A stage that works image by image splits its items round-robin into shards and writes one small file per finished
item under `<results dir>/<stage>.parts/<key>.json`. The file is renamed into place only when complete
(replicate.io.atomic_path), so its existence *is* the completion marker: a killed worker leaves at most a hidden
`.tmp` file, which is never read, and a rerun skips every item whose part exists. `merge` then concatenates the parts
in the unsharded item order and writes the same CSV an unsharded run writes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Iterable, Sequence

from replicate.io import atomic_path, write_csv

FINGERPRINT = "_fingerprint.json"


def shard_of(index: int, n_shards: int) -> int:
    """The shard of item `index`: round-robin, so every shard gets a similar mix of (ordered) items."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    return index % n_shards


def indices_for(n_items: int, shard: int, n_shards: int) -> list[int]:
    """The item indices of one shard (the inverse of `shard_of`); depends only on (n_items, shard, n_shards)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is not in [0, {n_shards})")
    return list(range(shard, n_items, n_shards))


def default_key(item) -> str:
    """A file-name-safe key from an item (a tuple of arguments): ("set68", 3) -> "set68-3"."""
    parts = item if isinstance(item, (tuple, list)) else (item,)
    return "-".join(re.sub(r"[^A-Za-z0-9_.+=]", "_", str(p)) for p in parts)


def _json_default(obj):
    # numpy scalars (np.float32, np.int64, ...) have .item(); anything else is a bug in the caller
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class Parts:
    """The per-item result files of one stage: `Parts(results_dir / "generalization.parts")`."""

    def __init__(self, parts_dir: str | Path):
        self.dir = Path(parts_dir)

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def done(self, key: str) -> bool:
        return self.path(key).exists()

    def write(self, key: str, rows: list[dict]) -> Path:
        """Atomically write one item's rows. JSON keeps the column order, ints vs floats, and floats exactly (repr
        round-trips), so the merged CSV is formatted exactly as if the rows had never left memory."""
        target = self.path(key)
        with atomic_path(target, suffix=".json") as tmp:
            with open(tmp, "w") as fh:
                fh.write(json.dumps(list(rows), default=_json_default))
                fh.flush()
                os.fsync(fh.fileno())  # a node that crashes after the rename must not leave an empty part behind
        return target

    def read(self, key: str) -> list[dict]:
        path = self.path(key)
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:  # only a crash of the storage itself gets here (writes are atomic)
            raise ValueError(f"part file {path} is corrupt ({exc}); delete it and rerun the stage") from exc

    def keys(self) -> list[str]:
        """Finished keys; temporary files (".<name>.XXXX.json.tmp") and "_"-prefixed bookkeeping files are skipped."""
        if not self.dir.is_dir():
            return []
        return sorted(p.name[: -len(".json")] for p in self.dir.glob("*.json")
                      if not p.name.startswith((".", "_")))

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if not self.done(k)]

    def check_fingerprint(self, fingerprint) -> bool:
        """Keep the parts only if they were made with the same configuration; otherwise delete them all.

        Without this a rerun after a parameter change would silently reuse items computed with the old parameters.
        Returns True when existing parts were discarded.
        """
        if fingerprint is None:
            return False
        blob = json.dumps(fingerprint, sort_keys=True, default=str)
        marker = self.dir / FINGERPRINT
        # parts without a marker come from an unknown configuration: as stale as those with another one
        stale = marker.read_text() != blob if marker.exists() else bool(self.keys())
        if stale:
            shutil.rmtree(self.dir)
        if not marker.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(marker) as tmp:
                tmp.write_text(blob)
        return stale


def merge(parts_dir: str | Path, out_csv: str | Path, order_by: Sequence[str], cleanup: bool = False) -> Path:
    """Concatenate the parts in the order of the keys `order_by` (the unsharded run's item order) into `out_csv`.

    Same rows, same order, same float formatting (replicate.io.write_csv) as building the DataFrame in one process.
    Refuses to write anything while an item is missing. `cleanup` deletes the parts directory afterwards: the results
    directory is committed to git, and a complete CSV makes the parts redundant.
    """
    parts = Parts(parts_dir)
    missing = parts.missing(order_by)
    if missing:
        raise FileNotFoundError(f"{len(missing)} of {len(order_by)} items have no result in {parts.dir} "
                                f"(first: {missing[:5]}); rerun the stage to compute them")
    import pandas as pd  # here, not at the top: workers that only write parts need not import it

    rows = [row for key in order_by for row in parts.read(key)]
    out = write_csv(out_csv, pd.DataFrame(rows))
    if cleanup:
        shutil.rmtree(parts.dir, ignore_errors=True)
    return out

