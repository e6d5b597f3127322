"""`reftool import-dvc` on dvc.yaml files in the shapes real projects use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

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
    text = to_yaml(result.pipeline, ["dvc.yaml"])
    assert parse(text, display="p", fmt="yaml").value == result.pipeline
    project.write("pipeline.yaml", text)
    return result.pipeline, [(n.line, n.message) for n in result.notes
                             if n.kind in ("dropped", "refused")]


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
    assert notes == []  # the matrix names' change is a "changed" note, not a loss
    from reftool.files.validate import Report, validate_pipeline
    pipeline = validate_pipeline(project.root, "pipeline.yaml", Report()).pipeline
    assert pipeline is not None
    assert "dicts@1" in pipeline.stages and "mtx@lr=0.01,model=mlp" in pipeline.stages


def test_vars_templating_and_whole_params_file(project: Project) -> None:
    p, notes = converted(project, """\
vars:
  - params.yaml
  - extra.yaml:other
stages:
  s:
    cmd: python t.py --lr ${train.lr}
    params:
      - extra.yaml:
""", **{"params.yaml": "train: {lr: 1}\n", "extra.yaml": "other: {x: 1}\n"})
    assert p["vars"] == ["params.yaml"]  # a file:key selection is written out where used
    assert p["stages"]["s"]["params"] == {"extra.yaml": "*"}
    assert notes == []


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
    assert ev["metrics"] == [{"path": "scores.json", "cache": False, "kind": "plain"}]
    assert ev["plots"] == ["roc.csv"]
    assert ev["always_run"] is True and ev["frozen"] is True
    assert [line for line, _ in notes] == [9, 10, 13, 14, 16]


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


def _result(project: Project, files: list[str] | None = None) -> Any:
    result = convert(project.root, files)
    return result, {n.kind for n in result.notes}, " ".join(n.render() for n in result.notes)


def test_subfolder_dvc_yaml_with_wdir_up_and_implicit_params(project: Project) -> None:
    project.write("data/params.yaml", "prep: {n: 3}\ndirs: [a, b]\n")
    project.write("data/dvc.yaml", """\
stages:
  prep:
    wdir: ..
    cmd: python prep.py -n ${prep.n}
    deps: [prep.py, ../shared.csv]
    outs: [data/out/]
  per:
    foreach: ${dirs}
    do:
      cmd: echo ${item} > data/${item}.txt
      outs: ["data/${item}.txt"]
""")
    result, kinds, text = _result(project)
    st = result.pipeline["stages"]
    assert st["prep"]["cmd"] == "python prep.py -n ${prep.n}" and "wdir" not in st["prep"]
    assert st["prep"]["deps"] == ["prep.py"] and st["prep"]["outs"] == ["data/out/"]
    assert result.pipeline["vars"] == ["data/params.yaml"]  # DVC's implicit context
    assert st["per"]["foreach"] == ["a", "b"] and st["per"]["wdir"] == "data"
    assert "shared.csv" in text and "leaves the project root" in text
    assert "refused" not in kinds


def test_inline_vars_urls_maps_in_cmd_names_and_lock_directories(project: Project) -> None:
    project.write("params.yaml", "train: {lr: 0.1, deep: {n: 2}, fast: true}\n")
    project.write("dvc.lock", "schema: '2.0'\nstages:\n  get data:\n    outs:\n"
                  "    - path: raw\n      md5: 0123.dir\n      nfiles: 3\n")
    project.write("dvc.yaml", """\
vars:
  - name: small
stages:
  get data:
    cmd: curl -o raw https://x/${name}
    deps:
      - https://example.org/data.zip
      - s3://bucket/key
    outs: [raw]
  train:
    cmd: python t.py ${train}
    deps: [raw, raw, t.py]
    outs: [model]
""")
    result, kinds, text = _result(project)
    st = result.pipeline["stages"]
    assert set(st) == {"get_data", "train"}  # renamed, with a note
    assert st["get_data"]["cmd"] == "curl -o raw https://x/small"
    assert "deps" not in st["get_data"] and st["get_data"]["outs"] == ["raw/"]
    assert st["train"]["cmd"] == "python t.py --lr 0.1 --deep.n 2 --fast"
    assert st["train"]["deps"] == ["raw/", "t.py"]
    assert "'model'" not in text and "model" in text and "guessed" in kinds
    assert "a URL" in text and "listed twice" in text and "'get data' is named" in text


@pytest.mark.parametrize("bad, says", [
    ("steps:\n  s: {cmd: echo}\n", "'steps' is not a DVC key (DVC reads 'stages')"),
    ("stages:\n  s:\n    cmd: echo ${nope}\n", "${nope} is not defined"),
    ("vars: [{a: 1}, {a: 2}]\nstages:\n  s: {cmd: echo}\n", "'a' is defined by both"),
])
def test_refused_with_a_reason(project: Project, bad: str, says: str) -> None:
    project.write("dvc.yaml", bad)
    result, kinds, text = _result(project)
    assert result.refused and says in text


def test_several_dvc_yaml_into_one_pipeline(project: Project) -> None:
    project.write("dvc.yaml", "stages:\n  a: {cmd: echo > a.txt, outs: [a.txt]}\n")
    project.write("sub/dvc.yaml", "stages:\n  a: {cmd: cat ../a.txt > b.txt, "
                  "deps: [../a.txt], outs: [b.txt]}\n")
    result, kinds, text = _result(project)
    st = result.pipeline["stages"]
    assert set(st) == {"a", "sub.a"} and st["sub.a"]["deps"] == ["a.txt"]
    assert result.sources == ["dvc.yaml", "sub/dvc.yaml"] and "named 'sub.a'" in text


def test_cli_relative_dir_and_dash_c_and_check(project: Project) -> None:
    project.write("data/dvc.yaml", "stages:\n  s: {cmd: echo hi > o.txt, outs: [o.txt]}\n")
    r = cli(project.root, "import-dvc", "data", "--check")
    assert r.returncode == 0 and "would write data/pipeline.yaml" in r.stdout, r.stderr
    assert not (project.root / "data" / "pipeline.yaml").exists()
    r = cli(project.root, "-C", "data", "import-dvc", ".")
    assert r.returncode == 0, r.stderr
    text = (project.root / "data" / "pipeline.yaml").read_text()
    assert "cmd: echo hi > o.txt" in text and "data/o.txt" not in text
    r = cli(project.root / "data", "validate")
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_writes_nothing_when_refused(project: Project) -> None:
    project.write("dvc.yaml", "stages:\n  s:\n    cmd: echo ${nope}\n")
    r = cli(project.root, "import-dvc", ".")
    assert r.returncode == 1 and "not written" in r.stderr and "${nope}" in r.stdout
    assert not (project.root / "pipeline.yaml").exists()


def test_windows_paths_become_posix(project: Project) -> None:
    p, notes = converted(project, """\
stages:
  make:
    cmd: python .\\src\\make.py
    deps:
      - .\\src\\make.py
    outs:
      - .\\data\\raw\\
""")
    assert p["stages"]["make"]["deps"] == ["src/make.py"]
    assert p["stages"]["make"]["outs"] == ["data/raw/"]
    assert p["stages"]["make"]["cmd"] == "python .\\src\\make.py"  # cmd is the user's


def test_cli_default_root_is_the_git_root(project: Project) -> None:
    (project.root / ".git").mkdir()
    project.write("src/dvc.yaml", "stages:\n  s:\n    cmd: echo hi > o.txt\n    outs: [o.txt]\n")
    r = cli(project.root / "src", "import-dvc", "--check")
    assert r.returncode == 0, r.stderr
    assert f"would write {project.root}/pipeline.yaml" in r.stdout
    r = cli(project.root / "src", "import-dvc", "--file", "nope/dvc.yaml")
    assert r.returncode == 1 and "nope/dvc.yaml: error[io/file_not_found]" in r.stderr
