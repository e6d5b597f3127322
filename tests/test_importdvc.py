"""`reftool import-dvc` on dvc.yaml files in the shapes real projects use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project
from reftool.files.documents import parse
from reftool.integrations.importdvc import convert, to_yaml
from reftool.files.validate import validate_project


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", *args], cwd=root,
                          capture_output=True, text=True, timeout=60)


def converted(project: Project, dvc_yaml: str, **files: str) -> tuple[dict, list]:
    for name, text in files.items():
        project.write(name, text)
    project.write("dvc.yaml", dvc_yaml)
    result = convert(project.root)
    # what is written reads back as the same pipeline, and validates against the schema
    text = to_yaml(result.pipeline, "dvc.yaml")
    assert parse(text, display="p", fmt="yaml").value == result.pipeline
    project.write("pipeline.yaml", text)
    return result.pipeline, result.notes


def test_single_stage(project: Project) -> None:
    p, notes = converted(project, """\
stages:
  train:
    cmd: python train.py
    deps: [train.py, data]
    params: [train.lr, train.epochs]
    outs: [model.pkl]
    desc: trains
""", **{"train.py": "", "data/x.csv": "", "params.yaml": "train: {lr: 1, epochs: 2}\n"})
    assert p == {"version": "1.0", "stages": {"train": {
        "cmd": "python train.py", "desc": "trains", "deps": ["train.py", "data/"],
        "params": {"params.yaml": ["/train/lr", "/train/epochs"]}, "outs": ["model.pkl"]}}}
    assert notes == []
    assert validate_project(project.root, "pipeline.yaml").errors == []


def test_wdir_paths_become_root_relative(project: Project) -> None:
    p, notes = converted(project, """\
stages:
  s:
    wdir: src
    cmd: python run.py
    deps: [run.py, ../data/raw.csv]
    params:
      - ../conf.yaml: [a.b]
    outs:
      - ../out/result.bin:
          persist: true
          cache: false
""", **{"src/run.py": "", "data/raw.csv": "", "conf.yaml": "a: {b: 1}\n"})
    s = p["stages"]["s"]
    assert s["wdir"] == "src" and s["deps"] == ["src/run.py", "data/raw.csv"]
    assert s["params"] == {"conf.yaml": ["/a/b"]}
    assert s["outs"] == [{"path": "out/result.bin", "persist": True, "cache": False}]
    assert notes == []


def test_foreach_over_a_list_and_a_dict_and_matrix(project: Project) -> None:
    p, notes = converted(project, """\
stages:
  lst:
    foreach: [a, b]
    do:
      cmd: echo ${item}
  dct:
    foreach:
      small: {n: 1}
      big: {n: 2}
    do:
      cmd: echo ${key} ${item.n}
  dicts:
    foreach:
      - {n: 1}
      - {n: 2}
    do:
      cmd: echo ${item.n}
  mtx:
    matrix:
      lr: [0.1, 0.01]
      model: [cnn, mlp]
    cmd: echo ${item.lr} ${item.model}
""")
    st = p["stages"]
    assert st["lst"] == {"foreach": ["a", "b"], "cmd": "echo ${item}"}
    assert st["dct"]["foreach"] == {"small": {"n": 1}, "big": {"n": 2}}
    assert st["dicts"]["foreach"] == {"0": {"n": 1}, "1": {"n": 2}}  # DVC's names: dicts@0
    assert st["mtx"]["matrix"] == {"lr": [0.1, 0.01], "model": ["cnn", "mlp"]}
    assert [(line, m.split(":")[0]) for line, m in notes] == [
        (19, "matrix stage 'mtx'")]
    from reftool.files.validate import Report, validate_pipeline
    pipeline = validate_pipeline(project.root, "pipeline.yaml", Report()).pipeline
    assert pipeline is not None
    assert "dicts@1" in pipeline.stages and "mtx@lr=0.01,model=mlp" in pipeline.stages


def test_vars_templating_and_whole_params_file(project: Project) -> None:
    p, notes = converted(project, """\
vars:
  - params.yaml
  - extra.yaml:train
stages:
  s:
    cmd: python t.py --lr ${train.lr}
    params:
      - extra.yaml:
""", **{"params.yaml": "train: {lr: 1}\n", "extra.yaml": "train: {x: 1}\n"})
    assert p["vars"] == ["params.yaml", "extra.yaml"]
    assert p["stages"]["s"]["params"] == {"extra.yaml": "*"}
    assert notes == [(3, "vars 'extra.yaml:train': only whole files are carried over")]


def test_metrics_plots_flags_and_top_level_are_listed(project: Project) -> None:
    p, notes = converted(project, """\
stages:
  ev:
    cmd: python ev.py
    metrics:
      - scores.json:
          cache: false
    plots:
      - roc.csv:
          x: fpr
          y: tpr
    always_changed: true
    frozen: true
    meta: {owner: me}
metrics: [extra.json]
plots:
  - roc.png
""")
    ev = p["stages"]["ev"]
    assert ev["metrics"] == [{"path": "scores.json", "cache": False}]
    assert ev["plots"] == ["roc.csv"]
    assert ev["always_run"] is True and ev["frozen"] is True
    assert [line for line, _ in notes] == [9, 10, 13, 14, 15]


def test_cli_refuses_to_overwrite_and_plan_says_the_lock_is_not_read(project: Project) -> None:
    project.write("dvc.yaml", "stages:\n  s:\n    cmd: echo hi > o.txt\n    outs: [o.txt]\n")
    project.write("dvc.lock", "schema: '2.0'\n")
    r = cli(project.root, "import-dvc")
    assert r.returncode == 0 and "wrote" in r.stdout and "dvc.lock is not converted" in r.stdout
    assert cli(project.root, "import-dvc").returncode == 1  # exists: not overwritten
    assert cli(project.root, "import-dvc", "--force").returncode == 0
    r = cli(project.root, "plan")
    assert "dvc.lock is not read" in r.stderr and "s: run\n    never_run" in r.stdout


@pytest.mark.parametrize("bad", ["stages: [1, 2]\n", "stages:\n  s: {deps: [a]}\n"])
def test_unusable_stages_are_reported(project: Project, bad: str) -> None:
    project.write("dvc.yaml", bad)
    result = convert(project.root)
    assert result.pipeline["stages"] == {} and len(result.notes) == 1
