"""Asset registry and verified fetcher: all against a local HTTP server and tmp dirs, no internet."""
from __future__ import annotations

import csv
import hashlib
import os
import http.server
import random
import re
import threading
from pathlib import Path

import pytest

from replicate.assets import build_registry, registry
from replicate.assets.registry import Asset, AssetUnavailable, ChecksumError, SizeError

SHARED_MIRROR = (registry.mirror_dirs() or [registry.REPO_ROOT.parent / "shared" / "mirror"])[0]  # the README's rule
MANIFEST = SHARED_MIRROR / "MANIFEST.tsv"


# ---------------------------------------------------------------------------------------------- server


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes) with single-range ``Range`` support; logs every request."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if srv.fail_next.get(self.path, 0) > 0:
            srv.fail_next[self.path] -= 1
            self.send_error(503)
            return
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start, status = int(match.group(1)), 206
            if start >= len(body):
                self.send_error(416)
                return
        self.send_response(status)
        self.send_header("Content-Type", srv.content_types.get(self.path, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server():
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Handler)  # port 0: a free port
    srv.files, srv.requests, srv.fail_next, srv.content_types = {}, [], {}, {}
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def places(tmp_path, monkeypatch):
    """Cache and mirror in tmp dirs; online; no backoff waits."""
    cache, mirror = tmp_path / "cache", tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("REPLICATE_CACHE", str(cache))
    monkeypatch.setenv("REPLICATE_MIRROR", str(mirror))
    monkeypatch.delenv("REPLICATE_OFFLINE", raising=False)
    monkeypatch.setattr(registry, "BACKOFF_SECONDS", 0.0)
    return cache, mirror


def _payload(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _serve(server, path: str, body: bytes, *, sha256: str | None = "auto", size: bool = True,
           set_name: str = "test/set") -> Asset:
    """Put ``body`` on the server and return an Asset for it (sha256 "auto" = the right hash)."""
    server.files[path] = body
    return Asset(
        name=f"{set_name}{path}", set=set_name, url=server.base + path,
        size=len(body) if size else None,
        sha256=hashlib.sha256(body).hexdigest() if sha256 == "auto" else sha256,
        licence="test", note="",
    )


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# ---------------------------------------------------------------------------------------------- fetch


def test_download_verifies_and_lands_at_relpath(server, places):
    cache, _ = places
    body = _payload(200_000)
    asset = _serve(server, "/files/a.bin", body)
    path = registry.fetch(asset, progress=False)
    assert path == cache / f"127.0.0.1:{server.server_address[1]}" / "files" / "a.bin"
    assert path.read_bytes() == body
    assert not path.with_name("a.bin.part").exists()
    registry.verify(path, asset)
    # second fetch comes from the cache: no new request
    n = len(server.requests)
    assert registry.fetch(asset, progress=False) == path
    assert len(server.requests) == n


def test_checksum_mismatch_raises_and_leaves_no_file(server, places):
    cache, _ = places
    asset = _serve(server, "/files/bad.bin", _payload(5000), sha256="0" * 64)
    with pytest.raises(ChecksumError) as err:
        registry.fetch(asset, progress=False)
    assert "0" * 64 in str(err.value)
    assert _files_under(cache) == []


def test_size_mismatch_is_a_size_error(tmp_path):
    file = tmp_path / "x.bin"
    file.write_bytes(b"abc")
    asset = Asset("t/x", "t", "http://h/x.bin", 4, hashlib.sha256(b"abc").hexdigest(), "", "")
    with pytest.raises(SizeError):
        registry.verify(file, asset)


def test_partial_download_resumes_with_range(server, places):
    body = _payload(300_000, seed=1)
    asset = _serve(server, "/files/big.bin", body)
    target = registry.cache_path(asset)
    target.parent.mkdir(parents=True)
    half = len(body) // 2
    target.with_name("big.bin.part").write_bytes(body[:half])
    path = registry.fetch(asset, progress=False)
    assert server.requests == [("/files/big.bin", f"bytes={half}-")]
    assert path.read_bytes() == body
    registry.verify(path, asset)


def test_server_error_is_retried(server):
    asset = _serve(server, "/files/flaky.bin", _payload(1000))
    server.fail_next["/files/flaky.bin"] = 2
    path = registry.fetch(asset, progress=False, retries=3)
    assert len(server.requests) == 3
    registry.verify(path, asset)


def test_corrupt_cached_file_is_replaced(server, caplog):
    body = _payload(4000, seed=2)
    asset = _serve(server, "/files/c.bin", body)
    target = registry.cache_path(asset)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x" * len(body))  # right size, wrong bytes
    path = registry.fetch(asset, progress=False)
    assert path.read_bytes() == body
    assert len(server.requests) == 1
    assert "corrupt" in caplog.text


def test_mirror_hit_makes_no_request(server, places):
    cache, mirror = places
    body = _payload(3000, seed=3)
    asset = _serve(server, "/files/m.bin", body)
    (mirror / asset.relpath).parent.mkdir(parents=True)
    (mirror / asset.relpath).write_bytes(body)
    path = registry.fetch(asset, progress=False)
    assert server.requests == []
    assert path == cache / asset.relpath and path.read_bytes() == body


def _corrupt_mirror_copy(server, places, url_path: str):
    """An asset served correctly by the server, whose copy in the (first) mirror has the wrong bytes."""
    body = _payload(3000, seed=4)
    asset = _serve(server, url_path, body)
    bad = places[1] / asset.relpath
    bad.parent.mkdir(parents=True)
    bad.write_bytes(body[::-1])
    return body, asset, bad


def test_corrupt_mirror_file_is_skipped_for_the_next_source(server, places, caplog):
    """A mirror copy that fails verification is never cached: the next source (here the network) is tried, with a
    warning naming the bad file and both hashes."""
    body, asset, bad = _corrupt_mirror_copy(server, places, "/files/mc.bin")
    path = registry.fetch(asset, progress=False)
    assert path.read_bytes() == body and len(server.requests) == 1
    message = caplog.text
    assert str(bad) in message and asset.sha256 in message and hashlib.sha256(body[::-1]).hexdigest() in message


def test_corrupt_mirror_file_then_a_good_mirror(server, places, tmp_path, monkeypatch):
    cache, mirror = places
    body = _payload(2000, seed=5)
    asset = _serve(server, "/files/mc2.bin", body)
    good = tmp_path / "mirror2"
    for root, data in ((mirror, body[::-1]), (good, body)):
        (root / asset.relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / asset.relpath).write_bytes(data)
    monkeypatch.setenv("REPLICATE_MIRROR", f"{mirror}{os.pathsep}{good}")
    assert registry.fetch(asset, progress=False).read_bytes() == body
    assert server.requests == []


def test_corrupt_mirror_file_offline_is_an_error_naming_it(server, places, monkeypatch):
    body, asset, bad = _corrupt_mirror_copy(server, places, "/files/mc3.bin")
    monkeypatch.setenv("REPLICATE_OFFLINE", "1")
    with pytest.raises(AssetUnavailable) as err:
        registry.fetch(asset, progress=False)
    message = str(err.value)
    assert str(bad) in message and asset.sha256 in message and "replace it" in message
    assert _files_under(places[0]) == []


def test_a_mirror_that_is_not_a_directory_is_named(places, tmp_path, monkeypatch, caplog):
    missing = tmp_path / "no-such-mirror"
    monkeypatch.setenv("REPLICATE_MIRROR", str(missing))
    assert registry.mirror_dirs() == [missing]
    assert str(missing) in caplog.text and "not a directory" in caplog.text


def test_offline_miss_names_url_and_target(server, places, monkeypatch):
    cache, mirror = places
    asset = _serve(server, "/files/off.bin", _payload(100))
    monkeypatch.setenv("REPLICATE_OFFLINE", "1")
    with pytest.raises(AssetUnavailable) as err:
        registry.fetch(asset, progress=False)
    message = str(err.value)
    assert asset.url in message
    assert str(cache / asset.relpath) in message and str(mirror / asset.relpath) in message
    assert "REPLICATE_MIRROR" in message
    assert server.requests == []


def test_google_drive_asset_asks_for_manual_download(server):
    asset = Asset("w/ck", "w", "https://drive.google.com/drive/folders/FOLDERID/exp/logs/celeba/ck.pth",
                  None, None, "", "")
    with pytest.raises(AssetUnavailable) as err:
        registry.fetch(asset, progress=False)
    message = str(err.value)
    assert "https://drive.google.com/drive/folders/FOLDERID" in message and "by hand" in message
    assert "drive.google.com/drive/folders/FOLDERID/exp/logs/celeba/ck.pth" in message


def test_unpublished_hash_is_recorded_then_enforced(server, places):
    cache, _ = places
    asset = _serve(server, "/files/r.bin", _payload(2000, seed=5), sha256=None, size=False)
    assert asset.hash_source == "recorded"
    path = registry.fetch(asset, progress=False)
    recorded = registry.recorded_hashes()[asset.name]
    assert recorded["sha256"] == registry.sha256_of(path)
    assert (cache / "RECORDED_HASHES.tsv").exists()
    # the publisher silently changes the file: the recorded hash catches it
    path.unlink()
    server.files["/files/r.bin"] = _payload(2000, seed=6)
    with pytest.raises(ChecksumError, match="recorded"):
        registry.fetch(asset, progress=False)


def test_prefix_hash_checks_only_the_prefix(server):
    body = _payload(1500, seed=7)
    good = _serve(server, "/files/p-ok.bin", body, sha256="prefix:" + hashlib.sha256(body).hexdigest()[:8])
    assert good.hash_source == "prefix"
    registry.fetch(good, progress=False)
    bad = _serve(server, "/files/p-bad.bin", body, sha256="prefix:00000000")
    with pytest.raises(ChecksumError):
        registry.fetch(bad, progress=False)


def test_html_answer_for_unhashed_file_is_refused(server, places):
    cache, _ = places
    asset = _serve(server, "/files/login.bin", b"<!DOCTYPE html><html>log in</html>", sha256=None, size=False)
    server.content_types["/files/login.bin"] = "text/html; charset=utf-8"
    with pytest.raises(AssetUnavailable, match="HTML"):
        registry.fetch(asset, progress=False, retries=1)
    assert _files_under(cache) == []


def _write_registry(path: Path, assets: list[Asset]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(build_registry.COLUMNS)
        for a in assets:
            writer.writerow([a.name, a.set, a.url, a.size or "", a.sha256 or "unknown", a.licence, a.note])


def test_fetch_set_reports_every_missing_file_at_once(server, tmp_path, monkeypatch):
    present = _serve(server, "/s/one.bin", _payload(100, seed=8), set_name="test/three")
    gone = [_serve(server, f"/s/{n}.bin", b"", set_name="test/three") for n in ("two", "three")]
    for a in gone:
        del server.files[urlpath(a)]
    table = tmp_path / "registry.tsv"
    _write_registry(table, [present, *gone])
    monkeypatch.setattr(registry, "DEFAULT_REGISTRY", table)
    assert [a.name for a in registry.assets_in("test/three")] == sorted(a.name for a in [present, *gone])
    assert registry.availability("test/three")[0] is False
    with pytest.raises(AssetUnavailable) as err:
        registry.fetch_set("test/three", progress=False, retries=1)
    assert {m.asset.name for m in err.value.missing} == {a.name for a in gone}
    for a in gone:
        assert a.url in str(err.value)
    assert registry.cache_path(present).exists()  # the good file was still fetched
    ok, reason = registry.availability("test/three")
    assert not ok and "2 of 3" in reason


def test_obtain_downloads_what_a_stage_needs_and_says_why_not_offline(server, tmp_path, monkeypatch):
    """Stages ask ``obtain`` (not the no-network ``availability``), so the paper profile downloads its datasets."""
    assets = [_serve(server, f"/d/{n}.bin", _payload(50, seed=i), set_name="test/data") for i, n in enumerate("ab")]
    table = tmp_path / "registry.tsv"
    _write_registry(table, assets)
    monkeypatch.setattr(registry, "DEFAULT_REGISTRY", table)
    ok, reason = registry.obtain("test/data", offline=True, progress=False)
    assert not ok and "2 of 2" in reason and not server.requests          # offline: nothing asked of the network
    assert registry.obtain("test/data", progress=False, retries=1) == (True, "")
    assert all(registry.cache_path(a).exists() for a in assets) and registry.availability("test/data")[0]
    gone = _serve(server, "/d/c.bin", b"", set_name="test/data")
    del server.files[urlpath(gone)]
    _write_registry(table, [*assets, gone])
    ok, reason = registry.obtain("test/data", progress=False, retries=1)
    assert not ok and "1 of 3" in reason and "download" in reason and gone.url in reason


def urlpath(asset: Asset) -> str:
    return "/" + asset.url.split("/", 3)[3]


def test_unknown_names_suggest_close_matches():
    with pytest.raises(KeyError, match="testsets/set12/01.png"):
        registry.get("testsets/set12/01.pgn")
    with pytest.raises(KeyError, match="testsets/set12"):
        registry.assets_in("testsets/set21")


# ---------------------------------------------------------------------------------------------- registry.tsv


def test_registry_covers_the_manifest_and_extras():
    table = registry.load_registry()
    by_url = {a.url: a for a in table.values()}
    assert len(table) >= 1000
    for required in ("metrics/lpips_backbones", "metrics/fid_inception", "weights/ncsnv2_celeba",
                     "weights/dps_ffhq", "weights/guided_diffusion_imagenet256", "datasets/div2k"):
        assert registry.assets_in(required)
    assert registry.get("metrics/lpips_backbones/vgg16-397923af.pth").hash_source == "prefix"
    assert registry.get("weights/ncsnv2_celeba/checkpoint_210000.pth").hash_source == "recorded"
    assert registry.get("weights/bias_free_denoising/dncnn/bias_free/0-10.pt").hash_source == "published"
    assert registry.get("weights/universal_inverse_problem_bfcnn/BSD400_gray/model.pt")
    if not MANIFEST.exists():
        pytest.skip("shared mirror manifest not present")
    with open(MANIFEST, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) >= 1000
    for row in rows:
        asset = by_url[row["url"]]
        assert (asset.set, asset.size, asset.sha256) == (row["set"], int(row["size"]), row["sha256"])


def test_registry_tsv_is_what_the_generator_writes():
    if not MANIFEST.exists():
        pytest.skip("shared mirror manifest not present")
    rendered = build_registry.render_tsv(build_registry.build_rows(MANIFEST))
    assert rendered == registry.DEFAULT_REGISTRY.read_text(), "run python -m replicate.assets.build_registry"


def test_shared_mirror_matches_registry(monkeypatch):
    if not SHARED_MIRROR.is_dir():
        pytest.skip("shared mirror not present")
    in_mirror = [a for a in registry.load_registry().values() if a.note == "in the offline mirror"]
    for asset in in_mirror:
        assert (SHARED_MIRROR / asset.relpath).is_file(), asset.relpath
    for asset in random.Random(0).sample(in_mirror, 3):
        registry.verify(SHARED_MIRROR / asset.relpath, asset)


def test_cli_status_lists_sets(capsys, monkeypatch):
    monkeypatch.setenv("REPLICATE_MIRROR", str(SHARED_MIRROR))
    assert registry.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "weights/ncsnv2_celeba" in out and "available here: no" in out
    if SHARED_MIRROR.is_dir():
        assert re.search(r"testsets/set12\s+12 files\s+available here: yes", out)


def test_cli_fetch_reports_unknown_and_missing(server, tmp_path, monkeypatch, capsys):
    present = _serve(server, "/c/one.bin", _payload(100, seed=9), set_name="test/cli")
    missing = _serve(server, "/c/two.bin", _payload(100, seed=10), set_name="test/cli")
    table = tmp_path / "registry.tsv"
    _write_registry(table, [present, missing])
    monkeypatch.setattr(registry, "DEFAULT_REGISTRY", table)
    assert registry.main(["fetch", "test/cli", "test/clj"]) == 2  # names are checked before any fetch
    assert "test/cli" in capsys.readouterr().err and server.requests == []
    (tmp_path / "mirror" / present.relpath).parent.mkdir(parents=True)
    (tmp_path / "mirror" / present.relpath).write_bytes(server.files["/c/one.bin"])
    assert registry.main(["fetch", "--offline", "test/cli"]) == 1
    assert missing.url in capsys.readouterr().err and server.requests == []
    assert registry.cache_path(present).exists()


def test_cli_status_verify_finds_a_corrupt_copy_that_size_alone_misses(server, places, tmp_path, monkeypatch,
                                                                        capsys):
    body, asset, bad = _corrupt_mirror_copy(server, places, "/v/one.bin")
    table = tmp_path / "registry.tsv"
    _write_registry(table, [asset])
    monkeypatch.setattr(registry, "DEFAULT_REGISTRY", table)
    assert registry.main(["status"]) == 0  # same size: the cheap check calls it available, and says so
    out = capsys.readouterr().out
    assert "size only" in out and re.search(r"test/set\s+1 files\s+available here: yes", out)
    assert registry.main(["status", "--verify"]) == 1
    captured = capsys.readouterr()
    assert re.search(r"test/set\s+1 files\s+available here: no", captured.out) and str(bad) in captured.out
    assert "replace it" in captured.err and bad.exists() and server.requests == []
    bad.write_bytes(body)
    assert registry.main(["status", "--verify"]) == 0
