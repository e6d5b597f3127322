"""`reftool plan`: every reason code of SPEC [stale.reasons] produced on a real project on disk.

Each test builds a project, records every stage as run, changes one thing, and checks the plan.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from conftest import Project
from planning import codes, plan, record_all
from reftool.pipeline.plan import ABSENT
from reftool.files.schemas import validator

PIPELINE = """\
version: "1.0"
stages:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, data/raw/]
    params:
      params.yaml: [/prepare/seed]
    outs: [prepared.csv]
  train:
    cmd: python train.py
    deps: [train.py, prepared.csv]
    params:
      params.yaml: [/train/lr, /train/epochs]
    env: [SEED]
    outs: [model.bin]
    metrics: [metrics.json]
  evaluate:
    cmd: python evaluate.py
    deps: [evaluate.py, model.bin]
    outs: [report.txt]
  other:
    cmd: python other.py
    deps: [other.py]
    outs: [other.txt]
"""

FILES = {
    "prepare.py": "p\n", "train.py": "t\n", "evaluate.py": "e\n", "other.py": "o\n",
    "data/raw/a.csv": "1,2\n", "data/raw/b/c.csv": "3,4\n",
    "params.yaml": "prepare:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3\nunused: 7\n",
    "prepared.csv": "x\n", "model.bin": "m\n", "metrics.json": '{"version": "1.0", '
    '"metrics": {"acc": 0.5}}', "report.txt": "r\n", "other.txt": "o\n",
}

ENV = {"SEED": "42"}


@pytest.fixture
def done(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project whose every stage has run: the plan is empty (for the CLI too)."""
    monkeypatch.setenv("SEED", ENV["SEED"])
    project.base(PIPELINE, **FILES)
    record_all(project.root, ENV)
    assert plan(project.root, ENV).to_run == ()
    return project


def test_nothing_to_run(done: Project) -> None:
    p = plan(done.root, ENV)
    assert p.up_to_date == ("other", "prepare", "train", "evaluate")
    assert p.summary() == "Nothing to run: 4 stages up to date."


def test_never_run(project: Project) -> None:
    project.base(PIPELINE, **FILES)
    p = plan(project.root, ENV)
    assert codes(p) == {n: ("never_run",) for n in ("other", "prepare", "train", "evaluate")}
    assert p.summary() == "4 stages to run (4 changed, 0 downstream), 0 up to date."


def test_never_run_stage_makes_dependents_run(done: Project) -> None:
    lock = json.loads((done.root / "pipeline.lock").read_text())
    del lock["stages"]["train"]
    (done.root / "pipeline.lock").write_text(json.dumps(lock))
    assert codes(plan(done.root, ENV)) == {"train": ("never_run",), "evaluate": ("upstream",)}


def test_forced(done: Project) -> None:
    p = plan(done.root, ENV, targets=["train"], force_stages=["train"])
    assert codes(p) == {"train": ("forced",)}
    p = plan(done.root, ENV, force=True)
    assert set(codes(p)) == {"other", "prepare", "train", "evaluate"}
    assert all(c[0] == "forced" for c in codes(p).values())


def test_always_run(done: Project) -> None:
    done.write("pipeline.yaml", PIPELINE.replace("    outs: [other.txt]",
                                                 "    outs: [other.txt]\n    always_run: true"))
    assert codes(plan(done.root, ENV)) == {"other": ("always_run",)}


def test_definition_changed_wdir(done: Project) -> None:
    done.write("sub/.keep", "")
    done.write("pipeline.yaml", PIPELINE.replace("    cmd: python other.py",
                                                 "    cmd: python other.py\n    wdir: sub"))
    (d,) = plan(done.root, ENV).to_run
    (r,) = d.reasons
    assert (d.name, r.code, r.key, r.old, r.new) == ("other", "definition_changed", "wdir", ".",
                                                    "sub")


def test_definition_changed_outputs(done: Project) -> None:
    done.write("pipeline.yaml", PIPELINE.replace("outs: [other.txt]",
                                                 "outs: [{path: other.txt, cache: false}]"))
    (d,) = plan(done.root, ENV).to_run
    (r,) = d.reasons
    assert (r.code, r.path, r.old, r.new) == ("definition_changed", "other.txt",
                                              {"cache": True, "persist": False},
                                              {"cache": False, "persist": False})


def test_command_changed(done: Project) -> None:
    done.write("pipeline.yaml", PIPELINE.replace("python other.py", "python other.py --fast"))
    (d,) = plan(done.root, ENV).to_run
    assert [(r.code, r.old, r.new) for r in d.reasons] == [
        ("command_changed", ["python other.py"], ["python other.py --fast"])]


def test_env_changed(done: Project) -> None:
    p = plan(done.root, {"SEED": "43"})
    assert codes(p) == {"train": ("env_changed",), "evaluate": ("upstream",)}
    r = p.to_run[0].reasons[0]
    assert (r.key, r.old, r.new) == ("SEED", "42", "43")
    r = plan(done.root, {}).to_run[0].reasons[0]  # unset differs from any value
    assert (r.key, r.old, r.new) == ("SEED", "42", None)


def test_env_unset_differs_from_empty(project: Project) -> None:
    project.base(PIPELINE, **FILES)
    record_all(project.root, {})
    assert plan(project.root, {}).to_run == ()
    assert codes(plan(project.root, {"SEED": ""}))["train"] == ("env_changed",)


def test_dep_added_and_removed(done: Project) -> None:
    done.write("extra.py", "x")
    done.write("pipeline.yaml", PIPELINE.replace("deps: [other.py]", "deps: [extra.py]"))
    (d,) = plan(done.root, ENV).to_run
    assert [(r.code, r.path) for r in d.reasons] == [("dep_added", "extra.py"),
                                                      ("dep_removed", "other.py")]


def test_dep_modified_file_and_directory(done: Project) -> None:
    done.write("data/raw/b/c.csv", "3,5\n")
    p = plan(done.root, ENV)
    assert codes(p) == {"prepare": ("dep_modified",), "train": ("upstream",),
                        "evaluate": ("upstream",)}
    r = p.to_run[0].reasons[0]
    assert r.path == "data/raw/" and r.old != r.new and r.new.startswith("sha256:")
    assert [d.downstream for d in p.to_run] == [False, True, True]
    assert p.summary() == "3 stages to run (1 changed, 2 downstream), 1 up to date."


def test_missing_source_dep_is_a_reason_and_blocks_its_stage(done: Project) -> None:
    # [pipeline.deps-exist] (1.1): not an error of the project; plan names it, with what the
    # lock records, and marks the stage blocked
    locked = json.loads((done.root / "pipeline.lock").read_text())["stages"]["other"]["deps"]
    os.remove(done.root / "other.py")
    p = plan(done.root, ENV)
    (d,) = p.to_run
    assert (d.name, d.action, d.codes) == ("other", "blocked", ("dep_missing",))
    assert (d.reasons[0].path, d.reasons[0].old) == ("other.py", locked["other.py"]["digest"])
    assert p.summary() == ("1 stage to run (1 changed, 0 downstream; 1 blocked by a missing "
                           "dep), 3 up to date.")
    from reftool.cli import main
    assert main(["-C", str(done.root), "plan", "--exit-code"]) == 3


def test_dep_file_added_to_directory(done: Project) -> None:
    done.write("data/raw/new.csv", "9\n")
    assert codes(plan(done.root, ENV))["prepare"] == ("dep_modified",)


def test_param_changed_added_removed(done: Project) -> None:
    done.write("params.yaml", "prepare:\n  seed: 1\ntrain:\n  lr: 0.02\n  epochs: 3\n")
    (d, _) = plan(done.root, ENV).to_run
    assert [(r.code, r.file, r.key, r.old, r.new) for r in d.reasons] == [
        ("param_changed", "params.yaml", "/train/lr", 0.01, 0.02)]
    done.write("pipeline.yaml", PIPELINE.replace("[/train/lr, /train/epochs]", "[/train/lr]")
               .replace("[/prepare/seed]", "[/prepare/seed, /unused]"))
    done.write("params.yaml", FILES["params.yaml"])
    p = plan(done.root, ENV)
    assert [(d.name, [(r.code, r.key) for r in d.reasons]) for d in p.to_run] == [
        ("prepare", [("param_added", "/unused")]),
        ("train", [("param_removed", "/train/epochs"), ("upstream", None)]),
        ("evaluate", [("upstream", None)])]


@pytest.mark.parametrize("new_text, stale", [
    ("train: {epochs: 3, lr: 0.01}\nprepare: {seed: 1}\nunused: 7\n", False),  # order, style
    ("# comment\nprepare:\n  seed: 1\ntrain:\n  lr: 1.0e-2\n  epochs: 0x3\n", False),
    ("prepare:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3.0\n", True),   # 3 -> 3.0
    ("prepare:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: '3'\n", True),   # 3 -> "3"
    ("prepare:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3\nunused: 8\n", False),
])
def test_params_typing_and_formatting(done: Project, new_text: str, stale: bool) -> None:
    # [values.strict-types], [params.digest]: format and key order never matter; type does
    done.write("params.yaml", new_text)
    assert ("train" in codes(plan(done.root, ENV))) is stale


def test_true_param_differs_from_1(project: Project) -> None:
    project.base(PIPELINE, **{**FILES, "params.yaml": FILES["params.yaml"].replace(
        "epochs: 3", "epochs: 1")})
    record_all(project.root, ENV)
    project.write("params.yaml", FILES["params.yaml"].replace("epochs: 3", "epochs: true"))
    assert codes(plan(project.root, ENV))["train"] == ("param_changed",)


def test_nan_param_is_not_stale_forever(project: Project) -> None:
    # [values.float-equality]
    project.base(PIPELINE, **{**FILES, "params.yaml": FILES["params.yaml"].replace(
        "lr: 0.01", "lr: .nan")})
    record_all(project.root, ENV)
    assert plan(project.root, ENV).to_run == ()
    lock = json.loads((project.root / "pipeline.lock").read_text())
    assert lock["stages"]["train"]["params"]["params.yaml"]["/train/lr"] == {"float": "NaN"}
    assert math.isnan(0.0 * math.inf)


def test_whole_file_params(project: Project) -> None:
    # [params.whole-file]
    text = PIPELINE.replace("params.yaml: [/train/lr, /train/epochs]", 'cfg.toml: "*"')
    project.base(text, **FILES, **{"cfg.toml": "lr = 0.1\n[model]\ndepth = 3\n"})
    record_all(project.root, ENV)
    project.write("cfg.toml", "lr = 0.1\nbatch = 8\n[model]\ndepth = 3\n")
    (d, _) = plan(project.root, ENV).to_run
    assert [(r.code, r.key, r.new) for r in d.reasons] == [("param_added", "/batch", 8)]
    project.write("cfg.toml", "lr = 0.1\n[model]\ndepth = 4\n")
    (d, _) = plan(project.root, ENV).to_run
    assert [(r.code, r.key, r.old, r.new) for r in d.reasons] == [
        ("param_changed", "/model", {"depth": 3}, {"depth": 4})]


def test_templated_value_is_an_input(project: Project) -> None:
    # [template.inputs]
    text = ('version: "1.0"\nvars: [params.yaml]\nstages:\n  s:\n'
            '    cmd: python train.py --lr ${train.lr}\n    deps: [train.py]\n')
    project.base(text, **FILES)
    record_all(project.root)
    project.write("params.yaml", FILES["params.yaml"].replace("lr: 0.01", "lr: 0.02"))
    (d,) = plan(project.root).to_run
    assert [(r.code, r.key) for r in d.reasons] == [("command_changed", None),
                                                     ("param_changed", "/train/lr")]


def test_output_missing_and_modified(done: Project) -> None:
    os.remove(done.root / "report.txt")
    done.write("model.bin", "tampered\n")
    p = plan(done.root, ENV)
    assert codes(p) == {"train": ("output_modified",), "evaluate": ("output_missing",
                                                                     "upstream")}


def test_upstream_names_direct_dependencies(done: Project) -> None:
    done.write("prepare.py", "p2\n")
    p = plan(done.root, ENV)
    assert [(d.name, [r.stages for r in d.reasons if r.code == "upstream"])
            for d in p.to_run] == [("prepare", []), ("train", [("prepare",)]),
                                   ("evaluate", [("train",)])]


def test_frozen(done: Project) -> None:
    # [stale.frozen]
    done.write("pipeline.yaml", PIPELINE.replace("    cmd: python prepare.py",
                                                 "    cmd: python prepare.py\n    frozen: true"))
    done.write("prepare.py", "p2\n")
    p = plan(done.root, ENV)
    assert (p.to_run, p.frozen) == ((), ("prepare",))
    done.write("prepared.csv", "new data\n")  # stages after it see the files on disk
    assert codes(plan(done.root, ENV)) == {"train": ("dep_modified",),
                                           "evaluate": ("upstream",)}
    p = plan(done.root, ENV, targets=["prepare"], force_stages=["prepare"])
    assert codes(p) == {"prepare": ("forced", "dep_modified", "output_modified")}


def test_selection_plans_only_what_is_needed(done: Project) -> None:
    # [stale.selection]: unrelated stages are neither hashed nor listed
    done.write("other.py", "changed\n")
    done.write("prepare.py", "changed\n")
    os.chmod(done.root / "other.py", 0)  # hashing it would fail
    try:
        p = plan(done.root, ENV, targets=["train"])
    finally:
        os.chmod(done.root / "other.py", 0o644)
    assert codes(p) == {"prepare": ("dep_modified",), "train": ("upstream",)}
    assert p.selected == ("prepare", "train")


def test_run_order_topological_ties_by_name(project: Project) -> None:
    # [stale.order]
    text = 'version: "1.0"\nstages:\n' + "".join(
        f"  {n}:\n    cmd: x\n    deps: [{d}]\n    outs: [{n}.out]\n" for n, d in [
            ("b", "src.txt"), ("a", "b.out"), ("c", "src.txt"), ("Bx", "src.txt"),
            ("_z", "a.out")])
    project.base(text, **{"src.txt": "s"})
    assert [d.name for d in plan(project.root).to_run] == ["Bx", "b", "a", "_z", "c"]


# ---------------------------------------------------------------------------------- CLI

def test_cli_text(done: Project) -> None:
    done.write("params.yaml", FILES["params.yaml"].replace("lr: 0.01", "lr: 1e-2\n  x: 1")
               .replace("epochs: 3", "epochs: 3.0"))
    r = done.cli("plan")
    assert r.code == 0
    assert r.out == (
        "train: run\n"
        "    param_changed  params.yaml /train/epochs: 3 -> 3.0\n"
        "evaluate: run, downstream (early cutoff may skip it)\n"
        "    upstream       train will run\n"
        "\n"
        "2 stages to run (1 changed, 1 downstream), 2 up to date.\n")


def test_cli_verbose_lists_up_to_date(done: Project) -> None:
    r = done.cli("plan", "-v")
    assert r.out.splitlines() == ["other: up to date", "prepare: up to date",
                                  "train: up to date", "evaluate: up to date", "",
                                  "Nothing to run: 4 stages up to date."]


def test_cli_json_follows_the_schema(done: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEED", "7")
    done.write("data/raw/a.csv", "changed\n")
    r = done.cli("plan", "--json")
    doc = json.loads(r.out)
    assert list(validator("plan").iter_errors(doc)) == []
    assert doc["version"] == "1.0"
    assert doc["summary"] == {"to_run": 3, "changed": 2, "downstream": 1, "restore": 0,
                              "up_to_date": 1,
                              "frozen": 0, "text": "3 stages to run (2 changed, 1 downstream)"
                              ", 1 up to date."}
    train = doc["stages"][1]
    assert train["reasons"][0] == {"code": "env_changed", "key": "SEED", "old": {"str": "42"},
                                   "new": {"str": "7"}}
    assert train["reasons"][1] == {"code": "upstream", "stages": ["prepare"]}


def test_cli_json_params_are_typed_trees(done: Project) -> None:
    done.write("params.yaml", FILES["params.yaml"].replace("epochs: 3", "epochs: 3.0"))
    doc = json.loads(done.cli("plan", "--json").out)
    (reason,) = doc["stages"][0]["reasons"]
    assert (reason["old"], reason["new"]) == ({"int": "3"}, {"float": "3"})


def test_cli_exit_codes(done: Project) -> None:
    # [tool.exit-codes]
    assert done.cli("plan", "--exit-code").code == 0
    done.write("other.py", "x")
    assert done.cli("plan", "--exit-code").code == 3
    assert done.cli("plan").code == 0
    assert done.cli("plan", "--exit-code", "nope").code == 2
    done.write("pipeline.yaml", "version: '1.0'\nstages: {s: {cmd: x, dpes: []}}\n")
    r = done.cli("plan", "--exit-code")
    assert r.code == 1 and "did you mean 'deps'" in r.err and r.out == ""


def test_cli_lock_from_newer_minor(done: Project) -> None:
    lock = json.loads((done.root / "pipeline.lock").read_text())
    lock["version"] = "1.4"
    (done.root / "pipeline.lock").write_text(json.dumps(lock))
    r = done.cli("plan")
    assert r.code == 1
    assert "spec version 1.4 is newer than this tool, which reads 1.0 to 1.1; upgrade " \
           "reftool to read it" in r.err


def test_cli_unknown_stage_did_you_mean(done: Project) -> None:
    r = done.cli("plan", "trian")
    assert (r.code, r.err) == (2, "reftool: no stage 'trian' in pipeline.yaml; did you mean "
                                  "'train'?\n")


def test_plan_executes_nothing_and_writes_no_lock(done: Project) -> None:
    # [pipeline.no-exec]; plan takes no write lock and leaves the lock file alone
    marker = done.root / "ran"
    done.write("pipeline.yaml", PIPELINE.replace("python other.py", f"touch {marker}"))
    before = (done.root / "pipeline.lock").read_bytes()
    assert done.cli("plan").code == 0
    assert not marker.exists()
    assert (done.root / "pipeline.lock").read_bytes() == before


def test_absent_sentinel_never_leaks(done: Project) -> None:
    done.write("pipeline.yaml", PIPELINE.replace("env: [SEED]", "env: [SEED, OTHER]"))
    p = plan(done.root, ENV)
    r = p.to_run[0].reasons[0]
    assert (r.code, r.key, r.old, r.new) == ("env_changed", "OTHER", ABSENT, None)
    doc = json.loads(done.cli("plan", "--json").out)
    assert doc["stages"][0]["reasons"][0] == {"code": "env_changed", "key": "OTHER",
                                              "new": {"null": None}}
    assert isinstance(Path, type)


def test_committed_only_judges_what_is_there(done: Project) -> None:
    # CI has the committed files, not the outputs: missing paths count as recorded
    for out in ("prepared.csv", "model.bin", "metrics.json", "report.txt", "other.txt"):
        os.remove(done.root / out)
    assert done.cli("plan", "--exit-code").code == 3
    assert done.cli("plan", "--exit-code", "--committed-only").code == 0
    done.write("params.yaml", FILES["params.yaml"].replace("lr: 0.01", "lr: 0.5"))
    r = done.cli("plan", "--exit-code", "--committed-only")
    assert r.code == 3 and "param_changed  params.yaml /train/lr: 0.01 -> 0.5" in r.out


# ------------------------------------------------------------- frozen stages, params edges, groups

FROZEN = """\
version: "1.0"
stages:
  prep:
    cmd: echo clean > clean.csv
    outs: [clean.csv]
    frozen: FROZEN
  train:
    cmd: cat clean.csv > model.bin
    deps: [clean.csv]
    outs: [model.bin]
"""


def _frozen_project(project: Project, frozen: bool) -> Project:
    project.write("pipeline.yaml", FROZEN.replace("FROZEN", "true" if frozen else "false"))
    project.write("clean.csv", "clean\n")
    project.write("model.bin", "clean\n")
    return project


def test_frozen_stage_entry_is_not_out_of_date(project: Project) -> None:
    """[stale.frozen-lock]: no lock_out_of_date for a frozen stage; one again once unfrozen."""
    _frozen_project(project, frozen=False)
    record_all(project.root)
    project.write("pipeline.yaml", FROZEN.replace("FROZEN", "true").replace(
        "echo clean", "echo cleaner"))
    assert ("semantic", "lock_out_of_date") not in project.codes()
    assert codes(plan(project.root)) == {}
    project.write("pipeline.yaml", FROZEN.replace("FROZEN", "false").replace(
        "echo clean", "echo cleaner"))
    assert ("semantic", "lock_out_of_date") in project.codes("warning")


def test_unfrozen_stage_shows_its_hand_edited_output(project: Project) -> None:
    """[stale.frozen-lock]: hand edits made while frozen are output_modified once unfrozen."""
    _frozen_project(project, frozen=True)
    record_all(project.root)
    project.write("clean.csv", "edited by hand\n")
    assert codes(plan(project.root)) == {"train": ("dep_modified",)}
    _frozen_project(project, frozen=False).write("clean.csv", "edited by hand\n")
    assert codes(plan(project.root)) == {"prep": ("output_modified",),
                                         "train": ("upstream",)}


@pytest.mark.parametrize("command", ["plan", "run"])
def test_frozen_stage_missing_output_names_path_and_stage(project: Project,
                                                          command: str) -> None:
    """[stale.frozen-missing]: one error naming the dep, its reader and the frozen stage."""
    _frozen_project(project, frozen=True)
    record_all(project.root)
    (project.root / "clean.csv").unlink()
    result = project.cli(command)
    assert result.code == 1, result.err
    assert "semantic/frozen_output_missing" in result.err
    assert "'clean.csv'" in result.err and "'train'" in result.err and "'prep'" in result.err
    assert "Traceback" not in result.err
    assert (project.root / "model.bin").read_text() == "clean\n"  # nothing ran


def test_forcing_the_frozen_stage_produces_the_missing_output(project: Project) -> None:
    _frozen_project(project, frozen=True)
    record_all(project.root)
    (project.root / "clean.csv").unlink()
    result = project.cli("run", "-q", "--force", "prep", "train")
    assert result.code == 0, result.err
    assert (project.root / "clean.csv").read_text() == "clean\n"


def test_missing_source_dep_is_a_reason_not_an_error(project: Project) -> None:
    """[pipeline.deps-exist] (1.1): validate passes; plan lists dep_missing (after dep_added,
    the lock does not record it) and blocks the stage."""
    _frozen_project(project, frozen=False)
    record_all(project.root)
    project.write("pipeline.yaml", FROZEN.replace("FROZEN", "false").replace(
        "deps: [clean.csv]", "deps: [clean.csv, raw.csv]"))
    assert project.cli("validate").code == 0
    result = project.cli("plan", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["version"] == "1.1" and doc["summary"]["blocked"] == 1
    train = next(s for s in doc["stages"] if s["name"] == "train")
    assert train["action"] == "blocked" and train["reasons"] == [
        {"code": "dep_added", "path": "raw.csv"}, {"code": "dep_missing", "path": "raw.csv"}]


PARAMS_EDGE = """\
version: "1.0"
stages:
  a_use:
    cmd: cat gen/p.yaml > used.txt
    params:
      gen/p.yaml: [/lr]
    outs: [used.txt]
  b_gen:
    cmd: "mkdir -p gen && echo 'lr: LR' > gen/p.yaml"
    deps: [lr.txt]
    outs: [gen/]
"""


def test_generated_params_file_orders_its_reader_and_is_read_after(project: Project) -> None:
    """[pipeline.params-edge]: valid before the first run; the writer runs first; when the
    writer is to run again, the reader is only upstream."""
    project.write("pipeline.yaml", PARAMS_EDGE.replace("LR", "1"))
    project.write("lr.txt", "1\n")
    assert project.codes() == []
    assert [d.name for d in plan(project.root).to_run] == ["b_gen", "a_use"]
    result = project.cli("run", "-q")
    assert result.code == 0, result.err
    assert (project.root / "used.txt").read_text() == "lr: 1\n"
    project.write("pipeline.yaml", PARAMS_EDGE.replace("LR", "2"))
    assert codes(plan(project.root)) == {"b_gen": ("command_changed",),
                                         "a_use": ("upstream",)}
    assert project.cli("run", "-q").code == 0
    lock = json.loads((project.root / "pipeline.lock").read_text())
    assert lock["stages"]["a_use"]["params"] == {"gen/p.yaml": {"/lr": {"int": "2"}}}


def test_vars_file_written_by_a_stage_is_refused(project: Project) -> None:
    """[template.vars-source]"""
    project.write("pipeline.yaml", 'version: "1.0"\nvars: [v.yaml]\nstages:\n  gen:\n'
                  "    cmd: echo ${lr}\n    outs: [v.yaml]\n")
    project.write("v.yaml", "lr: 1\n")
    assert project.codes() == [("semantic", "vars_generated")]
    result = project.cli("run")
    assert result.code == 1 and "vars_generated" in result.err
    assert (project.root / "v.yaml").read_text() == "lr: 1\n"


GROUP = """\
version: "1.0"
stages:
  train:
    foreach: [b, a]
    cmd: echo ${item} > ${item}.txt
    outs: ["${item}.txt"]
  other:
    cmd: echo o > o.txt
    outs: [o.txt]
"""


@pytest.mark.parametrize("targets, expected", [
    (["train"], ["train@a", "train@b"]),
    (["train@b"], ["train@b"]),
    (["train", "other"], ["other", "train@a", "train@b"]),
])
def test_a_group_is_selected_by_its_base_name(project: Project, targets: list[str],
                                              expected: list[str]) -> None:
    """[stale.selection]"""
    project.write("pipeline.yaml", GROUP)
    result = project.cli("plan", "--json", *targets)
    assert result.code == 0, result.err
    assert [s["name"] for s in json.loads(result.out)["stages"]] == expected


def test_a_name_that_is_neither_stage_nor_group_is_a_usage_error(project: Project) -> None:
    project.write("pipeline.yaml", GROUP)
    result = project.cli("plan", "trai")
    assert result.code == 2 and "no stage 'trai'" in result.err


def test_every_reason_in_plan_json_has_the_details_its_code_requires() -> None:
    """[stale.reasons]: the schema's if/then per code rejects a reason without its details."""
    check = validator("plan")
    base = {"version": "1.0", "tool": {"name": "x", "version": "0"},
            "summary": {"to_run": 1, "changed": 1, "downstream": 0, "restore": 0,
                        "up_to_date": 0, "frozen": 0, "text": "t"},
            "up_to_date": [], "frozen": []}

    def valid(reason: dict[str, object]) -> bool:
        doc = {**base, "stages": [{"name": "s", "action": "run", "downstream": False,
                                   "reasons": [reason]}]}
        return not list(check.iter_errors(doc))

    assert valid({"code": "env_changed", "key": "SEED", "new": {"str": "1"}})
    assert not valid({"code": "env_changed", "name": "SEED"})
    assert not valid({"code": "definition_changed", "field": "wdir", "old": ".", "new": "a"})
    assert not valid({"code": "definition_changed", "key": "outs", "old": {}, "new": {}})
    assert not valid({"code": "dep_modified", "path": "a"})
    assert not valid({"code": "param_changed", "key": "/a", "old": {"int": "1"}})
    assert not valid({"code": "upstream"})
