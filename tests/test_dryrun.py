"""The dryrun profile: stand-ins in the real formats, deterministic; the registry hands them out under dryrun only and
never lets one pass for the real file; the dryrun block only shrinks the paper profile; its verdicts are "dry run".
The whole dry run (`make dryrun`) runs in CI after the tests."""
from __future__ import annotations

import shutil

import pytest

from replicate import params as P
from replicate.assets import registry as R
from replicate.pipeline import standins
from replicate.report import verdicts as V

SMALL_SETS = ("datasets/celeba", "datasets/imagenet_val", "datasets/lsun_bedroom")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The small stand-in sets, generated once, twice over (determinism)."""
    roots = [tmp_path_factory.mktemp(f"standins{i}") for i in (1, 2)]
    for root in roots:
        standins.generate(root, SMALL_SETS, progress=False)
    return roots


@pytest.fixture
def isolated(tmp_path, monkeypatch, made):
    """An empty cache and mirror, offline, the first stand-in folder as REPLICATE_STANDINS."""
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("REPLICATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPLICATE_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("REPLICATE_STANDINS", str(made[0]))
    monkeypatch.setenv("REPLICATE_OFFLINE", "1")
    return tmp_path


def test_standins_are_the_same_bytes_every_time(made):
    first, second = ({n: (r["relpath"], r["size"], r["sha256"]) for n, r in R.standin_hashes(root).items()}
                     for root in made)
    names = {a.name for s in SMALL_SETS for a in R.assets_in(s)}
    assert set(first) == names and first == second


def test_the_registry_hands_out_standins_under_dryrun_only(isolated, monkeypatch):
    name = "datasets/celeba/img_align_celeba.zip"
    monkeypatch.setenv("REPLICATE_PROFILE", "mini")
    with pytest.raises(R.AssetUnavailable):
        R.fetch(name, progress=False)
    monkeypatch.setenv("REPLICATE_PROFILE", "dryrun")
    path = R.fetch(name, progress=False)
    assert path == R.standins_dir() / R.get(name).relpath      # used in place, never copied into the cache
    assert not (isolated / "cache" / R.get(name).relpath).exists()
    assert R.REQUESTS[name]["standin"] and R.REQUESTS[name]["hash_source"] == "standin"


def test_an_edited_standin_is_refused(isolated, monkeypatch, made, tmp_path):
    name = "datasets/celeba/list_eval_partition.txt"
    root = tmp_path / "standins"
    shutil.copytree(made[0], root)
    monkeypatch.setenv("REPLICATE_STANDINS", str(root))
    monkeypatch.setenv("REPLICATE_PROFILE", "dryrun")
    path = R.fetch(name, progress=False)
    path.write_text(path.read_text().replace(" 2", " 0"))      # same size, other bytes, a new mtime
    with pytest.raises(R.ChecksumError, match="regenerate"):
        R.fetch(name, progress=False)


def test_the_paper_readers_open_the_standins(isolated, monkeypatch):
    from replicate import datasets_ncsn as N

    monkeypatch.setenv("REPLICATE_PROFILE", "dryrun")
    (celeba,) = N.load_dataset("celeba", 1)
    assert tuple(celeba.pixels.shape) == (3, 64, 64) and 0 <= float(celeba.pixels.min()) < float(celeba.pixels.max()) <= 1
    bedrooms = N.load_dataset("lsun_bedroom", 2)
    assert [tuple(b.pixels.shape) for b in bedrooms] == [(3, 128, 128)] * 2


def test_a_standin_never_passes_for_the_real_file(isolated, monkeypatch, made):
    name = "datasets/imagenet_val/ILSVRC2012_img_val.tar"
    relpath = R.get(name).relpath
    fake = isolated / "mirror" / relpath
    fake.parent.mkdir(parents=True)
    shutil.copy(made[0] / relpath, fake)                       # a stand-in put into a real mirror
    monkeypatch.setenv("REPLICATE_PROFILE", "paper")
    with pytest.raises(R.AssetUnavailable, match="stand-in"):
        R.fetch(name, progress=False)
    assert not (isolated / "cache" / relpath).exists() and name not in R.recorded_hashes()
    monkeypatch.setenv("REPLICATE_MIRROR", str(made[0]))        # a stand-in folder named as a mirror: skipped
    assert R.mirror_dirs() == []


def _leaves(block: dict, prefix=()):
    for key, value in block.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,)


# the keys a dryrun block may add to the paper profile's: sizes and evaluation counts only (issue 18)
SHRINKING_KEYS = {"device", "levels", "square", "crop", "limit", "max_iter"}


@pytest.mark.parametrize("section", ["mohan2020", "kawar2021", "chung2023", "elad_lecture", "xie2023",
                                     "kadkhodaie2021"])
def test_the_dryrun_block_only_shrinks_the_paper_profile(section):
    everything = P.read_all()
    block = everything[section]
    paper = P.merge(block.get("common") or {}, block["paper"])
    paper.pop("cpu_subset", None)
    for path in _leaves(block.get("dryrun") or {}):
        node = paper
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        known = isinstance(node, dict) and path[-1] in node
        assert known or path[-1] in SHRINKING_KEYS or (node is None and path[-2:-1] and path[-2] in (
            "test_sets", "runs", "tasks")), f"{section}: dryrun sets {'.'.join(path)}, which the paper profile lacks"
    prm = P.load(section, profile="dryrun")
    assert prm["subset"] == "full" and P.code_profile(prm) == "paper" and P.is_dryrun(prm)


def test_a_dry_run_is_never_a_verdict():
    comparison = V.Comparison(item="Table 1", cell="t1", metric="psnr", published=30.0, measured=30.1,
                              ci=(29.9, 30.3), n=4, uncertainty="images", setting="paper", tolerance=0.5,
                              verdict=V.REPRODUCED)
    claim = V.Claim(id="Claim: x", text="x", kind="superiority", estimate=1.0, ci=(0.5, 1.5), p_value=0.001, n=4,
                    detail="", setting="paper")
    items = {"Table 1": {"status": V.REPRODUCED}, "Fig. 2": {"status": V.NOT_IMPLEMENTED, "note": "no code"},
             "Fig. 3": {"status": f"{V.NOT_AVAILABLE} (x)"}}
    assert V.mark_dry_run(items, [claim], [comparison]) == V.DRY_RUN
    assert comparison.verdict == claim.status == items["Table 1"]["status"] == V.DRY_RUN
    assert items["Fig. 2"]["status"] == V.NOT_IMPLEMENTED
    assert V.dry_run_failures({"paper": "p", "items": items}) == ["p: Fig. 3: not available here (x) ()"]


def test_the_runbook_names_every_manual_file_and_every_projected_table():
    from replicate.pipeline.codedeps import REPO_ROOT
    from replicate.report.costs import WORKLOADS
    from replicate.report.runbook import manual_files, runbook
    from replicate.stages import all_stages

    text = runbook(all_stages(), REPO_ROOT)
    assert manual_files() and all(f"data/downloads/{a.relpath}" in text for a in manual_files())
    assert all(w.table in text for w in WORKLOADS) and "dvc exp run -S profile=paper" in text
    assert str(REPO_ROOT) not in text   # relative paths only
