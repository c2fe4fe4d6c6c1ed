"""Throughput of the local launcher on a CPU-bound per-image task (a small DnCNN forward pass, one thread per worker).

    .venv/bin/python -m replicate.scaleout.benchmark --items 32 --workers 1 2

For each worker count: the steady-state rate, images finished per second while *every* worker is busy (from the audit
log: from the moment every worker has finished its first image to the first worker's last; the one-off cost of
starting worker processes is in wall_s), and the speed-up over one worker. The scale-out target is >= 0.8 N x the single-worker rate for N up to the number of cores.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import torch  # at the top: pool workers load it before their first item, so it is set up as in a real stage

from replicate.scaleout.launch import LOG_ENV, per_process, run_items
from replicate.scaleout.shards import Parts


def _net(size: int, depth: int, features: int):
    torch.manual_seed(0)
    layers = [torch.nn.Conv2d(1, features, 3, padding=1), torch.nn.ReLU()]
    for _ in range(depth - 2):
        layers += [torch.nn.Conv2d(features, features, 3, padding=1), torch.nn.ReLU()]
    layers.append(torch.nn.Conv2d(features, 1, 3, padding=1))
    return torch.nn.Sequential(*layers).eval()


def work(index: int, size: int = 128, depth: int = 8, features: int = 32) -> list[dict]:
    """One 'image': a denoiser-sized forward pass on a seeded random image; returns one row."""
    from replicate import seeding

    net = per_process(("benchmark", size, depth, features), lambda: _net(size, depth, features))
    x = seeding.randn((1, 1, size, size), 0, "benchmark", index)
    cpu = time.thread_time()
    with torch.no_grad():
        y = net(x)
    # CPU seconds of this item: if it stays the same for every N, the launcher adds no per-item cost and any
    # shortfall of the wall-clock rate is cores taken by other processes
    return [{"index": index, "mean": float(y.mean()), "cpu_s": time.thread_time() - cpu}]


def measure(n_items: int, workers: int, size: int = 128, root: Path | None = None) -> dict:
    """Run `n_items` through the local launcher with `workers` processes (1 thread each); rates from the audit log."""
    torch.set_num_threads(1)  # the single-worker case runs in this process: same one thread as each pool worker
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        log = Path(tmp) / "audit.log"
        old = os.environ.get(LOG_ENV)
        os.environ[LOG_ENV] = str(log)
        try:
            start = time.perf_counter()
            run_items(partial(work, size=size), [(i,) for i in range(n_items)], launcher="local", workers=workers,
                      shards=4 * workers, threads=1, parts_dir=Path(tmp) / "bench.parts")
            wall = time.perf_counter() - start
            parts = Parts(Path(tmp) / "bench.parts")
            cpu_s = {key: parts.read(key)[0]["cpu_s"] for key in parts.keys()}
        finally:
            os.environ.pop(LOG_ENV) if old is None else os.environ.__setitem__(LOG_ENV, old)
        events = [line.split() for line in log.read_text().splitlines()]
    pids = {e[2] for e in events}
    # from the moment every worker has finished its first item (start-up, model building) to the first worker's last
    done = {p: [float(e[3]) for e in events if e[2] == p and e[0] == "done"] for p in pids}
    t0, t1 = max(min(d) for d in done.values()), min(max(d) for d in done.values())
    in_window = [e[1] for e in events if e[0] == "done" and t0 < float(e[3]) <= t1]
    finished = len(in_window)
    if len(pids) < workers or t1 <= t0 or finished < n_items // 2:
        # a worker that started late (a busy machine) leaves too short a window with everyone busy to mean anything
        raise RuntimeError(f"workers barely overlapped ({len(pids)} of {workers} processes, {finished} of {n_items} "
                           "items finished while all were busy): use more --items or a quieter machine")
    return {"workers": workers, "items": n_items, "images_per_s": finished / (t1 - t0), "busy_s": t1 - t0,
            "wall_s": wall, "cpu_ms_per_image": 1000 * sorted(cpu_s.values())[len(cpu_s) // 2],
            # cores this run actually got (other processes share the machine): CPU seconds / wall seconds
            "cores_used": sum(cpu_s[k] for k in in_window) / (t1 - t0),
            # the rate per core actually obtained: flat across N when the launcher itself costs nothing
            "images_per_core_s": finished / sum(cpu_s[k] for k in in_window)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default="results/mini/scaleout/benchmark.csv", help="CSV written atomically ('' = none)")
    args = ap.parse_args(argv)
    import pandas as pd

    from replicate.io import write_csv
    from replicate.runtime import provenance

    rows, base = [], None
    machine = provenance()
    print("workers  images/s  speed-up  target(0.8N)  busy_s  wall_s  cpu_ms/image  cores_used  load_before")
    for n in args.workers:
        # the machine may be shared: the 1-minute load average says how many cores other processes wanted
        load = os.getloadavg()[0]
        r = measure(args.items, n, args.size)
        base = base or r["images_per_s"]
        rows.append({**r, "speedup": r["images_per_s"] / base, "target_speedup": 0.8 * n,
                     "meets_target": r["images_per_s"] / base >= 0.8 * n, "load_1min_before": load,
                     "load_1min_after": os.getloadavg()[0], "cores": os.cpu_count(), "size": args.size,
                     "processor": machine["processor"], "platform": machine["platform"], "torch": machine["torch"]})
        print(f"{n:7d}  {r['images_per_s']:8.2f}  {r['images_per_s'] / base:8.2f}  {0.8 * n:12.1f}"
              f"  {r['busy_s']:6.2f}  {r['wall_s']:6.2f}  {r['cpu_ms_per_image']:12.1f}  {r['cores_used']:10.2f}"
              f"  {load:11.2f}")
    if args.out:
        print(f"wrote {write_csv(args.out, pd.DataFrame(rows))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
