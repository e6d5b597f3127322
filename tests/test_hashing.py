"""Digests (SPEC section 8) and the hash cache: only changed files are read, racy files are
re-read, a corrupt or foreign cache is discarded, and the cache never changes a decision."""

from __future__ import annotations

import hashlib
import json
import os
import struct
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

    def spy(path: str | os.PathLike[str], *, checked: bool = False) -> str:
        seen.append(os.path.basename(path))
        return real(path, checked=checked)
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


def _handlers_here(_: object) -> tuple[str, str]:
    import signal
    return repr(signal.getsignal(signal.SIGTERM)), repr(signal.getsignal(signal.SIGINT))


def test_a_worker_leaves_ctrl_c_to_the_tool() -> None:
    """Ctrl-C reaches every process of the terminal's group: a worker that kept Python's
    handler printed a KeyboardInterrupt traceback of its own beside the tool's "interrupted"."""
    import multiprocessing
    import signal

    with hashing._fork_pool(1) as pool:
        assert pool.map(_handlers_here, [0]) == [(repr(signal.SIG_DFL), repr(signal.SIG_IGN))]
    with multiprocessing.get_context("fork").Pool(1) as pool:  # the check can fail
        assert pool.map(_handlers_here, [0])[0][1] != repr(signal.SIG_IGN)


# ---------------------------------------------------------------------------------- flat folders

def reference_digest(folder: Path, excluded: Callable[[str, bool], bool] | None = None) -> str:
    """[digest.directory] by the book: a plain walk, every file read, `manifest` sorts."""
    rows = []
    for dirpath, dirnames, filenames in os.walk(folder):
        rel_dir = os.path.relpath(dirpath, folder)
        pre = "" if rel_dir == "." else rel_dir + "/"
        if excluded is not None:
            dirnames[:] = [d for d in dirnames if not excluded(hashing._nfc(pre + d), True)]
        for name in filenames:
            rel = hashing._nfc(pre + name)
            full = os.path.join(dirpath, name)
            if (excluded is not None and excluded(rel, False)) or not os.path.exists(full):
                continue  # left out, or a dangling link
            data = Path(full).read_bytes()
            rows.append((rel, hashlib.sha256(data).hexdigest(), len(data),
                         bool(os.stat(full).st_mode & 0o100)))
    return hashing.directory_digest_of_manifest(manifest(rows))


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of about 8 files and at most 32: a few hundred files make many of them."""
    monkeypatch.setattr(hashing, "CHUNK_FILES", 8)
    monkeypatch.setattr(hashing, "CHUNK_MAX", 32)


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(part, files) of every part of a directory rebuilt and written to the part store."""
    parts: list[tuple[str, int]] = []
    real = hashing.PartStore.write

    def spy(self: hashing.PartStore, path: str, part: str, *args: object, **kw: object) -> None:
        parts.append((part, args[-2]))  # type: ignore[arg-type]
        real(self, path, part, *args, **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(hashing.PartStore, "write", spy)
    return parts


def flat(root: Path, count: int, folder: str = "d") -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / folder / f"f{i:04d}.txt").write_text(f"{i}\n")


def chunk_ender(taken: set[str], prefix: str = "new", ends: bool = True) -> str:
    """A file name that ends a chunk (or, with `ends` False, one that does not)."""
    i = 0
    while True:
        name = f"{prefix}{i}.txt"
        if name not in taken and hashing._ends_chunk(name.encode()) == ends:
            return name
        i += 1


def saved_state(root: Path, path: str = "d/", prefetch: bool = False) -> object:
    h = hasher(root)
    if prefetch:
        h.prefetch()
    try:
        state = h.state(path)
    finally:
        h.close()
    h.cache.save()
    return state


def test_chunks_depend_only_on_the_names(small_chunks: None) -> None:
    names = sorted(f"n{i:05d}" for i in range(1000))

    def chunks(ns: list[str]) -> list[tuple[str, tuple[str, ...]]]:
        return hashing._chunks([n.encode() for n in ns], ns)
    before = chunks(names)
    assert [n for _, c in before for n in c] == names
    assert 60 < len(before) < 250 and before[-1][0] == ""  # about 1,000 / 8
    assert all(0 < len(c) <= 32 for k, c in before if k)
    assert all(k == "/" + c[-1] for k, c in before if k)
    # one name added in a chunk, or one removed, changes that chunk and no other
    k, c = next((k, c) for k, c in before[1:] if k and 3 <= len(c) < 30)
    plain = chunk_ender(set(names), c[1] + "x", ends=False)  # sorts right after c[1]
    after = chunks(sorted(names + [plain]))
    assert set(before) - set(after) == {(k, c)} and len(set(after) - set(before)) == 1
    after = chunks([n for n in names if n != c[1]])
    assert set(before) - set(after) == {(k, c)} and len(set(after) - set(before)) == 1
    # a name that ends a chunk splits it in two; removing one joins two
    ender = chunk_ender(set(names), c[1] + "x")
    after = chunks(sorted(names + [ender]))
    assert set(before) - set(after) == {(k, c)} and set(after) - set(before) == {
        ("/" + ender, c[:2] + (ender,)), (k, c[2:])}
    i = before.index((k, c))
    after = chunks([n for n in names if n != c[-1]])
    assert set(before) - set(after) == {(k, c), before[i + 1]}
    assert set(after) - set(before) == {(before[i + 1][0], c[:-1] + before[i + 1][1])}
    # names that never end a chunk are cut every CHUNK_MAX files, still by name
    never = sorted({chunk_ender(set(), f"z{i}-", ends=False) for i in range(200)})
    capped = chunks(never)
    assert [len(c) for _, c in capped] == [32] * 6 + [8]
    assert [k for k, _ in capped] == ["/" + never[i] for i in range(31, 192, 32)] + [""]
    # few files: one part, as before chunks
    assert chunks(names[:32]) == [("", tuple(names[:32]))]


FLAT_MODES = ["serial", "parallel", "prefetch"]


@pytest.mark.parametrize("mode", FLAT_MODES)
def test_flat_directory_digest_is_the_manifest_one_through_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_chunks: None, mode: str) -> None:
    if mode == "serial":
        monkeypatch.setattr(hashing, "_can_fork", lambda: False)
    else:  # walked, stat-ed and rebuilt in worker processes
        monkeypatch.setattr(hashing, "PARALLEL_WALK_FILES", 0)
        monkeypatch.setattr(hashing, "PARALLEL_PARTS_FILES", 0)
    flat(tmp_path, 300)
    d = tmp_path / "d"
    names = sorted(p.name for p in d.iterdir())
    enders = hashing._list_top(str(d), "d/").boundaries()
    assert len(enders) > 10
    steps: list[Callable[[], object]] = [
        lambda: (d / names[0]).write_text("first!"),
        lambda: (d / names[-1]).write_text("last!"),
        lambda: (d / names[150]).write_text("middle"),
        lambda: (d / enders[3]).write_text("an ender"),
        lambda: (d / chunk_ender(set(names), ends=False)).write_text("new"),
        lambda: (d / chunk_ender(set(names))).write_text("new, ends a chunk"),
        lambda: os.remove(d / enders[4]),
        lambda: os.remove(d / names[0]),
        lambda: os.remove(d / names[-1]),
        lambda: os.chmod(d / names[7], 0o755),
        lambda: make(tmp_path, {"d/sub/x.txt": "x"}),
        lambda: [os.remove(d / n) for n in names[100:140]],
    ]
    previous = saved_state(tmp_path, prefetch=mode == "prefetch")
    assert previous.digest == reference_digest(d)  # type: ignore[attr-defined]
    for change in steps:
        change()
        state = saved_state(tmp_path, prefetch=mode == "prefetch")
        assert state != previous
        assert state.digest == reference_digest(d)  # type: ignore[attr-defined]
        assert state == hasher(tmp_path, cache=False).state("d/")
        assert saved_state(tmp_path, prefetch=mode == "prefetch") == state  # the no-op
        previous = state


def test_flat_files_and_subdirectories_interleave(tmp_path: Path, reads: list[str],
                                                  small_chunks: None) -> None:
    # "a.NNN" < "a/" < "a0NN" in UTF-8 bytes: the subdirectory's block sorts inside the files
    files = {f"d/a.{i:03d}": f"{i}" for i in range(60)} | {
        f"d/a0{i:02d}": f"{i}" for i in range(60)} | {
        "d/a-": "-", "d/a b": " ", "d/a~": "~", "d/a!": "!", "d/a.txt": "t",
        "d/a/x": "ax", "d/a/y/z": "ayz", "d/a.5/in": "in", "d/b c/q": "q"}
    make(tmp_path, files)
    d = tmp_path / "d"
    listing = hashing._list_top(str(d), "d/")
    assert any(c[0] < "a/" < c[-1] for _, c in listing.chunks if c)  # split around a/
    assert saved_state(tmp_path).digest == reference_digest(d)  # type: ignore[attr-defined]
    for rel in ("d/a/x", "d/a.059", "d/a000", "d/a/y/z", "d/a.5/in", "d/a~"):
        (tmp_path / rel).write_text("changed " + rel)
        reads.clear()
        state = saved_state(tmp_path)
        assert reads == [rel.rsplit("/", 1)[1]]
        assert state.digest == reference_digest(d)  # type: ignore[attr-defined]
    (tmp_path / "d/a.txt").unlink()
    make(tmp_path, {"d/a.txt/now/a/folder": "f"})
    assert saved_state(tmp_path).digest == reference_digest(d)  # type: ignore[attr-defined]


@pytest.mark.parametrize("subdir", [False, True])
def test_flat_non_ascii_names_nfc_and_nfd(tmp_path: Path, small_chunks: None,
                                          subdir: bool) -> None:
    """NFD names sort by their NFC bytes (after "z"), not where the folder lists them."""
    import unicodedata
    names = [f"caf\u00e9{i}" for i in range(40)]  # NFC
    names += [unicodedata.normalize("NFD", f"\u00e9t\u00e9{i}") for i in range(40)]  # NFD
    names += [f"\U0001f600{i}" for i in range(40)] + [f"z{i}" for i in range(40)]
    make(tmp_path, {f"d/{n}": n for n in names} | ({"d/\u00e9/x": "x"} if subdir else {}))
    d = tmp_path / "d"
    assert saved_state(tmp_path).digest == reference_digest(d)  # type: ignore[attr-defined]
    (d / names[45]).write_text("edited NFD")
    (d / names[90]).unlink()
    state = saved_state(tmp_path)
    assert state.digest == reference_digest(d)  # type: ignore[attr-defined]
    assert state == hasher(tmp_path, cache=False).state("d/")
    (d / unicodedata.normalize("NFC", names[50])).write_text("a twin")  # NFC of an NFD name
    with pytest.raises(HashError) as e:
        saved_state(tmp_path)
    assert e.value.code == "path_unrepresentable"


def test_one_edit_in_a_large_flat_folder_rewalks_one_chunk(
        tmp_path: Path, reads: list[str], written: list[tuple[str, int]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18: a 1-byte edit in a flat folder of 5,000 files re-reads that file, and walks
    and rewrites its chunk of about CHUNK_FILES files, not all 5,000 (one part, before)."""
    flat(tmp_path, 5000)
    first = saved_state(tmp_path)
    assert first.digest == reference_digest(tmp_path / "d")  # type: ignore[attr-defined]
    assert len(written) > 2 and sum(n for _, n in written) == 5000
    written.clear()
    reads.clear()
    stats = [0]
    for name in ("stat", "lstat"):
        real = getattr(os, name)

        def counting(*a: object, _real: Callable[..., object] = real, **kw: object) -> object:
            stats[0] += 1
            return _real(*a, **kw)
        monkeypatch.setattr(os, name, counting)
    assert saved_state(tmp_path) == first
    assert reads == [] and written == [] and stats[0] <= 5000 + 20  # one stat a file
    with open(tmp_path / "d" / "f1234.txt", "ab") as f:
        f.write(b"x")
    state = saved_state(tmp_path)
    assert reads == ["f1234.txt"]
    assert len(written) == 1 and written[0][1] <= hashing.CHUNK_MAX
    assert state.digest == reference_digest(tmp_path / "d")  # type: ignore[attr-defined]


def test_a_chunk_split_or_joined_reads_no_unchanged_file(
        tmp_path: Path, reads: list[str], written: list[tuple[str, int]],
        small_chunks: None) -> None:
    """A chunk's files may be in the rows of another chunk of the last walk: those of the
    chunks that overlap it are looked up, so no unchanged file is read again."""
    flat(tmp_path, 300)
    d = tmp_path / "d"
    saved_state(tmp_path)
    chunks = hashing._list_top(str(d), "d/").chunks
    i = next(i for i, (k, c) in enumerate(chunks[:-2])
             if len(c) >= 3 and 3 <= len(chunks[i + 1][1]) and len(c) + len(chunks[i + 1][1]) < 32)
    reads.clear()
    written.clear()
    os.remove(d / chunks[i][1][-1])  # two chunks become one
    assert saved_state(tmp_path).digest == reference_digest(d)  # type: ignore[attr-defined]
    assert reads == [] and written == [(chunks[i + 1][0], len(chunks[i][1]) + len(chunks[i + 1][1]) - 1)]
    written.clear()
    c = chunks[i + 1][1]
    # one chunk becomes two: the joined one, cut after the new name (right after c[1])
    new = chunk_ender({p.name for p in d.iterdir()}, c[1].removesuffix(".txt") + "x")
    (d / new).write_text("ends a chunk")
    assert saved_state(tmp_path).digest == reference_digest(d)  # type: ignore[attr-defined]
    assert reads == [new]
    assert sorted(written) == sorted([("/" + new, len(chunks[i][1]) - 1 + 3),
                                      (chunks[i + 1][0], len(c) - 2)])


def test_a_racy_file_in_a_flat_folder_is_never_trusted(
        tmp_path: Path, reads: list[str], monkeypatch: pytest.MonkeyPatch,
        small_chunks: None) -> None:
    monkeypatch.setattr(hashing, "RACY_WINDOW_NS", 200_000_000)  # 0.2 s
    flat(tmp_path, 300)
    time.sleep(0.4)
    h = hasher(tmp_path, later=False)
    h.state("d/")
    h.cache.save()
    (tmp_path / "d/f0123.txt").write_text("racy")
    for _ in range(2):  # hashed at once: racy each time, so read each time
        reads.clear()
        h = hasher(tmp_path, later=False)
        state = h.state("d/")
        h.cache.save()
        assert reads == ["f0123.txt"]
        assert state.digest == reference_digest(tmp_path / "d")  # type: ignore[attr-defined]
    time.sleep(0.4)  # no longer racy: read once more, then trusted
    reads.clear()
    saved_state(tmp_path)
    assert reads == ["f0123.txt"]
    reads.clear()
    saved_state(tmp_path)
    assert reads == []


def test_flat_folder_under_rules(tmp_path: Path, reads: list[str], small_chunks: None) -> None:
    from reftool.files.ignore import rules_for
    flat(tmp_path, 200)
    make(tmp_path, {**{f"d/x{i}.log": "log" for i in range(50)}, "d/cache/c": "c",
                    "d/keep/k.log": "k"})
    rules = rules_for("d/", (), ("*.log", "cache/", "!keep/k.log"))
    assert rules is not None

    def out(rel: str, is_dir: bool) -> bool:
        return rules.excluded(rel, is_dir)  # type: ignore[union-attr]
    h = hasher(tmp_path)
    state = h.state("d/", rules)
    h.cache.save()
    assert state.digest == reference_digest(tmp_path / "d", out)  # type: ignore[union-attr]
    assert state.files == 201  # type: ignore[union-attr]
    (tmp_path / "d/x7.log").write_text("excluded: changes nothing")
    reads.clear()
    h = hasher(tmp_path)
    assert h.state("d/", rules) == state and reads == []
    (tmp_path / "d/f0042.txt").write_text("included")
    h = hasher(tmp_path)
    changed = h.state("d/", rules)
    assert reads == ["f0042.txt"]
    assert changed.digest == reference_digest(tmp_path / "d", out)  # type: ignore[union-attr]


def test_flat_folder_links_and_special_files(tmp_path: Path, small_chunks: None,
                                             reads: list[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real = hashing._build_part

    def spy(job: hashing._PartJob) -> hashing._PartResult:
        built.append(job.part)
        return real(job)
    monkeypatch.setattr(hashing, "_build_part", spy)
    flat(tmp_path, 200)
    d = tmp_path / "d"
    make(tmp_path, {"target/t": "t"})
    os.symlink(d / "f0003.txt", d / "link.txt")
    os.symlink(d / "nowhere", d / "dangling")
    state = saved_state(tmp_path)
    assert state.digest == reference_digest(d) and state.files == 201  # type: ignore[attr-defined]
    built.clear()
    reads.clear()
    assert saved_state(tmp_path) == state  # a link's stat is its target's: nothing changed
    assert built == [] and reads == []
    (d / "f0003.txt").write_text("seen through the link too")
    assert saved_state(tmp_path).digest == reference_digest(d)  # type: ignore[attr-defined]
    os.symlink(tmp_path / "target", d / "dirlink")
    with pytest.raises(HashError) as e:
        saved_state(tmp_path)
    assert e.value.code == "symlink_dir"
    os.remove(d / "dirlink")
    if hasattr(os, "mkfifo"):
        os.mkfifo(d / "f0100.fifo")
        with pytest.raises(HashError) as e:  # refused by the stat walk of a cached folder
            saved_state(tmp_path)
        assert e.value.code == "not_a_file"


#: mtimes (ns) at and past the edges of the packed stat's 64 bits: before 1970, the largest
#: signed and unsigned values, 2**64 itself (2554-07-21), and zero
_EDGE_MTIMES = [-1, -(10 ** 18), 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64 + 5, 0]


def _store_files(root: Path) -> dict[str, int]:
    """The hash cache's files and their inodes: a part built again is written anew."""
    cache = root / ".reftool" / "hashcache"
    return {str(p.relative_to(cache)): p.stat().st_ino for p in cache.rglob("*") if p.is_file()}


@pytest.mark.parametrize("parallel", [False, True], ids=["one process", "two workers"])
def test_stat_digest_of_a_no_op_walk_is_the_one_a_build_gave(
        tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch,
        parallel: bool) -> None:
    """Issue 18: the stat digest of a part is computed twice, by the walk that builds a part
    and by the no-op walk that only checks it. They must agree on every kind of entry
    (files, links, subfolders, chunks) and every mtime the system may give, else a no-op
    plan rebuilds parts (or, worse, a changed part looks unchanged)."""
    if parallel:
        monkeypatch.setattr(hashing, "PARALLEL_WALK_FILES", 0)
        monkeypatch.setattr(hashing, "PARALLEL_PARTS_FILES", 0)
    else:
        monkeypatch.setattr(hashing, "_can_fork", lambda: False)
    flat(tmp_path, 120)
    make(tmp_path, {"d/sub/a.txt": "a", "d/sub/deeper/b.txt": "b"})
    os.symlink(tmp_path / "d/f0003.txt", tmp_path / "d/link.txt")
    os.symlink(tmp_path / "d/sub/a.txt", tmp_path / "d/sub/link-a")
    edges: list[str] = []
    for i, ns in enumerate(_EDGE_MTIMES):
        name = f"d/f{i * 17:04d}.txt" if i % 2 else f"d/sub/deeper/e{i}.txt"
        make(tmp_path, {name: f"edge {i}"})
        try:
            os.utime(tmp_path / name, ns=(0, ns))
        except (OSError, OverflowError, ValueError):
            continue  # out of what this file system or platform keeps
        edges.append(name)
    assert len(edges) >= 3, edges  # at least the ones before 1970 and 0
    d, real_root = str(tmp_path / "d"), os.path.realpath(tmp_path)
    names = tuple(sorted(n for n in os.listdir(d) if n != "sub"))
    found = hashing._scan_names(d, names, "d/", real_root)
    assert hashing._names_signature(d, names, "d/", real_root) == hashing._stat_digest(
        [f[0] for f in found], [hashing._packed(f[3]) for f in found])
    found = hashing._scan(d + "/sub", "sub/", "d/", real_root)
    assert hashing._scan_signature((d + "/sub", "sub/", "d/", real_root, None)) == \
        hashing._stat_digest([f[0] for f in found], [hashing._packed(f[3]) for f in found])
    first = saved_state(tmp_path, prefetch=parallel)
    assert first.digest == reference_digest(tmp_path / "d")  # type: ignore[attr-defined]
    for name in edges:  # a file modified "in the future" is racy: its part is never
        os.utime(tmp_path / name, ns=(0, -5))  # cached; from here all are in the past
    first = saved_state(tmp_path, prefetch=parallel)
    stored = _store_files(tmp_path)
    assert len(stored) > 4  # the index, several chunks and the subfolder
    assert saved_state(tmp_path, prefetch=parallel) == first
    # each part's no-op stat digest equals the one its build recorded: none is built again
    assert {k: v for k, v in _store_files(tmp_path).items() if "index" not in k} == {
        k: v for k, v in stored.items() if "index" not in k}
    for name in edges:  # and each of those stats, changed, is seen
        os.utime(tmp_path / name, ns=(0, 1_000_000_000))
        before = _store_files(tmp_path)
        assert saved_state(tmp_path, prefetch=parallel) == first  # same content...
        rebuilt = {k for k, v in _store_files(tmp_path).items() if before.get(k) != v}
        assert rebuilt - {k for k in rebuilt if "index" in k}, name  # ... its part walked


def test_prefetch_lists_without_types_and_again_when_a_folder_is_there(
        tmp_path: Path, small_chunks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18: the prefetch lists a large folder as if every entry were a file. Its answer
    is used as is when the workers found only files, and the folder is listed again, with
    types, when they found a subfolder, one there before or one made since the last plan."""
    monkeypatch.setattr(hashing, "PARALLEL_WALK_FILES", 0)
    listed: list[bool] = []
    real = hashing._list_top

    def spy(top: str, path: str, rules: object = None, typed: bool = True) -> object:
        listed.append(typed)
        return real(top, path, rules, typed)  # type: ignore[arg-type]
    monkeypatch.setattr(hashing, "_list_top", spy)
    flat(tmp_path, 150)
    first = saved_state(tmp_path, prefetch=True)
    assert listed == [True]  # nothing cached yet: no prefetch
    listed.clear()
    assert saved_state(tmp_path, prefetch=True) == first and listed == [False]
    for made in ({"d/sub/a.txt": "a"}, {"d/sub/b/c.txt": "c"}):
        make(tmp_path, made)
        listed.clear()
        state = saved_state(tmp_path, prefetch=True)
        assert state.digest == reference_digest(tmp_path / "d")  # type: ignore[attr-defined]
        assert listed == [False, True]  # the names held a folder: listed again
    listed.clear()
    assert saved_state(tmp_path, prefetch=True) == state and listed == [False, True]


def test_packed_stat_keeps_every_value_the_system_gives() -> None:
    """The packed stat is 5 unsigned 64-bit values; a value outside (a negative mtime, or
    one past 2554) is kept modulo 2**64 rather than failing the walk."""
    base = os.stat(".")
    for ns in _EDGE_MTIMES:
        st = os.stat_result(tuple(base)[:7] + (0, 0, 0) + (0.0, 0.0, 0.0)
                            + (0, ns, 5))  # type: ignore[arg-type]
        packed = hashing._packed(st)
        assert len(packed) == 40
        assert struct.unpack("<5Q", packed)[1] == ns % 2 ** 64
    names = [[b"ab"], [b"a", b"b"], [b"a"], []]  # stats all zero: the names alone differ
    digests = {hashing._stat_digest(n, [b"\0" * 40] * len(n)) for n in names}
    assert len(digests) == 4


def test_a_cache_of_the_previous_version_is_not_trusted(tmp_path: Path) -> None:
    flat(tmp_path, 10)
    saved_state(tmp_path)
    index = tmp_path / ".reftool/hashcache/index.json"
    data = json.loads(index.read_text())
    assert data["version"] == hashing.CACHE_VERSION > 1
    data["version"] = 1
    data["dirs"]["d/"] = [data["dirs"]["d/"][0], "sha256:" + "0" * 64, 0, 0]  # its 4 columns
    index.write_text(json.dumps(data))
    assert saved_state(tmp_path).digest == reference_digest(tmp_path / "d")  # type: ignore[attr-defined]


def test_forget_then_state_sees_a_flat_folder_again(tmp_path: Path, small_chunks: None) -> None:
    flat(tmp_path, 100)
    h = hasher(tmp_path)
    before = h.state("d/")
    (tmp_path / "d/f0050.txt").write_text("a stage wrote it")
    assert h.state("d/") == before  # known
    assert h.forget("d/") == (True, before)
    assert h.state("d/").digest == reference_digest(tmp_path / "d")  # type: ignore[union-attr]


def _on_term(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def test_hashing_workers_die_at_sigterm() -> None:
    """reftool makes SIGTERM a KeyboardInterrupt (reftool/__main__.py). Its hashing workers
    must not inherit that: a worker that took the signal just before blocking on the pool's
    lock never ran the handler, and Pool.terminate waited for it forever (1 plan in 40 hung)."""
    if not hashing._can_fork():
        pytest.skip("no fork on this platform")
    import signal
    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        pool = hashing._fork_pool(2)
        try:
            assert pool.apply(signal.getsignal, (signal.SIGTERM,)) == signal.SIG_DFL
            assert signal.SIGTERM not in pool.apply(signal.pthread_sigmask,
                                                    (signal.SIG_BLOCK, []))
        finally:
            pool.terminate()
        assert signal.getsignal(signal.SIGTERM) is _on_term  # the tool keeps its own
        assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_forget_drops_what_prefetch_walked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           small_chunks: None) -> None:
    monkeypatch.setattr(hashing, "PARALLEL_WALK_FILES", 0)
    flat(tmp_path, 200)
    saved_state(tmp_path)
    h = hasher(tmp_path)
    h.prefetch()
    try:
        for _, result in h._prefetched["d/"][1]:
            result.wait()  # walked
        (tmp_path / "d/f0100.txt").write_text("written after the walk")
        h.forget("d/")
        assert h.state("d/").digest == reference_digest(tmp_path / "d")  # type: ignore[union-attr]
    finally:
        h.close()


@pytest.mark.parametrize("size", [0, 1, 5, (1 << 16) - 1, 1 << 16, (1 << 16) + 1,
                                  hashing._SMALL - 1, hashing._SMALL, hashing._SMALL + 1,
                                  3 * hashing._SMALL + 7])
@pytest.mark.parametrize("checked", [False, True])
def test_hash_file_is_sha256_of_every_byte(tmp_path: Path, size: int, checked: bool) -> None:
    # SPEC [digest.file]: small files read at once (and a read that finds the end), large
    # ones streamed; the same digest either way, and about the bounds between them
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    assert hashing.hash_file(tmp_path / "f", checked=checked) == hashlib.sha256(data).hexdigest()


def test_hash_file_reads_what_a_file_grew_by(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # a file that grows between its stat and its read is hashed to its end, streaming once
    # it is past the one-read size
    p = tmp_path / "f"
    p.write_bytes(b"a" * 10)
    real_fstat = os.fstat

    def stale(fd: int) -> os.stat_result:  # the size the file had before it grew
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid,
                               st.st_gid, 3, st.st_atime, st.st_mtime, st.st_ctime))
    monkeypatch.setattr(hashing, "_SMALL", 16)
    import reftool.files.safe_io as safe_io
    monkeypatch.setattr(safe_io.os, "fstat", stale)
    assert hashing.hash_file(p) == hashlib.sha256(b"a" * 10).hexdigest()
    p.write_bytes(b"b" * 100)
    assert hashing.hash_file(p) == hashlib.sha256(b"b" * 100).hexdigest()


@pytest.mark.parametrize("checked", [False, True])
def test_hash_file_refuses_a_fifo_at_once(tmp_path: Path, checked: bool) -> None:
    # SPEC [security.special-files]: a FIFO where a file was (found regular by the caller's
    # stat, then swapped) is refused, never waited on
    os.mkfifo(tmp_path / "f")
    with pytest.raises(OSError, match="FIFO"):
        hashing.hash_file(tmp_path / "f", checked=checked)
