"""`reftool exp`, `metrics diff`, `params diff`, `plot`, `report`: SPEC [tool.experiments]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..files.spec import DEFAULT_PIPELINE, EXIT_INVALID, EXIT_OK, EXIT_USAGE
from .common import Parser, formats, lock_name

MAX_DEFAULT_SOURCES = 40  # reftool.experiments.plot.MAX_SOURCES: the distinct styles


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number from 0 up to but not "
                                         "including 1, e.g. 0.6")
    return value


def add_parsers(sub: Any) -> None:
    """exp show/save, metrics diff, params diff, plot, report"""
    _add_exp_parsers(sub)
    _add_other_parsers(sub)


def _add_exp_parsers(sub: Any) -> None:
    e = sub.add_parser("exp", help="experiments: show them, save one").add_subparsers(
        dest="exp_command", metavar="COMMAND", parser_class=Parser)
    e.required = True
    es = e.add_parser("show", help="one row per experiment: params that differ, metrics",
                      description="Compare experiments: one row per experiment record (and "
                      "per --rev), columns for the params that differ between rows and for "
                      "every metric.")
    es.add_argument("--rev", action="append", default=[], metavar="REV",
                    help="add a row for a git revision or branch (read through git)")
    es.add_argument("--all-params", action="store_true", help="show params that are equal too")
    es.add_argument("--no-workspace", action="store_true", help="leave out the workspace row")
    es.add_argument("--sort", metavar="COLUMN", help="sort by a column")
    es.add_argument("--desc", action="store_true", help="sort in descending order")
    es.add_argument("--filter", action="append", default=[], metavar="EXPR",
                    help="keep rows where COLUMN OP VALUE holds, e.g. 'accuracy>0.9'; a "
                    "column may be named by its end ('lr' for '/train/lr')")
    es.add_argument("--only", action="append", default=[], metavar="COLUMN",
                    help="show only these columns (a name, its end, or a glob such as "
                    "'per_class/*'; repeat for more)")
    es.add_argument("--drop", action="append", default=[], metavar="COLUMN",
                    help="leave out these columns (as --only names them)")
    es.add_argument("--info", action="store_true",
                    help="show id, created, commit, branch, dirty and duration columns")
    formats(es, ("md", "json", "csv"))
    es.set_defaults(handler=cmd_exp_show)
    ev = e.add_parser("save", help="record the workspace's params and metrics as an experiment",
                      description="Record the workspace as an experiment. Refused when the "
                      "metrics were not produced by the current params, code and data (a "
                      "stage writing metrics is stale: run it first).")
    ev.add_argument("name", help="a name for the experiment")
    ev.add_argument("--allow-stale", action="store_true",
                    help="record a stale workspace anyway, marked stale in the record")
    ev.set_defaults(handler=cmd_exp_save)
    from .exprun import add_exp_parsers
    add_exp_parsers(e)


def _add_other_parsers(sub: Any) -> None:
    for kind in ("metrics", "params"):
        k = sub.add_parser(kind, help=f"{kind}: diff").add_subparsers(
            dest=f"{kind}_command", metavar="COMMAND", parser_class=Parser)
        k.required = True
        d = k.add_parser("diff", help=f"what {kind} changed between two experiments",
                         description=f"The {kind} that differ between A and B. A and B are "
                         "'workspace', an experiment's id or name, or a git revision; A "
                         "defaults to HEAD (or the last experiment), B to the workspace.")
        d.add_argument("a", nargs="?", metavar="A")
        d.add_argument("b", nargs="?", metavar="B", default="workspace")
        d.add_argument("--all", action="store_true", help="show unchanged rows too")
        formats(d, ("md", "json"))
        d.set_defaults(handler=cmd_diff, kind=kind)

    _add_plot_parser(sub)

    rp = sub.add_parser("report", help="a markdown report for a pull request",
                        description="Write DIR/report.md, one pull-request comment that renders "
                        "on GitHub with nothing hosted: a hidden marker (CI updates the "
                        "comment in place), a one-line verdict, the stale-lock verdict of "
                        "plan --committed-only, metrics and params tables, curves as Mermaid "
                        "charts; and the PNGs beside it; under 65,536 characters.")
    rp.add_argument("--base", metavar="REV", help="git revision or experiment to compare with "
                    "(default: HEAD, or the last experiment)")
    rp.add_argument("--out", default="reftool-report", metavar="DIR")
    rp.add_argument("--head-label", metavar="NAME", help="the branch name of the workspace's "
                    "side (default: git's current branch; CI passes the pull request's)")
    rp.add_argument("--images-url", metavar="URL", help="an https address where the PNGs "
                    "will be (the workflow run's page, which lists its artifacts)")
    rp.add_argument("--no-lock-check", action="store_true",
                    help="leave out the verdict of plan --committed-only")
    rp.set_defaults(handler=cmd_report)


def _add_plot_parser(sub: Any) -> None:
    pl = sub.add_parser("plot", help="plot metrics: curves per step, summary bars, declared plots",
                        description="Plot series metrics step by step, one panel per metric, "
                        "experiments overlaid (each in its own colour and line style, the "
                        "legend outside); summary metrics as bars; and the pipeline's declared "
                        "plots (SPEC [plots.definition]) from every source that has the file.")
    pl.add_argument("refs", nargs="*", metavar="REF",
                    help="workspace, experiment ids or names, git revisions (default: every "
                    f"experiment and the workspace; past {MAX_DEFAULT_SOURCES} experiments, "
                    "the latest, with a note naming how many were left out)")
    pl.add_argument("--out", default="reftool-plots", metavar="DIR",
                    help="folder for the images (default: reftool-plots)")
    pl.add_argument("--format", choices=("png", "svg", "html"), default="png",
                    help="png, svg, or html: one self-contained index.html with every plot "
                    "and the comparison table, nothing fetched when viewed")
    pl.add_argument("--metric", action="append", default=[], metavar="NAME",
                    help="plot only these metrics (an unknown name is an error, exit 2)")
    pl.add_argument("--log", action="store_true", help="logarithmic y axes")
    pl.add_argument("--smooth", type=_weight, default=0.0, metavar="W",
                    help="exponential moving average of the curves, W in [0, 1): 0.6 is "
                    "mild, 0.9 strong; the raw curve stays faint behind")
    pl.set_defaults(handler=cmd_plot)


def _declarations(root: Path) -> Any:
    from ..experiments.records import read_pipeline, workspace_reader
    pipeline = read_pipeline(workspace_reader(root), "workspace")
    return dict(pipeline.metrics) if pipeline is not None else {}


def _say_skipped(skipped: dict[str, str], snaps: Any = ()) -> None:
    """One line on stderr per record or metrics file that was not read, and why
    (the same reader as `validate`: SPEC [experiments.record], [metrics.summary])."""
    why = dict(skipped)
    for snap in snaps:
        why.update({f"{snap.label}:{path}": text for path, text in snap.skipped.items()})
    for _, text in sorted(why.items()):
        print(f"reftool: skipped, not valid: {text} (passed over)", file=sys.stderr)


def stale_metric_stages(root: Path, pipeline_file: str = DEFAULT_PIPELINE, *,
                        quiet: bool = True) -> list[str] | None:
    """[experiments.stale]: the stages writing metrics that a run would run now (their lock
    entry is stale, or a stage upstream is), in run order, a file that is not there counting
    as the lock records it (a clone without its data is not stale); None when the project
    cannot be planned (invalid: `validate` says why)."""
    import contextlib
    import io
    from ..pipeline.hashing import Progress, hasher_for
    from .common import decide
    args = argparse.Namespace(file=pipeline_file, stages=[], force=False, no_cache=True,
                              remote=None, committed_only=True, no_hash_cache=False)
    hasher = hasher_for(root, progress=Progress(enabled=False))
    try:
        with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
            plan = decide(args, root, hasher)
    finally:
        hasher.close()
    if isinstance(plan, int):
        return None
    from ..experiments.records import read_pipeline, workspace_reader
    pipeline = read_pipeline(workspace_reader(root), "workspace", pipeline_file)
    writes = {name for name, stage in (pipeline.stages.items() if pipeline else ())
              if any(o.section == "metrics" for o in stage.outputs)}
    return [d.name for d in plan.to_run if d.name in writes]


def _mark_stale(snaps: Any, root: Path) -> None:
    """[experiments.stale]: the workspace row says when its metrics are not its params'."""
    for snap in snaps:
        if snap.kind == "workspace":
            snap.stale = stale_metric_stages(root) or []


def _say_stale(snaps: Any) -> None:
    for snap in snaps:
        if snap.stale:
            print(f"reftool: {snap.label}: stale: its metrics were not produced by its params, "
                  f"code and data (out of date: {', '.join(snap.stale)}; reftool run makes "
                  "them so)", file=sys.stderr)


def _default_base(root: Path) -> str | None:
    from ..experiments.records import git, records
    if git(root, "rev-parse", "--verify", "--quiet", "HEAD"):
        return "HEAD"
    found = list(records(root))
    return str(found[-1]["id"]) if found else None


def cmd_exp_show(args: argparse.Namespace) -> int:
    from ..experiments.compare import filter_rows, render_table, select_columns, sort_rows, table
    from ..experiments.records import SourceError, VersionRefused, record_snapshot, records, resolve

    root = Path(".")
    skipped: dict[str, str] = {}
    refused: list[str] = []
    try:
        declarations = _declarations(root)
        snaps = [record_snapshot(r, declarations, root) for r in records(root, skipped, refused)]
        snaps += [resolve(root, rev, declarations) for rev in args.rev]
        if not args.no_workspace:
            snaps.append(resolve(root, "workspace", declarations))
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID if isinstance(e, VersionRefused) else EXIT_USAGE
    _say_skipped(skipped, snaps)
    if not snaps:
        print("reftool: no experiments yet (reftool run writes one)", file=sys.stderr)
        return EXIT_OK
    _mark_stale(snaps, root)
    _say_stale(snaps)
    t = table(snaps, all_params=args.all_params, info=args.info)
    try:
        t = filter_rows(t, args.filter)
        if args.sort:
            t = sort_rows(t, args.sort, descending=args.desc)
        t = select_columns(t, only=args.only, drop=args.drop)
    except ValueError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(render_table(t, args.style))
    return EXIT_INVALID if refused else EXIT_OK


def cmd_exp_save(args: argparse.Namespace) -> int:
    from ..experiments.queue import taken
    from ..experiments.records import RunFacts, SourceError, build_record, write_record
    root = Path(".")
    if taken(root, [args.name]):  # [experiments.names]
        print(f"reftool: an experiment is already named {args.name!r}; names are unique "
              "(reftool exp remove it, or choose another name)", file=sys.stderr)
        return EXIT_USAGE
    stale = stale_metric_stages(root, quiet=False)  # an invalid project: its errors said
    if stale is None:
        print("reftool: not saved", file=sys.stderr)
        return EXIT_INVALID
    if stale and not args.allow_stale:  # [experiments.stale]: a record never lies
        print(f"reftool: not saved: the metrics were not produced by the current params, code "
              f"and data (out of date: {', '.join(stale)}); run `reftool run` first, or "
              "--allow-stale to record it marked stale", file=sys.stderr)
        return EXIT_INVALID
    try:
        path = write_record(root, build_record(root, args.name, pipeline_file=DEFAULT_PIPELINE,
                                               facts=RunFacts(stale=tuple(stale))))
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID
    print(f"saved experiment {args.name!r} as {path}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from ..experiments.compare import diff, param_label, render_diff
    from ..experiments.records import SourceError, VersionRefused, resolve

    root = Path(".")
    a = args.a or _default_base(root)
    if a is None:
        print("reftool: nothing to compare with: name A (no git HEAD, no experiment)",
              file=sys.stderr)
        return EXIT_USAGE
    skipped: dict[str, str] = {}
    refused: list[str] = []
    try:
        declarations = _declarations(root)
        old = resolve(root, a, declarations, skipped=skipped, refused=refused)
        new = resolve(root, args.b, declarations, skipped=skipped, refused=refused)
    except SourceError as e:
        _say_skipped(skipped)
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID if isinstance(e, VersionRefused) else EXIT_USAGE
    _mark_stale((old, new), root)
    _say_skipped(skipped, (old, new))
    _say_stale((old, new))
    if args.style != "json":  # the JSON says it in old_stale/new_stale, labels stay names
        old.label, new.label = _stale_label(old), _stale_label(new)
    if args.kind == "metrics":
        changes = diff(old.metrics, new.metrics, declarations=declarations, all_rows=args.all)
        label: Any = str
    else:
        changes = diff(old.params, new.params, all_rows=args.all)
        label = param_label(old.params.keys() | new.params.keys())
    sys.stdout.write(render_diff(changes, args.style, old_label=old.label,
                                 new_label=new.label, kind=args.kind, label=label,
                                 stale=(old.stale, new.stale)))
    return EXIT_INVALID if refused else EXIT_OK  # [tool.experiments]: one was passed over


def _stale_label(snap: Any) -> str:
    from ..experiments.compare import label_of
    return str(label_of(snap))


def _sources(root: Path, refs: list[str], refused: list[str]) -> Any:
    """The snapshots to draw: the refs named, or every experiment and the workspace; past
    MAX_DEFAULT_SOURCES experiments, the latest, and a note of how many were left out."""
    from ..experiments.records import record_snapshot, records, resolve
    declarations = _declarations(root)
    skipped: dict[str, str] = {}
    if refs:
        snaps = [resolve(root, ref, declarations, skipped=skipped, refused=refused)
                 for ref in refs]
    else:
        snaps = [record_snapshot(r, declarations, root)
                 for r in records(root, skipped, refused)]
        if len(snaps) > MAX_DEFAULT_SOURCES:
            left = snaps[:-MAX_DEFAULT_SOURCES]
            print(f"reftool: plot: {len(snaps)} experiments: drew the latest "
                  f"{MAX_DEFAULT_SOURCES} and the workspace; {len(left)} older left out "
                  f"({left[0].label} to {left[-1].label}); name the ones to draw: "
                  "reftool plot REF ...", file=sys.stderr)
            snaps = snaps[-MAX_DEFAULT_SOURCES:]
        snaps.append(resolve(root, "workspace", declarations))
    _mark_stale(snaps, root)
    _say_skipped(skipped, snaps)
    _say_stale(snaps)
    for snap in snaps:
        snap.label = _stale_label(snap)
    return snaps


def _note_for(figure: str) -> Any:
    def say(note: str) -> None:
        print(f"reftool: {figure}: {note}", file=sys.stderr)
    return say


def _unknown_metrics(snaps: Any, wanted: list[str]) -> str | None:
    """A message for the --metric names no source has, with the closest known names."""
    import difflib

    from ..experiments.plot import series_names, summary_names
    known = set(series_names(snaps)) | set(summary_names(snaps))
    unknown = [m for m in wanted if m not in known]
    if not unknown:
        return None
    hints = sorted({h for m in unknown for h in difflib.get_close_matches(m, known, n=3)})
    return (f"no metric {', '.join(repr(m) for m in unknown)} in the sources drawn; "
            + (f"did you mean {', '.join(hints)}? " if hints else "")
            + f"the metrics are: {', '.join(sorted(known)[:20]) or 'none'}"
            + (" ..." if len(known) > 20 else ""))


def _figures(snaps: Any, args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(name, figure) for the curves and the summary bars, restricted to --metric."""
    from ..experiments.plot import bars, curves, series_names, summary_names
    wanted = args.metric
    series = [m for m in wanted if m in set(series_names(snaps))] if wanted else None
    summary = [m for m in wanted if m in set(summary_names(snaps))] if wanted else None
    out = []
    if series is None or series:
        try:
            out.append(("curves", curves(snaps, series, say=_note_for("curves"),
                                         log=args.log, smoothing=args.smooth)))
        except ValueError as e:
            print(f"reftool: curves: {e}", file=sys.stderr)
    if summary is None or summary:
        try:
            out.append(("summary", bars(snaps, summary, say=_note_for("summary"),
                                        log=args.log)))
        except ValueError as e:
            print(f"reftool: summary: {e}", file=sys.stderr)
    return out


def _declared_figures(root: Path, snaps: Any) -> tuple[list[tuple[str, Any]], int]:
    """[plots.definition]: each declared plot of the workspace's pipeline, drawn from every
    source that has its file (the workspace, git revisions; experiment records keep no plot
    files). Returns the figures and how many plots could not be drawn ([plots.data])."""
    from ..experiments.plot import declared
    from ..experiments.plotdata import PlotDataError, check_rows, read_rows
    from ..experiments.records import git_reader, read_pipeline, workspace_reader

    pipeline = read_pipeline(workspace_reader(root), "workspace")
    outputs = [o for s in (pipeline.stages.values() if pipeline else ()) for o in s.outputs
               if o.section == "plots" and o.plot is not None]
    readers = [(s.label, workspace_reader(root) if s.kind == "workspace"
                else git_reader(root, s.label)) for s in snaps if s.kind != "experiment"]
    figures: list[tuple[str, Any]] = []
    failed = 0
    for out in outputs:
        sources = []
        try:
            for label, read in readers:
                data = read(out.path)
                if data is not None:
                    rows = read_rows(data, f"{label}:{out.path}")
                    assert out.plot is not None  # `outputs` holds declared plots only
                    check_rows(rows, out.plot, f"{label}:{out.path}")
                    sources.append((label, rows))
            if not sources:
                print(f"reftool: {out.path}: not in the sources drawn (experiment records "
                      "keep no plot files: name the workspace or a git revision)",
                      file=sys.stderr)
                continue
            fig = declared(out.plot, out.path, sources, say=_note_for(out.path))
        except PlotDataError as e:
            print(f"reftool: {e}", file=sys.stderr)
            failed += 1
            continue
        figures.append((plot_file_name(out.path), fig))
    return figures, failed


def plot_file_name(path: str) -> str:
    """plots/confusion.json -> plots-confusion: a name for its image in the --out folder."""
    import re
    stem = path.rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "plot"


def cmd_plot(args: argparse.Namespace) -> int:
    from ..experiments.plot import save
    from ..experiments.records import SourceError, VersionRefused

    root = Path(".")
    refused: list[str] = []
    try:
        snaps = _sources(root, args.refs, refused)
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID if isinstance(e, VersionRefused) else EXIT_USAGE
    unknown = _unknown_metrics(snaps, args.metric) if args.metric else None
    if unknown:
        print(f"reftool: plot: {unknown}", file=sys.stderr)
        return EXIT_USAGE
    figures = _figures(snaps, args)
    failed = 0
    if not args.metric:
        more, failed = _declared_figures(root, snaps)
        figures += more
    out = Path(args.out)
    if args.format == "html":
        from ..experiments.html import page
        written = [page(figures, snaps, out / "index.html")] if figures else []
    else:
        written = [save(fig, out / f"{name}.{args.format}") for name, fig in figures]
    for path in written:
        print(path)
    return EXIT_OK if written and not failed and not refused else EXIT_INVALID  # [tool.experiments]


def _side_label(root: Path, snap: Any, ref: str | None, branch: str | None = None) -> str:
    """A side named by branch (or ref, or experiment) and short commit: `main @ 1a2b3c4`."""
    from ..experiments.records import git
    if snap.kind == "experiment":
        return str(snap.label) + (f" @ {snap.commit[:7]}" if snap.commit else "")
    rev = "HEAD" if snap.kind == "workspace" else (ref or snap.label)
    commit = (git(root, "rev-parse", "--verify", "--quiet", rev + "^{commit}") or "").strip()
    if snap.kind == "workspace":
        name = branch or (git(root, "rev-parse", "--abbrev-ref", "HEAD") or "").strip()
        name = name if name and name != "HEAD" else "workspace"
    else:
        name = snap.label
    return name + (f" @ {commit[:7]}" if commit else "")


def _lock_verdict(root: Path) -> str:
    """[tool.git]: what `plan --committed-only` says of the committed lock, in words."""
    import contextlib
    import io

    from ..pipeline.hashing import hasher_for
    from .common import decide
    args = argparse.Namespace(file=DEFAULT_PIPELINE, stages=[], force=False,
                              committed_only=True, no_cache=False, remote=None,
                              no_hash_cache=False)
    hasher = hasher_for(root, use_cache=True)
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            plan = decide(args, root, hasher)
    finally:
        hasher.close()
    if isinstance(plan, int):
        return "not checked: the project's files are invalid (run reftool validate)"
    if not plan.to_run:
        return "✅ up to date"
    names = ", ".join(d.name for d in plan.to_run[:8]) + (" ..." if len(plan.to_run) > 8
                                                             else "")
    return (f"❌ stale: {len(plan.to_run)} stage(s) to run and commit ({names}); the metrics "
            "above may not come from the params shown")


def _images_url(url: str | None) -> str | None:
    import re
    if url is None:
        return None
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~/%+-]*)?", url):
        raise ValueError(f"--images-url {url!r}: expected an https address of letters, digits "
                         "and ._~/%+- (no query, no markdown)")
    return url


def cmd_report(args: argparse.Namespace) -> int:
    from ..experiments.records import SourceError, VersionRefused, resolve
    from ..experiments.report import Context, pr_report

    root = Path(".")
    try:
        images_url = _images_url(args.images_url)
    except ValueError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    base = args.base or _default_base(root)
    skipped: dict[str, str] = {}
    refused: list[str] = []
    try:
        declarations = _declarations(root)
        old = resolve(root, base, declarations, skipped=skipped,
                      refused=refused) if base else None
        new = resolve(root, "workspace", declarations)
    except SourceError as e:
        _say_skipped(skipped)
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID if isinstance(e, VersionRefused) else EXIT_USAGE
    _mark_stale([s for s in (old, new) if s is not None], root)
    _say_skipped(skipped, [s for s in (old, new) if s is not None])
    _say_stale([s for s in (old, new) if s is not None])
    context = Context(new_label=_side_label(root, new, None, args.head_label) + _stale_mark(new),
                      old_label=_side_label(root, old, base) + _stale_mark(old)
                      if old is not None else None,
                      lock_verdict=None if args.no_lock_check else _lock_verdict(root),
                      images_url=images_url)
    path = pr_report(old, new, declarations, Path(args.out), context)
    print(path)
    return EXIT_INVALID if refused else EXIT_OK  # [tool.experiments]: one was passed over


def record_experiment(root: Path, args: argparse.Namespace, pipeline: Any,
                      facts: Any = None) -> None:
    """[experiments.record]: every completed run that produced metrics leaves a record, with
    what the run did ([experiments.run-facts]) and the metrics stages it left stale (a run of
    some stages only, [experiments.stale])."""
    import dataclasses
    from ..experiments.records import RunFacts, SourceError, build_record, write_record
    if not any(o.section == "metrics" for s in pipeline.stages.values() for o in s.outputs):
        return
    facts = facts or RunFacts()
    stale = stale_metric_stages(root, args.file)
    facts = dataclasses.replace(facts, stale=tuple(stale or ()))
    if stale:
        print(f"reftool: the experiment record is marked stale: {', '.join(stale)} did not "
              "run", file=sys.stderr)
    try:
        path = write_record(root, build_record(root, args.name, pipeline_file=args.file,
                                               lock_file=lock_name(args.file), facts=facts))
    except (SourceError, OSError) as e:
        print(f"reftool: no experiment record written: {e}", file=sys.stderr)
        return
    print(f"experiment recorded in {path}")


def _stale_mark(snap: Any) -> str:
    """[experiments.stale]: ' (stale)' after the label of a side its params did not produce."""
    return " (stale)" if snap.stale else ""
