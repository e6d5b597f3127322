"""Experiments: the logging API, records, `exp show`, diffs, plots and the PR report
(SPEC section 12 and [experiments.record])."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Project
from reftool import track
from reftool.experiments.compare import diff, filter_rows, fmt, render_diff, render_table, sort_rows, table
from reftool.experiments.records import (
    Snapshot, read_series, record_snapshot, resolve, snapshot, summarize,
    workspace_reader,
)
from reftool.files.model import MetricDeclaration
from reftool.files.schemas import validator

PIPELINE = """\
version: "1.0"
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params:
      params.yaml: [/lr, /epochs]
      other.yaml: "*"
    outs: [model.bin]
    metrics: [metrics/train.jsonl, metrics/eval.json]
metrics:
  loss: {direction: lower, summary: min}
  acc: {direction: higher}
"""

TRAIN = """\
import sys
from reftool import param, track
lr, epochs = param("/lr"), param("/epochs")
with track.Series("metrics/train.jsonl", resume=False) as s:
    for step in range(epochs):
        s.log(step, loss=1.0 / (1 + lr * (step + 1)), acc=min(1.0, 0.5 + lr * step))
track.summary("metrics/eval.json", acc=min(1.0, 0.5 + lr * epochs), tiny=1e-7,
              per={"a": 0.5, "b": float("nan")})
open("model.bin", "w").write(str(lr))
"""


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def proj(project: Project) -> Project:
    project.base(PIPELINE, **{"train.py": TRAIN, "params.yaml": "lr: 0.1\nepochs: 5\n",
                              "other.yaml": "seed: 1\n"})
    return project


# ---------------------------------------------------------------------------------- track

def test_track_series_and_summary_follow_the_spec(tmp_path: Path) -> None:
    # [metrics.series], [metrics.summary], [metrics.nonfinite]
    series = tmp_path / "m" / "s.jsonl"
    with track.Series(str(series)) as s:
        s.log(0, loss=1.5, bad=math.nan, big=math.inf)
        s.log(1, loss=1.0)
    lines = series.read_text().splitlines()
    assert json.loads(lines[0]) == {"version": "1.0", "kind": "series"}
    first = json.loads(lines[1])
    assert first["metrics"] == {"loss": 1.5, "bad": "NaN", "big": "Infinity"}
    for line in lines[1:]:
        assert list(validator("series-record").iter_errors(json.loads(line))) == []
    summary = tmp_path / "e.json"
    track.summary(str(summary), acc=0.9, per={"a": -math.inf})
    doc = json.loads(summary.read_text())
    assert doc == {"version": "1.0", "metrics": {"acc": 0.9, "per": {"a": "-Infinity"}}}
    assert list(validator("metrics").iter_errors(doc)) == []
    with pytest.raises(ValueError):
        track.Series(str(series)).log(-1, x=1)
    with pytest.raises(TypeError):
        track.summary(str(summary), acc="high")


def test_track_resume_cuts_a_torn_line(tmp_path: Path) -> None:
    series = tmp_path / "s.jsonl"
    with track.Series(str(series)) as s:
        s.log(0, loss=1.0)
    with open(series, "a") as f:
        f.write('{"step": 1, "metr')  # a crash in the middle of a line
    with track.Series(str(series), resume=True) as s:
        s.log(1, loss=0.5)
    assert [json.loads(x)["step"] for x in series.read_text().splitlines()[1:]] == [0, 1]


def _steps(path: Path) -> list[int]:
    return [json.loads(x)["step"] for x in path.read_text().splitlines()[1:]]


def test_track_starts_a_fresh_series_per_run_unless_resumed(tmp_path: Path) -> None:
    series = tmp_path / "s.jsonl"
    for _ in range(2):  # a script run twice outside `reftool run`
        with track.Series(str(series)) as s:
            for _ in range(3):
                s.log(loss=1.0)  # the automatic step
    assert _steps(series) == [0, 1, 2]
    with track.Series(str(series), resume=True) as s:
        assert s.step == 3
        s.log(loss=0.5)
        s.log(7, loss=0.4)
        s.log(loss=0.3)
    assert _steps(series) == [0, 1, 2, 3, 7, 8]


def test_track_logs_several_metrics_in_one_call_by_mapping(tmp_path: Path) -> None:
    series = tmp_path / "s.jsonl"
    with track.Series(str(series)) as s:
        s.log_metrics({"train/loss": 1.0, "val/loss": 2.0, "acc": math.nan})
        s.log_metrics({"train/loss": 0.5}, step=5, time=False)
        with pytest.raises(TypeError):
            s.log_metrics({3: 1.0})  # type: ignore[dict-item]
        with pytest.raises(ValueError):
            s.log_metrics({"a": 1.0}, step=True)  # type: ignore[arg-type]
    lines = [json.loads(x) for x in series.read_text().splitlines()[1:]]
    assert lines[0]["metrics"] == {"train/loss": 1.0, "val/loss": 2.0, "acc": "NaN"}
    assert lines[1] == {"step": 5, "metrics": {"train/loss": 0.5}}
    for line in lines:
        assert list(validator("series-record").iter_errors(line)) == []


def test_track_is_durable_every_few_seconds_not_per_line(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    series = tmp_path / "s.jsonl"
    with track.Series(str(series)) as s:
        for _ in range(500):
            s.log(loss=1.0)
        # every line is already with the OS, readable by another process, before the close
        assert len(series.read_text().splitlines()) == 501
    assert 1 <= len(synced) <= 4  # the header, maybe a timed one, the close
    synced.clear()
    with track.Series(str(series), durable_every=0.0) as s:  # the first release's behaviour
        for _ in range(50):
            s.log(loss=1.0)
    assert len(synced) >= 50
    synced.clear()
    with track.Series(str(series), fsync=False) as s:
        s.log(loss=1.0)
    assert synced == []


def test_track_log_param_holds_this_runs_params_only(tmp_path: Path) -> None:
    path = tmp_path / "m" / "params.json"
    path.parent.mkdir()
    path.write_text('{"old": 1}\n')  # left by an earlier run: replaced, not merged into
    track.log_param("lr", 0.1, path=str(path))
    track.log_params(str(path), layers=[2, 3], lr=0.2)
    assert json.loads(path.read_text()) == {"lr": 0.2, "layers": [2, 3]}
    with pytest.raises(ValueError):
        track.log_param("lr", 0.1, path=str(tmp_path / "p.yaml"))


def test_track_params(tmp_path: Path) -> None:
    track.params(str(tmp_path / "p.json"), lr=0.1, layers=[2, 3])
    assert json.loads((tmp_path / "p.json").read_text()) == {"lr": 0.1, "layers": [2, 3]}
    with pytest.raises(ValueError):
        track.params(str(tmp_path / "p.yaml"), lr=1)


def test_importing_track_is_cheap() -> None:
    code = ("import sys; from reftool import track; print(sorted(m for m in ('jsonschema', "
            "'matplotlib', 'ruamel', 'numpy') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------- series

def test_read_series_ignores_a_torn_last_line() -> None:
    data = (b'{"version": "1.0", "kind": "series"}\n{"step": 0, "metrics": {"a": 1}}\n'
            b'{"step": 1, "metrics": {"a": "NaN"}}\n{"step": 2, "me')
    points = read_series(data)["a"]
    assert points[0] == (0, 1.0) and math.isnan(points[1][1]) and len(points) == 2


@pytest.mark.parametrize("rule, direction, expected", [
    ("last", None, 3.0), ("min", None, 1.0), ("max", None, 5.0), ("best", "lower", 1.0),
    ("best", "higher", 5.0)])
def test_summarize(rule: str, direction: str | None, expected: float) -> None:
    # [metrics.declarations]
    assert summarize([(0, 5.0), (1, 1.0), (2, 3.0)], rule, direction) == expected


# ---------------------------------------------------------------------------------- records

def test_run_writes_a_record_that_follows_its_schema(proj: Project) -> None:
    # [experiments.record], [experiments.when]
    r = cli(proj.root, "run", "--name", "first")
    assert r.returncode == 0, r.stdout + r.stderr
    (path,) = (proj.root / "experiments").glob("*.json")
    assert f"experiment recorded in experiments/{path.name}" in r.stdout
    record = json.loads(path.read_text())
    assert list(validator("experiment").iter_errors(record)) == []
    assert record["name"] == "first"
    assert record["params"] == {"params.yaml": {"/lr": {"float": "0.1"}, "/epochs": {"int": "5"}},
                                "other.yaml": {"/seed": {"int": "1"}}}
    # summary files merged; a declared metric found only in a series, by its summary rule
    assert record["metrics"]["acc"] == 1.0 and record["metrics"]["per"]["b"] == "NaN"
    assert record["metrics"]["loss"] == pytest.approx(1 / 1.5)  # min over the series
    entry = record["series"]["metrics/train.jsonl"]  # [experiments.series-store]
    stored = proj.root / "experiments" / "series" / (entry["digest"][7:] + ".jsonl")
    assert entry["stored"] is True and len(stored.read_text().splitlines()) == 6
    assert record["lock_digest"].startswith("sha256:")
    assert path.read_text().endswith("}\n")  # canonical form
    assert cli(proj.root, "validate", str(path)).returncode == 0
    r = cli(proj.root, "run")
    assert "experiment recorded" not in r.stdout  # nothing ran: no new record


def test_no_record_and_exp_save(proj: Project) -> None:
    assert cli(proj.root, "run", "--no-record").returncode == 0
    assert not (proj.root / "experiments").exists()
    r = cli(proj.root, "exp", "save", "by-hand")
    assert r.returncode == 0 and "saved experiment 'by-hand'" in r.stdout


def test_record_keeps_the_curve_after_the_workspace_changes(proj: Project) -> None:
    cli(proj.root, "run", "--name", "a")
    proj.write("params.yaml", "lr: 0.5\nepochs: 3\n")
    cli(proj.root, "run", "--name", "b")
    from reftool.experiments.records import records
    recs = list(records(proj.root))
    snaps = [record_snapshot(r, {}, proj.root) for r in recs]
    assert [len(s.series["metrics/train.jsonl"]["loss"]) for s in snaps] == [5, 3]


# ---------------------------------------------------------------------------------- tables

def _snap(label: str, params: dict, metrics: dict) -> Snapshot:
    return Snapshot(label=label, kind="experiment", params=params, metrics=metrics)


def test_table_shows_only_differing_params_and_formats_numbers() -> None:
    snaps = [_snap("a", {"p.yaml:/lr": 0.1, "p.yaml:/seed": 1}, {"loss": 1e-7, "acc": 0.91234}),
             _snap("b", {"p.yaml:/lr": 0.2, "p.yaml:/seed": 1}, {"loss": 2.5e-7, "acc": 0.8})]
    t = table(snaps)
    assert t.columns == ["experiment", "/lr", "acc", "loss"]
    assert render_table(t, "text").splitlines() == [
        "experiment  /lr     acc    loss",
        "a           0.1  0.9123    1e-7",
        "b           0.2     0.8  2.5e-7"]
    assert table(snaps, all_params=True).columns == ["experiment", "/lr", "/seed", "acc",
                                                     "loss"]
    assert render_table(t, "md").splitlines()[1] == "| --- | ---: | ---: | ---: |"
    doc = json.loads(render_table(t, "json"))
    assert doc["experiments"][0]["params"] == {"p.yaml:/lr": 0.1}
    assert doc["experiments"][0]["metrics"] == {"acc": 0.91234, "loss": 1e-7}
    assert list(validator("exp-show").iter_errors(doc)) == []
    assert render_table(t, "csv").splitlines()[1] == "a,0.1,0.91234,1e-07"  # exact floats


def test_sort_and_filter() -> None:
    snaps = [_snap(n, {}, {"acc": a}) for n, a in [("a", 0.5), ("b", 0.9), ("c", 0.7)]]
    t = table(snaps)
    assert [r[0] for r in sort_rows(t, "acc", descending=True).rows] == ["b", "c", "a"]
    assert [r[0] for r in filter_rows(t, ["acc>0.6"]).rows] == ["b", "c"]
    assert [r[0] for r in filter_rows(t, ["acc>0.6", "acc<0.8"]).rows] == ["c"]
    with pytest.raises(ValueError, match="no column"):
        filter_rows(t, ["nope>1"])
    with pytest.raises(ValueError, match="expected COLUMN OP VALUE"):
        filter_rows(t, ["acc~1"])


def test_fmt_never_rounds_to_zero() -> None:
    assert [fmt(v) for v in (1e-7, -3.14159e-12, 123456789.0, 0.0, 42, math.nan, True)] == [
        "1e-7", "-3.142e-12", "1.235e+8", "0", "42", "NaN", "true"]


def test_diff_better_or_worse_by_direction() -> None:
    decl = {"loss": MetricDeclaration(name="loss", direction="lower", summary="last"),
            "acc": MetricDeclaration(name="acc", direction="higher", summary="last")}
    changes = diff({"loss": 0.5, "acc": 0.8, "x": 1, "same": 2},
                   {"loss": 0.4, "acc": 0.7, "x": 3, "same": 2}, declarations=decl)
    assert [(c.name, c.verdict) for c in changes] == [("acc", "worse"), ("loss", "better"),
                                                      ("x", "")]
    loss = changes[1]
    assert loss.delta == pytest.approx(-0.1) and loss.relative == pytest.approx(-0.2)
    assert len(diff({"a": 1}, {"a": 1}, all_rows=True)) == 1
    text = render_diff(changes, "md", old_label="A", new_label="B", kind="metrics")
    assert "| loss | 0.5 | 0.4 | -0.1 (-20%) | ✅ better |" in text
    assert "| acc | 0.8 | 0.7 | -0.1 (-12.5%) | ❌ worse |" in text
    doc = json.loads(render_diff(changes, "json", old_label="A", new_label="B",
                                 kind="metrics"))
    assert doc["metrics"][1]["verdict"] == "better"


def test_params_diff_cli(proj: Project) -> None:
    cli(proj.root, "run", "--name", "base")
    proj.write("params.yaml", "lr: 0.2\nepochs: 5\n")
    r = cli(proj.root, "params", "diff", "base")
    assert r.returncode == 0
    assert r.stdout.splitlines()[1].split() == ["params.yaml:/lr", "0.1", "0.2", "+0.1",
                                                "(+100%)"]
    r = cli(proj.root, "metrics", "diff", "base", "--json")
    assert json.loads(r.stdout)["metrics"] == []  # nothing ran yet: metrics are the same
    assert cli(proj.root, "metrics", "diff", "nope").returncode == 2


# ---------------------------------------------------------------------------------- git

def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


def test_revisions_read_through_git_without_checkout(proj: Project) -> None:
    root = proj.root
    _git(root, "init", "-q", "-b", "main")
    cli(root, "run", "--no-record")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "first")
    proj.write("params.yaml", "lr: 0.3\nepochs: 5\n")
    cli(root, "run", "--no-record")
    _git(root, "commit", "-q", "-am", "second")
    _git(root, "branch", "old", "HEAD~1")
    head_before = (root / ".git/HEAD").read_text()
    r = cli(root, "exp", "show", "--rev", "old", "--rev", "main", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["experiment"]: row for row in json.loads(r.stdout)["experiments"]}
    assert rows["old"]["params"]["params.yaml:/lr"] == 0.1
    assert rows["main"]["params"]["params.yaml:/lr"] == 0.3
    assert rows["old"]["metrics"]["loss"] > rows["main"]["metrics"]["loss"]  # it improved
    assert rows["old"]["kind"] == "rev" and rows["old"]["id"] is None
    assert (root / ".git/HEAD").read_text() == head_before  # nothing checked out
    snap = resolve(root, "HEAD~1", {})
    assert snap.kind == "rev" and snap.params["params.yaml:/lr"] == 0.1
    r = cli(root, "metrics", "diff", "old", "main")
    assert "better" in r.stdout
    assert cli(root, "exp", "show", "--rev", "no-such-rev").returncode == 2


# ---------------------------------------------------------------------------------- plots

def test_curves_plot_the_data(proj: Project) -> None:
    cli(proj.root, "run", "--name", "a")
    proj.write("params.yaml", "lr: 0.5\nepochs: 5\n")
    cli(proj.root, "run", "--name", "b")
    from reftool.experiments.records import records
    from reftool.experiments.plot import bars, curves
    snaps = [record_snapshot(r, {"loss": MetricDeclaration(name="loss", direction="lower",
                                                             summary="min")}, proj.root)
             for r in records(proj.root)]
    fig = curves(snaps)
    axes = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(axes) == {"acc", "loss (lower is better)"}
    ax = axes["loss (lower is better)"]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    assert ax.get_legend() is None  # one legend, outside the panels, not on the data
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]
    xs, ys = ax.lines[1].get_data()
    assert list(xs) == [0, 1, 2, 3, 4]
    assert ys[0] == pytest.approx(1 / 1.5)
    fig = bars(snaps, ["acc"])
    (panel,) = [a for a in fig.axes if a.get_visible()]
    bars_ = [p for p in panel.patches if p.get_height() or p.get_y()]
    assert [p.get_y() + p.get_height() for p in bars_] == [pytest.approx(1.0)] * 2
    assert [t.get_text() for t in panel.get_xticklabels()] == ["a", "b"]


def test_plot_cli_writes_png_and_svg_that_are_not_blank(proj: Project) -> None:
    cli(proj.root, "run")
    r = cli(proj.root, "plot", "--out", "out")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["out/curves.png", "out/summary.png"], r.stderr
    import matplotlib.image
    pixels = matplotlib.image.imread(proj.root / "out/curves.png")
    assert pixels.shape[0] > 100 and pixels.std() > 0.01  # opens, and is not one colour
    r = cli(proj.root, "plot", "--out", "out", "--format", "svg", "--metric", "loss")
    assert (proj.root / "out/curves.svg").read_text().lstrip().startswith("<?xml")


def test_plot_while_a_series_is_being_appended(project: Project) -> None:
    project.base('version: "1.0"\nstages:\n  s:\n    cmd: x\n    metrics: [m.jsonl]\n')
    writer = subprocess.Popen([sys.executable, "-c", (
        "import time\nfrom reftool import track\n"
        "with track.Series('m.jsonl', resume=False, fsync=False) as s:\n"
        "    for i in range(400):\n"
        "        s._file.write('{\"step\": %d, \"metr' % i); s._file.flush()\n"  # torn, then
        "        s._file.write('ics\": {\"loss\": %f}}\\n' % (1 / (i + 1))); s._file.flush()\n"
        "        time.sleep(0.002)\n")], cwd=project.root)
    from reftool.experiments.plot import curves
    seen = []
    try:
        while writer.poll() is None:
            snap = snapshot(workspace_reader(project.root), "workspace", "workspace")
            points = snap.series.get("m.jsonl", {}).get("loss", [])
            if points:
                fig = curves([snap])
                seen.append(len(fig.axes[0].lines[0].get_xdata()))
                import matplotlib.pyplot as plt
                plt.close(fig)
            time.sleep(0.05)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert seen and seen == sorted(seen)  # always readable, only ever growing


# ---------------------------------------------------------------------------------- report

def test_report(proj: Project) -> None:
    cli(proj.root, "run", "--name", "base")
    proj.write("params.yaml", "lr: 0.2\nepochs: 5\n")
    cli(proj.root, "run")
    r = cli(proj.root, "report", "--base", "base", "--out", "rep")
    assert r.returncode == 0, r.stderr
    text = (proj.root / "rep/report.md").read_text()
    assert text.startswith("<!-- reftool-report -->\n")  # CI edits this comment in place
    assert "**workspace** compared with **base**." in text  # no git here: no branch, commit
    assert "Metrics: 1 better, 0 worse, 1 unchanged" in text  # loss; acc 1.0 both
    assert "Lock (`reftool plan --committed-only`): ✅ up to date." in text
    assert "![" not in text  # no image link that GitHub would show broken
    assert (proj.root / "rep/curves.png").exists() and "`curves.png`, `summary.png`" in text
    assert "| loss | 0.6667 | 0.5 | -0.1667 (-25%) | ✅ better |" in text
    assert "| params.yaml:/lr | 0.1 | 0.2 | +0.1 (+100%) |" in text
    # tables first, then the curves as Mermaid charts
    assert text.index("### Metrics") < text.index("### Params") < text.index("```mermaid")
    assert text.count("xychart-beta") == 2  # acc and loss


def test_report_trimmed_under_the_comment_limit(tmp_path: Path) -> None:
    from reftool.experiments.report import REPORT_LIMIT, pr_report
    old = _snap("a", {f"p.yaml:/k{i:05d}": i for i in range(5000)}, {"m": 1.0})
    new = _snap("b", {f"p.yaml:/k{i:05d}": i + 1 for i in range(5000)}, {"m": 2.0})
    text = pr_report(old, new, {}, tmp_path).read_text()
    assert len(text) < REPORT_LIMIT
    assert "> Trimmed:" in text and "| m | 1 | 2 | +1 (+100%) |" in text


# ---------------------------------------------------------------------------------- version gate
def _record(rid: str, version: str, acc: float) -> str:
    return json.dumps({"version": version, "id": rid, "name": rid, "created":
                       f"2026-01-0{len(rid)}T00:00:00Z", "git_commit": None, "params": {},
                       "metrics": {"acc": acc}, "series": {}, "lock_digest": None})


@pytest.mark.parametrize("version,code", [("7.0", "spec version 7.0 is not supported"),
                                          ("1.9", "spec version 1.9 is newer")])
def test_exp_show_refuses_records_of_an_unread_version(proj: Project, version: str,
                                                       code: str) -> None:
    # [tool.experiments] with [version.major] / [version.minor]: named, passed over, exit 1
    (proj.root / "experiments").mkdir()
    (proj.root / "experiments" / "a.json").write_text(_record("a", version, 1.0))
    (proj.root / "experiments" / "bb.json").write_text(_record("bb", "1.0", 2.0))
    r = cli(proj.root, "exp", "show", "--no-workspace")
    assert r.returncode == 1
    assert "experiments/a.json:1:13: version/" in r.stderr and code in r.stderr
    assert "passed over" in r.stderr
    assert "bb" in r.stdout and "a " not in r.stdout.splitlines()[-1]


@pytest.mark.parametrize("name,text", [
    ("metrics/eval.json", '{"version": "7.0", "metrics": {"acc": 1}}'),
    ("metrics/eval.json", '{"version": "1.9", "metrics": {"acc": 1}}'),
    ("metrics/train.jsonl", '{"version": "7.0", "kind": "series"}\n{"step": 0, "metrics": {}}\n'),
])
def test_metrics_diff_refuses_metrics_of_an_unread_version(proj: Project, name: str,
                                                           text: str) -> None:
    # [tool.experiments]: the gate applies to the metrics files a comparison reads
    (proj.root / "experiments").mkdir()
    (proj.root / "experiments" / "bb.json").write_text(_record("bb", "1.0", 2.0))
    (proj.root / "metrics").mkdir()
    (proj.root / name).write_text(text)
    r = cli(proj.root, "metrics", "diff", "bb", "workspace")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"workspace:{name}: spec version" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_torn_series_header_is_an_empty_series(proj: Project) -> None:
    # [metrics.series]: the header still being written is not refused
    (proj.root / "metrics").mkdir()
    (proj.root / "metrics" / "train.jsonl").write_text('{"version": "7.0", "ki')
    (proj.root / "metrics" / "eval.json").write_text('{"version": "1.0", "metrics": {"acc": 1}}')
    r = cli(proj.root, "exp", "show")
    assert r.returncode == 0, r.stderr


def test_record_floats_are_written_as_number_to_string(proj: Project) -> None:
    # [experiments.record], [lock.canonical] rule 4: not Python's repr (1e-07, 1.0)
    assert cli(proj.root, "run", "--name", "first").returncode == 0
    (path,) = (proj.root / "experiments").glob("*.json")
    text = path.read_text()
    import re
    assert re.search(r'"tiny": 1e-7[,\n]', text) and "1e-07" not in text
    assert re.search(r'"acc": 1[,\n]', text) and '"b": "NaN"' in text
    assert re.search(r"\.0[,\n]", text) is None


@pytest.mark.parametrize("value,text", [
    (1e-7, "1e-7"), (3.0, "3"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
    (0.000001, "0.000001"), (-0.0, "0"), (5e-324, "5e-324"), (float("inf"), '"Infinity"'),
    (float("-inf"), '"-Infinity"'), (float("nan"), '"NaN"'), (2**64, "18446744073709551616"),
])
def test_canonical_json_numbers(value: float, text: str) -> None:
    # [lock.canonical] rule 4 for the files that hold floats
    from reftool.files.model import canonical_json
    assert canonical_json({"v": value}) == '{\n  "v": ' + text + "\n}\n"


def test_metrics_two_files_define_are_keyed_by_file(project: Project) -> None:
    # [experiments.metrics-collision] (1.1): no file wins, no value is dropped
    project.base("""\
version: "1.0"
stages:
  a_second:
    cmd: echo
    deps: [z.json]
    metrics: [a.json]
  z_first:
    cmd: echo
    metrics: [z.json]
""", **{"z.json": '{"version": "1.0", "metrics": {"acc": 1}}',
        "a.json": '{"version": "1.0", "metrics": {"acc": 2}}'})
    from reftool.experiments.records import snapshot, workspace_reader
    snap = snapshot(workspace_reader(project.root), "workspace", "workspace")
    assert snap.metrics == {"z.json:acc": 1.0, "a.json:acc": 2.0}
