"""`import-dvc` on real dvc.yaml files (tests/data/dvc-corpus, each with its ORIGIN): every file
converts to a pipeline that validates, or is refused with reasons; no stage is lost without a
note. With DVC installed (`pip install dvc`, marker `dvc`), each converted stage is compared with
what DVC's own loader expands: stage counts, names, cmd, deps, outs and params.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest

from reftool.cli.integrations import _validate_text
from reftool.files.validate import Report, validate_pipeline
from reftool.integrations.importdvc import URL, Conversion, convert, to_yaml

CORPUS = Path(__file__).parent / "data" / "dvc-corpus"
ENTRIES = sorted(p for p in CORPUS.iterdir() if (p / "ORIGIN").is_file())


def origin(entry: Path) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in (entry / "ORIGIN").read_text().splitlines())


def test_the_corpus_is_there() -> None:
    assert len(ENTRIES) >= 40
    for entry in ENTRIES:
        o = origin(entry)
        assert set(o) == {"repo", "path", "commit"} and len(o["commit"]) == 40
        assert (entry / o["path"]).is_file()


@functools.lru_cache(maxsize=None)
def _convert(entry: Path) -> tuple[Conversion, list[str]]:
    result = convert(entry, [origin(entry)["path"]])
    text = to_yaml(result.pipeline, result.sources)
    return result, ([] if result.refused else _validate_text(entry, text))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda p: p.name)
def test_valid_or_refused_with_reasons(entry: Path) -> None:
    result, errors = _convert(entry)
    assert errors == []  # never an invalid file that would be written
    refused = [n for n in result.notes if n.kind == "refused"]
    if not result.refused:
        assert result.pipeline["stages"], "a valid conversion holds the stages"
    for note in refused:
        assert note.message and note.file == origin(entry)["path"]


def _ours(entry: Path, result: Conversion) -> dict[str, Any]:
    report = Report()
    project = validate_pipeline(entry, "pipeline.yaml", report, with_lock=False,
                                with_metrics=False,
                                text=to_yaml(result.pipeline, result.sources))
    assert project.pipeline is not None
    return dict(project.pipeline.stages)


def _dvc_stages(entry: Path, rel: str) -> dict[str, Any]:
    from dvc.dvcfile import load_file
    from dvc.repo import Repo
    repo = Repo(str(entry), uninitialized=True)
    return dict(load_file(repo, str(entry / rel)).stages)


def _rel(entry: Path, path: str) -> str:
    return os.path.relpath(path, entry).replace(os.sep, "/")


def _dvc_signature(entry: Path, stage: Any) -> tuple[Any, ...]:
    from dvc.dependency.param import ParamsDependency
    cmd = tuple(stage.cmd) if isinstance(stage.cmd, list) else (stage.cmd,)
    deps, params = set(), {}
    for d in stage.deps:
        if isinstance(d, ParamsDependency):
            keys = d.params if d.params else ["*"]
            params.setdefault(_rel(entry, d.fs_path), set()).update(
                "*" if k == "*" else "/" + k.replace(".", "/") for k in keys)
        elif not URL.match(str(d.def_path)) and not _rel(entry, d.fs_path).startswith(".."):
            deps.add(_rel(entry, d.fs_path))
    outs = {_rel(entry, o.fs_path) for o in stage.outs
            if not URL.match(str(o.def_path)) and not _rel(entry, o.fs_path).startswith("..")}
    return cmd, frozenset(deps), frozenset(outs), {k: frozenset(v) for k, v in params.items()}


def _our_signature(stage: Any) -> tuple[Any, ...]:
    params: dict[str, set[str]] = {}
    for p in stage.params:
        if not p.from_template:
            params.setdefault(p.file, set()).update(["*"] if p.whole else p.pointers)
    deps = frozenset(d.path.rstrip("/") for d in stage.deps)
    outs = frozenset(o.path.rstrip("/") for o in stage.outputs)
    return stage.cmd, deps, outs, {k: frozenset(v) for k, v in params.items()}


def _loose(sig: tuple[Any, ...]) -> tuple[Any, ...]:
    """A params file may be carried over as a dep (a file a stage writes, or not YAML, JSON
    or TOML): deps are compared with the params files among them."""
    cmd, deps, outs, params = sig
    return cmd, frozenset(deps | set(params)), outs, params


def compare(entry: Path) -> tuple[int, int, list[str]]:
    """(DVC's stage count, the count of those carried over, differences)."""
    rel = origin(entry)["path"]
    result, errors = _convert(entry)
    try:
        theirs = _dvc_stages(entry, rel)
    except Exception as e:  # DVC refuses the file too
        return 0, 0, [] if result.refused else [f"DVC refuses it ({e}); we did not"]
    if result.refused or errors:
        return len(theirs), 0, [] if result.notes else ["refused without a note"]
    ours = _ours(entry, result)
    by_key: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for stage in ours.values():
        sig = _loose(_our_signature(stage))
        by_key.setdefault((stage.base, *sig[:3]), []).append(sig[3])
    problems, carried = [], 0
    for name, stage in theirs.items():
        base, _, suffix = name.partition("@")
        our_base = result.names.get((rel, base))
        if our_base is None:
            if not any(n.kind in ("refused", "dropped") and base in n.message
                       for n in result.notes):
                problems.append(f"{name}: lost without a note")
            continue
        sig = _loose(_dvc_signature(entry, stage))
        candidates = by_key.get((our_base, *sig[:3]), [])
        match = next((i for i, c in enumerate(candidates)
                      if all(c[f] == sig[3][f] for f in set(c) & set(sig[3]))), None)
        if match is not None:
            candidates.pop(match)
            carried += 1
        else:
            problems.append(f"{name}: differs: {sig} has no match among {our_base!r}'s")
        if not suffix and our_base not in ours:
            problems.append(f"{name}: not found as {our_base!r}")
    return len(theirs), carried, problems


@pytest.mark.dvc
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda p: p.name)
def test_same_stages_as_dvc(entry: Path) -> None:
    pytest.importorskip("dvc")
    total, carried, problems = compare(entry)
    assert problems == []
    assert carried == total or any(n.kind == "refused" for n in _convert(entry)[0].notes)


REPOS = sorted({origin(e)["repo"] for e in ENTRIES})


@pytest.mark.parametrize("repo", [r for r in REPOS
                                  if sum(origin(e)["repo"] == r for e in ENTRIES) > 1],
                         ids=lambda r: r.rsplit("/", 1)[-1])
def test_every_dvc_yaml_of_a_repository_into_one_pipeline(repo: str, tmp_path: Path) -> None:
    import shutil
    entries = [e for e in ENTRIES if origin(e)["repo"] == repo]
    for e in entries:
        shutil.copytree(e, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("ORIGIN"))
    files = sorted(origin(e)["path"] for e in entries)
    result = convert(tmp_path)
    assert sorted(result.sources) == files
    text = to_yaml(result.pipeline, result.sources)
    errors = [] if result.refused else _validate_text(tmp_path, text)
    assert errors == []
    if result.refused:
        assert any(n.kind == "refused" for n in result.notes)
        return
    single = {f: _convert(next(e for e in entries if origin(e)["path"] == f))[0] for f in files}
    for f, alone in single.items():  # every stage of every file is there, renamed if need be
        for (rel, name), ours in alone.names.items():
            assert result.names[(rel, name)] in result.pipeline["stages"]
