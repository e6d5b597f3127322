"""`reftool exp run -S`, the queue, apply, branch and remove, on real runs of the classifier
example (copied to a temporary folder, with few epochs so that each run takes seconds).
SPEC [experiments.set], [experiments.queue], [experiments.isolated], [experiments.names],
[experiments.apply], [tool.exp-run]."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reftool.experiments.isolated import set_params
from reftool.experiments.queue import SetError, grid, parse_set, split_values
from reftool.files.values import from_typed_tree

REPO = Path(__file__).resolve().parent.parent


def reftool(project: Path, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "reftool", "-C", str(project), *args],
                       capture_output=True, text=True, timeout=300)
    if check is not None:
        assert r.returncode == check, (r.stdout, r.stderr)
    return r


def records(project: Path) -> dict[str, dict]:
    """Name -> record."""
    folder = project / "experiments"
    found = [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []
    return {r["name"]: r for r in found}


def lr_of(record: dict) -> object:
    return from_typed_tree(record["params"]["params.yaml"]["/train/lr"])


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The classifier, 3 epochs, run once: its cache holds prepare and featurize."""
    project = tmp_path_factory.mktemp("exprun") / "classifier"
    shutil.copytree(REPO / "examples" / "classifier", project)
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("epochs: 100", "epochs: 3"))
    reftool(project, "run", "-q", "--no-record")
    return project


@pytest.fixture
def project(base: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "p"
    shutil.copytree(base, copy, symlinks=True)
    return copy


# ------------------------------------------------------------------------------ settings

FILES = {"params.yaml": {"train": {"lr": 0.2, "epochs": 8}, "prepare": {"seed": 1}},
         "other.yaml": {"train": {"lr": 1.0}, "x.y": 1}}


def test_set_forms_and_yaml_typing() -> None:
    one = {"params.yaml": FILES["params.yaml"]}
    assert parse_set("train.lr=0.1", one).pointer == "/train/lr"
    assert parse_set("/train/lr=0.1", one).values == (0.1,)
    assert parse_set("params.yaml:train.epochs=010", one).values == (10,)  # YAML 1.2: int 10
    assert parse_set("train.lr=1e-4", one).values == (1e-4,)
    assert parse_set("train.lr='1'", one).values == ("1",)
    assert parse_set("train.lr=[1,2]", one).values == ([1, 2],)  # one list, not a grid
    assert parse_set("train.lr=0.1,0.2,true", one).values == (0.1, 0.2, True)
    assert parse_set("other.yaml:/x.y=2", FILES).file == "other.yaml"
    assert split_values("a,'b,c',{d: 1, e: 2}") == ["a", "'b,c'", "{d: 1, e: 2}"]


@pytest.mark.parametrize("text, files, says", [
    ("train.lr=0.1", FILES, "in other.yaml and params.yaml"),  # ambiguous: name the file
    ("train.nope=1", {"params.yaml": FILES["params.yaml"]}, "no params file of the pipeline"),
    ("nope.yaml:/a=1", FILES, "not a params file of the pipeline"),
    ("train.lr=", FILES, "no value after '='"),
    ("train.lr", FILES, "expected [FILE:]KEY=VALUE"),
    ("params.yaml:/prepare/seed/x=1", FILES, "is not a mapping"),
    ("params.yaml:/train/lr=[1,", FILES, "expected a YAML 1.2 value"),
])
def test_bad_settings_say_why(text: str, files: dict, says: str) -> None:
    with pytest.raises(SetError, match=None) as e:
        parse_set(text, files)
    assert says in str(e.value)


def test_grid_order_and_a_key_set_twice() -> None:
    one = {"params.yaml": FILES["params.yaml"]}
    points = grid([parse_set("train.lr=1,2", one), parse_set("train.epochs=3,4", one)])
    got = [(from_typed_tree(p["params.yaml"]["/train/lr"]),
            from_typed_tree(p["params.yaml"]["/train/epochs"])) for p in points]
    assert got == [(1, 3), (1, 4), (2, 3), (2, 4)]
    with pytest.raises(SetError, match="set twice"):
        grid([parse_set("train.lr=1", one), parse_set("/train/lr=2", one)])


def test_set_params_keeps_comments(tmp_path: Path) -> None:
    text = "# top\ntrain:\n  lr: 0.2   # rate\n  decay: 1e-4\n"
    (tmp_path / "params.yaml").write_text(text)
    set_params(tmp_path, {"params.yaml": {"/train/lr": {"float": "0.05"}}})
    assert (tmp_path / "params.yaml").read_text() == text.replace("0.2 ", "0.05")
    with pytest.raises(SetError, match="YAML and JSON"):
        (tmp_path / "p.toml").write_text("a = 1\n")
        set_params(tmp_path, {"p.toml": {"/a": {"int": "2"}}})


# ------------------------------------------------------------------------------ real runs

def test_exp_run_leaves_the_workspace_and_restores_from_the_cache(project: Path) -> None:
    params = (project / "params.yaml").read_bytes()
    metrics = (project / "metrics" / "eval.json").read_bytes()
    r = reftool(project, "exp", "run", "-S", "train.lr=0.05", "--name", "small-lr")
    assert "restored from cache 2" in r.stdout and "ran 2" in r.stdout, r.stdout
    assert (project / "params.yaml").read_bytes() == params  # [experiments.isolated]
    assert (project / "metrics" / "eval.json").read_bytes() == metrics
    record = records(project)["small-lr"]
    assert lr_of(record) == 0.05
    ws = json.loads(metrics)["metrics"]
    assert record["metrics"]["accuracy"] != ws["accuracy"]  # its own run's numbers
    assert not list((project / ".reftool" / "tmp").glob("exp-*"))  # the copy is gone
    assert reftool(project, "validate", *[f"experiments/{p.name}" for p in
                                          (project / "experiments").glob("*.json")]).returncode == 0


def test_grid_in_parallel_names_and_duplicates(project: Path) -> None:
    r = reftool(project, "exp", "run", "-S", "train.lr=0.05,0.1", "-S", "train.hidden=16",
                "--name", "g", "-j", "2")
    assert "2 experiment(s) recorded, 0 failed" in r.stdout
    found = records(project)
    assert (lr_of(found["g-1"]), lr_of(found["g-2"])) == (0.05, 0.1)
    # [experiments.names]: a name in use is an error wherever a name is given
    assert "already named 'g-1'" in reftool(project, "exp", "run", "-S", "train.lr=1",
                                            "--name", "g-1", check=2).stderr
    assert "already named" in reftool(project, "exp", "save", "g-2", check=2).stderr
    assert "already named" in reftool(project, "run", "--name", "g-2", check=2).stderr
    assert len(records(project)) == 2


def test_queue_list_remove_run_all(project: Path) -> None:
    r = reftool(project, "exp", "run", "--queue", "-S", "train.lr=0.05,0.3", "--name", "q")
    assert "2 experiment(s) queued" in r.stdout
    queue = sorted((project / ".reftool" / "queue").glob("*.json"))
    assert len(queue) == 2 and not records(project)
    v = reftool(project, "validate", "--format", "json", *[str(p) for p in queue])
    assert json.loads(v.stdout)["files"][0]["kind"] == "queue-entry"
    listed = reftool(project, "exp", "queue").stdout
    assert "q-1" in listed and "/train/lr=0.3" in listed
    reftool(project, "exp", "queue", "remove", "q-1")
    assert "no queued experiment" in reftool(project, "exp", "queue", "remove", "zz",
                                             check=2).stderr
    reftool(project, "exp", "run", "--run-all", "-j", "2")
    assert list(records(project)) == ["q-2"] and lr_of(records(project)["q-2"]) == 0.3
    assert "the queue is empty" in reftool(project, "exp", "queue").stdout


def test_a_failed_experiment_is_marked_and_passed_over(project: Path) -> None:
    reftool(project, "exp", "run", "--queue", "-S", "train.hidden=-3", "--name", "bad")
    r = reftool(project, "exp", "run", "--run-all", check=1)
    assert "experiment bad failed" in r.stderr and ".log" in r.stderr
    assert "failed" in reftool(project, "exp", "queue").stdout
    assert "1 marked failed" in reftool(project, "exp", "run", "--run-all").stdout
    assert not records(project)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_runner_loses_nothing(project: Path, sig: int) -> None:
    """Kill the queue runner once the first record is written: every record is whole, every
    experiment is either recorded or still queued, and a second runner finishes the rest."""
    reftool(project, "exp", "run", "--queue", "-S", "train.lr=0.05,0.1", "--name", "k")
    ids = {p.stem for p in (project / ".reftool" / "queue").glob("*.json")}
    runner = subprocess.Popen([sys.executable, "-m", "reftool", "-C", str(project), "exp",
                               "run", "--run-all"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + 200
    while not (project / "experiments").is_dir() or not any(
            (project / "experiments").glob("*.json")):
        assert runner.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    runner.send_signal(sig)
    runner.communicate(timeout=60)
    assert runner.returncode in (-signal.SIGKILL, 130)
    done = {p.stem for p in (project / "experiments").glob("*.json")}
    queued = {p.stem for p in (project / ".reftool" / "queue").glob("*.json")}
    assert done and done | queued == ids  # nothing lost
    assert not [p for p in (project / "experiments").iterdir()
                if not p.name.endswith(".json") and p.name != "series"]
    # the series store ([experiments.series-store]) holds whole files only, no temporaries
    assert not [p for p in (project / "experiments" / "series").glob("*")
                if not p.name.endswith(".jsonl")]
    reftool(project, "validate", *[f"experiments/{i}.json" for i in done])  # whole records
    time.sleep(0.5)  # a child told to stop by the kernel (SIGKILL) finishes dying
    reftool(project, "exp", "run", "--run-all", "-j", "2")
    assert {p.stem for p in (project / "experiments").glob("*.json")} == ids
    assert sorted(records(project)) == ["k-1", "k-2"]


def test_apply_branch_remove(project: Path) -> None:
    reftool(project, "exp", "run", "-S", "train.lr=0.05", "--name", "best")
    record = records(project)["best"]
    assert "no experiment 'nope'" in reftool(project, "exp", "apply", "nope", check=2).stderr
    r = reftool(project, "exp", "apply", "best")
    assert "ran 0, restored from cache 2" in r.stdout, r.stdout  # outputs from the cache
    text = (project / "params.yaml").read_text()
    assert "lr: 0.05" in text and "# SGD learning rate" in text  # comments kept
    eval_now = json.loads((project / "metrics" / "eval.json").read_text())["metrics"]
    assert eval_now["accuracy"] == record["metrics"]["accuracy"]
    assert "up to date" in reftool(project, "plan").stdout

    # exp branch: a commit on a new branch; the workspace is left alone
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(project), *args], check=True,
                              capture_output=True, text=True).stdout
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    reftool(project, "exp", "run", "-S", "train.hidden=16", "--name", "h16")
    before = (project / "params.yaml").read_bytes()
    env_ok = subprocess.run(["git", "-C", str(project), "config", "user.name", "t"])
    subprocess.run(["git", "-C", str(project), "config", "user.email", "t@t"])
    assert env_ok.returncode == 0
    reftool(project, "exp", "branch", "h16", "exp-h16")
    assert "hidden: 16" in git("show", "exp-h16:params.yaml")
    assert "experiments/" in git("show", "--stat", "exp-h16")
    assert (project / "params.yaml").read_bytes() == before
    assert "already exists" in reftool(project, "exp", "branch", "h16", "exp-h16",
                                       check=2).stderr

    # exp remove: by name; an unknown or ambiguous name removes nothing
    assert "nothing was removed" in reftool(project, "exp", "remove", "best", "nope",
                                            check=2).stderr
    twin = dict(records(project)["h16"], id="20000101-000000-aaaaaa")
    (project / "experiments" / "20000101-000000-aaaaaa.json").write_text(json.dumps(twin))
    assert "name one by its id" in reftool(project, "exp", "remove", "h16", check=2).stderr
    reftool(project, "exp", "remove", "best", "20000101-000000-aaaaaa")
    assert sorted(records(project)) == ["h16"]
    assert os.path.exists(project / "params.yaml")
