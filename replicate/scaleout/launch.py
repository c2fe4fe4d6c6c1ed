"""Run a per-item function over many items: in this process, in a local process pool, or as a Slurm array job.

    keys = run_items(partial(rows_for_image, prm), [("set68", 0), ("set68", 1), ...],
                     launcher="local", workers=2, shards=4, parts_dir=results / "generalization.parts")
    merge(results / "generalization.parts", results / "generalization.csv", order_by=keys)

Every item is `fn(*item) -> list of row dicts`, written as one part file (see shards.py). Items already finished are
skipped, so a killed or preempted run is resumed by running it again. Nothing here touches random numbers: items carry
their own indices and derive their seeds from them (replicate.seeding), so shards and workers never change a result.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable

from replicate.scaleout.shards import Parts, default_key, indices_for, merge

log = logging.getLogger(__name__)

SLURM_DEFAULTS = {"partition": None, "gpus_per_task": 1, "cpus_per_task": 8, "time_min": 240, "mem_gb": 32,
                  "account": None, "max_retries": 3, "cluster": "slurm"}
DEFAULTS = {"kind": "local", "workers": 1, "shards": 1, "slurm": SLURM_DEFAULTS}
LAUNCHERS = ("local", "slurm")
LOG_ENV = "REPLICATE_SCALEOUT_LOG"  # optional audit log: "start|done|fail <key> <pid> <unix time>" lines per item


def settings(all_params: dict | None = None) -> dict:
    """run_items keyword arguments from params.yaml's top-level `launcher:` block (defaults: local, 1 worker, 1 shard).

    The block is deliberately not part of any stage's DVC params: results do not depend on how they were computed.
    """
    if all_params is None:
        from replicate import params as P

        all_params = P.read_all()
    block = dict(all_params.get("launcher") or {})
    slurm_block = dict(block.pop("slurm", None) or {})
    for given, known, where in ((block, DEFAULTS, "launcher"), (slurm_block, SLURM_DEFAULTS, "launcher.slurm")):
        unknown = sorted(set(given) - set(known))
        if unknown:  # a typo (`shard: 8`) would otherwise silently run everything in one shard
            raise ValueError(f"unknown {where} setting(s) {unknown}; known: {sorted(known)} "
                             "(see the launcher: block of params.yaml)")
    merged = {**DEFAULTS, **block}
    if merged["kind"] not in LAUNCHERS:
        raise ValueError(f"launcher.kind must be local or slurm, not {merged['kind']!r}")
    return {"launcher": merged["kind"], "workers": int(merged["workers"]), "shards": int(merged["shards"]),
            "slurm": {**SLURM_DEFAULTS, **slurm_block}}


_CACHE: dict = {}


def per_process(key, factory: Callable):
    """Build something expensive (models, an image set) once per worker process, not once per item.

    The working directory is part of the key: stages resolve data/ and results/ from it (replicate.runtime).
    """
    k = json.dumps([os.getcwd(), key], sort_keys=True, default=str)
    if k not in _CACHE:
        _CACHE[k] = factory()
    return _CACHE[k]


def _audit(event: str, key: str) -> None:
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a") as fh:  # one short O_APPEND write per line: lines from concurrent workers don't mix
            fh.write(f"{event} {key} {os.getpid()} {time.time():.6f}\n")


def run_shard(fn: Callable, pairs: list, parts_dir: str | Path) -> int:
    """Compute the unfinished items of one shard; returns how many were computed.

    A failing item does not stop the shard: the others are still computed (and kept), then the first error is raised
    with the keys that failed, so a retry has only those left to do.
    """
    from replicate.progress import bar

    parts = Parts(parts_dir)
    computed, failed = 0, {}
    for key, item in bar(pairs, desc=Path(parts_dir).stem, unit="item", leave=False):
        if parts.done(key):  # finished by an earlier (killed, preempted, failed) attempt
            continue
        _configure_torch()
        _audit("start", key)
        try:
            rows = fn(*item)
        except Exception as exc:
            _audit("fail", key)
            failed[key] = exc
            log.error("item %s failed:\n%s", key, traceback.format_exc())
            continue
        parts.write(key, rows)
        _audit("done", key)
        computed += 1
    if failed:
        key, exc = next(iter(failed.items()))
        raise RuntimeError(f"{len(failed)} item(s) failed ({', '.join(list(failed)[:5])}); first, {key}: "
                           f"{type(exc).__name__}: {exc}") from exc
    return computed


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [s.strip() for s in env.split(",") if s.strip()] if env else []
    return (ids or [str(i) for i in range(torch.cuda.device_count())])[: torch.cuda.device_count()]


def _exit_with_parent(parent: int) -> None:
    # a pool worker whose parent was killed (kill -9 of the whole stage) would otherwise finish its item and then
    # wait forever for more work; the rerun redoes that item anyway
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


_WORKER: dict = {}  # set in launcher-started worker processes only: {"threads": n or None, "torch_ready": bool}


def _setup_worker(threads: int | None, gpu_queue=None, parent: int | None = None) -> None:
    """Worker start: one GPU or a share of the CPU cores, set in the environment before torch is imported (torch
    reads CUDA_VISIBLE_DEVICES and OMP_NUM_THREADS then); torch itself is configured by `_configure_torch`."""
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    if gpu_queue is not None:
        gpu = gpu_queue.get()
        if gpu is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    if threads:
        for var in ("REPLICATE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    _WORKER.update(threads=threads, torch_ready=False)


def _configure_torch() -> None:
    """In a worker, once torch is loaded: its threads and deterministic kernels, as replicate.runtime.setup does in
    the parent (spawned processes do not inherit it). Called before every item, so it also catches a function that
    imports torch lazily after its first item; stage functions live in modules that import torch at the top
    (replicate.runtime does), so torch is loaded when the function is unpickled, before the first item. Workers
    whose function never uses torch (tests, toys) never pay for importing it."""
    if not _WORKER or _WORKER["torch_ready"] or "torch" not in sys.modules:
        return
    import torch

    if _WORKER["threads"]:
        torch.set_num_threads(_WORKER["threads"])
    torch.use_deterministic_algorithms(True, warn_only=True)
    _WORKER["torch_ready"] = True


def _run_local(fn, todo: dict, parts_dir, workers: int, threads: int | None) -> None:
    workers = max(1, min(workers, len(todo)))
    if workers == 1:  # no pool: same process, same device and threads as the caller (the unsharded behaviour)
        errors = []
        for pairs in todo.values():
            try:
                run_shard(fn, pairs, parts_dir)
            except RuntimeError as exc:  # the other shards are still worth computing
                errors.append(exc)
        if errors:
            raise RuntimeError(f"{errors[0]}; rerun to retry (finished items are kept)") from errors[0]
        return
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fork would copy the parent's torch/CUDA state, which is unsafe
    gpus = _visible_gpus()
    queue = ctx.Queue()
    for w in range(workers):  # worker w gets GPU w mod n_gpus; without GPUs, cores // workers threads each
        queue.put(gpus[w % len(gpus)] if gpus else None)
    threads = threads or max(1, _cores() // workers)
    errors = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_setup_worker,
                             initargs=(threads, queue, os.getpid())) as pool:
        futures = {pool.submit(run_shard, fn, pairs, parts_dir): shard for shard, pairs in todo.items()}
        for fut in as_completed(futures):
            try:
                fut.result()
            except Exception as exc:  # keep going: the other shards' parts are still worth having on a rerun
                errors[futures[fut]] = exc
    if errors:  # a killed worker shows up here as BrokenProcessPool for every shard not finished by then
        first = errors[min(errors)]
        raise RuntimeError(f"shards {sorted(errors)} failed; rerun to resume (finished items are kept): "
                           f"{type(first).__name__}: {first}") from first


class ShardTask:
    """One shard as a submitit job. `checkpoint` is submitit's hook on preemption or time-out: it requeues the same
    call, and nothing needs saving because every finished item is already on disk as a part."""

    def __init__(self, fn, todo: dict, parts_dir, threads: int | None):
        self.fn, self.todo, self.parts_dir, self.threads = fn, todo, str(parts_dir), threads
        self.cwd = os.getcwd()  # the stage resolves data/ and results/ from the working directory

    def __call__(self, shard: int) -> int:
        os.chdir(self.cwd)
        _setup_worker(self.threads)
        return run_shard(self.fn, self.todo[shard], self.parts_dir)

    def checkpoint(self, shard: int):
        import submitit

        return submitit.helpers.DelayedSubmission(self, shard)


def _why(exc: Exception) -> str:
    """The line of a submitit error that says what went wrong: the task's own exception, else the job's state."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return raised[-1] if raised else " ".join(lines[:2])


def _run_slurm(fn, todo: dict, parts_dir, slurm: dict | None, workers: int) -> None:
    import submitit

    s = {**SLURM_DEFAULTS, **(slurm or {})}
    retries = int(s["max_retries"])
    folder = Path(parts_dir) / "_submitit"  # job scripts and logs; shared filesystem, kept after a failure
    # max_num_timeout: submitit's own requeues of a preempted or timed-out task (ShardTask.checkpoint)
    ex = submitit.AutoExecutor(folder=folder, cluster=s["cluster"], slurm_max_num_timeout=retries,
                               local_max_num_timeout=retries)
    ex.update_parameters(name=f"replicate-{Path(parts_dir).stem}", timeout_min=int(s["time_min"]),
                         mem_gb=float(s["mem_gb"]), cpus_per_task=int(s["cpus_per_task"]),
                         slurm_partition=s["partition"], slurm_account=s["account"],
                         slurm_gpus_per_task=s["gpus_per_task"] or None,
                         slurm_array_parallelism=workers if workers > 1 else len(todo))  # workers: running at once
    task = ShardTask(fn, todo, parts_dir, threads=int(s["cpus_per_task"]) if s["cpus_per_task"] else None)
    parts = Parts(parts_dir)
    pending, errors = sorted(todo), {}
    for attempt in range(retries + 1):  # resubmissions of failed shards: only their unfinished items are left
        jobs = ex.map_array(task, pending)  # one array task per shard; blocks below until all have ended
        if s["cluster"] == "local":  # a task killed without a result: no shared filesystem lag to wait 15 s for
            for job in jobs:
                job._results_timeout_s = 1
        log.info("attempt %d: shards %s submitted as %s (logs in %s)", attempt + 1, pending,
                 jobs[0].job_id.split("_")[0] if jobs else "-", folder)
        errors = {}
        try:
            for shard, job in zip(pending, jobs):
                try:
                    job.result()
                except Exception as exc:  # failed job: its finished items are kept, the rest is resubmitted
                    errors[shard] = f"{type(exc).__name__}: {_why(exc)} (log: {job.paths.stderr})"
        except KeyboardInterrupt:  # Ctrl-C of the stage: don't leave its array job running on the cluster
            for job in jobs:
                job.cancel(check=False)
            raise
        pending = [k for k in pending if parts.missing(key for key, _ in todo[k])]
        if not pending:
            return
        log.warning("attempt %d: shards %s unfinished: %s", attempt + 1, pending, errors)
    raise RuntimeError(f"shards {pending} still unfinished after {retries} retries; rerun to resume (finished items "
                       f"are kept): {errors}")


def run_items(fn: Callable, items: Iterable, *, launcher: str = "local", workers: int = 1, shards: int = 1,
              slurm: dict | None = None, parts_dir: str | Path, key_of: Callable = default_key,
              threads: int | None = None, fingerprint=None) -> list[str]:
    """Compute `fn(*item)` for every item not finished yet, one part file per item; returns the keys in item order.

    fn: a top-level (picklable) function or functools.partial of one; items: tuples of its arguments.
    shards: items are dealt round-robin by their position in `items`, so a shard is the same on every rerun. The local
    launcher hands whole shards to its workers, so it uses at least `workers` shards.
    fingerprint: anything JSON-able describing the configuration; parts made under another one are discarded.
    Raises when an item is still missing at the end; rerunning resumes from the finished parts.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be local or slurm, not {launcher!r}")
    items = [tuple(it) if isinstance(it, (tuple, list)) else (it,) for it in items]
    keys = [key_of(it) for it in items]  # computed here, so key_of never has to be pickled
    if len(set(keys)) != len(keys):
        raise ValueError("key_of gives the same key to two items")
    bad = [k for k in keys if not k or k.startswith((".", "_")) or "/" in k]
    if bad:  # "."/"_" names are temporary and bookkeeping files in the parts directory
        raise ValueError(f"item keys must be file names not starting with '.' or '_': {bad[:5]}")
    parts = Parts(parts_dir)
    if parts.check_fingerprint(fingerprint):
        log.warning("%s was made with other parameters: recomputing every item", parts.dir)
    n_shards = max(1, int(shards), int(workers) if launcher == "local" else 1)
    finished = sum(parts.done(k) for k in keys)
    if finished:  # a resumed run says so before its progress bars start
        print(f"[replicate] {Path(parts_dir).stem}: {finished} of {len(keys)} items already finished, resuming",
              file=sys.stderr)
    todo = {}
    for shard in range(n_shards):
        pairs = [(keys[i], items[i]) for i in indices_for(len(items), shard, n_shards) if not parts.done(keys[i])]
        if pairs:
            todo[shard] = pairs
    if todo and launcher == "local":
        _run_local(fn, todo, parts_dir, int(workers), threads)
    elif todo:
        _run_slurm(fn, todo, parts_dir, slurm, int(workers))
    missing = parts.missing(keys)
    if missing:
        raise RuntimeError(f"{len(missing)} items unfinished (first: {missing[:5]}); rerun to resume")
    return keys


def run_per_image(fn: Callable, prm: dict, items: Iterable, out_csv: str | Path,
                  side_dir: str | Path | None = None) -> Path:
    """The per-image stage of every paper: ``fn(prm, *item)`` for each item (typically ``(set name, image index)``),
    resumable and sharded as params.yaml's ``launcher:`` block says, parts in ``<out_csv stem>.parts`` fingerprinted
    by ``prm`` (changed parameters recompute everything), merged into ``out_csv`` in item order.

    side_dir: a folder the items also write into (example images, arrays). DVC deletes a stage's outputs before it
    reruns the stage, so after an interrupted run the finished parts can outlive their side files: if ``side_dir``
    is missing while parts exist, the parts are discarded and every item is recomputed."""
    import shutil
    from functools import partial

    out_csv = Path(out_csv)
    parts = out_csv.with_name(out_csv.stem + ".parts")
    if side_dir is not None and parts.exists() and not Path(side_dir).exists():
        log.warning("%s has finished parts but %s is gone: recomputing every item", parts, side_dir)
        shutil.rmtree(parts)
    keys = run_items(partial(fn, prm), items, parts_dir=parts, fingerprint=prm, **settings())
    return merge(parts, out_csv, order_by=keys, cleanup=True)
