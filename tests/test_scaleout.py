"""Scale-out (issue 8): sharded, multi-worker and Slurm (submitit local executor) runs give bit-identical results;
failed items are retried and finished ones never rerun; killed runs resume without reading half-written parts."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import yaml

from replicate.io import write_csv
from replicate.scaleout import LOG_ENV, Parts, indices_for, merge, run_items, settings, shard_of
from replicate.scaleout import toy
from replicate.scaleout.launch import SLURM_DEFAULTS

REPO = Path(__file__).resolve().parent.parent
ITEMS = [("a", i) for i in range(7)] + [("b", i) for i in range(3)]
SLURM_LOCAL = {"cluster": "local", "cpus_per_task": 1, "gpus_per_task": 0, "time_min": 5, "mem_gb": 1,
               "max_retries": 1}


@pytest.fixture
def audit(tmp_path, monkeypatch) -> Path:
    """The launcher's audit log ("start|done|fail <key> <pid> <time>" per item); workers inherit the variable."""
    path = tmp_path / "audit.log"
    monkeypatch.setenv(LOG_ENV, str(path))
    return path


def events(log: Path) -> list[tuple[str, str, int]]:
    return [(e, key, int(pid)) for e, key, pid, _ in (line.split() for line in log.read_text().splitlines())] \
        if log.exists() else []


def reference_csv(tmp_path: Path) -> bytes:
    """The unsharded result: every item's rows built in memory, in item order, written in one go."""
    rows = [row for item in ITEMS for row in toy.rows(*item)]
    return write_csv(tmp_path / "reference.csv", pd.DataFrame(rows)).read_bytes()


def run_and_merge(tmp_path: Path, name: str, fn=toy.rows, **kw) -> bytes:
    keys = run_items(fn, ITEMS, parts_dir=tmp_path / f"{name}.parts", **kw)
    return merge(tmp_path / f"{name}.parts", tmp_path / f"{name}.csv", order_by=keys, cleanup=True).read_bytes()


def test_shards_deal_every_item_exactly_once():
    for n in (1, 3, 64):
        dealt = sorted(i for s in range(n) for i in indices_for(10, s, n))
        assert dealt == list(range(10))
        assert all(shard_of(i, n) == s for s in range(n) for i in indices_for(10, s, n))
    with pytest.raises(ValueError, match=r"not in \[0, 3\)"):
        indices_for(10, 3, 3)


def test_one_and_three_shards_are_bit_identical_to_an_in_memory_run(tmp_path):
    want = reference_csv(tmp_path)
    assert run_and_merge(tmp_path, "one", shards=1) == want
    assert run_and_merge(tmp_path, "three", shards=3) == want
    assert not (tmp_path / "three.parts").exists()  # cleanup: the merged CSV makes the parts redundant


def test_two_local_workers_are_bit_identical(tmp_path, audit):
    # 0.5 s per item (sleeping, not computing): long enough for the second worker to start on a busy machine
    got = run_and_merge(tmp_path, "pool", partial(toy.rows, sleep_s=0.5), launcher="local", workers=2, shards=4)
    assert got == reference_csv(tmp_path)
    pids = {pid for _, _, pid in events(audit)}
    assert len(pids) == 2 and os.getpid() not in pids  # really two worker processes


def test_slurm_launcher_on_submitit_local_executor_retries_only_unfinished_items(tmp_path, audit):
    # a-4 raises (shard 1) and a-5 kills its array task with SIGKILL (shard 2, leaving b-1 of that shard undone)
    fn = partial(toy.rows, fail_once=(4,), kill_once=(5,), markers=str(tmp_path))
    got = run_and_merge(tmp_path, "slurm", fn, launcher="slurm", shards=3, slurm=SLURM_LOCAL)
    assert got == reference_csv(tmp_path)
    log = events(audit)
    pids = {pid for _, _, pid in log}
    assert len(pids) == 5 and os.getpid() not in pids  # 3 array tasks, then shards 1 and 2 resubmitted
    starts = Counter(key for e, key, _ in log if e == "start")
    assert starts.pop("a-4") == 2 and starts.pop("a-5") == 2 and set(starts.values()) == {1}  # finished: never rerun
    assert Counter(e for e, _, _ in log) == {"start": 12, "done": 10, "fail": 1}


def test_a_preempted_slurm_task_requeues_its_shard_without_redoing_finished_items(tmp_path, monkeypatch, audit):
    """submitit calls `checkpoint` on preemption or time-out and requeues what it returns."""
    from replicate.scaleout import launch

    # the task runs here, in pytest's process: keep the worker set-up (threads, torch's deterministic mode) out of it
    monkeypatch.setattr(launch, "_WORKER", {})
    monkeypatch.setattr(launch, "_configure_torch", lambda: None)
    todo = {1: [(f"{s}-{i}", (s, i)) for s, i in ITEMS[1::3]]}
    task = launch.ShardTask(toy.rows, todo, tmp_path / "p.parts", threads=None)
    Parts(tmp_path / "p.parts").write("a-1", toy.rows("a", 1))  # finished before the preemption
    requeued = task.checkpoint(1)
    assert requeued.function is task and requeued.args == (1,)
    assert requeued.result() == len(todo[1]) - 1
    assert [key for e, key, _ in events(audit) if e == "start"] == [key for key, _ in todo[1][1:]]


def test_a_killed_worker_is_resumed_without_recomputing_finished_items(tmp_path, audit):
    fn = partial(toy.rows, kill_once=(5,), markers=str(tmp_path), sleep_s=0.05)
    with pytest.raises(RuntimeError, match="rerun to resume"):
        run_items(fn, ITEMS, launcher="local", workers=2, shards=2, parts_dir=tmp_path / "k.parts")
    first = {key for e, key, _ in events(audit) if e == "done"}
    assert first and "a-5" not in first and len(first) < len(ITEMS)
    audit.unlink()
    got = run_and_merge(tmp_path, "k", fn)  # the rerun, here in this process
    again = {key for e, key, _ in events(audit) if e == "start"}
    assert again.isdisjoint(first) and again | first == {f"{s}-{i}" for s, i in ITEMS}
    assert got == reference_csv(tmp_path)


KILLABLE_RUN = """
import sys
from functools import partial
from replicate.scaleout import run_items, toy
items = [("a", i) for i in range(7)] + [("b", i) for i in range(3)]
run_items(partial(toy.rows, sleep_s=0.25), items, launcher="local", workers=2, shards=2, parts_dir=sys.argv[1])
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_kill_9_of_the_whole_run_resumes_and_never_reads_a_half_written_part(tmp_path, audit):
    parts_dir = tmp_path / "run.parts"
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE_RUN, str(parts_dir)], cwd=tmp_path)
    deadline = time.time() + 60
    while sum(e == "done" for e, _, _ in events(audit)) < 3:
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    workers = {pid for _, _, pid in events(audit)}
    deadline = time.time() + 10
    while any(alive(pid) for pid in workers):  # orphaned pool workers notice and exit
        assert time.time() < deadline, "pool workers outlived the killed run"
        time.sleep(0.1)
    first = {key for e, key, _ in events(audit) if e == "done"}
    assert 3 <= len(first) < len(ITEMS)
    # a half-written part as a kill during the write leaves it (atomic_path's temporary name): never read
    todo = next(f"{s}-{i}" for s, i in ITEMS if f"{s}-{i}" not in first)
    (parts_dir / f".{todo}.json.x1y2z3.json.tmp").write_text('[{"set": "a", "ima')
    assert todo not in Parts(parts_dir).keys() and not Parts(parts_dir).done(todo)
    audit.unlink()
    got = run_and_merge(tmp_path, "run", partial(toy.rows, sleep_s=0.25))
    assert {key for e, key, _ in events(audit) if e == "start"}.isdisjoint(first)
    assert got == reference_csv(tmp_path)


def test_a_new_fingerprint_discards_stale_parts(tmp_path, audit):
    parts_dir = tmp_path / "f.parts"
    run = partial(run_items, toy.rows, ITEMS[:3], parts_dir=parts_dir)
    run(fingerprint={"sigma": 10})
    run(fingerprint={"sigma": 10})  # same configuration: nothing to do
    assert len(events(audit)) == 6
    run(fingerprint={"sigma": 20})  # another one: everything again
    assert len(events(audit)) == 12
    (parts_dir / "_fingerprint.json").unlink()  # parts of unknown origin are not trusted either
    run(fingerprint={"sigma": 20})
    assert len(events(audit)) == 18


def test_merge_follows_the_given_order_and_refuses_incomplete_or_corrupt_parts(tmp_path):
    parts = Parts(tmp_path / "m.parts")
    for k in ("x", "y", "z"):
        parts.write(k, [{"key": k, "value": 0.1 + len(k)}])
    out = merge(parts.dir, tmp_path / "m.csv", order_by=["z", "x", "y"])
    assert pd.read_csv(out)["key"].tolist() == ["z", "x", "y"]
    with pytest.raises(FileNotFoundError, match="rerun the stage"):
        merge(parts.dir, tmp_path / "m2.csv", order_by=["x", "w"])
    assert not (tmp_path / "m2.csv").exists()
    parts.path("y").write_text("[{")
    with pytest.raises(ValueError, match="delete it and rerun"):
        merge(parts.dir, tmp_path / "m3.csv", order_by=["x", "y"])


def test_settings_defaults_and_clear_errors():
    assert settings({}) == {"launcher": "local", "workers": 1, "shards": 1, "slurm": SLURM_DEFAULTS}
    block = yaml.safe_load((REPO / "params.yaml").read_text())
    assert settings(block)["launcher"] == "local" and settings(block)["slurm"]["max_retries"] == 3
    with pytest.raises(ValueError, match=r"unknown launcher setting\(s\) \['shard'\]"):
        settings({"launcher": {"shard": 4}})
    with pytest.raises(ValueError, match="must be local or slurm"):
        settings({"launcher": {"kind": "ray"}})
    with pytest.raises(ValueError, match="same key"):
        run_items(toy.rows, [("a", 1), ("a", 1)], parts_dir="unused")


def project(root: Path, params: dict, models: Path) -> Path:
    """A project root of its own (runtime.project_root is the working directory when it holds params.yaml): its
    results/ do not clobber the checkout's, its data/models/ is the checkout's smoke models."""
    (root / "data" / "models" / "smoke").mkdir(parents=True)
    (root / "data" / "models" / "smoke" / "mohan2020").symlink_to(models)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.mark.slow  # a real stage, 3 submitit jobs each importing torch: ~15 s on 2 idle cores, ~50 s on a busy one
def test_mohan2020_generalization_as_three_slurm_shards_equals_the_unsharded_csv(tmp_path, monkeypatch, smoke_root):
    """The real stage through the CLI: unsharded in this process, then as 3 shards on submitit's local executor in a
    subprocess, as `dvc repro` would run it with `launcher: {kind: slurm, shards: 3}`."""
    import torch

    from replicate import cli

    models = smoke_root / "data" / "models" / "smoke" / "mohan2020"  # trained once per session (tests/conftest.py)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["mohan2020"]["smoke"]["test_sets"]["skimage_gray"]["limit"] = 4  # 4 images: every shard has work
    params.pop("launcher", None)
    monkeypatch.delenv("REPLICATE_PARAMS", raising=False)
    monkeypatch.delenv(LOG_ENV, raising=False)
    monkeypatch.setenv("REPLICATE_PROFILE", "smoke")
    monkeypatch.setenv("REPLICATE_THREADS", "1")
    csv = Path("results") / "smoke" / "mohan2020" / "generalization.csv"

    unsharded = project(tmp_path / "unsharded", params, models)
    monkeypatch.chdir(unsharded)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        assert cli.main(["mohan2020", "generalization"]) == 0
    finally:  # cli.main sets it for the whole process, as it does for a stage
        torch.use_deterministic_algorithms(deterministic)

    sharded = project(tmp_path / "sharded", params | {"launcher": {"kind": "slurm", "shards": 3, "slurm": SLURM_LOCAL}},
                      models)
    log = tmp_path / "audit.log"
    run = subprocess.Popen([sys.executable, "-m", "replicate", "mohan2020", "generalization"], cwd=sharded,
                           env=os.environ | {LOG_ENV: str(log)}, stderr=subprocess.PIPE, text=True)
    assert run.wait(timeout=300) == 0, run.stderr.read()[-3000:]
    assert len({pid for _, _, pid in events(log)} - {run.pid}) == 3  # three array tasks did the work
    want, got = (pd.read_csv(root / csv, dtype=str) for root in (unsharded, sharded))
    assert want["image_index"].nunique() == 4 and not (sharded / csv).with_name("generalization.parts").exists()
    # every column as written, character for character; only the wall-clock timing is not reproducible
    timing = ["seconds_per_image"]
    pd.testing.assert_frame_equal(want.drop(columns=timing), got.drop(columns=timing))


def test_cost_model_reads_timings_and_projects_gpu_hours(tmp_path, monkeypatch):
    from replicate.report import costs

    res = tmp_path / "results" / "mini" / "mohan2020"
    res.mkdir(parents=True)
    pd.DataFrame({"image_index": [0, 0, 1, 1, 2, 2], "model": ["a", "b"] * 3, "pixels": 16384,
                  "seconds_per_image": [0.1, 1.0, 0.3, 2.0, 0.2, 3.0]}).to_csv(res / "generalization.csv", index=False)
    pd.DataFrame({"model": ["a"], "seconds": [99.0]}).to_csv(res / "models.csv", index=False)  # not per image
    (tmp_path / "results" / "mini" / "manifests").mkdir(parents=True)
    (tmp_path / "results" / "mini" / "manifests" / "mohan2020_generalization.json").write_text(
        '{"run": {"processor": "TestCPU", "cpu_threads": 2, "cuda": null}}')
    (tmp_path / "params.yaml").write_text("profile: mini\n")
    monkeypatch.chdir(tmp_path)
    meas = costs.measured("mini")
    assert meas[["method", "rows", "median_s"]].values.tolist() == [["a", 3, 0.2], ["b", 3, 2.0]]
    assert set(meas.hardware) == {"TestCPU, 2 threads, no GPU"}
    proj = costs.projection(meas, "mini", cpu_to_gpu=10).set_index("paper")
    mohan = costs.WORKLOADS[0]
    # row-weighted median seconds (1.1) x pixel ratio x model-size ratio / the assumed factor, for every evaluation
    want = 1.1 * (mohan.pixels / 16384) * costs.MODEL_SCALE[("mohan2020", "mini")] / 10 * mohan.evaluations / 3600
    assert proj.loc["mohan2020", "gpu_hours"] == pytest.approx(want)
    assert proj.loc["kadkhodaie2021", "basis"].startswith("not measured")
    text = costs.build_costs({"profile": "mini"}, cpu_to_gpu=10).read_text()
    assert "| mohan2020 | generalization | seconds_per_image | b | 3 | 2 | 16384 | TestCPU" in text
    assert "*assumed* CPU->GPU speed factor of 10x" in text


def test_benchmark_writes_its_csv(tmp_path):
    from replicate.scaleout import benchmark

    assert benchmark.main(["--items", "8", "--size", "16", "--workers", "1", "--out", str(tmp_path / "b.csv")]) == 0
    row = pd.read_csv(tmp_path / "b.csv").iloc[0]
    assert row.workers == 1 and row.speedup == 1 and row.images_per_s > 0 and row.load_1min_before >= 0


def _rows_with_side_file(prm: dict, set_name: str, index: int) -> list[dict]:
    """A per-image function that, like the papers' stages, also writes a file of its own (example arrays)."""
    Path(prm["side"]).mkdir(exist_ok=True)
    (Path(prm["side"]) / f"{set_name}_{index}.txt").write_text("x")
    return toy.rows(set_name, index)


def test_parts_whose_side_files_dvc_deleted_are_recomputed(tmp_path, audit):
    """DVC deletes a stage's outputs before rerunning it: after an interrupted run the finished parts would
    otherwise be merged without the example files their items wrote."""
    from replicate.scaleout import run_per_image

    prm, side, out = {"side": str(tmp_path / "examples")}, tmp_path / "examples", tmp_path / "rows.csv"
    items = ITEMS[:3]
    run_items(partial(_rows_with_side_file, prm), items[:2], parts_dir=tmp_path / "rows.parts", fingerprint=prm)
    shutil.rmtree(side)                                   # what `dvc repro` does to the stage's outputs
    run_per_image(_rows_with_side_file, prm, items, out, side_dir=side)
    assert sorted(p.name for p in side.iterdir()) == [f"a_{i}.txt" for i in range(3)]
    assert len(events(audit)) == 2 * 2 + 2 * 3           # the two finished items ran again, then all three
    assert len(pd.read_csv(out)) == sum(len(toy.rows(*it)) for it in items)
