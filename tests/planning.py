"""Helpers for tests that plan real projects on disk."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reftool.pipeline.hashing import hasher_for
from reftool.pipeline.lockfile import replay
from reftool.files.model import Lock, canonical_lock_text
from reftool.pipeline.plan import Plan, decide, record
from reftool.files.validate import Project, Report, validate_pipeline
from reftool.pipeline.store import Store
from reftool.pipeline.workspace import CachingWorkspace, Workspace


def load(root: Path) -> Project:
    report = Report()
    project = validate_pipeline(root, "pipeline.yaml", report, with_metrics=False)
    assert report.errors == [], [d.message for d in report.errors]
    assert project.pipeline is not None
    # as the CLI does: an unfinished run's journal counts
    project.lock, project.replayed, project.recovered = replay(
        root, root / "pipeline.lock", project.lock)
    return project


def workspace(root: Path, project: Project, env: Mapping[str, str] | None = None) -> Workspace:
    """The workspace as `plan` sees it: with the cache of outputs, so it can say "restore"."""
    return CachingWorkspace(root, hasher_for(root), Store(root), params=project.params,
                            environ=env or {}, pipeline_version=project.pipeline.version)


def plan(root: Path, env: Mapping[str, str] | None = None, **kw: Any) -> Plan:
    project = load(root)
    assert project.pipeline is not None
    ws = workspace(root, project, env)
    result = decide(project.pipeline, project.lock, ws, **kw)
    ws.hasher.cache.save()
    return result


def record_all(root: Path, env: Mapping[str, str] | None = None) -> Lock:
    """Record every stage as having run with the workspace as it is (as `run` would)."""
    project = load(root)
    assert project.pipeline is not None
    ws = workspace(root, project, env)
    lock = Lock(version="1.0", stages={
        name: record(stage, ws) for name, stage in project.pipeline.stages.items()})
    (root / "pipeline.lock").write_text(canonical_lock_text(lock), encoding="utf-8")
    return lock


def codes(p: Plan) -> dict[str, tuple[str, ...]]:
    return {d.name: d.codes for d in p.to_run}
