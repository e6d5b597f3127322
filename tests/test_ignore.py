"""[digest.ignore]: a `src/` dep that excludes Python's bytecode is up to date right after the
run that wrote it; changing the rules is named; excluded files are not restored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reftool.files.ignore import PatternError, compile_pattern, parse_ignore_text, rules_for

PIPELINE = '''version: "1.1"
stages:
  s:
    cmd: python -c "import sys; sys.path.insert(0, 'src'); import m; open('o.txt', 'w').write('ok')"
    deps:
      - path: src/
        exclude: ["__pycache__/", "*.pyc"]
    outs: [o.txt]
'''


def reftool(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    env.pop("PYTHONDONTWRITEBYTECODE")
    return subprocess.run([sys.executable, "-m", "reftool", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_bytecode_written_by_the_run_leaves_the_stage_up_to_date(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("X = 1\n")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    assert reftool(tmp_path, "run", "-q").returncode == 0
    assert list((tmp_path / "src" / "__pycache__").glob("*.pyc"))  # the run wrote bytecode
    assert '"version": "1.1"' in (tmp_path / "pipeline.lock").read_text()
    done = reftool(tmp_path, "plan", "--exit-code")
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / ".reftoolignore").write_text("*.md\n")
    changed = reftool(tmp_path, "plan", "--exit-code")
    assert changed.returncode == 3 and "rules of src/" in changed.stdout


def test_bad_ignore_line_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("X = 1\n")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / ".reftoolignore").write_text("# fine\n*.log\n[z-a]\n")
    out = reftool(tmp_path, "validate")
    assert out.returncode == 1
    assert ".reftoolignore:3" in out.stdout + out.stderr
    assert "exclude_pattern" in out.stdout + out.stderr


@pytest.mark.parametrize("pattern", ["", "!", "/", "a//b", "../x", "[ab", "a\\", "[z-a]",
                                     "[[:alpha:]]", "#c", "a ", "a\tb"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern, "exclude")


def test_rules_text_ignores_comments_and_trailing_spaces() -> None:
    a = parse_ignore_text(b"# one\n*.log  \r\n\n")[0]
    b = parse_ignore_text(b"*.log\n# two\n")[0]
    assert rules_for("d/", a, ()).digest == rules_for("d/", b, ()).digest  # type: ignore[union-attr]
    assert rules_for("d/", (), ()) is None
