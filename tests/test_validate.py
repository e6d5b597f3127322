"""`reftool validate`: each rule of SPEC.md with a passing and a failing case.

Tests name the SPEC anchor they check. Messages are pinned where users read them.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest
from conftest import BASE_PIPELINE, Project
from hypothesis import given, settings
from hypothesis import strategies as st

from reftool.files.model import FileState, Lock, LockEntry, OutState, canonical_lock_text
from reftool.files.schemas import validator


def test_base_project_is_valid(project: Project) -> None:
    project.base()
    assert project.codes() == []
    r = project.cli("validate")
    assert r.code == 0
    assert r.out == "valid: 0 errors, 0 warnings in 2 files\n"


# ---------------------------------------------------------------------------------- versions

@pytest.mark.parametrize("line, code", [
    ("", "version_missing"),                 # [version.declared]
    ("version: 1.0\n", "version_invalid"),   # a YAML float, not a string
    ('version: "1"\n', "version_invalid"),
    ('version: "01.0"\n', "version_invalid"),
    ('version: "2.0"\n', "major_unsupported"),  # [version.major]
    ('version: "1.2"\n', "minor_newer"),     # [version.minor]: this tool implements 1.1
])
def test_version_gate(project: Project, line: str, code: str) -> None:
    project.base(line + BASE_PIPELINE.split("\n", 1)[1])
    assert project.codes() == [("version", code)]


def test_version_float_gets_a_hint(project: Project) -> None:
    project.base("version: 1.0\n" + BASE_PIPELINE.split("\n", 1)[1])
    (d,) = project.report().diagnostics
    assert d.hint == 'write it as a string: version: "1.0"'
    assert (d.line, d.column) == (1, 10)


def test_newer_minor_message_says_upgrade(project: Project) -> None:
    project.base('version: "1.7"\n' + BASE_PIPELINE.split("\n", 1)[1])
    r = project.cli("validate")
    assert r.code == 1
    assert ("pipeline.yaml:1:10: error[version/minor_newer]: spec version 1.7 is newer than "
            "this tool, which reads 1.0 to 1.1; upgrade reftool to read it") in r.out


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_every_minor_up_to_the_spec_is_read(project: Project, version: str) -> None:
    # [version.minor]: a reader that implements 1.1 accepts 1.0 and 1.1
    project.base(f'version: "{version}"\n' + BASE_PIPELINE.split("\n", 1)[1])
    assert project.codes() == []


def test_written_outputs_keep_the_lowest_version(project: Project) -> None:
    # [version.write]: 1.1 adds nothing, so the plan and report JSON still say "1.0"
    project.base()
    for argv in (("plan", "--json"), ("validate", "--format", "json")):
        r = project.cli(*argv)
        assert json.loads(r.out)["version"] == "1.0", argv


@pytest.mark.parametrize("declared, codes", [
    ("1.0", [("schema", "additionalProperties")]),   # the key is newer than the file
    ("1.1", []),
])
def test_a_key_newer_than_the_declared_version_is_refused(
        project: Project, monkeypatch: pytest.MonkeyPatch, declared: str, codes) -> None:
    # [version.features], with a synthetic addition: pretend 1.1 added stages.*.frozen
    from reftool.files import validate
    monkeypatch.setitem(validate.ADDED_IN, ("pipeline", ("stages", "*", "frozen")), (1, 1))
    body = BASE_PIPELINE.split("\n", 1)[1].replace(
        "    cmd: python train.py\n", "    cmd: python train.py\n    frozen: true\n")
    project.base(f'version: "{declared}"\n' + body)
    report = project.report()
    assert [(d.phase, d.code) for d in report.errors] == codes
    if codes:
        (d,) = report.errors
        assert (d.pointer, d.anchor, d.line) == ("/stages/train/frozen", "version.features", 11)
        assert "added in spec version 1.1; this file declares 1.0" in d.message


def test_the_keys_added_in_1_1_are_those_listed() -> None:
    # [version.write]: a written lock declares "1.1" only when it records rules ([lock.rules])
    # (or an env digest, [security.secrets]: tests/test_evolve.py)
    from reftool.files.model import FileState, Lock, LockEntry, lock_to_dict
    from reftool.files.spec import ADDED_IN, WRITTEN_VERSION_TEXT
    assert set(ADDED_IN.values()) == {(1, 1)} and WRITTEN_VERSION_TEXT == "1.0"
    assert {path[-1] for _, path in ADDED_IN} == {
        "exclude", "rules", "path",  # [digest.ignore]: a dep's long form, [lock.rules]
        "name", "digest",  # [pipeline.env-record], [security.secrets]
        "meta", "x-*",  # [version.extensions]
        "template", "x", "y", "count", "title", "tolerance",  # [plots.definition], [metrics.tolerance]
        # an experiment record's run facts, stale stages and stored series
        "git_branch", "git_dirty", "deps", "duration", "commands", "stale", "stored"}

    def lock(rules: str | None) -> Lock:
        state = FileState(digest="sha256:" + "a" * 64, size=1, files=1, rules=rules)
        return Lock(version="1.0", stages={"s": LockEntry(cmd=("x",), wdir=".",
                    deps={"d/": state}, params={}, env={}, outs={})})
    assert lock_to_dict(lock(None))["version"] == "1.0"
    assert lock_to_dict(lock("sha256:" + "b" * 64))["version"] == "1.1"


def test_unknown_major_is_reported_before_schema(project: Project) -> None:
    project.base('version: "9.0"\nstages: 3\nbogus: true\n')
    assert project.codes() == [("version", "major_unsupported")]


# ---------------------------------------------------------------------------------- schema

def test_unknown_key_did_you_mean(project: Project) -> None:
    project.base(BASE_PIPELINE.replace("    deps: [train.py", "    dpes: [train.py"))
    r = project.cli("validate")
    assert r.code == 1
    assert ("pipeline.yaml:11:5: error[schema/additionalProperties]: unknown key 'dpes' in "
            "stage 'train'\n") in r.out
    assert "    hint: did you mean 'deps'?\n" in r.out


def test_all_problems_reported_not_the_first(project: Project) -> None:
    # [errors.all]: schema errors in two stages, and a semantic error in a third
    text = BASE_PIPELINE.replace("cmd: python prepare.py", "cmd: 5").replace(
        "outs: [model.bin]", "outs: [model.bin]\n    frozen: maybe") + \
        "  extra:\n    cmd: x\n    deps: [nothing/here.txt]\n"
    project.base(text)
    codes = project.codes()
    assert ("schema", "anyOf") in codes
    assert ("schema", "type") in codes
    assert len(codes) >= 2


@pytest.mark.parametrize("path", [
    "/abs/path", "../up", "a/../b", "./a", "a/./b", "a//b", "a\\\\b", "", ".", "..", "a/..",
])
def test_path_form_rejected(project: Project, path: str) -> None:
    # [paths.form]
    project.base(BASE_PIPELINE.replace("deps: [train.py,", f'deps: ["{path}", train.py,'))
    assert ("schema", "pattern") in project.codes()


@pytest.mark.parametrize("path", ["a.b/c", "..a", "a..", ".hidden", "dir/", "x/y z/é.txt"])
def test_path_form_accepted(project: Project, path: str) -> None:
    project.base(BASE_PIPELINE.replace("outs: [model.bin]", f'outs: [model.bin, "{path}"]'))
    assert [c for c in project.codes() if c[0] == "schema"] == []


@pytest.mark.parametrize("name, ok", [
    ("train", True), ("_x", True), ("9lives", True), ("a.b-c_d", True), ("x" * 100, True),
    ("x" * 101, False), ("-a", False), (".a", False), ("a b", False), ("a@b", False),
    ("é", False),
])
def test_stage_names(project: Project, name: str, ok: bool) -> None:
    # [pipeline.stage-name]
    project.base(BASE_PIPELINE + f'  "{name}":\n    cmd: x\n')
    assert (("schema", "propertyNames") not in project.codes()) is ok


@pytest.mark.parametrize("fragment, code", [
    ("    env: [1BAD]\n", "pattern"),            # [pipeline.env-name]
    ("    env: [A, A]\n", "uniqueItems"),
    ("    always_run: yes\n", "type"),           # YAML 1.2: `yes` is a string
    ("    foreach: [1]\n    matrix: {a: [1]}\n", "not"),  # [generate.names]
    ("    params: {params.yaml: [train]}\n", "pattern"),  # [params.pointer]
    ("    params: {params.yaml: [/a, 1]}\n", "type"),
    ("    metrics: [{path: m.json, kind: table}]\n", "enum"),
    ("    metrics: [m/]\n", "pattern"),            # a metrics output is a file
    ("    outs: [{path: a, cache: 1}]\n", "type"),
    ("    foreach: []\n", "minItems"),
])
def test_stage_schema_rules(project: Project, fragment: str, code: str) -> None:
    project.base(BASE_PIPELINE + "  extra:\n    cmd: x\n" + fragment)
    assert ("schema", code) in project.codes()


@pytest.mark.parametrize("fragment", [
    '    cmd: ""\n',                                # [pipeline.stage-keys]: a string
    "    params: {params.yaml: []}\n",              # any number of pointers
    "    params: {params.yaml: [/train/lr, /train/lr]}\n",  # read once
])
def test_what_the_text_allows_the_schema_allows(project: Project, fragment: str) -> None:
    # [conformance.precedence]: the 1.0 schemas refused these; the text never did
    cmd = "" if "cmd" in fragment else "    cmd: x\n"
    project.base(BASE_PIPELINE + "  extra:\n" + cmd + fragment)
    assert project.codes("error") == []


def test_missing_cmd_is_required(project: Project) -> None:
    project.base(BASE_PIPELINE + "  extra:\n    deps: [train.py]\n")
    (d,) = project.report().diagnostics
    assert (d.phase, d.code, d.message) == (
        "schema", "required", "stage 'extra' is missing the required key 'cmd'")
    assert (d.line, d.column) == (16, 3)


def test_best_summary_needs_direction(project: Project) -> None:
    # [metrics.declarations]
    project.base(BASE_PIPELINE + "metrics:\n  loss: {summary: best}\n")
    assert project.codes() == [("schema", "required")]
    project.base(BASE_PIPELINE + "metrics:\n  loss: {summary: best, direction: lower}\n")
    assert project.codes() == []


def test_top_level_unknown_key(project: Project) -> None:
    project.base(BASE_PIPELINE + "stage:\n  x: 1\n")
    (d,) = project.report().diagnostics
    assert (d.code, d.hint, d.line) == ("additionalProperties", "did you mean 'stages'?", 16)


# ---------------------------------------------------------------------------------- semantic

def test_params_format(project: Project) -> None:
    # [files.params-format]
    project.base(BASE_PIPELINE.replace("params.yaml: [/train]", "params.ini: [/train]"),
                 **{"params.ini": "[train]\n"})
    assert ("semantic", "params_format") in project.codes()


def test_params_file_missing(project: Project) -> None:
    # [params.missing]
    project.base(BASE_PIPELINE.replace("params.yaml: [/train]", "other.yaml: [/train]"))
    assert project.codes() == [("semantic", "params_file_missing")]


def test_params_key_missing_with_pointer_hint(project: Project) -> None:
    project.base(BASE_PIPELINE.replace("[/train]", "[/train.lr, /train/nope]"))
    ds = project.report().diagnostics
    assert [(d.code, d.line, d.column) for d in ds] == [
        ("params_key_missing", 13, 21), ("params_key_missing", 13, 32)]
    assert ds[0].hint == "keys are JSON Pointers: did you mean '/train/lr'?"


def test_params_pointer_with_escapes_resolves(project: Project) -> None:
    project.base(BASE_PIPELINE.replace("[/train]", "[/opt/lr.max, /opt/a~1b, /opt/t~0, /l/1]"),
                 **{"params.yaml": 'prepare: {seed: 1}\nopt: {lr.max: 1, a/b: 2, "t~": 3}\n'
                                   "l: [a, b]\n"})
    assert project.codes() == []


def test_whole_file_params(project: Project) -> None:
    # [params.whole-file]
    project.base(BASE_PIPELINE.replace("params.yaml: [/train]", 'cfg.toml: "*"'),
                 **{"cfg.toml": "lr = 0.1\n[model]\ndepth = 3\n"})
    assert project.codes() == []


def test_params_file_parse_errors_are_reported_in_that_file(project: Project) -> None:
    project.base(**{"params.yaml": "prepare:\n  seed: 1\n  seed: 2\n"})
    ds = project.report().diagnostics
    assert [(os.path.basename(d.file), d.code, d.line) for d in ds] == [
        ("params.yaml", "duplicate_key", 3)]


def test_path_kind(project: Project) -> None:
    # [paths.directory]
    project.base(BASE_PIPELINE.replace("data/raw.csv]", "data/raw.csv/, assets]"),
                 **{"assets/a.txt": "a"})
    ds = project.report().diagnostics
    assert [(d.code, d.hint) for d in ds] == [
        ("path_kind", "write it as 'data/raw.csv'"), ("path_kind", "write it as 'assets/'")]
    assert ds[0].message == "dep 'data/raw.csv/' is declared as a directory but is a file"
    assert ds[1].message == "dep 'assets' is declared as a file but is a directory"


def test_path_not_nfc(project: Project) -> None:
    # [paths.nfc]
    decomposed = unicodedata.normalize("NFD", "café.txt")
    project.base(BASE_PIPELINE.replace("outs: [model.bin]", f'outs: [model.bin, "{decomposed}"]'))
    assert project.codes() == [("semantic", "path_not_nfc")]
    composed = unicodedata.normalize("NFC", "café.txt")
    project.base(BASE_PIPELINE.replace("outs: [model.bin]", f'outs: [model.bin, "{composed}"]'))
    assert project.codes() == []


def test_path_case_collision(project: Project) -> None:
    # [paths.case]
    project.base(BASE_PIPELINE.replace("outs: [model.bin]", "outs: [model.bin, Model.bin]"))
    ds = project.report().diagnostics
    assert [(d.code, d.message) for d in ds] == [
        ("path_case_collision", "'Model.bin' and 'model.bin' differ only by case")]


def test_path_escapes_through_symlink(project: Project, tmp_path_factory) -> None:
    # [paths.symlinks]
    outside = tmp_path_factory.mktemp("outside") / "secret.csv"
    outside.write_text("x")
    project.base()
    os.symlink(outside, project.root / "link.csv")
    project.write("pipeline.yaml",
                  BASE_PIPELINE.replace("data/raw.csv]", "data/raw.csv, link.csv]"))
    assert project.codes() == [("semantic", "path_escapes")]


def test_symlink_inside_project_is_followed(project: Project) -> None:
    project.base()
    os.symlink(project.root / "data" / "raw.csv", project.root / "link.csv")
    project.write("pipeline.yaml",
                  BASE_PIPELINE.replace("data/raw.csv]", "data/raw.csv, link.csv]"))
    assert project.codes() == []


def test_duplicate_path(project: Project) -> None:
    # [pipeline.duplicates]
    project.base(BASE_PIPELINE.replace("deps: [train.py,", "deps: [train.py, train.py,"))
    assert project.codes() == [("semantic", "duplicate_path")]
    project.base(BASE_PIPELINE.replace("metrics: [metrics/train.json]", "plots: [model.bin]"))
    assert project.codes() == [("semantic", "duplicate_path")]


def test_output_conflict(project: Project) -> None:
    # [pipeline.one-producer]
    project.base(BASE_PIPELINE + "  other:\n    cmd: x\n    outs: [model.bin]\n")
    ds = project.report().diagnostics
    assert [(d.code, d.message) for d in ds] == [(
        "output_conflict", "'model.bin' is an output of both stage 'train' and stage 'other'")]


def test_output_nested(project: Project) -> None:
    project.base(BASE_PIPELINE + "  other:\n    cmd: x\n    outs: [data/prepared/extra.csv]\n")
    assert project.codes() == [("semantic", "output_nested")]


def test_cycle(project: Project) -> None:
    # [pipeline.graph]
    project.base(BASE_PIPELINE.replace("deps: [prepare.py, data/raw.csv]",
                                       "deps: [prepare.py, data/raw.csv, model.bin]"))
    ds = project.report().diagnostics
    assert [(d.code, d.message, d.line) for d in ds] == [
        ("cycle", "cycle in the stage graph: prepare -> train -> prepare", 3)]


def test_self_cycle_and_dir_containment(project: Project) -> None:
    # a dep that contains an output of the same stage is a cycle too
    project.base(BASE_PIPELINE.replace("deps: [train.py, data/prepared/]",
                                       "deps: [train.py, data/prepared/, out/]")
                 .replace("outs: [model.bin]", "outs: [out/model.bin]"))
    assert project.codes() == [("semantic", "cycle")]


def test_dep_missing_is_no_error_of_the_files(project: Project) -> None:
    # [pipeline.deps-exist] (1.1): validating the files does not need the data
    project.base(BASE_PIPELINE.replace("deps: [train.py,", "deps: [train.py, nope.csv,"))
    assert project.report().diagnostics == []


def test_dep_inside_directory_output_is_produced(project: Project) -> None:
    project.base(BASE_PIPELINE.replace("deps: [train.py, data/prepared/]",
                                       "deps: [train.py, data/prepared/train.csv]"))
    assert project.codes() == []


# ---------------------------------------------------------------------------------- generation

SWEEP = BASE_PIPELINE + """\
  fit:
    matrix:
      lr: [0.1, 0.01]
      depth: {shallow: 2, deep: 8}
    cmd: python train.py --lr ${item.lr} --depth ${item.depth}
    deps: [train.py]
    outs: ["fits/${item.lr}-${item.depth}.bin"]
  gen:
    foreach: {train: 0.8, test: 0.2}
    cmd: echo ${key} ${item}
    outs: ["gen/${key}.csv"]
  each:
    foreach: [1, 2.5, true, abc]
    cmd: echo ${item}
"""


def test_generated_stage_names(project: Project) -> None:
    # [generate.foreach], [generate.matrix], [generate.names]
    from reftool.files.validate import Report, validate_pipeline
    project.base(SWEEP)
    report = Report()
    p = validate_pipeline(project.root, "pipeline.yaml", report).pipeline
    assert report.diagnostics == []
    assert p is not None
    assert list(p.stages) == [
        "prepare", "train",
        "fit@lr=0.1,depth=shallow", "fit@lr=0.1,depth=deep",
        "fit@lr=0.01,depth=shallow", "fit@lr=0.01,depth=deep",
        "gen@train", "gen@test",
        "each@1", "each@2.5", "each@true", "each@abc"]
    fit = p.stages["fit@lr=0.01,depth=deep"]
    assert fit.cmd == ("python train.py --lr 0.01 --depth 8",)
    assert fit.outputs[0].path == "fits/0.01-8.bin"
    assert p.stages["gen@test"].cmd == ("echo test 0.2",)


def test_generated_name_part_invalid(project: Project) -> None:
    project.base(BASE_PIPELINE + "  x:\n    foreach: [a b]\n    cmd: echo\n")
    assert project.codes() == [("semantic", "generated_name")]


def test_generated_names_collide(project: Project) -> None:
    project.base(BASE_PIPELINE + "  x:\n    foreach: [1, '1']\n    cmd: echo ${item}\n")
    assert project.codes() == [("semantic", "duplicate_stage")]


TEMPLATED = """\
version: "1.0"
vars: [vars.yaml]
stages:
  s:
    cmd: python train.py --lr ${train.lr} --max ${opt["lr.max"]} --first ${layers[0]} $${HOME}
    deps: [train.py]
    outs: ["out/${train.name}.bin"]
"""

VARS = 'train: {lr: 0.001, name: m1}\nopt: {"lr.max": 1e-2}\nlayers: [64, 32]\n'


def test_templating_typed_and_recorded(project: Project) -> None:
    # [template.syntax], [template.typed], [template.inputs]
    from reftool.files.validate import Report, validate_pipeline
    project.base(TEMPLATED, **{"vars.yaml": VARS})
    report = Report()
    p = validate_pipeline(project.root, "pipeline.yaml", report).pipeline
    assert report.diagnostics == []
    assert p is not None
    s = p.stages["s"]
    assert s.cmd == ("python train.py --lr 0.001 --max 0.01 --first 64 ${HOME}",)
    assert s.outputs[0].path == "out/m1.bin"
    (ref,) = s.params
    assert (ref.file, ref.from_template) == ("vars.yaml", True)
    assert ref.pointers == ("/train/lr", "/opt/lr.max", "/layers/0", "/train/name")


@pytest.mark.parametrize("cmd, code", [
    ("echo ${train.lr", "template_syntax"),
    ("echo ${}", "template_syntax"),
    ("echo ${ train }", "template_syntax"),
    ("echo ${nope}", "template_undefined"),
    ("echo ${train.nope}", "template_undefined"),
    ("echo ${layers[5]}", "template_undefined"),
    ("echo ${train}", "template_type"),
    ("echo ${layers}", "template_type"),
])
def test_template_errors(project: Project, cmd: str, code: str) -> None:
    project.base(TEMPLATED.replace('python train.py --lr ${train.lr} --max ${opt["lr.max"]} '
                                   "--first ${layers[0]} $${HOME}", cmd),
                 **{"vars.yaml": VARS})
    assert ("semantic", code) in project.codes()


def test_template_conflict(project: Project) -> None:
    project.base(TEMPLATED.replace("vars: [vars.yaml]", "vars: [vars.yaml, more.yaml]"),
                 **{"vars.yaml": VARS, "more.yaml": "train: {lr: 1}\n"})
    assert ("semantic", "template_conflict") in project.codes()


def test_templated_path_is_checked_after_substitution(project: Project) -> None:
    project.base(TEMPLATED, **{"vars.yaml": VARS.replace("name: m1", "name: ../m1")})
    ds = project.report().diagnostics
    assert [(d.phase, d.code, d.line) for d in ds] == [("schema", "pattern", 7)]


def test_item_hides_vars_key(project: Project) -> None:
    project.base('version: "1.0"\nvars: [vars.yaml]\nstages:\n  s:\n    foreach: [a]\n'
                 "    cmd: echo ${item}\n", **{"vars.yaml": "item: 5\n"})
    assert project.codes() == []


# ---------------------------------------------------------------------------------- the lock

def _lock_for_base() -> Lock:
    digest = "sha256:" + "0" * 64
    return Lock(version="1.0", stages={
        "prepare": LockEntry(
            cmd=("python prepare.py",), wdir=".",
            deps={"prepare.py": FileState(digest=digest, size=1),
                  "data/raw.csv": FileState(digest=digest, size=8)},
            params={"params.yaml": {"/prepare/seed": 1}}, env={},
            outs={"data/prepared/": OutState(state=FileState(digest=digest, size=3, files=1),
                                             cache=True, persist=False)}),
    })


def test_lock_valid_and_canonical(project: Project) -> None:
    # [lock.contents], [lock.canonical]
    project.base()
    project.write("pipeline.lock", canonical_lock_text(_lock_for_base()))
    assert project.codes() == []


def test_lock_not_canonical_is_a_warning(project: Project) -> None:
    # [lock.read-canonical]
    project.base()
    text = canonical_lock_text(_lock_for_base())
    project.write("pipeline.lock", json.dumps(json.loads(text)))
    assert project.codes() == [("semantic", "lock_not_canonical")]
    assert project.cli("validate").code == 0
    assert project.cli("validate", "--strict").code == 1


def test_lock_stage_unknown_and_out_of_date(project: Project) -> None:
    # [errors.warnings], [lock.prune]
    project.base(BASE_PIPELINE.replace("python prepare.py", "python prepare.py --fast"))
    d = json.loads(canonical_lock_text(_lock_for_base()))
    d["stages"]["gone"] = d["stages"]["prepare"]
    from reftool.files.model import canonical_json
    project.write("pipeline.lock", canonical_json(d))
    ds = project.report().diagnostics
    assert [(d.severity, d.code) for d in ds] == [
        ("warning", "lock_stage_unknown"), ("warning", "lock_out_of_date")]
    assert ds[1].message == "lock entry of stage 'prepare' differs from the pipeline: cmd"


@pytest.mark.parametrize("mutate, code", [
    (lambda d: d.pop("version"), ("version", "version_missing")),
    (lambda d: d.update(version="1.3"), ("version", "minor_newer")),
    (lambda d: d["stages"]["prepare"].pop("env"), ("schema", "required")),
    (lambda d: d["stages"]["prepare"]["deps"]["prepare.py"].update(digest="md5:00"),
     ("schema", "pattern")),
    (lambda d: d["stages"]["prepare"]["params"]["params.yaml"].update(
        {"/prepare/seed": {"int": "01"}}), ("schema", "pattern")),
    (lambda d: d["stages"]["prepare"]["params"]["params.yaml"].update(
        {"/prepare/seed": 1}), ("schema", "type")),
])
def test_lock_schema(project: Project, mutate, code) -> None:
    project.base()
    d = json.loads(canonical_lock_text(_lock_for_base()))
    mutate(d)
    project.write("pipeline.lock", json.dumps(d, indent=2))
    assert code in project.codes()


# ---------------------------------------------------------------------------------- metrics

def test_metrics_summary(project: Project) -> None:
    # [metrics.summary], [metrics.nonfinite]
    project.base()
    project.write("metrics/train.json",
                  '{"version": "1.0", "metrics": {"acc": 0.9, "per": {"a": 1, "b": "NaN"}}}')
    assert project.codes() == []
    project.write("metrics/train.json", '{"version": "1.0", "metrics": {"acc": "high"}}')
    assert ("schema", "anyOf") in project.codes()
    project.write("metrics/train.json", '{"version": "1.0", "metrics": {"acc": NaN}}')
    assert project.codes() == [("parse", "syntax")]


def test_series_torn_last_line_ignored(project: Project) -> None:
    # [metrics.series]
    text = ('{"version": "1.0", "kind": "series"}\n'
            '{"step": 0, "time": "2026-01-31T12:00:00Z", "metrics": {"loss": 1.5}}\n'
            '{"step": 1, "metrics": {"loss": "Infinity"}}\n'
            '{"step": 2, "metr')
    p = project.write("m.jsonl", text)
    r = project.cli("validate", str(p))
    assert r.code == 0, r.out


def test_series_bad_record_names_its_line(project: Project) -> None:
    text = ('{"version": "1.0", "kind": "series"}\n'
            '{"step": 0, "metrics": {"loss": 1.5}}\n'
            '{"step": -1, "metrics": {"loss": 1.5}}\n'
            '{"step": 2, "metrics": {"loss": 1.5}\n')
    p = project.write("m.jsonl", text)
    r = project.cli("validate", str(p))
    assert r.code == 1
    assert f"{p}:3:10: error[schema/minimum]" in r.out
    assert f"{p}:4:" in r.out and "error[parse/syntax]" in r.out


def test_series_without_header(project: Project) -> None:
    p = project.write("m.jsonl", '{"step": 0, "metrics": {"loss": 1.5}}\n')
    r = project.cli("validate", str(p))
    assert r.code == 1 and "version/version_missing" in r.out


def test_experiment_record(project: Project) -> None:
    # [experiments.record]
    record = {"version": "1.0", "id": "2026-01-31-abc", "name": "baseline",
              "created": "2026-01-31T12:00:00Z", "git_commit": None,
              "params": {"params.yaml": {"/train/lr": {"float": "0.01"}}},
              "metrics": {"acc": 0.9}, "series": {}, "lock_digest": None}
    p = project.write("experiments/2026-01-31-abc.json", json.dumps(record))
    assert project.cli("validate", str(p)).code == 0
    record["created"] = "yesterday"
    p.write_text(json.dumps(record))
    assert project.cli("validate", str(p)).code == 1


# ---------------------------------------------------------------------------------- by path

def test_kind_detection(project: Project) -> None:
    # [tool.validate]
    from pathlib import Path

    from reftool.files.validate import detect_kind
    project.base()
    project.write("other.pipeline.yml", BASE_PIPELINE)
    project.write("m.json", '{"version": "1.0", "metrics": {}}')
    project.write("p.json", '{"a": 1}')
    project.write("x.lock", "{}")
    project.write("s.jsonl", "")
    project.write("experiments/e.json", "{}")
    kinds = {n: detect_kind(project.root / n) for n in (
        "pipeline.yaml", "other.pipeline.yml", "m.json", "p.json", "x.lock", "s.jsonl",
        "experiments/e.json", "params.yaml")}
    assert kinds == {"pipeline.yaml": "pipeline", "other.pipeline.yml": "pipeline",
                     "m.json": "metrics", "p.json": "params", "x.lock": "lock",
                     "s.jsonl": "series", "experiments/e.json": "experiment",
                     "params.yaml": "params"}
    assert isinstance(project.root, Path)


def test_validate_paths_reports_each_file(project: Project) -> None:
    project.base()
    bad = project.write("bad.json", "{")
    r = project.cli("validate", str(project.root / "params.yaml"), str(bad),
                    str(project.root / "missing.yaml"))
    assert r.code == 1
    assert "error[parse/syntax]" in r.out and "error[io/file_not_found]" in r.out


def test_no_pipeline_here(project: Project) -> None:
    r = project.cli("validate")
    assert r.code == 1
    assert "pipeline.yaml: error[io/file_not_found]: no pipeline file here" in r.out


# ---------------------------------------------------------------------------------- reports

def test_json_report_follows_its_schema(project: Project) -> None:
    project.base(BASE_PIPELINE.replace("deps: [train.py,", "dpes: [train.py,"))
    r = project.cli("validate", "--format", "json")
    report = json.loads(r.out)
    assert list(validator("validation-report").iter_errors(report)) == []
    assert report["valid"] is False
    (d,) = report["diagnostics"]
    assert (d["phase"], d["code"], d["line"], d["column"], d["pointer"]) == (
        "schema", "additionalProperties", 11, 5, "/stages/train/dpes")


def test_github_annotations(project: Project) -> None:
    project.base(BASE_PIPELINE.replace("deps: [train.py,", "dpes: [train.py,"))
    r = project.cli("validate", "--format", "github")
    first = r.out.splitlines()[0]
    assert first.startswith("::error file=pipeline.yaml,line=11,col=5,"
                            "title=schema/additionalProperties::unknown key 'dpes'")


def test_json_report_valid_project(project: Project) -> None:
    project.base()
    report = json.loads(project.cli("validate", "--format", "json").out)
    assert report["valid"] is True
    assert report["files"] == [{"path": "pipeline.yaml", "kind": "pipeline"},
                               {"path": "params.yaml", "kind": "params"}]


def test_validate_never_executes_commands(project: Project) -> None:
    # [pipeline.no-exec]
    marker = project.root / "pwned"
    project.base(BASE_PIPELINE.replace("python prepare.py", f"touch {marker}")
                 + f"description: $(touch {marker})\n")
    assert project.cli("validate").code == 0
    assert project.cli("validate", "--format", "json").code == 0
    assert not marker.exists()


@pytest.mark.parametrize("text,ok", [
    ("2026-01-31T12:00:00Z", True), ("2024-02-29T23:59:60+23:59", True),
    ("2026-01-31T12:00:00.123456789-05:30", True), ("2026-02-29T00:00:00Z", False),
    ("2026-02-30T12:00:00Z", False), ("2026-13-01T00:00:00Z", False),
    ("2026-00-10T00:00:00Z", False), ("2026-01-31T24:00:00Z", False),
    ("2026-01-31T12:60:00Z", False), ("2026-01-31T12:00:61Z", False),
    ("2026-01-31T12:00:00+24:00", False), ("2026-01-31T12:00:00+00:60", False),
    ("not a date", True),  # the shape is the pattern's to reject, once
])
def test_rfc3339_dates_are_real(text: str, ok: bool) -> None:
    # SPEC [metrics.series], [experiments.record]: `schema/format` for impossible dates
    from reftool.files.schemas import is_rfc3339
    assert is_rfc3339(text) is ok


@pytest.mark.parametrize("text,codes", [
    ('{"version": "1.0", "kind": "series"}', set()),
    ("", set()),
    ('{"version": "1.0", "kind": "series"}\r\n', {("parse", "syntax")}),
    ('{"version": "1.0", "kind": "series"}\n{"step": 2, "metrics": {"a": 1}}\r\n',
     {("parse", "syntax")}),
    ('{"version": "1.0", "kind": "series"}\n{"step": 1.0, "metrics": {"a": 1}}\n',
     {("schema", "type")}),
    ('{"version": "1.0", "kind": "series"}\n{"step": 3, "metrics": {"a": 1}}\n'
     '{"step": 1, "metrics": {"a": 1}}\n', set()),
])
def test_series_file_readings(tmp_path: Path, text: str, codes: set[tuple[str, str]]) -> None:
    # SPEC [metrics.series]: a torn header is an empty series; CR LF is rejected; steps are
    # ints, in any order
    from reftool.files.validate import validate_paths
    (tmp_path / "m.jsonl").write_bytes(text.encode())
    report = validate_paths([tmp_path / "m.jsonl"])
    assert {(d.phase, d.code) for d in report.errors} == codes


def _matching_one(value: object, pattern: tuple[str, ...], at: tuple = ()) -> list[tuple]:
    """The definition: the paths in `value` that one pattern names, in document order."""
    if not pattern:
        return [at]
    head, rest = pattern[0], pattern[1:]
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    return [p for key, child in items
            if head in ("*", key) or (head == "x-*" and isinstance(key, str)
                                      and key.startswith("x-"))
            for p in _matching_one(child, rest, (*at, key))]


_HEADS = st.sampled_from(["*", "x-*", "a", "b", "meta", "x-a", "deps", "stages"])
_KEYS = st.sampled_from(["a", "b", "meta", "x-a", "x-", "xa", "*", "deps", "stages"])
_TREES = st.recursive(st.one_of(st.none(), st.integers(), st.text(max_size=2)),
                      lambda kids: st.one_of(st.lists(kids, max_size=3),
                                             st.dictionaries(_KEYS, kids, max_size=4)),
                      max_leaves=30)


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(_TREES, st.lists(st.lists(_HEADS, max_size=4).map(tuple), max_size=6))
def test_one_walk_finds_what_a_walk_a_pattern_finds(value: object,
                                                    patterns: list[tuple[str, ...]]) -> None:
    # [version.features] looks for every key a later minor release added in one walk of the
    # document (issue 18): the same paths, in the same order, as a walk for each pattern
    from reftool.files.validate import matching_all
    found = matching_all(value, patterns)
    assert set(found) == set(patterns)
    for pattern in patterns:
        assert found[pattern] == _matching_one(value, pattern), pattern
