"""`reftool exp`, `metrics diff`, `params diff`, `plot`, `report`: SPEC [tool.experiments]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..files.spec import DEFAULT_PIPELINE, EXIT_INVALID, EXIT_OK, EXIT_USAGE
from .common import Parser, formats, lock_name


def add_parsers(sub: Any) -> None:
    """exp show/save, metrics diff, params diff, plot, report"""
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
                    help="keep rows where COLUMN OP VALUE holds, e.g. 'accuracy>0.9'")
    formats(es, ("md", "json", "csv"))
    es.set_defaults(handler=cmd_exp_show)
    ev = e.add_parser("save", help="record the workspace's params and metrics as an experiment")
    ev.add_argument("name", help="a name for the experiment")
    ev.set_defaults(handler=cmd_exp_save)
    from .exprun import add_exp_parsers
    add_exp_parsers(e)

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

    pl = sub.add_parser("plot", help="plot metrics: curves per step, summary bars",
                        description="Plot series metrics step by step, one panel per metric, "
                        "experiments overlaid; and summary metrics as bars.")
    pl.add_argument("refs", nargs="*", metavar="REF",
                    help="workspace, experiment ids or names, git revisions "
                    "(default: every experiment and the workspace)")
    pl.add_argument("--out", default="reftool-plots", metavar="DIR",
                    help="folder for the images (default: reftool-plots)")
    pl.add_argument("--format", choices=("png", "svg"), default="png")
    pl.add_argument("--metric", action="append", default=[], metavar="NAME",
                    help="plot only these metrics")
    pl.set_defaults(handler=cmd_plot)

    rp = sub.add_parser("report", help="a markdown report for a pull request",
                        description="Write DIR/report.md: params and metrics diff against "
                        "a base (better/worse marked) and plots beside it; under 65,536 "
                        "characters.")
    rp.add_argument("--base", metavar="REV", help="git revision or experiment to compare with "
                    "(default: HEAD, or the last experiment)")
    rp.add_argument("--out", default="reftool-report", metavar="DIR")
    rp.set_defaults(handler=cmd_report)


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


def _default_base(root: Path) -> str | None:
    from ..experiments.records import git, records
    if git(root, "rev-parse", "--verify", "--quiet", "HEAD"):
        return "HEAD"
    found = list(records(root))
    return str(found[-1]["id"]) if found else None


def cmd_exp_show(args: argparse.Namespace) -> int:
    from ..experiments.compare import filter_rows, render_table, sort_rows, table
    from ..experiments.records import SourceError, VersionRefused, record_snapshot, records, resolve

    root = Path(".")
    skipped: dict[str, str] = {}
    refused: list[str] = []
    try:
        declarations = _declarations(root)
        snaps = [record_snapshot(r, declarations) for r in records(root, skipped, refused)]
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
    t = table(snaps, all_params=args.all_params)
    try:
        t = filter_rows(t, args.filter)
        if args.sort:
            t = sort_rows(t, args.sort, descending=args.desc)
    except ValueError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(render_table(t, args.style))
    return EXIT_INVALID if refused else EXIT_OK


def cmd_exp_save(args: argparse.Namespace) -> int:
    from ..experiments.records import SourceError, build_record, write_record
    from ..experiments.queue import taken
    root = Path(".")
    if taken(root, [args.name]):  # [experiments.names]
        print(f"reftool: an experiment is already named {args.name!r}; names are unique "
              "(reftool exp remove it, or choose another name)", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = write_record(root, build_record(root, args.name, pipeline_file=DEFAULT_PIPELINE))
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
    _say_skipped(skipped, (old, new))
    if args.kind == "metrics":
        changes = diff(old.metrics, new.metrics, declarations=declarations, all_rows=args.all)
        label: Any = str
    else:
        changes = diff(old.params, new.params, all_rows=args.all)
        label = param_label(old.params.keys() | new.params.keys())
    sys.stdout.write(render_diff(changes, args.style, old_label=old.label,
                                 new_label=new.label, kind=args.kind, label=label))
    return EXIT_INVALID if refused else EXIT_OK  # [tool.experiments]: one was passed over


def _sources(root: Path, refs: list[str], refused: list[str]) -> Any:
    from ..experiments.records import record_snapshot, records, resolve
    declarations = _declarations(root)
    skipped: dict[str, str] = {}
    if refs:
        snaps = [resolve(root, ref, declarations, skipped=skipped, refused=refused)
                 for ref in refs]
    else:
        snaps = [record_snapshot(r, declarations)
                 for r in records(root, skipped, refused)][-10:]
        snaps.append(resolve(root, "workspace", declarations))
    _say_skipped(skipped, snaps)
    return snaps


def _note_for(figure: str) -> Any:
    def say(note: str) -> None:
        print(f"reftool: {figure}: {note}", file=sys.stderr)
    return say


def cmd_plot(args: argparse.Namespace) -> int:
    from ..experiments.plot import bars, curves, save
    from ..experiments.records import SourceError, VersionRefused

    root = Path(".")
    refused: list[str] = []
    try:
        snaps = _sources(root, args.refs, refused)
    except SourceError as e:
        print(f"reftool: {e}", file=sys.stderr)
        return EXIT_INVALID if isinstance(e, VersionRefused) else EXIT_USAGE
    out = Path(args.out)
    written = []
    for name, draw in (("curves", curves), ("summary", bars)):
        try:
            fig = draw(snaps, args.metric or None, say=_note_for(name))
        except ValueError as e:
            print(f"reftool: {name}: {e}", file=sys.stderr)
            continue
        written.append(save(fig, out / f"{name}.{args.format}"))
    for path in written:
        print(path)
    return EXIT_OK if written and not refused else EXIT_INVALID  # [tool.experiments]


def cmd_report(args: argparse.Namespace) -> int:
    from ..experiments.records import SourceError, VersionRefused, resolve
    from ..experiments.report import pr_report

    root = Path(".")
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
    _say_skipped(skipped, [s for s in (old, new) if s is not None])
    path = pr_report(old, new, declarations, Path(args.out))
    print(path)
    return EXIT_INVALID if refused else EXIT_OK  # [tool.experiments]: one was passed over


def record_experiment(root: Path, args: argparse.Namespace, pipeline: Any) -> None:
    """[experiments.record]: every completed run that produced metrics leaves a record."""
    from ..experiments.records import SourceError, build_record, write_record
    if not any(o.section == "metrics" for s in pipeline.stages.values() for o in s.outputs):
        return
    try:
        path = write_record(root, build_record(root, args.name, pipeline_file=args.file,
                                               lock_file=lock_name(args.file)))
    except (SourceError, OSError) as e:
        print(f"reftool: no experiment record written: {e}", file=sys.stderr)
        return
    print(f"experiment recorded in {path}")
