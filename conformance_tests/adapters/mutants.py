"""Deliberately broken variants of the reference implementation: each carries one realistic bug.

The suite must catch every one of them with at least one fixed case and one property
(`test_conformance.py` checks that it does). Selected with MUTANT=NAME for the reference adapter.

READING_MUTANTS are different: each implements a defensible alternative reading of one rule
(what DVC does, or what a hasty reader of the sentence might build), so that a case pins the
reading SPEC.md chose; each must be caught by at least one fixed case.
"""

from __future__ import annotations

import math
import re
from typing import Any

MUTANTS = {
    "codepoint_order": "object keys sorted by code point instead of UTF-16 code units",
    "host_floats": "floats written with the host language's formatting (Python repr)",
    "no_upstream": "no propagation to the stages downstream of a stage that runs",
    "yaml11": "YAML 1.1 scalars (on/yes are booleans, 1e-3 a string, 010 octal)",
    "crlf": "line endings normalized (CRLF to LF) before hashing a file",
    "unknown_version_latest": "a file of an unknown version read as the latest",
    "loose_params": "params compared loosely, so 1 equals true and 1.0",
    "param_removed_missed": "a param removed from a stage does not make it stale",
}

READING_MUTANTS = {
    "over_report": "validate reports an error twice (the exact error set is checked)",
    "dollar_template": "[template.syntax] `$${X}` read as `$` then the template `${X}`",
    "star_no_keys": "[params.whole-file] `\"*\"` read as \"the file, but no key\": nothing is tracked",
    "foreach_index_suffix": "[generate.foreach] a list's generated stages named by index (s@0)",
    "foreach_value_suffix": "[generate.foreach] a mapping's generated stages named by value",
    "matrix_reversed": "[generate.matrix] the suffix lists the axes last to first",
    "matrix_values_only": "[generate.matrix] the suffix holds the values only (t@0.1,cnn)",
    "collision_first_wins": "[generate.names] colliding generated names: the first wins",
    "wdir_relative": "[pipeline.stage-keys] deps resolved from the stage's wdir (as DVC does)",
    "dir_kind_loose": "[paths.directory] a path names a file or a directory, whatever its '/'",
    "best_no_direction": "[metrics.declarations] `best` without a direction accepted",
    "warnings_as_errors": "[errors.warnings] lock warnings reported as errors",
}


def apply(name: str) -> None:
    from reftool.files import documents
    from reftool.pipeline import hashing
    from reftool.pipeline import plan
    from reftool.files import validate
    from reftool.files import values
    if name == "codepoint_order":
        values.utf16_key = lambda key: key.encode("utf-32-be")  # type: ignore[assignment]
    elif name == "host_floats":
        values.float_text = lambda x: repr(x) if math.isfinite(x) else (  # type: ignore
            "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity"))
    elif name == "no_upstream":
        original = plan.decide

        def decide(*args: Any, **kw: Any) -> Any:
            result = original(*args, **kw)
            kept = []
            for d in result.to_run:
                reasons = tuple(r for r in d.reasons if r.code != "upstream")
                if reasons:
                    kept.append(plan.StageDecision(name=d.name, reasons=reasons))
            gone = tuple(d.name for d in result.to_run if not any(
                r.code != "upstream" for r in d.reasons))
            return plan.Plan(to_run=tuple(kept), up_to_date=result.up_to_date + gone,
                             frozen=result.frozen)
        plan.decide = decide  # type: ignore[assignment]
    elif name == "yaml11":
        original_resolve = documents.resolve_plain
        bool11 = {"yes": True, "Yes": True, "YES": True, "on": True, "On": True, "ON": True,
                  "y": True, "Y": True, "no": False, "No": False, "NO": False, "off": False,
                  "Off": False, "OFF": False, "n": False, "N": False}

        def resolve11(text: str) -> Any:
            if text in bool11:
                return bool11[text]
            if re.fullmatch(r"[-+]?[0-9]+[eE][-+]?[0-9]+", text):
                return text  # YAML 1.1 floats need a dot
            if re.fullmatch(r"0[0-7]+", text):
                return int(text, 8)
            return original_resolve(text)
        documents.resolve_plain = resolve11  # type: ignore[assignment]
    elif name == "crlf":
        original_digest = hashing.file_digest_of_bytes
        hashing.file_digest_of_bytes = lambda data: original_digest(  # type: ignore
            data.replace(b"\r\n", b"\n"))
    elif name == "unknown_version_latest":
        validate.check_version = lambda doc, what: None  # type: ignore[assignment]
    elif name == "loose_params":
        plan.canonical_equal = lambda a, b: a == b  # type: ignore[assignment]
    elif name == "param_removed_missed":
        original_params = plan._params

        def params(*args: Any) -> Any:
            return [r for r in original_params(*args) if r.code != "param_removed"]
        plan._params = params  # type: ignore[assignment]
    elif name in READING_MUTANTS:
        apply_reading(name)
    else:
        from reading_mutants import READING_MUTANTS as VALUE_READINGS
        from reading_mutants import apply as apply_value_reading
        if name in VALUE_READINGS:
            return apply_value_reading(name)
        raise SystemExit(f"no mutant {name!r}; known: "
                         f"{', '.join([*MUTANTS, *READING_MUTANTS, *VALUE_READINGS])}")


def apply_reading(name: str) -> None:
    if name in STALENESS_READINGS:
        apply_staleness_reading(name)
    elif name in ("over_report", "wdir_relative", "dir_kind_loose", "best_no_direction",
                "warnings_as_errors"):
        _validation_reading(name)
    elif name == "dollar_template":
        _dollar_template()
    elif name == "star_no_keys":
        _star_no_keys()
    else:
        _generated_names(name)


def _validation_reading(name: str) -> None:
    import dataclasses
    import __main__
    from reftool.files import validate
    if name == "over_report":
        original_op = __main__.OPS["validate"]

        def op(inp: Any) -> Any:
            result = original_op(inp)
            result["errors"] = result["errors"][:1] + result["errors"]
            return result
        __main__.OPS["validate"] = op
    elif name == "wdir_relative":
        original_disk = validate._disk_checks

        def disk_checks(project: Any) -> Any:
            pipeline = project.pipeline
            project.pipeline = dataclasses.replace(pipeline, stages={
                n: dataclasses.replace(s, deps=tuple(
                    dataclasses.replace(d, path=f"{s.wdir}/{d.path}") for d in s.deps))
                if s.wdir != "." else s for n, s in pipeline.stages.items()})
            try:
                return original_disk(project)
            finally:
                project.pipeline = pipeline
        validate._disk_checks = disk_checks  # type: ignore[assignment]
    elif name == "dir_kind_loose":
        original_loose = validate._disk_checks
        validate._disk_checks = lambda project: [  # type: ignore[assignment]
            d for d in original_loose(project) if d.code != "path_kind"]
    elif name == "best_no_direction":
        original_schema = validate.schema_diagnostics
        validate.schema_diagnostics = lambda *a, **kw: [  # type: ignore[assignment]
            d for d in original_schema(*a, **kw)
            if not (d.code == "required" and (d.pointer or "").startswith("/metrics/"))]
    elif name == "warnings_as_errors":
        validate.Report.errors = property(  # type: ignore[assignment]
            lambda self: list(self.diagnostics))


def _dollar_template() -> None:
    from reftool.files import load
    original = load.substitute

    def substitute(text: str, scope: Any) -> str:
        return original(text.replace("$${", "$\x00${"), scope).replace("\x00", "")
    load.substitute = substitute  # type: ignore[assignment]


def _star_no_keys() -> None:
    import dataclasses
    from reftool.files import load
    original = load._stage

    def stage(*args: Any) -> Any:
        s = original(*args)
        return dataclasses.replace(s, params=tuple(
            dataclasses.replace(p, whole=False) for p in s.params))
    load._stage = stage  # type: ignore[assignment]


def _generated_names(name: str) -> None:
    from reftool.files import load
    from reftool.files.values import scalar_text
    original = load._generated

    def generated(base: str, raw: Any, *args: Any) -> Any:
        seen = set()
        for i, (stage, local) in enumerate(original(base, raw, *args)):
            if "@" not in stage:  # a plain stage
                yield stage, local
                continue
            parts = stage.split("@", 1)[1].split(",")
            if name == "foreach_index_suffix" and isinstance(raw.get("foreach"), list):
                stage = f"{base}@{i}"
            elif name == "foreach_value_suffix" and isinstance(raw.get("foreach"), dict):
                stage = f"{base}@{scalar_text(local['item'])}"
            elif name == "matrix_reversed" and "matrix" in raw:
                stage = f"{base}@{','.join(reversed(parts))}"
            elif name == "matrix_values_only" and "matrix" in raw:
                stage = f"{base}@{','.join(p.split('=', 1)[1] for p in parts)}"
            elif name == "collision_first_wins" and stage in seen:
                continue
            seen.add(stage)
            yield stage, local
    load._generated = generated  # type: ignore[assignment]


# Reading mutants: each implements one defensible alternative reading of a staleness, graph,
# execution or frozen-stage rule (issue 12). The suite must kill each with at least one case
# (`test_every_reading_mutant_is_caught_by_a_case`, with READING_MUTANTS); properties are not required to.
STALENESS_READINGS = {
    "force_lists_only_forced": "a forced stage lists only forced (after never_run)",
    "never_run_alone": "never_run means no other reason, so a forced never-run stage "
                       "lists only never_run",
    "never_run_upstream": "a never-run stage below a stage that runs also lists upstream",
    "details_field_name": "reason details named as 1.0's table: field (definition_changed) "
                          "and name (env_changed)",
    "params_edge_ignored": "a params file written by a stage draws no graph edge",
    "pending_params_compared": "params from a file an upstream stage will rewrite are compared",
    "params_checked_at_validation": "a params file another stage writes must exist at "
                                    "validation",
    "vars_generated_allowed": "a vars file may be a stage's output",
    "missing_source_refused": "a missing source dep is an error of the project, as 1.0 "
                              "read it, not a dep_missing reason",
    "missing_source_not_blocking": "a stage after a blocked stage is not blocked",
    "frozen_missing_ignored": "a frozen stage's missing output is left to its dependents",
    "frozen_cuts_graph": "a frozen stage is taken out of the graph, edges through it too",
    "frozen_passes_upstream": "a stage that runs makes the stages after a frozen stage upstream",
    "matrix_axes_sorted": "matrix stage names list the axes sorted, not as written",
    "group_not_selectable": "a foreach/matrix group cannot be selected by its base name",
    "keep_going_by_default": "independent stages go on after a failure",
    "failed_keeps_entry": "a stage that failed after its outputs were removed keeps its entry",
    "failed_start_drops_entry": "a stage that failed while starting loses its entry too",
    "no_recheck_at_end": "the deps a stage started with are recorded without looking again",
}


def apply_staleness_reading(name: str) -> None:
    from reftool.files import graph, load, validate
    from reftool.pipeline import execute, plan
    if name in _PLAN_MUTANTS:
        _PLAN_MUTANTS[name](plan, graph)
    elif name == "params_checked_at_validation":
        _params_checked_at_validation(validate)
    elif name == "vars_generated_allowed":
        original_reserved = validate._reserved_outputs
        validate._reserved_outputs = lambda project: [  # type: ignore[assignment]
            d for d in original_reserved(project) if d.code != "vars_generated"]
    elif name == "matrix_axes_sorted":
        original_generated = load._generated

        def generated(*args: Any) -> Any:
            for stage, local in original_generated(*args):
                base, _, suffix = stage.partition("@")
                if "=" in suffix:
                    stage = base + "@" + ",".join(sorted(suffix.split(",")))
                yield stage, local
        load._generated = generated  # type: ignore[assignment]
    elif name in _RUN_MUTANTS:
        _RUN_MUTANTS[name](execute)
    else:
        raise SystemExit(f"no mutant {name!r}")


def _wrap_decide(plan: Any, change: Any) -> None:
    original = plan.decide

    def decide(pipeline: Any, lock: Any, observer: Any, **kw: Any) -> Any:
        return change(original(pipeline, lock, observer, **kw), pipeline, lock)
    plan.decide = decide


def _with_reasons(plan: Any, result: Any, edit: Any) -> Any:
    to_run = tuple(plan.StageDecision(name=d.name, reasons=tuple(edit(d)), action=d.action)
                   for d in result.to_run)
    return plan.Plan(to_run=to_run, up_to_date=result.up_to_date, frozen=result.frozen,
                     selected=result.selected)


def _only_forced(plan: Any, graph: Any) -> None:
    keep = ("never_run", "forced")
    _wrap_decide(plan, lambda r, p, lk: _with_reasons(plan, r, lambda d: [
        x for x in d.reasons if x.code in keep] if "forced" in d.codes else d.reasons))


def _never_run_alone(plan: Any, graph: Any) -> None:
    _wrap_decide(plan, lambda r, p, lk: _with_reasons(plan, r, lambda d: [
        x for x in d.reasons if x.code != "forced"] if "never_run" in d.codes else d.reasons))


def _never_run_upstream(plan: Any, graph: Any) -> None:
    def change(result: Any, pipeline: Any, lock: Any) -> Any:
        deps = graph.dependencies(pipeline)
        running = {d.name for d in result.to_run}

        def edit(d: Any) -> Any:
            ups = sorted(u for u in deps[d.name] if u in running)
            if "never_run" in d.codes and ups:
                return list(d.reasons) + [plan.Reason(code="upstream", stages=tuple(ups))]
            return d.reasons
        return _with_reasons(plan, result, edit)
    _wrap_decide(plan, change)


def _details_field_name(plan: Any, graph: Any) -> None:
    original = plan.reason_dict

    def reason_dict(r: Any) -> Any:
        d = original(r)
        if r.code in ("definition_changed", "env_changed") and "key" in d:
            d["field" if r.code == "definition_changed" else "name"] = d.pop("key")
        return d
    plan.reason_dict = reason_dict


def _params_edge_ignored(plan: Any, graph: Any) -> None:
    graph.input_paths = lambda stage: [d.path for d in stage.deps]


def _pending_params_compared(plan: Any, graph: Any) -> None:
    original = plan._params
    plan._params = lambda stage, entry, observer, pending=None: original(stage, entry, observer)


def _ignoring(code: str) -> Any:
    def apply(plan: Any, graph: Any) -> None:
        from reftool.files.errors import SpecError
        original = plan.check_sources

        def check_sources(*args: Any) -> None:
            try:
                original(*args)
            except SpecError as e:
                kept = [d for d in e.diagnostics if d.code != code]
                if kept:
                    raise SpecError(kept) from None
        plan.check_sources = check_sources
    return apply


def _frozen_cuts_graph(plan: Any, graph: Any) -> None:
    original = graph.dependencies

    def dependencies(pipeline: Any, index: Any = None) -> Any:
        return {n: {d for d in ds if not pipeline.stages[d].frozen}
                for n, ds in original(pipeline, index).items()}
    graph.dependencies = dependencies


def _frozen_passes_upstream(plan: Any, graph: Any) -> None:
    def change(result: Any, pipeline: Any, lock: Any) -> Any:
        deps = graph.dependencies(pipeline)
        running = {d.name for d in result.to_run}
        passing = {f for f in result.frozen if deps[f] & running}
        moved = [n for n in result.up_to_date if deps[n] & passing]
        extra = tuple(plan.StageDecision(name=n, reasons=(plan.Reason(
            code="upstream", stages=tuple(sorted(deps[n] & passing))),)) for n in moved)
        return plan.Plan(to_run=result.to_run + extra, frozen=result.frozen,
                         up_to_date=tuple(n for n in result.up_to_date if n not in moved))
    _wrap_decide(plan, change)


def _group_not_selectable(plan: Any, graph: Any) -> None:
    def select(names: Any, targets: Any) -> Any:
        known = set(names)
        return [t for t in targets if t in known], [t for t in targets if t not in known]
    graph.select = select


def _refusing_missing_sources(plan: Any, graph: Any) -> None:
    from reftool.files.errors import SpecError, diagnostic
    original = plan.check_sources

    def check_sources(*args: Any) -> Any:
        missing = original(*args)
        if missing:
            raise SpecError([diagnostic("semantic", "dep_missing", "pipeline.yaml", "missing")])
        return missing
    plan.check_sources = check_sources


def _blocking_only_the_stage(plan: Any, graph: Any) -> None:
    import dataclasses

    def change(result: Any, pipeline: Any, lock: Any) -> Any:
        to_run = tuple(dataclasses.replace(d, action="run")
                       if d.action == "blocked" and "dep_missing" not in d.codes else d
                       for d in result.to_run)
        return dataclasses.replace(result, to_run=to_run)
    _wrap_decide(plan, change)


_PLAN_MUTANTS = {
    "force_lists_only_forced": _only_forced, "never_run_alone": _never_run_alone,
    "never_run_upstream": _never_run_upstream, "details_field_name": _details_field_name,
    "params_edge_ignored": _params_edge_ignored,
    "pending_params_compared": _pending_params_compared,
    "missing_source_refused": _refusing_missing_sources,
    "missing_source_not_blocking": _blocking_only_the_stage,
    "frozen_missing_ignored": _ignoring("frozen_output_missing"),
    "frozen_cuts_graph": _frozen_cuts_graph, "frozen_passes_upstream": _frozen_passes_upstream,
    "group_not_selectable": _group_not_selectable,
}


def _params_checked_at_validation(validate: Any) -> None:
    import os
    original = validate._params_checks

    def params_checks(project: Any, report: Any) -> Any:
        out = original(project, report)
        for stage in project.pipeline.stages.values():
            for ref in stage.params:
                if not ref.from_template and not os.path.exists(project.root / ref.file):
                    out.append(validate.located(
                        project.document, "semantic", "params_file_missing",
                        stage.source + ("params", ref.file), "missing", key=True))
        return out
    validate._params_checks = params_checks


def _keep_going(execute: Any) -> None:
    original = execute.Runner.__init__

    def init(self: Any, **kw: Any) -> None:
        original(self, **kw)
        self.options.keep_going = True
    execute.Runner.__init__ = init


def _entry_on_failure(keep: bool) -> Any:
    def apply(execute: Any) -> None:
        original_init, original_failed = execute.Runner.__init__, execute.Runner._failed

        def init(self: Any, **kw: Any) -> None:
            original_init(self, **kw)
            self.old_entries = dict(self.entries)

        def failed(self: Any, name: str, started: float, message: str, tail: Any = None) -> Any:
            if keep and name in self.old_entries and name not in self.entries:
                self._commit(name, self.old_entries[name])
            elif not keep and name in self.entries:
                self.journal.append(name, None)
                del self.entries[name]
            return original_failed(self, name, started, message, tail)
        execute.Runner.__init__, execute.Runner._failed = init, failed
    return apply


def _no_recheck(execute: Any) -> None:
    execute.Runner._changed_while_running = lambda self, stage, inputs: None


_RUN_MUTANTS = {
    "keep_going_by_default": _keep_going, "failed_keeps_entry": _entry_on_failure(True),
    "failed_start_drops_entry": _entry_on_failure(False), "no_recheck_at_end": _no_recheck,
}


READING_MUTANTS.update(STALENESS_READINGS)
