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
                   images: tuple[str, ...] = ()) -> list[list[str]]:
    """Parse `text`; nothing in it is markup but what the tool wrote (`images`, its own).
    `tables` is the number of body rows of each table, in order; returns the text of every
    cell, row by row."""
    tokens = _walk(_parser().parse(text))
    assert tuple(t.attrs.get("src") for t in tokens if t.type == "image") == images, text
    kinds = {t.type for t in tokens if t.type != "image"}
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
    # title, Summary metrics, Metrics, Params; the one image is the tool's own
    cells = check_markdown(report, tables=[len(NASTY), len(NASTY)], headings=4,
                           images=("summary.png",))
    assert all(len(row) == 5 for row in cells[:len(NASTY) + 1])
    assert all(len(row) == 4 for row in cells[len(NASTY) + 1:])
    assert len(report) < 65_536
    tokens = _walk(_parser().parse(report))
    strong = [t for t in tokens if t.type == "strong_open"]
    assert len(strong) == 2, report  # **workspace** compared with **NAME**.


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
