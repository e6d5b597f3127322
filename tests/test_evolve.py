"""Room to evolve and secrets (spec 1.1, issue 12): env variables recorded by digest
([pipeline.env-record], [security.secrets]), `meta` and `x-` keys ([version.extensions]), codes
open to consumers ([version.open-codes]) and the version gate of every command that reads a
file ([tool.experiments], [version.major])."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project
from reftool.files.model import canonical_json, canonical_lock_text, lock_from_dict
from reftool.files.spec import secret_looking

SECRET = "hf_sekrit_Zq81xWv3"


def _digest(name: str, value: str) -> str:
    return "sha256:" + hashlib.sha256(f"{name}={value}".encode()).hexdigest()


def _reftool(root: Path, *args: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "KEY_SIZE")}
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "reftool", *args], cwd=root, env=full,
                          capture_output=True, text=True, timeout=120)


def _lock(root: Path) -> dict:
    text = (root / "pipeline.lock").read_text()
    assert canonical_lock_text(lock_from_dict(json.loads(text))) == text  # [lock.canonical]
    return json.loads(text)


def _files_holding(root: Path, needle: str, but: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path.name not in but and needle.encode() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


# ------------------------------------------------------------------------------ secrets

SECRET_PIPELINE = """\
version: "1.0"
stages:
  train:
    cmd: printf %s "$HF_TOKEN" > seen.txt && cp m.src m.json
    deps: [m.src]
    env: [HF_TOKEN, OMP_NUM_THREADS]
    outs: [seen.txt]
    metrics: [m.json]
"""


@pytest.mark.parametrize("name", [
    "HF_TOKEN", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "WANDB_API_KEY", "DB_PASSWORD",
    "GOOGLE_APPLICATION_CREDENTIALS", "hf_token", "PGPASSWD", "MY_APIKEY", "TOKEN", "AUTH",
    "SESSION_COOKIES", "SSH_PASSPHRASE", "API_KEYS"])
def test_secret_looking_names(name: str) -> None:
    assert secret_looking(name) == (name != "PGPASSWD")  # a whole word, not a part of one


@pytest.mark.parametrize("name", [
    "TOKENIZERS_PARALLELISM", "MONKEY", "KEYBOARD_LAYOUT", "OMP_NUM_THREADS", "PASS",
    "CUDA_VISIBLE_DEVICES", "SEED", "KEYSTONE"])
def test_names_that_are_not_secret_looking(name: str) -> None:
    assert not secret_looking(name)


def test_run_records_a_secret_by_digest_and_never_writes_it(project: Project) -> None:
    """[security.secrets]: end to end, the stage sees the value; no file the tool writes,
    nor its output, holds it; the lock holds the digest of NAME=VALUE and says 1.1."""
    project.write("pipeline.yaml", SECRET_PIPELINE)
    project.write("m.src", '{"version": "1.0", "metrics": {"acc": 1}}\n')
    env = {"HF_TOKEN": SECRET, "OMP_NUM_THREADS": "4"}
    done = _reftool(project.root, "run", env=env)
    assert done.returncode == 0, done.stderr
    assert (project.root / "seen.txt").read_text() == SECRET  # the command had the value
    lock = _lock(project.root)
    assert lock["version"] == "1.1"
    assert lock["stages"]["train"]["env"] == {
        "HF_TOKEN": {"digest": _digest("HF_TOKEN", SECRET)}, "OMP_NUM_THREADS": {"str": "4"}}
    assert list((project.root / "experiments").glob("*.json"))  # a record was written too
    # seen.txt is the stage's own output, and the cache holds its bytes
    assert _files_holding(project.root, SECRET, but=("seen.txt",)) == [
        p for p in _files_holding(project.root, SECRET, but=("seen.txt",))
        if p.startswith(".reftool/cache/objects")]
    assert SECRET not in done.stdout + done.stderr
    again = _reftool(project.root, "plan", env=env)
    assert again.returncode == 0 and "Nothing to run" in again.stdout


def test_a_changed_secret_is_named_by_its_digests(project: Project,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    project.write("pipeline.yaml", SECRET_PIPELINE)
    project.write("m.src", '{"version": "1.0", "metrics": {"acc": 1}}\n')
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert project.cli("run").code == 0
    monkeypatch.setenv("HF_TOKEN", "hf_other_value")
    plan = json.loads(project.cli("plan", "--json").out)
    assert plan["version"] == "1.1"  # [version.write]: an env digest is a 1.1 addition
    (reason,) = plan["stages"][0]["reasons"]
    assert reason == {"code": "env_changed", "key": "HF_TOKEN",
                      "old": {"digest": _digest("HF_TOKEN", SECRET)},
                      "new": {"digest": _digest("HF_TOKEN", "hf_other_value")}}
    text = project.cli("plan")
    assert "env_changed" in text.out and "digest sha256:" in text.out
    assert SECRET not in text.out + text.err and "hf_other_value" not in text.out + text.err


def test_record_says_value_or_digest(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """[pipeline.env-record]: `record` overrides what the name looks like."""
    project.write("pipeline.yaml", """\
version: "1.1"
stages:
  a:
    cmd: echo a > a.txt
    env:
      - {name: KEY_SIZE, record: value}
      - {name: RUN_LABEL, record: digest}
      - {name: UNSET_TOKEN}
    outs: [a.txt]
""")
    monkeypatch.setenv("KEY_SIZE", "2048")
    monkeypatch.setenv("RUN_LABEL", "nightly")
    monkeypatch.delenv("UNSET_TOKEN", raising=False)
    done = project.cli("run")
    assert done.code == 0, done.err
    assert _lock(project.root)["stages"]["a"]["env"] == {
        "KEY_SIZE": {"str": "2048"}, "RUN_LABEL": {"digest": _digest("RUN_LABEL", "nightly")},
        "UNSET_TOKEN": {"null": None}}


def test_a_lock_holding_a_secret_is_warned_about_and_rewritten(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """[security.secrets] rule 4: a warning naming file, line and fix; the next run, though
    it has nothing to run, writes the digest in its place; no stage is stale for it."""
    project.write("pipeline.yaml", SECRET_PIPELINE)
    project.write("m.src", '{"version": "1.0", "metrics": {"acc": 1}}\n')
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert project.cli("run").code == 0
    lock = _lock(project.root)
    lock["version"] = "1.0"
    lock["stages"]["train"]["env"]["HF_TOKEN"] = {"str": SECRET}
    text = canonical_lock_text(lock_from_dict(lock))
    project.write("pipeline.lock", text)
    line = text[:text.index(f'"str": "{SECRET}"')].count("\n") + 1
    checked = project.cli("validate")
    assert checked.code == 0  # a warning
    assert f"pipeline.lock:{line}:18: warning[semantic/secret_in_lock]" in checked.out
    assert "rotate HF_TOKEN" in checked.out
    assert project.cli("plan").out.startswith("Nothing to run")
    done = project.cli("run")
    assert done.code == 0 and "Nothing to run" in done.out
    assert _lock(project.root)["stages"]["train"]["env"]["HF_TOKEN"] == {
        "digest": _digest("HF_TOKEN", SECRET)}
    assert "secret_in_lock" not in project.cli("validate").out


def test_the_long_form_needs_version_1_1(project: Project) -> None:
    project.write("pipeline.yaml", 'version: "1.0"\nstages:\n  a:\n    cmd: echo\n'
                  '    env: [{name: HF_TOKEN, record: digest}]\n')
    found = project.report().errors
    assert [(d.phase, d.code, d.line) for d in found] == [("schema", "type", 5)]
    assert 'version: "1.1"' in (found[0].expected or "")


def test_a_name_in_both_forms_is_a_duplicate(project: Project) -> None:
    project.write("pipeline.yaml", 'version: "1.1"\nstages:\n  a:\n    cmd: echo\n'
                  '    env: [HF_TOKEN, {name: HF_TOKEN}]\n')
    assert project.codes() == [("schema", "uniqueItems")]


# ------------------------------------------------------------------------------ meta and x-

META_PIPELINE = """\
version: "1.1"
meta: {owner: vision}
x-team: vision
stages:
  a:
    meta: {note: "${not_a_var}"}
    x-ci: {gpu: true}
    cmd: cp in.txt a.txt
    deps:
      - {path: in.txt, meta: raw data}
    env:
      - {name: SEED, x-why: reproducible}
    outs:
      - {path: a.txt, x-kind: model}
metrics:
  acc: {direction: higher, meta: top-1}
"""


def test_meta_and_x_keys_are_read_and_ignored(project: Project) -> None:
    """[version.extensions]: valid in a 1.1 file; editing them makes nothing stale; the lock
    records nothing of them; a lock carrying its own is accepted and stays canonical."""
    project.write("pipeline.yaml", META_PIPELINE)
    project.write("in.txt", "in\n")
    assert project.codes() == []
    assert project.cli("run").code == 0
    lock = _lock(project.root)
    assert "meta" not in json.dumps(lock) and "x-" not in json.dumps(lock)
    project.write("pipeline.yaml", META_PIPELINE.replace("owner: vision", "owner: nlp")
                  .replace("gpu: true", "gpu: false").replace("model}", "weights}"))
    assert project.cli("plan").out.startswith("Nothing to run")
    lock["version"] = "1.1"
    lock["x-writer"] = "other"
    lock["stages"]["a"]["meta"] = {"host": "gpu-7"}
    project.write("pipeline.lock", canonical_json(lock))
    assert project.codes() == []  # not even lock_not_canonical: its bytes are canonical
    assert project.cli("plan").out.startswith("Nothing to run")


@pytest.mark.parametrize("text, where", [
    ('version: "1.0"\nx-team: a\nstages:\n  a:\n    cmd: echo\n', (2, 1)),
    ('version: "1.0"\nstages:\n  a:\n    cmd: echo\n    meta: 1\n', (5, 5)),
    ('version: "1.0"\nstages:\n  a:\n    cmd: echo\n    outs: [{path: o, x-k: 1}]\n', (5, 22)),
])
def test_extensions_in_a_1_0_file_are_refused_naming_the_key(
        project: Project, text: str, where: tuple[int, int]) -> None:
    project.write("pipeline.yaml", text)
    (found,) = project.report().errors
    assert (found.phase, found.code, (found.line, found.column)) == (
        "schema", "additionalProperties", where)
    assert "1.1" in found.message


def test_only_x_dash_keys_are_extensions(project: Project) -> None:
    project.write("pipeline.yaml", 'version: "1.1"\nstages:\n  a:\n    cmd: echo\n'
                  '    X-team: b\n    xteam: c\n')
    assert project.codes() == [("schema", "additionalProperties")] * 2


def test_extensions_in_metrics_and_records(project: Project) -> None:
    project.write("m.json", '{"version": "1.1", "metrics": {"acc": 1}, "meta": 1, "x-a": 2}\n')
    project.write("s.jsonl", '{"version": "1.1", "kind": "series", "x-logger": "l"}\n'
                  '{"step": 0, "metrics": {"loss": 1}}\n')
    assert project.cli("validate", "m.json", "s.jsonl").code == 0
    project.write("m.json", '{"version": "1.0", "metrics": {"acc": 1}, "meta": 1}\n')
    assert project.cli("validate", "m.json").code == 1


# ------------------------------------------------------------------------------ open codes

def _plan_with(code: str, action: str) -> dict:
    return {"version": "1.9", "tool": {"name": "t", "version": "9"},
            "summary": {"to_run": 1, "changed": 1, "downstream": 0, "restore": 0,
                        "up_to_date": 0, "frozen": 0, "text": "1 stage to run"},
            "stages": [{"name": "a", "action": action, "downstream": False,
                        "reasons": [{"code": code}]}],
            "up_to_date": [], "frozen": []}


def test_the_plan_schema_leaves_reason_codes_and_actions_open() -> None:
    """[version.open-codes]: a consumer validating with the published schema accepts a plan
    of a later minor whose reason and action it does not know; known codes keep their
    required details."""
    from reftool.files.schemas import validator
    check = validator("plan")
    assert list(check.iter_errors(_plan_with("dep_quarantined", "wait"))) == []
    assert list(check.iter_errors(_plan_with("dep_modified", "run")))  # needs path, old, new
    assert list(check.iter_errors(_plan_with("Not A Code", "run")))


def test_the_validation_report_schema_leaves_phases_and_codes_open() -> None:
    from reftool.files.schemas import validator
    report = {"version": "1.9", "valid": False, "files": [], "diagnostics": [
        {"severity": "error", "phase": "license", "code": "unknown_license", "file": "f",
         "line": None, "column": None, "pointer": "", "message": "m"}]}
    found = [e.message for e in validator("validation-report").iter_errors(report)]
    assert not [m for m in found if "license" in m], found


# ------------------------------------------------------------------------------ version gate

GATE_PIPELINE = """\
version: "1.0"
stages:
  train:
    cmd: cp params.yaml model.bin && cp eval.src metrics/eval.json
    deps: [eval.src]
    params:
      params.yaml: [/lr]
    outs: [model.bin]
    metrics: [metrics/eval.json]
"""


@pytest.fixture(scope="module")
def gated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with two experiments, run for real once for the module."""
    project = Project(tmp_path_factory.mktemp("gated"))
    project.write("pipeline.yaml", GATE_PIPELINE)
    project.write("eval.src", '{"version": "1.0", "metrics": {"acc": 0.5}}\n')
    project.write("metrics/.keep", "")
    for lr, name in (("0.1", "first"), ("0.2", "second")):
        project.write("params.yaml", f"lr: {lr}\n")
        done = project.cli("run", "--name", name)
        assert done.code == 0, done.err
    return project.root


@pytest.fixture
def gated(gated_template: Path, tmp_path: Path) -> Project:
    shutil.copytree(gated_template, tmp_path / "p")
    return Project(tmp_path / "p")


def _set_version(path: Path, version: str) -> None:
    text = path.read_text()
    # the first version field, whichever 1.x it declares (records are written as 1.1)
    text = re.sub(r'("version": |version: )"1\.[01]"', lambda m: f'{m.group(1)}"{version}"',
                  text, count=1)
    path.write_text(text)


READERS = [("exp", "show"), ("metrics", "diff", "first"), ("params", "diff", "first"),
           ("plot", "--out", "plots"), ("report", "--base", "first")]


@pytest.mark.parametrize("argv", READERS, ids=[a[0] for a in READERS])
def test_every_reader_passes_over_a_record_of_an_unread_version_and_exits_1(
        gated: Project, argv: tuple[str, ...]) -> None:
    """[tool.experiments], [version.major]: named on stderr with its code, exit 1."""
    (old,) = [p for p in (gated.root / "experiments").glob("*.json")
              if '"name": "second"' in p.read_text()]
    _set_version(old, "7.0")
    done = gated.cli(*argv)
    assert done.code == 1, done.out + done.err
    assert f"experiments/{old.name}" in done.err and "major_unsupported" in done.err
    assert "Traceback" not in done.err


@pytest.mark.parametrize("argv", READERS[1:3] + READERS[3:4],
                         ids=["metrics-diff", "params-diff", "plot"])
def test_naming_a_record_of_an_unread_version_says_so(gated: Project,
                                                      argv: tuple[str, ...]) -> None:
    (old,) = [p for p in (gated.root / "experiments").glob("*.json")
              if '"name": "first"' in p.read_text()]
    _set_version(old, "1.9")
    args = (*argv[:1], "first") if argv[0] == "plot" else argv
    done = gated.cli(*args)
    assert done.code == 1, done.out + done.err
    assert "experiment 'first'" in done.err and "does not read" in done.err
    assert "not a git revision" not in done.err


EVERY = READERS + [("exp", "save", "third"), ("dag",), ("plan",), ("run", "--dry-run"),
                   ("validate",)]


@pytest.mark.parametrize("argv", EVERY, ids=["-".join(a[:2]) for a in EVERY])
def test_every_command_refuses_a_pipeline_file_of_an_unread_version(
        gated: Project, argv: tuple[str, ...]) -> None:
    """A 7.0 pipeline file is not read as if it were 1.0 by any command."""
    _set_version(gated.root / "pipeline.yaml", "7.0")
    records = sorted((gated.root / "experiments").glob("*.json"))
    done = gated.cli(*argv)
    assert done.code == 1, done.out + done.err
    assert "pipeline.yaml:1:10" in done.err + done.out
    assert "major_unsupported" in done.err + done.out
    assert sorted((gated.root / "experiments").glob("*.json")) == records  # nothing saved


@pytest.mark.parametrize("argv", [("dag", "--plan"), ("plan",), ("run",), ("validate",)])
def test_commands_that_read_the_lock_refuse_one_of_an_unread_version(
        gated: Project, argv: tuple[str, ...]) -> None:
    _set_version(gated.root / "pipeline.lock", "7.0")
    before = (gated.root / "pipeline.lock").read_bytes()
    done = gated.cli(*argv)
    assert done.code == 1, done.out + done.err
    assert "pipeline.lock:" in done.err + done.out
    assert "major_unsupported" in done.err + done.out
    assert (gated.root / "pipeline.lock").read_bytes() == before


@pytest.mark.parametrize("argv", READERS, ids=[a[0] for a in READERS])
def test_a_metrics_file_of_an_unread_version_stops_every_reader(
        gated: Project, argv: tuple[str, ...]) -> None:
    _set_version(gated.root / "metrics" / "eval.json", "7.0")
    done = gated.cli(*argv)
    assert done.code == 1, done.out + done.err
    assert "metrics/eval.json" in done.err and "7.0" in done.err
