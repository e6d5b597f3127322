"""Errors as data: SPEC [errors.phase-code].

Every problem the tool finds in a file is a `Diagnostic` with a phase and a code from SPEC.md's
closed list, the file, 1-based line and column when known, and the JSON Pointer of the value at
fault. Library code returns diagnostics; only the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .spec import ERROR_CODES, WARNING_CODES, Phase, Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    phase: Phase
    code: str
    file: str
    message: str
    line: int | None = None
    column: int | None = None
    pointer: str = ""
    expected: str | None = None
    hint: str | None = None
    anchor: str | None = None
    severity: Severity = field(default="error")

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES[self.phase]:
            raise ValueError(f"code {self.code!r} is not in phase {self.phase!r} of SPEC.md")

    @property
    def location(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line or 0, self.column or 0, self.phase, self.code)


def diagnostic(
    phase: Phase, code: str, file: str, message: str, **kw: object
) -> Diagnostic:
    """A diagnostic whose severity follows SPEC [errors.warnings]."""
    severity: Severity = "warning" if code in WARNING_CODES else "error"
    return Diagnostic(phase=phase, code=code, file=file, message=message,
                      severity=severity, **kw)  # type: ignore[arg-type]


class SpecError(Exception):
    """Raised by loaders when a file cannot be used at all; carries its diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("; ".join(f"{d.location}: {d.message}" for d in diagnostics))
