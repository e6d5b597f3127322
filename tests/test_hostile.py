"""Hostile inputs through the real command line, in a child process.

Each case runs `python -m reftool validate` twice: naming the hostile file (`validate PATH`,
from the directory above it) and as a project (`validate` with the current directory holding
the hostile `pipeline.yaml` and, where it matters, its lock or params file). Every run must:

* exit 1 (SPEC [tool.exit-codes]: the files have errors), never 70 (internal error);
* print a one-line diagnostic `FILE[:LINE:COLUMN]: error[PHASE/CODE]: MESSAGE` naming the file
  and, where the input has one, the line and column (SPEC [errors.phase-code]);
* print no Python traceback, on stdout or stderr;
* finish within a generous timeout (20 s; a hang guard, not a performance assertion);
* stay under 1.5 GB of address space (RLIMIT_AS in the child): a memory blow-up fails.

The elapsed time of every run is printed (run pytest with `-s` to see them) and summarised at
the end of the module, for quoting; the times are not asserted.

Tests marked `xfail(strict=True, reason="BUG: ...")` pin a defect of reftool found by these
inputs; they XPASS, and so fail, once the package is fixed, and the mark is then removed.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MEMORY_LIMIT = 1_500_000_000  # bytes of address space for the child
TIMEOUT = 20.0  # seconds: a hang guard only
MODES = ("path", "project")

VALID_PIPELINE = 'version: "1.0"\nstages:\n  s:\n    cmd: echo hi\n    outs: [out.txt]\n'

# `FILE[:LINE[:COLUMN]]: error[PHASE/CODE]: MESSAGE`, as reftool.files.diagnostics.render_text prints it.
DIAGNOSTIC = re.compile(
    r"^(?P<file>[^\n]+?)(?::(?P<line>\d+)(?::(?P<col>\d+))?)?: "
    r"(?P<severity>error|warning)\[(?P<phase>[a-z]+)/(?P<code>[A-Za-z0-9_]+)\]: (?P<message>\S.*)$",
    re.MULTILINE)

TIMINGS: list[tuple[str, float, int]] = []


@pytest.fixture(scope="module", autouse=True)
def _print_timings() -> Iterator[None]:
    yield
    if TIMINGS:
        width = max(len(label) for label, _, _ in TIMINGS)
        print("\n\n[hostile] elapsed time of each run (exit code):")
        for label, seconds, code in TIMINGS:
            print(f"[hostile]   {label:<{width}}  {seconds:8.3f} s  (exit {code})")


# ---------------------------------------------------------------------------------- running

def _limit_memory() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@dataclass
class Run:
    label: str
    code: int
    out: str
    err: str
    seconds: float

    def diagnostics(self) -> list[dict[str, str | None]]:
        return [m.groupdict() for m in DIAGNOSTIC.finditer(self.out)]


def run_validate(label: str, cwd: Path, *args: str, timeout: float = TIMEOUT) -> Run:
    env = {k: v for k, v in os.environ.items() if k != "REFTOOL_DEBUG"}
    env["PYTHONIOENCODING"] = "utf-8"
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "reftool", "validate", *args], cwd=cwd, env=env,
            capture_output=True, timeout=timeout, preexec_fn=_limit_memory, check=False)
    except subprocess.TimeoutExpired:
        seconds = time.perf_counter() - start
        TIMINGS.append((label, seconds, -1))
        pytest.fail(f"{label}: reftool validate did not finish within {timeout:.0f} s (hang)")
    seconds = time.perf_counter() - start
    print(f"\n[hostile] {label}: {seconds:.3f} s, exit {proc.returncode}")
    TIMINGS.append((label, seconds, proc.returncode))
    return Run(label, proc.returncode, proc.stdout.decode("utf-8", "replace"),
               proc.stderr.decode("utf-8", "replace"), seconds)


def assert_no_crash(run: Run) -> None:
    for stream, text in (("stdout", run.out), ("stderr", run.err)):
        assert "Traceback (most recent call last)" not in text, f"{run.label}: traceback on " \
            f"{stream}:\n{text[-3000:]}"
        assert "internal error" not in text, f"{run.label}: internal error:\n{text[-3000:]}"
        assert "MemoryError" not in text and "RecursionError" not in text, text[-3000:]
    assert run.code != 70, f"{run.label}: exit 70 (internal error)\n{run.err[-2000:]}"


def assert_rejected(run: Run, *, file: str, phase: str, code: str, line: int | None = None,
                    column: int | None = None, located: bool = False,
                    count: int | None = None) -> dict[str, str | None]:
    """Exit 1, no traceback, and a one-line diagnostic FILE[:L:C]: error[PHASE/CODE]: MSG."""
    assert_no_crash(run)
    assert run.code == 1, f"{run.label}: exit {run.code}\n{run.out[-3000:]}{run.err[-2000:]}"
    found = [d for d in run.diagnostics() if d["severity"] == "error"]
    matching = [d for d in found if (d["phase"], d["code"]) == (phase, code)]
    assert matching, f"{run.label}: no error[{phase}/{code}] in:\n{run.out[-3000:]}"
    if count is not None:
        assert len(matching) == count, run.out
    d = matching[0]
    assert d["file"] == file, f"{run.label}: diagnostic names {d['file']!r}, not {file!r}"
    assert d["message"] and len(d["message"]) > 10
    if line is not None:
        assert d["line"] is not None and int(d["line"]) == line, run.out
    if column is not None:
        assert d["col"] is not None and int(d["col"]) == column, run.out
    if located:
        assert d["line"] is not None and d["col"] is not None, f"no line:column in {run.out}"
    for other in found:  # every position printed is 1-based
        assert other["line"] is None or int(other["line"]) >= 1, run.out
        assert other["col"] is None or int(other["col"]) >= 1, run.out
    assert run.out.rstrip("\n").splitlines()[-1].startswith("invalid: "), run.out
    return d


# ---------------------------------------------------------------------------------- case files

def billion_laughs(levels: int = 10, fan: int = 10) -> str:
    lines = ['version: "1.0"', "stages: {}", 'l0: &l0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def deep_flow_yaml(depth: int = 10_000) -> str:
    return 'version: "1.0"\nstages: {}\nx: ' + "[" * depth + "]" * depth + "\n"


def deep_block_yaml(depth: int = 5_000) -> str:
    # Block mappings, one space of indentation per level: about 12.5 MB, under 16 MiB.
    body = "".join(" " * (i + 1) + f"k{i}:\n" for i in range(depth)) + " " * (depth + 1) + "v\n"
    return 'version: "1.0"\nstages: {}\nx:\n' + body


def sparse(size: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)  # a sparse file: no disk blocks, no memory
    return write


def directory(path: Path) -> None:
    path.mkdir()


Content = str | bytes | Callable[[Path], None] | None


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, Content]  # the case directory's files; None: does not exist
    target: str  # the hostile file: named in path mode, reported in both modes
    phase: str
    code: str
    line: int | None = None
    column: int | None = None
    located: bool = False
    count: int | None = None
    message_has: str | None = None


CASES = [
    Case("alias_bomb_10_levels", {"pipeline.yaml": billion_laughs(10)}, "pipeline.yaml",
         "parse", "alias_limit", located=True),
    Case("alias_bomb_9_levels", {"pipeline.yaml": billion_laughs(9)}, "pipeline.yaml",
         "parse", "alias_limit", located=True),
    Case("yaml_flow_nesting_10000", {"pipeline.yaml": deep_flow_yaml()}, "pipeline.yaml",
         "parse", "depth_limit", line=3, located=True),
    # The C parser has no nesting limit of its own that fires first: reftool's bound
    # ([read.depth], 64 levels) is what reports, at the 65th level.
    Case("yaml_block_nesting_5000", {"pipeline.yaml": deep_block_yaml()}, "pipeline.yaml",
         "parse", "depth_limit", line=67, located=True),
    Case("json_lock_nesting_10000_arrays",
         {"pipeline.yaml": VALID_PIPELINE, "pipeline.lock": "[" * 10_000 + "]" * 10_000},
         "pipeline.lock", "parse", "depth_limit"),
    Case("json_lock_nesting_10000_objects",
         {"pipeline.yaml": VALID_PIPELINE,
          "pipeline.lock": '{"a": ' * 10_000 + "1" + "}" * 10_000},
         "pipeline.lock", "parse", "depth_limit"),
    Case("params_3GiB_sparse",
         {"pipeline.yaml": VALID_PIPELINE.replace(
             "    outs:", "    params:\n      params.yaml: [/lr]\n    outs:"),
          "params.yaml": sparse(3 * 1024**3)},
         "params.yaml", "parse", "too_large"),
    Case("duplicate_keys",
         {"pipeline.yaml": 'version: "1.0"\nstages: {}\nversion: "1.0"\nstages: {}\n'},
         "pipeline.yaml", "parse", "duplicate_key", line=3, column=1, count=2),
    Case("invalid_utf8_mid_line_3",
         {"pipeline.yaml": b'version: "1.0"\nstages: {}\ndescription: ab\xffcd\n'},
         "pipeline.yaml", "parse", "invalid_utf8", line=3, column=16),
    Case("bom", {"pipeline.yaml": b"\xef\xbb\xbf" + VALID_PIPELINE.encode()},
         "pipeline.yaml", "parse", "bom", line=1, column=1),
    Case("tab_indentation",
         {"pipeline.yaml": 'version: "1.0"\nstages:\n\ts:\n\t\tcmd: echo hi\n'},
         "pipeline.yaml", "parse", "syntax", line=3, column=1, message_has="tab"),
    Case("lock_with_nan",
         {"pipeline.yaml": VALID_PIPELINE,
          "pipeline.lock": '{\n  "version": "1.0",\n  "stages": {"s": {"x": NaN}}\n}\n'},
         "pipeline.lock", "parse", "syntax", line=3, column=25, message_has="NaN"),
    Case("pipeline_is_a_scalar", {"pipeline.yaml": "just a string\n"}, "pipeline.yaml",
         "schema", "type", line=1, column=1),
    Case("pipeline_is_a_list", {"pipeline.yaml": "- version\n- stages\n"}, "pipeline.yaml",
         "schema", "type", line=1, column=1),
    # [read.yaml]: an empty file holds no document
    Case("pipeline_is_empty", {"pipeline.yaml": ""}, "pipeline.yaml", "parse", "syntax"),
    Case("pipeline_is_a_directory", {"pipeline.yaml": directory}, "pipeline.yaml",
         "io", "not_a_file"),
    Case("pipeline_does_not_exist", {"pipeline.yaml": None}, "pipeline.yaml",
         "io", "file_not_found"),
]


def make_case(root: Path, files: dict[str, Content]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        if content is None:
            continue
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def run_case(tmp_path: Path, name: str, files: dict[str, Content], target: str, mode: str,
             *extra: str, timeout: float = TIMEOUT) -> tuple[Run, str]:
    """Run validate on a case; returns the run and the display name of the target file."""
    case_dir = tmp_path / "case"
    make_case(case_dir, files)
    if mode == "path":
        return run_validate(f"{name} [path]", tmp_path, *extra, f"case/{target}",
                            timeout=timeout), f"case/{target}"
    return run_validate(f"{name} [project]", case_dir, *extra, timeout=timeout), target


# ---------------------------------------------------------------------------------- the cases

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_rejected_cleanly(tmp_path: Path, case: Case, mode: str) -> None:
    # SPEC section 3 (reading files) and [tool.exit-codes]: exit 1, a located diagnostic, no
    # traceback, bounded time and memory.
    run, display = run_case(tmp_path, case.name, case.files, case.target, mode)
    d = assert_rejected(run, file=display, phase=case.phase, code=case.code, line=case.line,
                        column=case.column, located=case.located, count=case.count)
    if case.message_has:
        assert case.message_has.lower() in str(d["message"]).lower(), d["message"]


def test_hostile_sparse_file_is_not_read(tmp_path: Path) -> None:
    # SPEC [read.size]: "without reading them": the 3 GiB file is refused from its size; with
    # 1.5 GB of address space the child could not have read it whole, and it finishes fast.
    files: dict[str, Content] = {"params.yaml": sparse(3 * 1024**3)}
    run, display = run_case(tmp_path, "params_3GiB_sparse_json_report", files, "params.yaml",
                            "path", "--format", "json")
    assert_no_crash(run)
    assert run.code == 1
    report = json.loads(run.out)
    [d] = report["diagnostics"]
    assert (d["file"], d["phase"], d["code"]) == (display, "parse", "too_large")
    assert "3,221,225,472" in d["message"]


# A 15 MB pipeline file of valid but pointless content, under the 16 MiB limit and under the
# 100,000-node bound of [read.aliases]: a chain of 15,000 stages with padded commands.
def big_valid_pipeline(target_bytes: int = 15 * 1000 * 1000, stages: int = 15_000) -> str:
    parts = ['version: "1.0"\nstages:\n', "  s0:\n    cmd: echo\n    outs: [out/0.txt]\n"]
    size = sum(map(len, parts))
    pad = max(0, (target_bytes - size) // (stages - 1) - 70)
    for i in range(1, stages):
        parts.append(f"  s{i}:\n    cmd: echo {'x' * pad}\n    deps: [out/{i - 1}.txt]\n"
                     f"    outs: [out/{i}.txt]\n")
    return "".join(parts)


@pytest.mark.parametrize("mode", MODES)
def test_hostile_15MB_valid_pipeline_finishes(tmp_path: Path, mode: str) -> None:
    # SPEC [read.size]: a large file under the limit is read; it must finish (60 s guard).
    text = big_valid_pipeline()
    assert 14 * 1024 * 1024 < len(text.encode()) < 16 * 1024 * 1024
    run, _ = run_case(tmp_path, "valid_15MB_pipeline", {"pipeline.yaml": text},
                      "pipeline.yaml", mode, timeout=60)
    assert_no_crash(run)
    assert run.code == 0, run.out[-3000:]
    assert run.out.rstrip("\n").splitlines()[-1].startswith("valid: "), run.out[-3000:]


# ---------------------------------------------------------------------------------- more hostile inputs

def _huge_int_files(fmt: str, digits: int) -> tuple[dict[str, Content], str]:
    n = "7" * digits
    name = f"params.{fmt}"
    text = {"yaml": f"a: {n}\n", "json": f'{{"a": {n}}}\n', "toml": f"a = {n}\n"}[fmt]
    pipeline = VALID_PIPELINE.replace("    outs:", f"    params:\n      {name}: [/a]\n    outs:")
    return {"pipeline.yaml": pipeline, name: text}, name


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", ["yaml", "json", "toml"])
def test_hostile_5000_digit_integer(tmp_path: Path, fmt: str, mode: str) -> None:
    # SPEC [values.int]: the reference tool refuses integers over 4,300 digits
    # (parse/invalid_scalar); before that bound existed, TOML crashed (exit 70) and JSON
    # reported column 0.
    files, name = _huge_int_files(fmt, 5000)
    run, display = run_case(tmp_path, f"integer_5000_digits_{fmt}", files, name, mode)
    assert_rejected(run, file=display, phase="parse", code="invalid_scalar",
                    located=fmt == "yaml")


@pytest.mark.parametrize("mode", MODES)
def test_hostile_15_million_digit_integer_finishes(tmp_path: Path, mode: str) -> None:
    # A guard for any fix of the bug above: decimal-to-int conversion is quadratic in CPython,
    # so simply lifting the 4,300-digit limit would turn this 15 MB file into a hang.
    files, name = _huge_int_files("yaml", 15_000_000)
    run, _ = run_case(tmp_path, "integer_15M_digits_yaml", files, name, mode)
    assert_no_crash(run)
    assert run.code in (0, 1), run.out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("escape", ["ud800", "udc00"])
def test_hostile_lone_surrogate_in_lock_json_report(tmp_path: Path, mode: str,
                                                    escape: str) -> None:
    # SPEC section 4 (str is a sequence of Unicode scalar values), [tool.validate] --format json:
    # before the fixes in documents._parse_json, both exited 70 (UnicodeEncodeError).
    files: dict[str, Content] = {
        "pipeline.yaml": VALID_PIPELINE,
        "pipeline.lock": '{"version": "1.0", "stages": {"\\' + escape + '": {}}}\n'}
    run, display = run_case(tmp_path, f"lock_lone_surrogate_{escape}_json_report", files,
                            "pipeline.lock", mode, "--format", "json")
    assert_no_crash(run)
    assert run.code == 1
    report = json.loads(run.out)
    assert any(d["file"] == display and d["phase"] == "parse" for d in report["diagnostics"])


def test_hostile_non_ascii_digit_pointer(tmp_path: Path) -> None:
    # SPEC [params.pointer], [params.missing]: an unresolvable pointer is
    # semantic/params_key_missing. ('/l/\u00b9', SUPERSCRIPT ONE, passed str.isdigit() and
    # int() then raised ValueError: exit 70, before the fix in values.resolve_pointer.)
    files: dict[str, Content] = {
        "pipeline.yaml": VALID_PIPELINE.replace(
            "    outs:", '    params:\n      params.yaml: ["/l/\u00b9"]\n    outs:'),
        "params.yaml": "l: [1, 2]\n"}
    # Project mode only: pointers are resolved when the pipeline's project is validated.
    run, _ = run_case(tmp_path, "pointer_non_ascii_digit", files, "pipeline.yaml", "project")
    assert_rejected(run, file="pipeline.yaml", phase="semantic", code="params_key_missing",
                    located=True)
