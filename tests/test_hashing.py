"""Digests (SPEC section 8) and the hash cache: only changed files are read, racy files are
re-read, a corrupt or foreign cache is discarded, and the cache never changes a decision."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reftool.pipeline import hashing
from reftool.pipeline.hashing import (
    RACY_WINDOW_NS, HashCache, HashError, Hasher, Progress, file_digest_of_bytes, manifest,
)

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def make(root: Path, files: dict[str, bytes | str]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())


def hasher(root: Path, *, later: bool = True, cache: bool = True) -> Hasher:
    """A hasher whose clock runs ahead, so files just written are not racy (unless asked)."""
    now = time.time_ns() + (10 * RACY_WINDOW_NS if later else 0)
    return Hasher(root, HashCache.open(root, enabled=cache), now_ns=now)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the hasher reads (all in this process, so that the spy sees them)."""
    monkeypatch.setattr(hashing, "_can_fork", lambda: False)
    seen: list[str] = []
    real = hashing.hash_file

    def spy(path: str | os.PathLike[str]) -> str:
        seen.append(os.path.basename(path))
        return real(path)
    monkeypatch.setattr(hashing, "hash_file", spy)
    return seen


# ---------------------------------------------------------------------------------- digests

def test_file_digest_is_sha256_of_raw_bytes(tmp_path: Path) -> None:
    # [digest.file], [digest.form]
    make(tmp_path, {"empty": b"", "abc": b"abc", "lf": b"a\nb\n", "crlf": b"a\r\nb\r\n"})
    h = hasher(tmp_path)
    assert h.state("empty").digest == "sha256:" + EMPTY  # type: ignore[union-attr]
    assert h.state("abc").digest == file_digest_of_bytes(b"abc") == (  # type: ignore[union-attr]
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert h.state("lf").digest != h.state("crlf").digest  # type: ignore[union-attr]
    assert h.state("abc").size == 3 and h.state("abc").files is None  # type: ignore[union-attr]
    assert h.state("missing") is None


def test_directory_manifest_byte_for_byte(tmp_path: Path) -> None:
    # [digest.directory]
    make(tmp_path, {"d/b.txt": "b", "d/a/x.sh": "#!/bin/sh\n", "d/B.txt": "B",
                    "d/é.txt": "e", "d/a b.txt": ""})
    (tmp_path / "d" / "empty").mkdir()
    os.chmod(tmp_path / "d/a/x.sh", 0o755)
    sha = {n: hashlib.sha256(c).hexdigest() for n, c in
           [("b", b"b"), ("x", b"#!/bin/sh\n"), ("B", b"B"), ("e", b"e"), ("", b"")]}
    expected = (f"{sha['B']} 1 - B.txt\n"
                f"{sha['']} 0 - a b.txt\n"
                f"{sha['x']} 10 x a/x.sh\n"
                f"{sha['b']} 1 - b.txt\n"
                f"{sha['e']} 1 - é.txt\n").encode()
    state = hasher(tmp_path).state("d/")
    assert state is not None
    assert state.digest == "sha256:" + hashlib.sha256(expected).hexdigest()
    assert (state.size, state.files) == (13, 5)


def test_manifest_sorts_by_utf8_bytes() -> None:
    rows = [("\uffff", EMPTY, 0, False), ("\U00010000", EMPTY, 0, False), ("z", EMPTY, 0, True)]
    assert manifest(rows).split(b"\n")[:3] == [
        f"{EMPTY} 0 x z".encode(), f"{EMPTY} 0 - \uffff".encode(),
        f"{EMPTY} 0 - \U00010000".encode()]


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    state = hasher(tmp_path).state("d/")
    assert state is not None and state.digest == "sha256:" + EMPTY and state.files == 0


def test_symlinks(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # [paths.symlinks]
    make(tmp_path, {"d/real.txt": "r", "target/x": "x"})
    os.symlink(tmp_path / "d" / "real.txt", tmp_path / "d" / "link.txt")
    state = hasher(tmp_path).state("d/")
    assert state is not None and state.files == 2
    os.symlink(tmp_path / "target", tmp_path / "d" / "dirlink")
    with pytest.raises(HashError) as e:
        hasher(tmp_path).state("d/")
    assert e.value.code == "symlink_dir"
    os.remove(tmp_path / "d" / "dirlink")
    outside = tmp_path_factory.mktemp("outside") / "o.txt"
    outside.write_text("o")
    os.symlink(outside, tmp_path / "d" / "out.txt")
    with pytest.raises(HashError) as e:
        hasher(tmp_path).state("d/")
    assert e.value.code == "path_escapes"


@pytest.mark.parametrize("name", [b"line\nbreak", b"bad\xffutf8"])
def test_unrepresentable_names(tmp_path: Path, name: bytes) -> None:
    (tmp_path / "d").mkdir()
    with open(os.path.join(os.fsencode(tmp_path / "d"), name), "wb") as f:
        f.write(b"x")
    with pytest.raises(HashError) as e:
        hasher(tmp_path).state("d/")
    assert e.value.code == "path_unrepresentable"


def test_path_kind_mismatch(tmp_path: Path) -> None:
    make(tmp_path, {"d/x": "x", "f": "f"})
    with pytest.raises(HashError):
        hasher(tmp_path).state("d")
    with pytest.raises(HashError):
        hasher(tmp_path).state("f/")


def test_large_file_streamed(tmp_path: Path) -> None:
    data = os.urandom(1 << 20) * 5
    (tmp_path / "big").write_bytes(data)
    assert hasher(tmp_path).state("big").digest == file_digest_of_bytes(data)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------- the cache

def test_unchanged_files_are_not_read_again(tmp_path: Path, reads: list[str]) -> None:
    make(tmp_path, {"f.txt": "f", **{f"d/{i}.txt": str(i) for i in range(20)}})
    first = hasher(tmp_path)
    a, b = first.state("f.txt"), first.state("d/")
    first.cache.save()
    assert len(reads) == 21
    reads.clear()
    second = hasher(tmp_path)
    assert (second.state("f.txt"), second.state("d/")) == (a, b)
    assert reads == []


def test_one_changed_file_in_a_directory_is_the_only_read(tmp_path: Path,
                                                          reads: list[str]) -> None:
    make(tmp_path, {f"d/{i}.txt": str(i) for i in range(50)})
    h = hasher(tmp_path)
    before = h.state("d/")
    h.cache.save()
    reads.clear()
    (tmp_path / "d" / "7.txt").write_text("seven")
    h = hasher(tmp_path)
    after = h.state("d/")
    h.cache.save()
    assert reads == ["7.txt"]
    assert before != after
    assert after == hasher(tmp_path, cache=False).state("d/")


def test_racy_files_are_read_again(tmp_path: Path, reads: list[str]) -> None:
    make(tmp_path, {"f.txt": "aaaa", "d/x.txt": "x"})
    h = hasher(tmp_path, later=False)  # hashed at once: racy
    h.state("f.txt"), h.state("d/")
    h.cache.save()
    reads.clear()
    h = hasher(tmp_path, later=False)
    h.state("f.txt"), h.state("d/")
    assert sorted(reads) == ["f.txt", "x.txt"]


def test_same_size_edit_with_mtime_restored_is_seen(tmp_path: Path) -> None:
    make(tmp_path, {"f.txt": "aaaa"})
    st = os.stat(tmp_path / "f.txt")
    h = hasher(tmp_path)
    old = h.state("f.txt")
    h.cache.save()
    (tmp_path / "f.txt").write_text("bbbb")
    os.utime(tmp_path / "f.txt", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert hasher(tmp_path).state("f.txt") != old


@pytest.mark.parametrize("garbage", [
    "not json", "[]", '{"format": "other"}',
    '{"format": "reftool-hash-cache", "version": 1, "root": "/elsewhere", "files": {}, '
    '"dirs": {}}',
    '{"format": "reftool-hash-cache", "version": 99, "root": "ROOT", "files": {}, "dirs": {}}',
    '{"format": "reftool-hash-cache", "version": 1, "root": "ROOT", "files": {"f.txt": [1]}, '
    '"dirs": {}}',
])
def test_corrupt_or_foreign_cache_is_discarded(tmp_path: Path, garbage: str) -> None:
    make(tmp_path, {"f.txt": "real"})
    folder = tmp_path / ".reftool" / "hashcache"
    folder.mkdir(parents=True)
    (folder / "index.json").write_text(garbage.replace("ROOT", os.path.realpath(tmp_path)))
    assert hasher(tmp_path).state("f.txt").digest == file_digest_of_bytes(b"real")  # type: ignore[union-attr]


def test_lying_cache_entry_for_another_stat_is_not_trusted(tmp_path: Path) -> None:
    make(tmp_path, {"f.txt": "real"})
    h = hasher(tmp_path)
    h.state("f.txt")
    h.cache.save()
    index = tmp_path / ".reftool" / "hashcache" / "index.json"
    data = json.loads(index.read_text())
    data["files"]["f.txt"][5] = "0" * 64  # a forged digest for the same stat is trusted...
    data["files"]["f.txt"][0] += 1  # ...but not once the stat differs
    index.write_text(json.dumps(data))
    assert hasher(tmp_path).state("f.txt").digest == file_digest_of_bytes(b"real")  # type: ignore[union-attr]


def test_deleting_the_cache_changes_nothing(tmp_path: Path) -> None:
    make(tmp_path, {"f.txt": "f", "d/a": "a", "d/b/c": "c"})
    h = hasher(tmp_path)
    first = (h.state("f.txt"), h.state("d/"))
    h.cache.save()
    import shutil
    shutil.rmtree(tmp_path / ".reftool")
    h = hasher(tmp_path)
    assert (h.state("f.txt"), h.state("d/")) == first


def test_cache_folder_ignores_itself(tmp_path: Path) -> None:
    make(tmp_path, {"f.txt": "f"})
    h = hasher(tmp_path)
    h.state("f.txt")
    h.cache.save()
    assert (tmp_path / ".reftool" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    make(tmp_path, {"f.txt": "f"})
    (tmp_path / ".reftool").write_text("a file where the folder should be")
    h = hasher(tmp_path)
    assert h.state("f.txt") is not None
    h.cache.save()


# ---------------------------------------------------------------------------------- progress

def test_progress_after_a_second(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    clock = [100.0]
    monkeypatch.setattr(hashing.time, "monotonic", lambda: clock[0])
    p = Progress()
    p.expect(3, 3_000_000)
    p.advance(1_000_000)
    assert capsys.readouterr().err == ""  # fast: silent
    clock[0] += 1.5
    p.advance(1_000_000)
    p.advance(1_000_000)
    p.done()
    err = capsys.readouterr().err
    assert "hashing: 2/3 files, 2.0 MB/3.0 MB" in err
    assert err.rstrip().endswith("hashing: 3/3 files, 3.0 MB/3.0 MB")


def test_progress_disabled(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    clock = [0.0]
    monkeypatch.setattr(hashing.time, "monotonic", lambda: clock[0])
    p = Progress(enabled=False)
    p.expect(1, 1)
    clock[0] = 5
    p.advance(1)
    p.done()
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------- parts

TREE = {f"d/{s}/{i}.txt": f"{s}{i}" for s in ("a", "b", "c c", "é") for i in range(30)} | {
    "d/top.txt": "t", "d/b.txt": "between", "d/a-b/x": "x", "d/z/deep/er/f": "f"}


def _steps(tmp_path: Path) -> list[tuple[Callable[[], None], list[str]]]:
    return [
        (lambda: (tmp_path / "d/b/7.txt").write_text("changed"), ["7.txt"]),
        (lambda: (tmp_path / "d/top.txt").write_text("top!"), ["top.txt"]),
        (lambda: make(tmp_path, {"d/new/n.txt": "n"}), ["n.txt"]),
        (lambda: os.remove(tmp_path / "d/c c/3.txt"), []),
        (lambda: __import__("shutil").rmtree(tmp_path / "d/a"), []),
        (lambda: make(tmp_path, {"d/z/deep/er/g": "g"}), ["g"]),
    ]


def test_parts_walked_and_hashed_by_two_processes(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "PARALLEL_WALK_FILES", 0)
    monkeypatch.setattr(hashing, "PARALLEL_PARTS_FILES", 0)
    make(tmp_path, TREE)
    h = hasher(tmp_path)
    previous = h.state("d/")
    h.cache.save()
    assert previous == hasher(tmp_path, cache=False).state("d/")
    for change, _ in _steps(tmp_path):
        change()
        h = hasher(tmp_path)
        state = h.state("d/")
        h.cache.save()
        assert state != previous
        assert state == hasher(tmp_path, cache=False).state("d/")
        previous = state


def test_changes_in_parts_read_only_the_changed_files(tmp_path: Path,
                                                      reads: list[str]) -> None:
    make(tmp_path, TREE)
    h = hasher(tmp_path)
    first = h.state("d/")
    h.cache.save()
    assert first == hasher(tmp_path, cache=False).state("d/")
    previous = first
    for change, expected in _steps(tmp_path):
        change()
        reads.clear()
        h = hasher(tmp_path)
        state = h.state("d/")
        h.cache.save()
        assert sorted(reads) == expected
        assert state != previous
        assert state == hasher(tmp_path, cache=False).state("d/")
        previous = state
    reads.clear()
    assert hasher(tmp_path).state("d/") == previous and reads == []


def test_a_racy_file_rereads_only_its_part(tmp_path: Path, reads: list[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "RACY_WINDOW_NS", 200_000_000)  # 0.2 s
    make(tmp_path, TREE)
    time.sleep(0.4)
    h = hasher(tmp_path, later=False)
    h.state("d/")
    h.cache.save()
    (tmp_path / "d/b/7.txt").write_text("racy")
    h = hasher(tmp_path, later=False)  # hashed at once: that file is racy, no other
    h.state("d/")
    h.cache.save()
    reads.clear()
    h = hasher(tmp_path, later=False)
    h.state("d/")
    assert reads == ["7.txt"]


def test_a_corrupt_part_is_not_trusted(tmp_path: Path) -> None:
    make(tmp_path, TREE)
    h = hasher(tmp_path)
    good = h.state("d/")
    h.cache.save()
    index = tmp_path / ".reftool/hashcache/index.json"
    data = json.loads(index.read_text())
    data["dirs"] = {}  # force the part path
    index.write_text(json.dumps(data))
    for frag in (tmp_path / ".reftool/hashcache/parts").glob("*.frag"):
        frag.write_bytes(b"garbage")
    assert hasher(tmp_path).state("d/") == good


# ---------------------------------------------------------------------------------- issue 18

def _files_in_one_folder(root: Path, count: int) -> list[str]:
    (root / "out").mkdir(parents=True)
    for i in range(count):
        (root / "out" / f"f{i}.txt").write_text(f"{i}\n")
    return [f"out/f{i}.txt" for i in range(count)]


def test_one_stat_call_per_file_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file dep costs one lstat; its folder's real path is found once (issue 18: it was
    lexists + realpath + stat, about 8 calls a path)."""
    root = tmp_path / "p"
    paths = _files_in_one_folder(root, 50)
    cache = hashing.HashCache(None, str(root))
    later = time.time_ns() + 10**10  # past the racy window: the digests are kept
    for p in paths:  # hashed once; the no-op plan that follows only checks their stats
        hashing.Hasher(root, cache, now_ns=later).state(p)
    hasher = hashing.Hasher(root, cache, now_ns=later)
    calls = {"lstat": 0, "stat": 0, "realpath": 0}
    for name in calls:
        real = getattr(os, name) if name != "realpath" else os.path.realpath

        def counting(*a: object, _real: Callable[..., object] = real, _name: str = name,
                     **kw: object) -> object:
            calls[_name] += 1
            return _real(*a, **kw)
        monkeypatch.setattr(os.path if name == "realpath" else os, name, counting)
    for p in paths:
        assert hasher.state(p) is not None
    monkeypatch.undo()
    assert calls["realpath"] <= 2
    # one lstat a path, plus those realpath makes for the folder's components once (it was
    # about 8 calls a path before issue 18)
    assert calls["lstat"] + calls["stat"] <= len(paths) + 20


def test_folder_turned_link_after_a_stage_wrote_is_refused(tmp_path: Path) -> None:
    """[paths.symlinks]: the folder real paths known are dropped when a stage writes, so a
    folder a stage replaced by a link out of the project is seen."""
    root = tmp_path / "p"
    _files_in_one_folder(root, 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f0.txt").write_text("elsewhere\n")
    hasher = hashing.Hasher(root, hashing.HashCache(None, str(root)))
    assert hasher.state("out/f0.txt") is not None
    (root / "out" / "f0.txt").unlink()
    (root / "out").rmdir()
    (root / "out").symlink_to(outside)
    hasher.forget("out/f0.txt")  # what the runner does after a stage
    with pytest.raises(hashing.HashError):
        hasher.state("out/f0.txt")


def test_no_worker_process_is_forked_while_another_thread_runs() -> None:
    """A thread may hold a lock at the moment of a fork, and the child would wait on it
    forever: `run` hashes directories while stage threads finish (a run hung so, about one in
    ten, before this rule)."""
    import threading

    from reftool.pipeline.hashing import _can_fork
    assert _can_fork()
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert not _can_fork()
    finally:
        release.set()
        other.join()
    assert _can_fork()


def _term_handler_here(_: object) -> str:
    import signal
    return repr(signal.getsignal(signal.SIGTERM))


def test_a_worker_ends_on_the_sigterm_that_terminates_its_pool() -> None:
    """Forked workers inherit the parent's handlers: `run` prints "interrupted" on SIGTERM
    and carries on, so a worker kept it would outlive Pool.terminate() and the pool would
    wait for it forever (a run hung so)."""
    import multiprocessing
    import signal

    from reftool.pipeline.hashing import _worker_start
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # as a run installs
    try:
        with multiprocessing.get_context("fork").Pool(1, _worker_start) as pool:
            assert pool.map(_term_handler_here, [0]) == [repr(signal.SIG_DFL)]
        with multiprocessing.get_context("fork").Pool(1) as pool:  # the check can fail
            assert pool.map(_term_handler_here, [0]) != [repr(signal.SIG_DFL)]
    finally:
        signal.signal(signal.SIGTERM, previous)
