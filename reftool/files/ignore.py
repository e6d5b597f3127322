"""What a directory dep or output leaves out: SPEC [digest.ignore] (1.1).

The rules of a directory are the rules of the project's `.reftoolignore` (matched against
paths from the project root), then the patterns of its `exclude` (matched against paths
from the directory), in that order; the last rule that matches an entry decides, and a rule
starting with `!` puts the entry back. The glob language is gitignore's, defined exactly in
SPEC [digest.ignore-syntax]. Everything here is pure but `read_ignore_file`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Literal

IGNORE_FILE = ".reftoolignore"
Source = Literal["ignore", "exclude"]
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class PatternError(ValueError):
    """A pattern SPEC [digest.ignore-syntax] refuses (`semantic/exclude_pattern`)."""


@dataclass(frozen=True, slots=True)
class Rule:
    source: Source
    text: str  # the pattern as it counts: a line of `.reftoolignore` after trimming
    negate: bool
    dir_only: bool
    anchored: bool
    regex: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules a directory is hashed under; `base` is its path from the project root."""

    rules: tuple[Rule, ...]
    base: str

    @property
    def digest(self) -> str:
        """[lock.rules]: the SHA-256 of the rules text, one `SOURCE SP PATTERN LF` a rule."""
        text = "".join(f"{r.source} {r.text}\n" for r in self.rules)
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

    def excluded(self, rel: str, is_dir: bool) -> bool:
        """Whether the entry `rel` (relative to the directory, NFC, no final '/') is left out:
        the last rule that matches decides ([digest.ignore])."""
        name = rel.rpartition("/")[2]
        for rule in reversed(self.rules):
            if rule.dir_only and not is_dir:
                continue
            if rule.anchored:
                subject = self.base + rel if rule.source == "ignore" else rel
            else:
                subject = name
            if rule.regex.fullmatch(subject):
                return not rule.negate
        return False


def compile_pattern(text: str, source: Source) -> Rule:
    """One pattern of [digest.ignore-syntax]; raises PatternError saying what is wrong."""
    if _CONTROL.search(text):
        raise PatternError("holds a control character")
    if source == "exclude":
        if text.startswith("#"):
            raise PatternError("starts with '#', which makes a comment; write '\\#'")
        if text != _trim(text):
            raise PatternError("ends with a space; write '\\ ' for a space that counts")
    body = text
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    dir_only = body.endswith("/") and not _escaped_at(body, len(body) - 1)
    if dir_only:
        body = body[:-1]
    anchored = "/" in body
    if body.startswith("/"):
        body = body[1:]
    if not body:
        raise PatternError("matches nothing: it is empty")
    for segment in body.split("/"):
        if segment in ("", ".", ".."):
            raise PatternError(f"has a segment {segment!r}, which no entry's path has")
    return Rule(source=source, text=text, negate=negate, dir_only=dir_only,
                anchored=anchored, regex=re.compile(_translate(body), re.DOTALL))


def _escaped_at(text: str, i: int) -> bool:
    """Whether the character at `i` is escaped by an odd run of backslashes before it."""
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _trim(line: str) -> str:
    """A `.reftoolignore` line without its trailing spaces, unless escaped by '\\'."""
    end = len(line)
    while end > 0 and line[end - 1] == " " and not _escaped_at(line, end - 1):
        end -= 1
    return line[:end]


def _translate(p: str) -> str:
    """The regular expression of a glob: `*`, `?`, `[...]`, `**` segments and `\\` escapes."""
    out: list[str] = []
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        if c == "*":
            j = i
            while j < n and p[j] == "*":
                j += 1
            if j - i == 2 and (i == 0 or p[i - 1] == "/") and (j == n or p[j] == "/"):
                if j == n:  # a final `/**`: everything below
                    out.append(".*")
                    i = j
                else:  # `**/`: zero or more directories
                    out.append("(?:[^/]*/)*")
                    i = j + 1
                continue
            out.append("[^/]*")  # `*`, and any other run of stars
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            i = _bracket(p, i, out)
        elif c == "\\":
            if i + 1 == n:
                raise PatternError("ends with a lone '\\'")
            out.append(re.escape(p[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _bracket(p: str, i: int, out: list[str]) -> int:
    """A bracket expression from `p[i] == '['`; appends its regex, returns the index after."""
    j = i + 1
    negate = j < len(p) and p[j] in "!^"
    if negate:
        j += 1
    items: list[str] = []
    first = True
    while True:
        if j >= len(p):
            raise PatternError(f"'[' at character {i + 1} is never closed by ']'")
        c = p[j]
        if c == "]" and not first:
            break
        if c == "[" and j + 1 < len(p) and p[j + 1] == ":":
            raise PatternError("'[:' inside brackets is reserved (no character classes)")
        if c == "\\":
            if j + 1 >= len(p):
                raise PatternError("ends with a lone '\\'")
            j += 1
            c = p[j]
        lo = c
        j += 1
        first = False
        if j + 1 < len(p) and p[j] == "-" and p[j + 1] != "]":
            hi = p[j + 1]
            j += 2
            if hi == "\\":
                if j >= len(p):
                    raise PatternError("ends with a lone '\\'")
                hi = p[j]
                j += 1
            if ord(hi) < ord(lo):
                raise PatternError(f"range {lo}-{hi} runs backwards")
            items.append(f"{re.escape(lo)}-{re.escape(hi)}")
        else:
            items.append(re.escape(lo))
    body = "".join(items)
    out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
    return j + 1


@dataclass(frozen=True, slots=True)
class IgnoreProblem:
    """A line of `.reftoolignore` that [digest.ignore-syntax] refuses."""

    line: int
    column: int
    code: str  # `exclude_pattern`, or `invalid_utf8`
    message: str


def parse_ignore_text(data: bytes) -> tuple[tuple[Rule, ...], list[IgnoreProblem]]:
    """The rules of a `.reftoolignore` file and its bad lines ([digest.ignore-file])."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        number = data[:e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        return (), [IgnoreProblem(number, column, "invalid_utf8", "is not valid UTF-8")]
    rules: list[Rule] = []
    problems: list[IgnoreProblem] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = _trim(raw[:-1] if raw.endswith("\r") else raw)
        if not line or line.startswith("#"):
            continue
        try:
            rules.append(compile_pattern(line, "ignore"))
        except PatternError as e:
            problems.append(IgnoreProblem(number, 1, "exclude_pattern", f"{line!r} {e}"))
    return tuple(rules), problems


def rules_for(path: str, ignore: tuple[Rule, ...], exclude: tuple[str, ...]) -> Rules | None:
    """The rules of the directory `path` (`a/b/`); None when there are none, so that its digest
    is the one 1.0 defines. The `exclude` patterns were validated; a bad one raises."""
    if not ignore and not exclude:
        return None
    return Rules(rules=ignore + tuple(compile_pattern(p, "exclude") for p in exclude),
                 base=path)


def read_ignore_file(root: str | os.PathLike[str]) -> bytes | None:
    """The bytes of the project's `.reftoolignore`, None when there is none. Read as every
    project file is ([security.special-files], [security.symlinks]): raises OSError (a
    `not_a_file` or escaping link included) for the caller to report."""
    from .safe_io import open_regular
    full = os.path.join(root, IGNORE_FILE)
    if not os.path.lexists(full):
        return None
    real, top = os.path.realpath(full), os.path.realpath(root)
    if not real.startswith(top + os.sep):
        raise OSError(f"{IGNORE_FILE} links outside the project")
    with open_regular(full) as f:
        data: bytes = f.read(16 * 1024 * 1024 + 1)
    if len(data) > 16 * 1024 * 1024:
        raise OSError(f"{IGNORE_FILE} is larger than 16 MiB")
    return data


__all__ = [
    "IGNORE_FILE", "IgnoreProblem", "PatternError", "Rule", "Rules", "compile_pattern",
    "parse_ignore_text", "read_ignore_file", "rules_for",
]
