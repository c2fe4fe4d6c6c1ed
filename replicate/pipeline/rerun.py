"""`make check-repro`: recompute committed results and compare them with what is committed.

For each stage of a profile, in a scratch copy of the checkout (nothing committed is touched):
  * per-image stage: a seeded random sample of its items is recomputed through the stage's own `rows` function and
    compared with the committed rows of those items (matched on the stage's key columns);
  * a training stage (persistent checkpoints): skipped unless --include-training (the smoke test retrains them);
  * any other stage (unless its recorded run took longer than --budget seconds): it is rerun whole on the committed
    inputs and its outputs are compared (CSV / JSON / markdown / arrays; a report stage: its summary.json, of which
    its tables and figures are renderings; a table of timings: nothing).
Every check starts from the committed inputs of the stage, so an earlier rerun never feeds a later one.
Comparison: columns that hold timings (TIMING) are left out; everything else must be identical as written (CSV floats
at 6 significant digits), else within --rtol (relative), which the report states; anything beyond fails.
The thread count of the original run (from its manifest) is used again, since CPU float sums depend on it.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replicate.pipeline import manifest as M
from replicate.pipeline.codedeps import REPO_ROOT
from replicate.pipeline.stage import Stage, at

TIMING = re.compile(r"(seconds|_time\b|^time|overhead|wall|speed|hours)", re.I)   # and what is derived from them
VOLATILE_JSON_KEYS = {"run", "provenance", "seconds", "started"}


# ----------------------------------------------------------------------------------------------- comparisons
def _frames_differ(committed, recomputed, rtol: float) -> tuple[str, float]:
    """('' or what differs, largest relative difference of numeric cells) between two string-typed frames."""
    import numpy as np
    import pandas as pd

    cols = [c for c in committed.columns if not TIMING.search(c)]
    missing = [c for c in cols if c not in recomputed.columns]
    if missing:
        return f"columns missing from the rerun: {missing[:5]}", float("inf")
    if len(committed) != len(recomputed):
        return f"{len(recomputed)} rows recomputed, {len(committed)} committed", float("inf")
    worst = 0.0
    for c in cols:
        a, b = committed[c].to_numpy(), recomputed[c].to_numpy()
        same = a == b
        if same.all():
            continue
        fa, fb = pd.to_numeric(pd.Series(a), errors="coerce"), pd.to_numeric(pd.Series(b), errors="coerce")
        numeric = ~(fa.isna() | fb.isna())
        text_diff = (~same) & ~numeric.to_numpy()
        if text_diff.any():
            i = int(np.argmax(text_diff))
            return f"column {c!r} row {i}: {a[i]!r} committed, {b[i]!r} recomputed", float("inf")
        rel = (fa - fb).abs() / fb.abs().clip(lower=1e-12)
        worst = max(worst, float(rel[numeric].max()))
    if worst > rtol:
        return f"numbers differ by up to {worst:.3g} (relative) > {rtol:g}", worst
    return "", worst


def _csv_frame(path: Path):
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _rows_frame(rows: list[dict]):
    """Rows as the stage would have written them (replicate.io.write_csv formatting), read back as strings."""
    import pandas as pd

    from replicate.io import write_csv

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.csv"
        write_csv(path, pd.DataFrame(rows))
        return _csv_frame(path)


def _strip_volatile(obj):
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items() if k not in VOLATILE_JSON_KEYS and not TIMING.search(k)}
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


def compare_files(committed: Path, recomputed: Path, rtol: float) -> tuple[str, float]:
    """('' when equivalent, else what differs; largest relative numeric difference)."""
    if committed.is_dir() or recomputed.is_dir():
        worst, names = 0.0, sorted({p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file()}
                                   | {p.relative_to(recomputed).as_posix() for p in recomputed.rglob("*")
                                      if p.is_file()})
        for name in names:
            why, w = compare_files(committed / name, recomputed / name, rtol)
            if why:
                return f"{name}: {why}", w
            worst = max(worst, w)
        return "", worst
    if not committed.exists() or not recomputed.exists():
        return f"{'committed' if not committed.exists() else 'recomputed'} file is missing", float("inf")
    suffix = committed.suffix
    if suffix == ".csv":
        return _frames_differ(_csv_frame(committed), _csv_frame(recomputed), rtol)
    if suffix == ".json":
        a, b = (_strip_volatile(json.loads(p.read_text())) for p in (committed, recomputed))
        return ("" if a == b else "JSON content differs"), 0.0
    if suffix in (".npz", ".pt"):
        return _compare_arrays(committed, recomputed, rtol)
    if suffix == ".png":
        return "", 0.0   # rendering details (fonts, versions) are not results
    same = committed.read_bytes() == recomputed.read_bytes()
    return ("" if same else "content differs"), 0.0


def _flatten(obj, prefix=""):
    import numpy as np
    import torch

    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}/")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _flatten(v, f"{prefix}{i}/")
    elif isinstance(obj, torch.Tensor):
        yield prefix, obj.detach().double().cpu().numpy()
    elif isinstance(obj, np.ndarray):
        yield prefix, obj.astype(np.float64) if obj.dtype.kind in "fiub" else obj
    else:
        yield prefix, obj


def _compare_arrays(a: Path, b: Path, rtol: float) -> tuple[str, float]:
    import numpy as np
    import torch

    load = (lambda p: dict(np.load(p, allow_pickle=False))) if a.suffix == ".npz" else \
        (lambda p: torch.load(p, map_location="cpu", weights_only=False))
    fa, fb = dict(_flatten(load(a))), dict(_flatten(load(b)))
    if set(fa) != set(fb):
        return f"different entries: {sorted(set(fa) ^ set(fb))[:4]}", float("inf")
    worst = 0.0
    for k, va in fa.items():
        vb = fb[k]
        if TIMING.search(k):
            continue
        if isinstance(va, np.ndarray) and va.dtype.kind == "f":
            if va.shape != vb.shape:
                return f"{k}: shape {vb.shape} recomputed, {va.shape} committed", float("inf")
            if np.array_equal(va, vb, equal_nan=True):
                continue
            scale = max(float(np.nanmax(np.abs(va))) if va.size else 0.0, 1e-12)
            w = float(np.nanmax(np.abs(va - vb))) / scale
            worst = max(worst, w)
        elif not (va == vb if not isinstance(va, np.ndarray) else np.array_equal(va, vb)):
            return f"{k}: differs", float("inf")
    return (f"arrays differ by up to {worst:.3g} of their range > {rtol:g}" if worst > rtol else ""), worst


# ----------------------------------------------------------------------------------------------- scratch copy
def scratch_root(profile: str, dest: Path) -> Path:
    """A copy of what the stages read: params.yaml (profile forced), the committed models and results of the
    profile (copied: stages write into their results folders)."""
    import yaml

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["profile"] = profile
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for sub in (f"data/models/{profile}", f"results/{profile}", "tables", "figures"):
        src = REPO_ROOT / sub
        if src.exists():
            shutil.copytree(src, dest / sub, ignore=shutil.ignore_patterns("*.parts", "*.tmp"))
    for f in ("README.md",):
        if (REPO_ROOT / f).exists():
            shutil.copy2(REPO_ROOT / f, dest / f)
    return dest


def _env(root: Path, profile: str, threads: int | None) -> dict:
    env = dict(os.environ, REPLICATE_PROFILE=profile, PYTHONPATH=str(REPO_ROOT))
    env.pop("REPLICATE_PARAMS", None)
    if threads:
        env["REPLICATE_THREADS"] = str(threads)
    return env


# ----------------------------------------------------------------------------------------------- worker
def worker(stage: Stage, items: list | None, out: Path) -> None:
    """In the scratch root: the items of a per-image stage (items None), or the rows of the given items, as JSON."""
    from replicate import params as P
    from replicate import runtime

    prm = P.load(stage.section)
    runtime.setup(prm)
    with P.only_sections(stage.sections):
        prm, all_items = stage.per_image.plan(prm)
        if items is None:
            result = [list(i) for i in all_items]
        else:
            known = {tuple(i) for i in all_items}
            result = {json.dumps(list(it)): stage.per_image.rows(prm, *it) for it in map(tuple, items) if it in known}
    out.write_text(json.dumps(result, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def _worker_run(stage: Stage, root: Path, env: dict, items: list | None):
    out = root / f".rerun_{stage.name}.json"
    args = [sys.executable, "-m", "replicate", "check-repro", "--worker", stage.name, "--out", str(out)]
    if items is not None:
        args += ["--worker-items", json.dumps(items)]
    run = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=6 * 3600)
    if run.returncode != 0:
        raise RuntimeError(f"{'rows' if items is not None else 'plan'} failed: {run.stderr.strip()[-800:]}")
    return json.loads(out.read_text())


def check_per_image(stage: Stage, root: Path, profile: str, n: int, seed: int, rtol: float, env: dict) -> dict:
    spec = stage.per_image
    for path in stage.inputs:
        _restore(at(path, profile), root)
    committed_csv = REPO_ROOT / at(spec.csv, profile)
    committed = _csv_frame(committed_csv)
    try:
        items = _worker_run(stage, root, env, None)
    except RuntimeError as exc:
        return {"status": "FAIL", "detail": str(exc)}
    if not items:
        return {"status": "ok", "detail": "no items in this profile (nothing to recompute)", "items": 0}
    rng = random.Random(f"{seed}/{stage.name}")
    chosen = items if n <= 0 else rng.sample(items, min(n, len(items)))
    try:
        rows = _worker_run(stage, root, env, chosen)
    except RuntimeError as exc:
        return {"status": "FAIL", "detail": str(exc), "items": len(chosen)}
    worst = 0.0
    for item in chosen:
        key = dict(zip(spec.key_columns, item))
        mask = None
        for col, val in key.items():
            m = committed[col] == str(val)
            mask = m if mask is None else mask & m
        mine = committed[mask].reset_index(drop=True)
        got = _rows_frame(rows.get(json.dumps(list(item)), []))
        why, w = _frames_differ(mine, got, rtol)
        worst = max(worst, w)
        if why:
            return {"status": "FAIL", "detail": f"item {item}: {why}", "items": len(chosen), "worst": w}
    return {"status": "ok", "detail": "identical" if worst == 0 else f"within rtol (max relative difference "
                                                                       f"{worst:.2g})", "items": len(chosen),
            "worst": worst}


def _restore(path: str, root: Path) -> None:
    """Put the committed version of `path` back into the scratch root (an earlier rerun may have rewritten it)."""
    src, dst = REPO_ROOT / path, root / path
    if dst.is_dir():
        shutil.rmtree(dst)
    elif dst.exists():
        dst.unlink()
    if src.is_dir():
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.parts", "*.tmp"))
    elif src.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def check_whole(stage: Stage, root: Path, profile: str, rtol: float, env: dict) -> dict:
    """Rerun the whole stage on the committed inputs (restored first) and compare its outputs; its persistent
    outputs (trained models) are removed first, so they are really recomputed."""
    if stage.compare == ():
        return {"status": "ok", "detail": "not compared: its outputs are timing measurements"}
    for path in stage.inputs:
        _restore(at(path, profile), root)
    for path in stage.persist:
        target = root / at(path, profile)
        if target.is_dir():
            shutil.rmtree(target)
    run = subprocess.run([sys.executable, "-m", "replicate", stage.name], cwd=root, env=env, capture_output=True,
                         text=True, timeout=6 * 3600)
    if run.returncode != 0:
        return {"status": "FAIL", "detail": f"rerun failed: {run.stderr.strip()[-800:]}"}
    worst = 0.0
    for out in (stage.outs if stage.compare is None else stage.compare):
        path = at(out, profile)
        why, w = compare_files(REPO_ROOT / path, root / path, rtol)
        worst = max(worst, w)
        if why:
            return {"status": "FAIL", "detail": f"{path}: {why}", "worst": w}
    return {"status": "ok", "detail": "identical" if worst == 0 else f"within rtol (max relative difference "
                                                                       f"{worst:.2g})", "worst": worst}


def main(argv, stages: list[Stage]) -> int:
    ap = argparse.ArgumentParser(prog="replicate check-repro", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=os.environ.get("PROFILE", "mini"))
    ap.add_argument("--items", type=int, default=1, help="items recomputed per per-image stage (0: all)")
    ap.add_argument("--seed", type=int, default=0, help="which items are drawn")
    ap.add_argument("--budget", type=float, default=300.0,
                    help="rerun a whole stage only if its recorded run took at most this many seconds")
    ap.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance where results are not identical")
    ap.add_argument("--stages", nargs="*", help="only these stages")
    ap.add_argument("--include-training", action="store_true",
                    help="also retrain the training stages (their checkpoints persist, so the recorded time of a "
                         "run that resumed them says nothing about a retraining's cost)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--worker-items", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        stage = next(s for s in stages if s.name == args.worker)
        worker(stage, json.loads(args.worker_items) if args.worker_items else None, Path(args.out))
        return 0
    stages = [s for s in stages if s.per_profile and (not args.stages or s.name in args.stages)]
    failures, lines = 0, []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="replicate-rerun-") as tmp:
        root = scratch_root(args.profile, Path(tmp))
        for stage in stages:
            m = M.read(stage, args.profile)
            if m is None:
                lines.append(f"{stage.name:34s} not run for {args.profile} (no manifest)")
                continue
            threads = (m.get("run") or {}).get("cpu_threads")
            env = _env(root, args.profile, threads)
            t0 = time.perf_counter()
            if stage.per_image is not None:
                res = check_per_image(stage, root, args.profile, args.items, args.seed, args.rtol, env)
            elif stage.persist and not args.include_training:
                res = {"status": "skipped", "detail": "a training stage (its checkpoints persist: its recorded time "
                                                      "may be a resume); --include-training retrains it"}
            elif (m.get("run") or {}).get("seconds", 0) > args.budget:
                res = {"status": "skipped", "detail": f"its run took {m['run']['seconds']:.0f} s > --budget"}
            else:
                res = check_whole(stage, root, args.profile, args.rtol, env)
            failures += res["status"] == "FAIL"
            extra = f", {res['items']} item(s)" if "items" in res else ""
            lines.append(f"{stage.name:34s} {res['status']:7s} {res['detail']}{extra} "
                         f"[{time.perf_counter() - t0:.0f} s]")
            print(lines[-1], flush=True)
    print(f"check-repro ({args.profile}): {len(stages) - failures} of {len(stages)} stages reproduce "
          f"({time.perf_counter() - start:.0f} s)")
    return 1 if failures else 0

