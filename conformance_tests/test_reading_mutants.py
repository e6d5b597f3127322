"""The suite tests itself on reading mutants (`adapters/reading_mutants.py`): each alternative
reading of a rule of sections 3, 4, 8, 9, 12 and 13 is killed by the cases listed for it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "adapters"))

from harness import Adapter, load_cases, run_cases  # noqa: E402
from reading_mutants import KILLED_BY, READING_MUTANTS  # noqa: E402

REFERENCE = f"{sys.executable} {HERE / 'adapters' / 'reftool_adapter.py'}"
CASES = {c["id"]: c for c in load_cases()}


def test_every_reading_mutant_names_existing_killers() -> None:
    assert len(READING_MUTANTS) >= 15
    assert set(KILLED_BY) == set(READING_MUTANTS)
    assert all(ids and set(ids) <= set(CASES) for ids in KILLED_BY.values())


@pytest.mark.parametrize("mutant", sorted(READING_MUTANTS))
def test_reading_mutant_is_killed_by_its_cases(mutant: str) -> None:
    adapter = Adapter(REFERENCE, env={"MUTANT": mutant})
    try:
        run = run_cases(adapter, [CASES[i] for i in KILLED_BY[mutant]])
    finally:
        adapter.close()
    killed = [o.case["id"] for o in run.outcomes if o.outcome == "failed"]
    assert killed, f"{mutant} ({READING_MUTANTS[mutant]}) passes {KILLED_BY[mutant]}"
