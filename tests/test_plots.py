"""Plots that hold up with many runs, declared plots (SPEC [plots.definition], [plots.data],
[plots.templates]), noise tolerance ([metrics.tolerance]) and the HTML page (issue 15)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project
from reftool.experiments.compare import diff, judge, tally, verdict_line
from reftool.experiments.plot import (
    MAX_SOURCES, curves, first_nonfinite, robust_limits, smooth, style,
)
from reftool.experiments.plotdata import PlotDataError, check_rows, confusion, read_rows
from reftool.experiments.records import Snapshot
from reftool.files.model import MetricDeclaration, PlotDefinition


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reftool", *args], cwd=root,
                          capture_output=True, text=True, timeout=300)


# ------------------------------------------------------------------------- pure decisions

def test_forty_sources_have_forty_distinct_styles() -> None:
    styles = {(style(i).colour, style(i).line) for i in range(MAX_SOURCES)}
    assert len(styles) == MAX_SOURCES == 40
    assert style(0).colour == style(10).colour and style(0).line != style(10).line


def test_y_limits_leave_out_a_spike_and_nan_but_keep_where_training_starts() -> None:
    values = [1.0] + [0.1 + i / 1000 for i in range(100)] + [20.0, math.nan, math.inf]
    limits = robust_limits(values, keep=[1.0])
    assert limits is not None and limits.low < 0.1 and 1.0 < limits.high < 2.0
    assert limits.outside == 1  # the 20
    few = robust_limits([0.1, 0.2, 0.3, 20.0])  # too few points to call 20 an outlier
    assert few is not None and few.outside == 0 and few.high > 20
    assert robust_limits([math.nan]) is None
    flat = robust_limits([0.5, 0.5])
    assert flat is not None and flat.low < 0.5 < flat.high and flat.outside == 0
    log = robust_limits([1e-3, 1e-2, 1e-1, 1.0, -1.0, 0.0], log=True)
    assert log is not None and log.low < 1e-3 and log.high > 1.0


def test_smoothing_and_the_first_nonfinite_step() -> None:
    assert smooth([1.0, 0.0, 0.0], 0.5) == [1.0, 0.5, 0.25]
    assert smooth([1.0, 2.0], 0.0) == [1.0, 2.0]
    out = smooth([1.0, math.nan, 1.0], 0.9)
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == 1.0
    assert first_nonfinite([(0, 1.0), (3, math.nan)]) == 3
    assert first_nonfinite([(0, 1.0)]) is None


def test_noise_is_unchanged_and_a_declared_tolerance_is_honoured() -> None:
    lower = MetricDeclaration(name="loss", direction="lower", summary="last")
    assert judge(0.05543, 0.05543 + 2.082e-17, lower) == "unchanged"  # the review's case
    assert judge(0.05543, 0.05, lower) == "better"
    tolerant = MetricDeclaration(name="loss", direction="lower", summary="last", tolerance=0.01)
    assert judge(0.5, 0.509, tolerant) == "unchanged" and judge(0.5, 0.52, tolerant) == "worse"
    assert judge(1.0, math.nan, lower) == "" and judge(1.0, 2.0, None) == ""
    assert judge(1.0, math.inf, lower) == "worse"
    decl = {"loss": lower, "acc": MetricDeclaration(name="acc", direction="higher",
                                                    summary="last")}
    counts = tally({"loss": 1.0, "acc": 0.5, "x": 1}, {"loss": 0.5, "acc": 0.5, "x": 2}, decl)
    assert counts == {"better": 1, "worse": 0, "unchanged": 1, "other": 1}
    assert verdict_line(counts) == ("1 better, 0 worse, 1 unchanged, 1 changed with no "
                                    "direction declared")
    assert [c.verdict for c in diff({"loss": 1.0}, {"loss": 1.0 + 2.3e-16}, declarations=decl)
            ] == ["unchanged"]


# ------------------------------------------------------------------------- plot data

CONF = PlotDefinition(template="confusion", x="predicted", y="actual", count="n")


def test_rows_from_json_csv_and_tsv() -> None:
    assert read_rows(b'[{"a": 1, "b": "x"}]', "p.json") == [{"a": 1, "b": "x"}]
    assert read_rows(b"a,b\n1,x\n2.5,NaN\n", "p.csv")[1]["a"] == 2.5
    assert math.isnan(read_rows(b"a,b\n1,x\n2.5,NaN\n", "p.csv")[1]["b"])
    assert read_rows(b"a\tb\n1\t\"q, r\"\n", "p.tsv") == [{"a": 1, "b": "q, r"}]


@pytest.mark.parametrize(("data", "path", "expected"), [
    (b'{"a": 1}', "p.json", "p.json: the top level is a dict; expected a JSON array"),
    (b'[1]', "p.json", "p.json: row 1 is a int; expected an object"),
    (b'[{"a": 1,}]', "p.json", "p.json: line 1: JSON syntax error"),
    (b"\xff", "p.csv", "p.csv: not UTF-8 (byte 0)"),
])
def test_unreadable_plot_data_names_the_file_and_row(data: bytes, path: str,
                                                     expected: str) -> None:
    with pytest.raises(PlotDataError, match=re.escape(expected)):
        read_rows(data, path)


def test_rows_are_checked_against_the_template() -> None:
    line = PlotDefinition(template="line", x="epoch", y="acc")
    check_rows([{"epoch": 1, "acc": 0.5}], line, "p.json")
    with pytest.raises(PlotDataError, match=r"p.json: row 2 has no field 'acc'"):
        check_rows([{"epoch": 1, "acc": 0.5}, {"epoch": 2}], line, "p.json")
    with pytest.raises(PlotDataError, match=r"row 1, field 'acc': \"high\" is not a number"):
        check_rows([{"epoch": 1, "acc": "high"}], line, "p.json")
    check_rows([{"predicted": "cat", "actual": "dog", "n": 3}], CONF, "c.json")
    with pytest.raises(PlotDataError, match=r"field 'n'"):
        check_rows([{"predicted": "cat", "actual": "dog", "n": "3x"}], CONF, "c.json")


def test_confusion_counts_by_count_or_one_a_row_sorted() -> None:
    rows = [{"predicted": 10, "actual": 2, "n": 3}, {"predicted": 2, "actual": 2, "n": 1},
            {"predicted": 10, "actual": 2, "n": 1}, {"predicted": "cat", "actual": 10, "n": 4}]
    m = confusion(rows, CONF)
    assert m.across == ["2", "10", "cat"] and m.down == ["2", "10"]
    assert m.counts == [[1.0, 4.0, 0.0], [0.0, 0.0, 4.0]]
    ones = confusion(rows, PlotDefinition(template="confusion", x="predicted", y="actual"))
    assert ones.counts == [[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]


# ------------------------------------------------------------------------- the command

PIPELINE = """\
version: "1.1"
stages:
  train:
    cmd: python train.py
    metrics: [m.jsonl]
    plots:
      - {path: conf.json, template: confusion, x: predicted, y: actual, count: n}
      - {path: pr.csv, template: line, x: recall, y: precision, title: PR curve}
      - {path: bad.json, template: bar, x: c, y: f1}
      - picture.png
metrics:
  loss: {direction: lower}
"""


def _series(lines: list[float]) -> str:
    out = ['{"version": "1.0", "kind": "series"}']
    out += [json.dumps({"step": i, "metrics": {"loss": v}}) if math.isfinite(v) else
            '{"step": %d, "metrics": {"loss": "NaN"}}' % i for i, v in enumerate(lines)]
    return "\n".join(out) + "\n"


def _record(root: Path, i: int, values: list[float]) -> None:
    (root / "experiments").mkdir(exist_ok=True)
    records = [json.loads(line) for line in _series(values).splitlines()[1:]]
    (root / "experiments" / f"2026-{i:03d}.json").write_text(json.dumps({
        "version": "1.0", "id": f"2026-{i:03d}", "name": f"run-{i}",
        "created": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "git_commit": None,
        "params": {}, "metrics": {}, "lock_digest": None,
        "series": {"m.jsonl": {"digest": "sha256:" + "0" * 64, "records": records}}}))


@pytest.fixture
def plotted(project: Project) -> Project:
    project.base(PIPELINE, **{
        "m.jsonl": _series([1.0, 0.5, 0.25]),
        "conf.json": json.dumps([{"predicted": p, "actual": a, "n": 5 if p == a else 1}
                                 for p in "ab" for a in "ab"]),
        "pr.csv": "recall,precision\n0.1,0.9\n0.5,0.8\n0.9,0.4\n",
        "bad.json": '[{"c": "x", "f1": 0.5}, {"c": "y"}]'})
    return project


def test_plot_draws_declared_plots_and_says_which_cannot_be(plotted: Project) -> None:
    r = cli(plotted.root, "plot", "--out", "out")
    assert r.stdout.split() == ["out/curves.png", "out/summary.png", "out/conf.png",
                                "out/pr.png"], r.stderr
    assert "bad.json: row 2 has no field 'f1'" in r.stderr  # the side may be marked stale
    assert r.returncode == 1  # [plots.data]: said, the others drawn
    import matplotlib.image
    pixels = matplotlib.image.imread(plotted.root / "out" / "conf.png")
    assert pixels.std() > 0.01


def test_declared_confusion_matrix_across_git_revisions(plotted: Project) -> None:
    root = plotted.root
    (root / "bad.json").unlink()
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    (root / "conf.json").write_text(json.dumps([{"predicted": "a", "actual": "b", "n": 9}]))
    from reftool.experiments.records import workspace_reader
    from reftool.experiments.plot import declared
    from reftool.experiments.records import git_reader
    plot = CONF
    sources = [(label, read_rows(read("conf.json") or b"", "conf.json"))
               for label, read in (("main", git_reader(root, "main")),
                                   ("workspace", workspace_reader(root)))]
    fig = declared(plot, "conf.json", sources)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["main", "workspace"]
    r = cli(root, "plot", "main", "workspace", "--out", "out")
    assert r.returncode == 0 and "out/conf.png" in r.stdout.split(), r.stderr


def test_unknown_metric_is_a_usage_error_with_a_hint(plotted: Project) -> None:
    r = cli(plotted.root, "plot", "--metric", "los", "--out", "out")
    assert r.returncode == 2
    assert "no metric 'los' in the sources drawn; did you mean loss?" in r.stderr
    assert not (plotted.root / "out").exists()


def test_twelve_experiments_all_drawn_distinct_and_a_nan_run_named(plotted: Project) -> None:
    root = plotted.root
    for i in range(12):
        values = [1.0 / (1 + 0.1 * i * s) for s in range(30)]
        if i == 11:
            values[10:] = [20.0] + [math.nan] * 19
        _record(root, i, values)
    from reftool.experiments.records import record_snapshot, records
    snaps = [record_snapshot(r, {}) for r in records(root)]
    fig = curves(snaps)
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:11] == [f"run-{i}" for i in range(11)]
    assert labels[11] == "run-11 (not finite from step 11)"
    ax = fig.axes[0]
    assert len({(line.get_color(), line.get_linestyle()) for line in ax.lines}) == 12
    assert ax.get_ylim()[1] < 2  # the diverged 20 does not flatten the rest
    r = cli(root, "plot", "--out", "out", "--metric", "loss")
    assert r.returncode == 0 and "left out" not in r.stderr, r.stderr


def test_past_forty_experiments_the_note_says_what_was_left_out(plotted: Project) -> None:
    for i in range(43):
        _record(plotted.root, i, [1.0, 0.5])
    r = cli(plotted.root, "plot", "--out", "out", "--metric", "loss")
    assert r.returncode == 0, r.stderr
    assert ("43 experiments: drew the latest 40 and the workspace; 3 older left out "
            "(run-0 to run-2)") in r.stderr


def test_two_renders_are_the_same_bytes_and_carry_no_date(plotted: Project) -> None:
    from reftool.experiments.plot import figure_bytes
    from reftool.experiments.records import snapshot, workspace_reader
    snap = snapshot(workspace_reader(plotted.root), "workspace", "workspace")
    for fmt in ("png", "svg"):
        first, second = (figure_bytes(curves([snap], log=True, smoothing=0.5), fmt)
                         for _ in range(2))
        assert first == second, fmt
    svg = figure_bytes(curves([snap]), "svg").decode()
    assert "dc:date" not in svg and "<dc:date>" not in svg


def test_html_page_is_self_contained(plotted: Project) -> None:
    r = cli(plotted.root, "plot", "--format", "html", "--out", "site")
    assert r.stdout.split() == ["site/index.html"], r.stderr
    page = (plotted.root / "site" / "index.html").read_text()
    assert "default-src 'none'" in page and page.count("<svg") == 4
    assert "<script" not in page and not re.search(r"(src|href)=\"https?:", page)
    assert "<th>experiment</th>" in page and "<td class=\"s\">workspace" in page
    assert "<metadata>" not in page


def test_smooth_weight_is_checked(plotted: Project) -> None:
    r = cli(plotted.root, "plot", "--smooth", "1.5")
    assert r.returncode == 2 and "expected a number from 0 up to but not including 1" in r.stderr


def test_report_names_branch_and_commit_and_the_stale_lock(plotted: Project) -> None:
    root = plotted.root
    (root / "bad.json").unlink()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"],
                 ["checkout", "-qb", "feature"]):
        subprocess.run(git + args, cwd=root, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                         text=True).stdout[:7]
    r = cli(root, "report", "--base", "main", "--out", "rep", "--images-url",
            "https://github.com/o/r/actions/runs/1")
    assert r.returncode == 0, r.stderr
    text = (root / "rep" / "report.md").read_text()
    # the workspace's lock is stale here, so its side is also marked stale ([experiments.stale])
    assert f"**feature @\u2060 {sha} \\(stale\\)** compared with **main @\u2060 {sha}" in text
    assert "Lock (`reftool plan --committed-only`): ❌ stale: 1 stage(s) to run and commit " \
           "(train)" in text  # never run: no lock is committed
    assert "in [the workflow run's artifacts](https://github.com/o/r/actions/runs/1)." in text
    r = cli(root, "report", "--head-label", "pr-7", "--no-lock-check", "--out", "rep")
    text = (root / "rep" / "report.md").read_text()
    assert f"**pr-7 @\u2060 {sha} \\(stale\\)**" in text and "Lock (" not in text
    r = cli(root, "report", "--images-url", "javascript:alert(1)", "--out", "rep")
    assert r.returncode == 2 and "expected an https address" in r.stderr
