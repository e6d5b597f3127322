"""Hostile text on its way to a pull request, and hostile inputs that used to end in "internal
error" (SPEC section 16.7 [security.markdown], [errors.phase-code], [tool.exit-codes]).

The markdown cases write a project whose metric name, param key, param value and experiment name
are all one nasty string, then render `exp show --md`, `metrics diff --md`, `params diff --md`
and `report`, parse each with a real markdown parser (markdown-it-py, GitHub's extensions
on: tables, strikethrough, bare-URL linkify) and check that nothing the data says became
markup: no HTML, link, image, heading, list, quote or code; the tables keep their rows and
columns; no mention, issue reference, bidi or invisible character reaches the page.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from reftool.experiments.compare import MD_CELL_LIMIT, md_text
from sandbox import Run, Sandbox

MARKER = "zq"  # every nasty name carries it, so its cell can be found in the rendered page

NASTY = [
    "zq|pipe|in|name",
    "zq\n# Heading injected",
    "zq\r\n| fake | row |",
    "zq\n\n| a | b |\n| --- | --- |\n| c | d |",
    "zq<!-- hide everything after this",
    "zq<img src=x onerror=alert(1)>",
    "zq<script>alert(1)</script>",
    "zq<details><summary>click</summary>",
    "zq![tracker](https://evil.example/pixel.png)",
    "zq[click me](https://evil.example/)",
    "zq[ref]: https://evil.example/",
    "zq https://evil.example/path",
    "zq www.evil.example",
    "zq <https://evil.example>",
    "zq evil@evil.example",
    "zq @octocat please look",
    "zq @org/team",
    "zq fixes #123",
    "zq other/repo#7",
    "zq\u202eevil\u202c reversed",
    "zq\u2066isolate\u2069",
    "zq zero\u200bwidth\ufeffbom",
    "zq\x00nul\x07bell\x1b[31mred",
    "zq\u2028line\u2029para\x85nel",
    "zq &#x202e; &lt;entity&gt; &amp;",
    "zq `code` ``` fence",
    "zq **bold** __under__ ~~strike~~",
    "zq $\\undefined$ $$x$$",
    "zq\\|escaped pipe\\",
    "zq > quote",
    "- zq list",
    "1. zq ordered",
    "zq " + "x" * 5000,
    "zq [^1] footnote\n[^1]: note",
]

BIDI_AND_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff\u2028\u2029"
                                "\x00-\x08\x0b-\x1f\x7f-\x9f]")
PIPELINE = """\
version: "1.0"
stages:
  train:
    cmd: echo hi
    params:
      params.json: "*"
    metrics: [metrics.json]
"""


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"linkify": True}).enable(
        ["table", "strikethrough", "linkify"])


def _walk(tokens: list[Token]) -> list[Token]:
    out = []
    for t in tokens:
        out.append(t)
        out.extend(_walk(t.children or []))
    return out


@pytest.fixture(scope="module")
def mplconfig(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """matplotlib keeps its font cache in HOME (here the sandbox's bait home): give it one
    folder for the whole module instead, so it is built once."""
    return {"MPLCONFIGDIR": str(tmp_path_factory.mktemp("mplconfig"))}


def _write_values(sandbox: Sandbox, name: str, value: Any, metric: float) -> None:
    sandbox.write("params.json", json.dumps({name: value, "lr": metric / 10}))
    sandbox.write("metrics.json", json.dumps({"version": "1.0",
                                              "metrics": {name: metric, "acc": 0.5}}))


def _record(sandbox: Sandbox, name: str) -> str:
    """An experiment named `name` (read from the workspace as it is now); returns its id."""
    from reftool.experiments.records import build_record, write_record
    record = build_record(sandbox.project, name)
    write_record(sandbox.project, record)
    return str(record["id"])


def nasty_project(sandbox: Sandbox, name: str) -> str:
    sandbox.write("pipeline.yaml", PIPELINE)
    _write_values(sandbox, name, name, 1.0)
    ident = _record(sandbox, name)
    _write_values(sandbox, name, name + "2", 2.0)
    return ident


FORBIDDEN = {"html_inline", "html_block", "image", "link_open", "code_inline", "code_block",
             "fence", "em_open", "s_open", "blockquote_open", "bullet_list_open",
             "ordered_list_open", "hr", "footnote_ref"}


def check_markdown(text: str, *, tables: list[int], headings: int,
                   images: tuple[str, ...] = (), own: tuple[str, ...] = ()) -> list[list[str]]:
    """Parse `text`; nothing in it is markup but what the tool wrote (`images` and the HTML
    comment, code spans and blocks whose text is in `own`, its own). `tables` is the number of
    body rows of each table, in order; returns the text of every cell, row by row."""
    tokens = _walk(_parser().parse(text))
    assert tuple(t.attrs.get("src") for t in tokens if t.type == "image") == images, text
    kinds = {t.type for t in tokens if t.type != "image"
             and not (t.type in ("html_block", "code_inline", "fence")
                      and t.content.strip() in own)}
    assert not FORBIDDEN & kinds, f"{FORBIDDEN & kinds} in\n{text}"
    assert [t.type for t in tokens].count("heading_open") == headings, text
    body_rows: list[int] = []
    rows: list[list[str]] = []
    row: list[str] | None = None
    in_body = False
    for t in tokens:
        if t.type in ("tbody_open", "tbody_close"):
            in_body = t.type == "tbody_open"
            body_rows += [0] * in_body
        elif t.type == "tr_open":
            row = []
            if in_body:
                body_rows[-1] += 1
        elif t.type == "tr_close" and row is not None:
            rows.append(row)
            row = None
        elif t.type == "inline" and row is not None:
            row.append(t.content)
    assert body_rows == tables, (body_rows, text)
    assert not BIDI_AND_INVISIBLE.search(text), ascii(text)
    assert not re.search(r"@\w|#\d|://|(?i:www\.)", text), text
    return rows


def _has_marker(cells: list[list[str]]) -> bool:
    return any(MARKER in c for r in cells for c in r)


# ------------------------------------------------------------------------- markdown outputs

@pytest.mark.parametrize("name", NASTY, ids=[ascii(n)[1:30] for n in NASTY])
def test_nasty_name_stays_text_in_exp_show_and_diffs(sandbox: Sandbox, name: str) -> None:
    ident = nasty_project(sandbox, name)
    r = sandbox.run("exp", "show", "--md")
    r.assert_clean()
    assert r.code == 0, r.err
    cells = check_markdown(r.out, tables=[2], headings=0)
    assert _has_marker(cells) and all(len(row) == 5 for row in cells), cells

    r = sandbox.run("metrics", "diff", ident, "--md")
    assert r.code == 0, r.err
    cells = check_markdown(r.out, tables=[1], headings=0)
    assert _has_marker(cells) and all(len(row) == 5 for row in cells), cells

    r = sandbox.run("params", "diff", ident, "--md")
    assert r.code == 0, r.err
    cells = check_markdown(r.out, tables=[2], headings=0)
    assert _has_marker(cells) and all(len(row) == 4 for row in cells), cells


REPORT_NAMES = [n for n in NASTY if n.startswith(("zq\n#", "zq<!--", "zq\u202e", "zq $"))]


@pytest.mark.parametrize("name", REPORT_NAMES, ids=[ascii(n)[1:30] for n in REPORT_NAMES])
def test_report_keeps_every_nasty_name_as_text(sandbox: Sandbox, name: str,
                                               mplconfig: dict[str, str]) -> None:
    """Every name of the corpus at once as metric names, param keys and values; the base
    experiment named `name`."""
    sandbox.write("pipeline.yaml", PIPELINE)
    for metric in (1.0, 2.0):
        sandbox.write("params.json", json.dumps({n: f"{n}{metric}" for n in NASTY}))
        sandbox.write("metrics.json", json.dumps(
            {"version": "1.0", "metrics": {n: metric for n in NASTY}}))
        ident = ident if metric == 2.0 else _record(sandbox, name)
    r = sandbox.run("report", "--base", ident, "--out", "rep", env=mplconfig)
    r.assert_clean()
    assert r.code == 0, r.err
    report = (sandbox.project / "rep" / "report.md").read_text(encoding="utf-8")
    # title, Metrics, Params, Images
    # the tool's own: the comment's marker, two code spans; no image link (GitHub would
    # show it broken), the PNG named as text
    cells = check_markdown(report, tables=[len(NASTY), len(NASTY)], headings=4, own=(
        "<!-- reftool-report -->", "reftool plan --committed-only", "summary.png"))
    assert all(len(row) == 5 for row in cells[:len(NASTY) + 1])
    assert all(len(row) == 4 for row in cells[len(NASTY) + 1:])
    assert len(report) < 65_536
    tokens = _walk(_parser().parse(report))
    strong = [t for t in tokens if t.type == "strong_open"]
    # **workspace (stale)** compared with **NAME**, and **Stale:** ([experiments.stale]: the
    # metrics were written by hand, no stage ran)
    assert len(strong) == 3, report


def test_the_corpus_is_large_enough() -> None:
    assert len(NASTY) >= 25 and all(MARKER in n for n in NASTY) and len(REPORT_NAMES) == 4


@pytest.mark.parametrize("char", ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066",
                                  "\u2067", "\u2068", "\u2069", "\u200b", "\u200d", "\u2060",
                                  "\ufeff", "\x00", "\x1b", "\x7f", "\x85", "\U000e0041"])
def test_invisible_characters_become_visible_escapes(char: str) -> None:
    code = ord(char)
    expected = f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    assert md_text(f"a{char}b") == f"a{expected}b"
    assert unicodedata.category(char) in ("Cc", "Cf")


@pytest.mark.parametrize(("text", "expected"), [
    ("a|b", "a\\|b"),
    ("a\nb\rc\td", "a\\nb\\rc\\td"),
    ("<b>&amp;", "&lt;b&gt;&amp;amp;"),
    ("[x](y)", "\\[x\\]\\(y\\)"),
    ("@user", "@\u2060user"),
    ("#12", "#\u206012"),
    ("https://a.b", "https:/\u2060/a.b"),
    ("WWW.a.b", "WWW\u2060.a.b"),
    ("$x$", "\\$x\\$"),
    ("a\\b", "a\\\\b"),
    ("plain text 0.5-1+2=3, ok.", "plain text 0.5-1+2=3, ok."),
    ("ünïcödé ✓ 日本", "ünïcödé ✓ 日本"),
])
def test_md_text(text: str, expected: str) -> None:
    assert md_text(text) == expected


def test_md_text_caps_each_cell() -> None:
    assert md_text("a" * 10_000) == "a" * MD_CELL_LIMIT + "…"
    assert md_text("a" * MD_CELL_LIMIT) == "a" * MD_CELL_LIMIT


# ---------------------------------------------------------------- GitHub workflow commands

def _gh_parse(line: str) -> tuple[str, dict[str, str], str]:
    """What the Actions runner reads from one line: `::cmd k=v,k=v::data`, unescaped."""
    assert line.startswith("::")
    end = line.index("::", 2)
    command, _, props = line[2:end].partition(" ")

    def unescape(s: str, prop: bool) -> str:
        s = s.replace("%0D", "\r").replace("%0A", "\n")
        if prop:
            s = s.replace("%3A", ":").replace("%2C", ",")
        return s.replace("%25", "%")
    parsed = {}
    for item in props.split(",") if props else []:
        key, _, value = item.partition("=")
        parsed[key] = unescape(value, True)
    return command, parsed, unescape(line[end + 2:], False)


@pytest.mark.parametrize("file", [
    "odd,name::x.yaml", "p%0Aq.yaml", "a\nb.yaml", "c\rd.yaml", "x::error::y.yaml",
    "title=z,line=9.yaml", "100%.yaml"])
def test_github_annotations_carry_hostile_file_names_intact(sandbox: Sandbox,
                                                            file: str) -> None:
    sandbox.write(file, "lr: [1, 2\n")
    r = sandbox.run("validate", "--format", "github", file)
    r.assert_error()
    lines = [ln for ln in r.out.splitlines() if ln.startswith("::")]
    assert lines and all(ln.startswith("::error ") for ln in lines), r.out
    assert len(r.out.splitlines()) == len(lines) + 1  # one line per annotation, then counts
    command, props, data = _gh_parse(lines[0])
    assert command == "error" and props["file"] == file, props
    assert props["title"] == "parse/syntax" and set(props) <= {"file", "line", "col", "title"}


def test_github_annotation_message_with_percent_and_newlines() -> None:
    from reftool.files.diagnostics import render_github
    from reftool.files.errors import Diagnostic
    from reftool.files.validate import Report
    message = "50% done\r\n::warning file=x::fake %0A"
    d = Diagnostic(phase="parse", code="syntax", file="a,b:c", line=3, column=4,
                   message=message)
    out = render_github(Report(files=[("a,b:c", "params")], diagnostics=[d]))
    first = out.splitlines()[0]
    assert len(out.splitlines()) == 2
    command, props, data = _gh_parse(first)
    assert (command, props["file"], props["line"], props["col"]) == ("error", "a,b:c", "3", "4")
    assert data == message


# ------------------------------------------------- hostile inputs: a clear error, never exit 70

DEEP_JSON = "[" * 5000 + "]" * 5000
GOOD_METRICS = '{"version": "1.0", "metrics": {"acc": 0.5}}'
SERIES_HEADER = '{"version": "1.0", "kind": "series"}\n'
EXP_PIPELINE = """\
version: "1.0"
stages:
  train:
    cmd: echo hi > out.txt
    deps: [train.py]
    params:
      params.yaml: [/lr]
    outs: [out.txt]
    metrics: [metrics.json, series.jsonl]
"""


def exp_project(sandbox: Sandbox, **files: str) -> None:
    base = {"pipeline.yaml": EXP_PIPELINE, "train.py": "x\n", "params.yaml": "lr: 0.1\n",
            "metrics.json": GOOD_METRICS,
            "series.jsonl": SERIES_HEADER + '{"step": 0, "metrics": {"loss": 1}}\n'}
    for rel, text in {**base, **files}.items():
        sandbox.write(rel, text)


BAD_METRICS = {
    "deep_list": '{"version": "1.0", "metrics": {"a": ' + DEEP_JSON + '}}',
    "deep_object": '{"version": "1.0", "metrics": ' + '{"a":' * 5000 + "1" + "}" * 5001,
    "bare_nan": '{"version": "1.0", "metrics": {"acc": NaN}}',
    "not_an_object": '{"version": "1.0", "metrics": 5}',
    "a_list": "[1, 2]",
    "no_version": '{"metrics": {"acc": 1}}',
    "syntax": '{"version": "1.0", "metrics": {',
}
EXP_COMMANDS = [("exp", "show"), ("exp", "show", "--md"), ("exp", "show", "--json"),
                ("metrics", "diff", "workspace", "workspace", "--md")]


@pytest.mark.parametrize("command", EXP_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("bad", sorted(BAD_METRICS))
def test_invalid_metrics_file_is_skipped_and_named(sandbox: Sandbox, bad: str,
                                                   command: tuple[str, ...]) -> None:
    exp_project(sandbox, **{"metrics.json": BAD_METRICS[bad]})
    r = sandbox.run(*command)
    r.assert_clean()
    assert r.code == 0, r.err
    skipped = [ln for ln in r.err.splitlines() if "skipped" in ln]
    assert len(skipped) == 1 and "metrics.json" in skipped[0], r.err
    assert re.search(r"(parse|schema|version)/\w+", skipped[0]), skipped
    assert "acc" not in r.out or bad == "a_list"


BAD_RECORDS = {
    "deep": '{"id": "a", "name": "a", "metrics": {"x": ' + DEEP_JSON + "}}",
    "deep_params": '{"id": "a", "params": {"p.yaml": {"/x": ' + '{"map": {"a":' * 3000
                   + '{"int": "1"}' + "}}" * 3000 + "}}}",
    "a_list": "[1]",
    "wrong_types": '{"id": "a", "name": 5, "metrics": [1], "params": 3, "series": 4}',
    "bad_series": '{"id": "a", "series": {"s": {"records": 5}}}',
    "bare_nan": '{"version": "1.0", "id": "a", "metrics": {"x": NaN}}',
    "not_utf8": '{"id": "\xff"}',
}


@pytest.mark.parametrize("bad", sorted(BAD_RECORDS))
def test_invalid_record_is_skipped_with_one_line_saying_why(sandbox: Sandbox, bad: str) -> None:
    exp_project(sandbox)
    path = sandbox.write("experiments/bad.json", BAD_RECORDS[bad].encode("latin-1")
                         if bad == "not_utf8" else BAD_RECORDS[bad])
    before = path.read_bytes()
    for command in (("exp", "show"), ("metrics", "diff", "bad"), ("params", "diff", "bad")):
        r = sandbox.run(*command)
        r.assert_clean()
        lines = [ln for ln in r.err.splitlines() if "skipped" in ln]
        assert len(lines) == 1 and "experiments/bad.json" in lines[0], (command, r.err)
        assert r.code == (0 if command == ("exp", "show") else 2), (command, r.err)
    assert path.read_bytes() == before


def test_deep_series_lines_are_passed_over(sandbox: Sandbox) -> None:
    exp_project(sandbox, **{"series.jsonl": SERIES_HEADER + '{"step": 0, "metrics": {"loss": '
                            + DEEP_JSON + '}}\n{"step": 1, "metrics": {"loss": 2}}\n'})
    r = sandbox.run("exp", "show", "--json")
    r.assert_clean()
    assert r.code == 0, r.err


@pytest.mark.parametrize(("toml", "needle"), [
    ("[cache]\nremote = [1, 2]\n", "[cache] remote is a list"),
    ("[cache]\nremote = 5\n", "[cache] remote is a int"),
    ("cache = 5\n", "expected a table [cache]"),
    ("x = " + DEEP_JSON + "\n", "parse/depth_limit"),
    ("[[[\n", "parse/syntax"),
])
@pytest.mark.parametrize("command", [("push",), ("pull",), ("run",)], ids=" ".join)
def test_bad_reftool_toml_is_a_clear_error(sandbox: Sandbox, toml: str, needle: str,
                                           command: tuple[str, ...]) -> None:
    exp_project(sandbox, **{"reftool.toml": toml})
    r = sandbox.run(*command)
    r.assert_error("reftool.toml", needle)
    assert r.code == 1
    assert not list(sandbox.project.glob("[[]*")), "a folder named after the list"


@pytest.mark.parametrize(("toml", "needle"), [
    ("executor = 'x'\n", "expected a table [executor]"),
    ("[executor]\nkind = 5\n", "[executor] kind is a int"),
    ("[executor]\nkind = 'dask'\nscheduler = ['a']\n", "[executor] scheduler is a list"),
])
def test_bad_executor_settings_are_a_clear_error(sandbox: Sandbox, toml: str,
                                                 needle: str) -> None:
    exp_project(sandbox, **{"reftool.toml": toml})
    r = sandbox.run("run")
    r.assert_error("reftool.toml", needle, "schema/type")
    assert r.code == 1 and not (sandbox.project / "pipeline.lock").exists()


def test_dask_scheduler_out_of_reach_is_a_clear_error(sandbox: Sandbox) -> None:
    pytest.importorskip("distributed")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exp_project(sandbox, **{"reftool.toml":
                            f'[executor]\nkind = "dask"\nscheduler = "tcp://127.0.0.1:{port}"\n'})
    r = sandbox.run("run", timeout=60)
    r.assert_error(f"127.0.0.1:{port}")
    assert r.code == 1 and not (sandbox.project / "pipeline.lock").exists()


def test_pull_from_a_remote_that_is_not_there_fails(sandbox: Sandbox) -> None:
    exp_project(sandbox)
    missing = sandbox.allowed / "no-such-remote"
    r = sandbox.run("pull", "--remote", str(missing))
    r.assert_error("pull failed", "no-such-remote")
    assert r.code == 1 and "pulled 0" not in r.out and not missing.exists()


@pytest.mark.parametrize("command", [("exp", "show", "--sort", "foo"),
                                     ("exp", "show", "--sort", "/lr"),
                                     ("exp", "show", "--filter", "/lr>1"),
                                     ("exp", "show", "--filter", "foo==1"),
                                     ("exp", "show", "--filter", "acc~1")], ids=" ".join)
def test_sort_and_filter_on_any_column_are_clean(sandbox: Sandbox,
                                                 command: tuple[str, ...]) -> None:
    exp_project(sandbox)
    r = sandbox.run(*command)
    r.assert_clean()
    assert r.code in (0, 2), r.err
    if r.code == 2:
        assert "column" in r.err or "COLUMN OP VALUE" in r.err


def test_list_metric_does_not_break_plot_or_report(sandbox: Sandbox,
                                                   mplconfig: dict[str, str]) -> None:
    exp_project(sandbox, **{"metrics.json": '{"version": "1.0", "metrics": {"acc": 0.5}}'})
    ident = _record(sandbox, "base")
    sandbox.write("metrics.json", '{"version": "1.0", "metrics": {"acc": [1, 2], "b": 1}}')
    for command in (("plot", "--out", "plots"), ("report", "--base", ident, "--out", "rep")):
        r = sandbox.run(*command, env=mplconfig)
        r.assert_clean()
        assert r.code == 0, r.err


def test_dollar_signs_in_metric_names_are_plotted_as_text(sandbox: Sandbox,
                                                          mplconfig: dict[str, str]) -> None:
    exp_project(sandbox, **{"metrics.json":
                            '{"version": "1.0", "metrics": {"$\\\\undefined$": 1, "$x^$": 2}}'})
    r = sandbox.run("plot", "--out", "plots", "--format", "svg", env=mplconfig)
    r.assert_clean()
    assert r.code == 0 and "summary" not in r.err, r.err
    svg = (sandbox.project / "plots" / "summary.svg").read_text()
    assert "undefined" in svg


@pytest.mark.parametrize("in_the_way", [".reftool", "train.py"])
def test_a_file_or_folder_in_the_way_is_a_clear_error(sandbox: Sandbox, in_the_way: str) -> None:
    """A file where run makes its folder; a folder where a dep should be a file."""
    exp_project(sandbox)
    if in_the_way == ".reftool":
        sandbox.write(".reftool", "a file where the folder goes\n")
    else:
        (sandbox.project / "train.py").unlink()
        sandbox.write("train.py/inner", "x\n")
    r = sandbox.run("run")
    r.assert_error(in_the_way)
    assert r.code == 1 and not (sandbox.project / "pipeline.lock").exists()


def test_experiments_file_in_the_way_of_exp_save(sandbox: Sandbox) -> None:
    exp_project(sandbox, experiments="not a folder\n")
    r = sandbox.run("exp", "save", "x", "--allow-stale")  # hand-written metrics: stale
    r.assert_error("experiments", "io/write_error")
    assert (sandbox.project / "experiments").read_text() == "not a folder\n"


def test_file_size_limit_while_writing_the_lock_keeps_the_old_lock(sandbox: Sandbox) -> None:
    """RLIMIT_FSIZE in the child: the new lock cannot be written; the old one is intact."""
    import os
    import resource
    import subprocess
    import sys
    sandbox.write("params.yaml", "lr: 0.1\n")
    sandbox.write("pipeline.yaml", 'version: "1.0"\nstages:\n  s:\n    cmd: echo hi > out.txt\n'
                  "    params:\n      params.yaml: [/lr]\n    outs: [out.txt]\n")
    assert sandbox.run("run").code == 0
    lock = sandbox.project / "pipeline.lock"
    old = lock.read_bytes()
    sandbox.write("params.yaml", "lr: 0.2\n")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
    env = {k: v for k, v in os.environ.items() if k != "REFTOOL_DEBUG"}
    env["HOME"] = str(sandbox.outside / "home")
    proc = subprocess.run([sys.executable, "-m", "reftool", "run", "--no-record"],
                          cwd=sandbox.project, env=env, capture_output=True, text=True,
                          preexec_fn=limit, timeout=30, check=False)
    run = Run(("run",), proc.returncode, proc.stdout, proc.stderr, 0.0)
    run.assert_error("io/write_error")
    assert run.code == 1 and lock.read_bytes() == old
    assert not [p for p in sandbox.project.rglob("*.tmp")]


def test_sigterm_in_the_first_100ms_of_run_exits_130(sandbox: Sandbox) -> None:
    """From the moment the process handles SIGTERM (its /proc status says so), a SIGTERM at
    any time in the next 100 ms ends it with 130, never by the signal."""
    import os
    import signal
    import subprocess
    import sys
    import time
    exp_project(sandbox, **{"train.py": "import time; time.sleep(5)\n"})
    sandbox.write("pipeline.yaml", EXP_PIPELINE.replace("echo hi > out.txt",
                                                        "python train.py && echo hi > out.txt"))
    env = {k: v for k, v in os.environ.items() if k != "REFTOOL_DEBUG"}
    env["HOME"] = str(sandbox.outside / "home")
    codes = []
    for i in range(10):
        proc = subprocess.Popen([sys.executable, "-m", "reftool", "run", "--no-record"],
                                cwd=sandbox.project, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not _handles_sigterm(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(i * 0.011)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        codes.append(proc.returncode)
        assert b"Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert codes == [130] * 10


def _handles_sigterm(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone already: the wait will tell
    caught = int(re.search(r"SigCgt:\s*([0-9a-f]+)", status).group(1), 16)  # type: ignore
    return bool(caught & (1 << (15 - 1)))
