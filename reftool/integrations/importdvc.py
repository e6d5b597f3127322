"""`reftool import-dvc`: a DVC project's `dvc.yaml` files as one pipeline file of this spec.

The project root is where the user says (default: the git repository root). Every `dvc.yaml`
under it (or the ones named) is read as DVC reads it: paths relative to the stage's `wdir`, which
is relative to the folder holding `dvc.yaml`; `${}` looked up in that folder's `params.yaml`, the
`vars` (files, `file:keys`, inline mappings), a stage's `vars`, and `item`/`key`. Each stage
becomes a stage of this spec with root-relative paths ([paths.form]); a `${}` this spec's
templating resolves the same way is kept and its file listed under `vars` ([template.context]);
every other value is written out. A directory gets its final `/` ([paths.directory]) from, in
order: an explicit `/`, `dvc.lock`, `*.dvc` files, the disk, a path found inside it; otherwise the
path is taken as a file and listed as guessed. DVC metrics files become `kind: plain` metrics
([metrics.plain]). Everything not carried over is listed with its file and line; a stage is never
left out without a note. The lock is not converted: DVC's md5 digests are not this spec's.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..files.documents import Document, JsonPath, load
from ..files.errors import Diagnostic, SpecError
from ..files.spec import MAX_TEXT_FILE_BYTES, PARAMS_EXTENSIONS
from ..files.values import pointer_for
from .dvctemplate import (TEMPLATE, Context, Source, Undefined, cmd_text, dvc_tokens, lookup,
                          parse_expr, read_values, scalar_text)

NoteKind = Literal["dropped", "changed", "guessed", "refused"]
STAGE_KEYS = {"cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen",
              "always_changed", "desc", "meta", "foreach", "do", "matrix", "vars"}
TOP_KEYS = {"stages", "vars", "metrics", "plots", "params", "artifacts", "datasets"}
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")  # [pipeline.stage-name]
SUFFIX_BAD = re.compile(r"[^A-Za-z0-9_.+-]")  # [generate.names]
PLAIN_EXTENSIONS = (".json", ".yaml", ".yml")  # [metrics.plain] 1
SKIP_DIRS = {".git", ".dvc", ".venv", "venv", "node_modules", "__pycache__", ".reftool"}


@dataclass(frozen=True)
class Note:
    file: str  # the dvc.yaml, root-relative
    line: int | None
    kind: NoteKind
    message: str

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        label = {"dropped": "not carried over", "changed": "changed",
                 "guessed": "guessed", "refused": "refused"}[self.kind]
        return f"{where}: {label}: {self.message}"


@dataclass
class Conversion:
    pipeline: dict[str, Any]
    notes: list[Note] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the dvc.yaml files read
    names: dict[tuple[str, str], str] = field(default_factory=dict)  # (file, dvc name) -> ours
    dvc_stages: dict[str, int] = field(default_factory=dict)  # file -> stages written there
    errors: list[Diagnostic] = field(default_factory=list)  # dvc.yaml files that cannot be read

    @property
    def refused(self) -> bool:
        return any(n.kind == "refused" for n in self.notes)


# ------------------------------------------------------------------------- where things are

def find_dvc_files(root: Path) -> list[str]:
    """Every `dvc.yaml` under root, root-relative, the root's first (DVC collects them all)."""
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        if "dvc.yaml" in files:
            rel = Path(here).relative_to(root).as_posix()
            found.append("dvc.yaml" if rel == "." else f"{rel}/dvc.yaml")
    return sorted(found, key=lambda p: (p.count("/"), p))


def git_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _join(wdir: str, raw: str) -> str:
    joined = posixpath.normpath(posixpath.join(wdir, raw))
    return "." if joined in ("", ".") else joined


def _outside(path: str) -> bool:
    return path == ".." or path.startswith("../") or posixpath.isabs(path)


class DirectoryHints:
    """Paths that DVC's own records say are directories: dvc.lock entries and *.dvc outs whose
    md5 ends with `.dir` (or that count files)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dirs: set[str] = set()
        self.files: set[str] = set()

    def add_entry(self, entry: Any, wdir: str) -> None:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            return
        path = _join(wdir, entry["path"].rstrip("/"))
        digest = str(entry.get("md5") or entry.get("hash") or "")
        if digest.endswith(".dir") or "nfiles" in entry:
            self.dirs.add(path)
        elif digest:
            self.files.add(path)

    def read_lock(self, rel: str, wdirs: dict[str, str]) -> None:
        try:
            value = _read_yaml(self.root, rel).value
        except Exception:  # a broken dvc.lock only costs its hints
            return
        for name, stage in ((value or {}).get("stages") or {}).items():
            if isinstance(stage, dict):
                wdir = wdirs.get(str(name).split("@")[0], posixpath.dirname(rel) or ".")
                for entry in (stage.get("deps") or []) + (stage.get("outs") or []):
                    self.add_entry(entry, wdir)

    def read_dvc_files(self) -> None:
        for here, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            for f in files:
                if f.endswith(".dvc"):
                    rel = (Path(here) / f).relative_to(self.root).as_posix()
                    try:
                        value = _read_yaml(self.root, rel).value
                    except Exception:
                        continue
                    if isinstance(value, dict):
                        base = _join(posixpath.dirname(rel) or ".", str(value.get("wdir", ".")))
                        for entry in value.get("outs") or []:
                            self.add_entry(entry, base)

    def kind(self, path: str) -> Literal["dir", "file"] | None:
        if path in self.dirs:
            return "dir"
        if path in self.files:
            return "file"
        target = self.root / path
        if target.is_dir():
            return "dir"
        if target.exists():
            return "file"
        return None


def _read_yaml(root: Path, rel: str) -> Document:
    return load(root / rel, display=rel, fmt="yaml", limit=MAX_TEXT_FILE_BYTES)


# ------------------------------------------------------------------------------- one file

class _FileConverter:
    """One `dvc.yaml` (root-relative `rel`) into stages of the pipeline."""

    def __init__(self, root: Path, rel: str, doc: Document, notes: list[Note]) -> None:
        self.root = root
        self.rel = rel
        self.doc = doc
        self.base = posixpath.dirname(rel) or "."
        self.all_notes = notes
        self.context = Context()
        self.carried: dict[str, str] = {}  # top-level name -> vars file that may be carried

    def note(self, path: JsonPath, kind: NoteKind, message: str) -> None:
        loc = self.doc.locate(path, key=True)
        self.all_notes.append(Note(self.rel, loc[0] if loc else None, kind, message))

    # -- context ----------------------------------------------------------------------------

    def load_context(self, value: dict[str, Any]) -> None:
        implicit = _join(self.base, "params.yaml")
        if (self.root / implicit).is_file():  # DVC reads it without a `vars` entry
            try:
                self.context.merge(read_values(self.root, implicit), Source(implicit, implicit))
            except Undefined as e:
                self.note((), "dropped", f"params.yaml as templating context: {e}")
        raw_vars = value.get("vars") or []
        if not isinstance(raw_vars, list):
            self.note(("vars",), "dropped", "'vars' is not a list")
            raw_vars = []
        for i, item in enumerate(raw_vars):
            self.add_vars(self.context, item, self.base, ("vars", i))
        for problem in self.context.problems:
            self.note(("vars",), "refused", problem)

    def add_vars(self, ctx: Context, item: Any, wdir: str, where: JsonPath) -> None:
        if isinstance(item, dict):
            ctx.merge(item, Source(None, f"inline vars #{where[-1]}"))
            return
        if not isinstance(item, str):
            self.note(where, "dropped", f"vars entry {item!r} is not a file or a mapping")
            return
        file, _, keys = item.partition(":")
        rel = _join(wdir, file)
        if _outside(rel):
            self.note(where, "refused", f"vars file {file!r} lies outside the project root")
            return
        if rel == _join(self.base, "params.yaml") and not keys and rel in (
                s.file for s in ctx.sources.values()):
            return  # the implicit params.yaml, listed again
        try:
            values = read_values(self.root, rel)
        except Undefined as e:
            self.note(where, "refused", f"vars {item!r}: {e}")
            return
        if keys:
            chosen = [k.strip() for k in keys.split(",")]
            ctx.merge({k: values[k] for k in chosen if k in values},
                      Source(None, f"vars {item!r}"))
        else:
            ctx.merge(values, Source(rel, rel))

    # -- templating -------------------------------------------------------------------------

    def render(self, text: str, ctx: Context, where: JsonPath, *, generated: bool,
               in_cmd: bool = False, keep: bool = True) -> str | None:
        """`text` with every `${}` this spec cannot resolve the same way written out."""
        problems: list[str] = []

        def one(m: re.Match[str]) -> str:
            expr = m.group(1)
            parsed = parse_expr(expr)
            if parsed and parsed[0] in ("item", "key") and generated and keep:
                return m.group(0)  # [generate.foreach], [generate.matrix]
            if parsed and keep and parsed[0] in ctx.sources and ctx.sources[parsed[0]].file \
                    and parsed[0] not in ("item", "key"):
                try:
                    value = lookup(ctx.values, [parsed[0], *parsed[1]])
                except Undefined:
                    value = None
                if value is not None and not isinstance(value, (dict, list)):
                    self.carried[parsed[0]] = ctx.sources[parsed[0]].file or ""
                    return m.group(0)  # [template.context]: found in a vars file
            try:
                value = lookup(ctx.values, dvc_tokens(expr))
            except Undefined:
                problems.append(f"${{{expr}}} is not defined")
                return m.group(0)
            if isinstance(value, (dict, list)):
                if in_cmd and isinstance(value, dict):
                    self.note(where, "changed", f"${{{expr}}} (a {type(value).__name__}) "
                              "written into cmd as DVC renders it")
                    return cmd_text(value)
                problems.append(f"${{{expr}}} is a {type(value).__name__}")
                return m.group(0)
            return scalar_text(value)

        out = TEMPLATE.sub(one, text.replace("$${", "\0"))
        if problems:
            self.note(where, "refused", "; ".join(problems))
            return None
        return out.replace("\0", "$${")

    # -- one stage --------------------------------------------------------------------------

    def stage(self, name: str, raw: Any) -> tuple[dict[str, Any], str] | None:
        """The stage of this spec for DVC's stage `name`, and its effective wdir."""
        where: JsonPath = ("stages", name)
        if not isinstance(raw, dict):
            self.note(where, "refused", f"stage {name!r} is not a mapping: left out")
            return None
        body: dict[str, Any] = dict(raw)
        body_where: JsonPath = where
        out: dict[str, Any] = {}
        generated = "foreach" in body or "matrix" in body
        if "foreach" in body:
            items = self.foreach(body.pop("foreach"), where + ("foreach",), name)
            do = body.pop("do", None)
            if items is None or not isinstance(do, dict):
                if not isinstance(do, dict):
                    self.note(where, "refused", f"foreach stage {name!r} has no 'do': left out")
                return None
            out["foreach"] = items
            body.update(do)
            body_where = where + ("do",)
        elif "matrix" in body:
            matrix = self.matrix(body.pop("matrix"), where + ("matrix",), name)
            if matrix is None:
                return None
            out["matrix"] = matrix
        ctx = self.context.child()
        for i, item in enumerate(body.pop("vars", None) or []):
            self.add_vars(ctx, item, self.base, body_where + ("vars", i))
            ctx.sources = {k: Source(None, s.what) if s.file and k not in self.context.sources
                           else s for k, s in ctx.sources.items()}
        for key in sorted(set(body) - STAGE_KEYS):
            self.note(body_where + (key,), "dropped", f"stage key {key!r} is not a DVC key")
        if "meta" in body:
            self.note(body_where + ("meta",), "dropped", "'meta' has no place in this spec")
        return self.fields(name, body, out, ctx, body_where, generated)

    def foreach(self, items: Any, where: JsonPath, name: str) -> Any:
        if isinstance(items, str):
            resolved = self.render_value(items, where)
            if resolved is None:
                return None
            self.note(where, "changed", f"foreach over {items!r} written out as its value "
                      "(a change to it no longer changes the stages)")
            items = resolved
        if isinstance(items, list) and items and \
                all(isinstance(x, (str, int, float, bool)) for x in items):
            if any(SUFFIX_BAD.search(scalar_text(x)) for x in items):
                self.note(where, "changed", f"generated names of {name!r}: items with "
                          "characters a stage name cannot hold are named by their position")
                return {str(i): x for i, x in enumerate(items)}
            return items
        if isinstance(items, list) and items:
            return {str(i): x for i, x in enumerate(items)}  # DVC names these by index
        if isinstance(items, dict) and items:
            if any(SUFFIX_BAD.search(str(k)) for k in items):
                self.note(where, "refused", f"foreach keys of {name!r} hold characters a "
                          "stage name cannot hold: left out")
                return None
            return items
        self.note(where, "refused", f"foreach of {name!r} is empty or not a list or "
                  "mapping: left out")
        return None

    def matrix(self, matrix: Any, where: JsonPath, name: str) -> dict[str, Any] | None:
        if not isinstance(matrix, dict) or not matrix:
            self.note(where, "refused", f"matrix of {name!r} is not a mapping: left out")
            return None
        out: dict[str, Any] = {}
        for axis, values in matrix.items():
            if isinstance(values, str):
                values = self.render_value(values, where + (axis,))
                if values is None:
                    return None
                self.note(where + (axis,), "changed", f"matrix axis {axis!r} written out "
                          "as its value")
            if not isinstance(values, list) or not values:
                self.note(where + (axis,), "refused", f"matrix axis {axis!r} of {name!r} "
                          "is not a non-empty list: left out")
                return None
            if all(isinstance(v, (str, int, float, bool)) and not
                   SUFFIX_BAD.search(scalar_text(v)) for v in values):
                out[axis] = values
            else:
                out[axis] = {f"{axis}{i}": v for i, v in enumerate(values)}
        self.note(where, "changed", f"matrix stage {name!r}: generated names change from "
                  "DVC's name@v1-v2 to name@axis=v1,axis=v2")
        return out

    def render_value(self, text: str, where: JsonPath) -> Any:
        m = TEMPLATE.fullmatch(text.strip())
        if m is None:
            self.note(where, "refused", f"{text!r} is not one ${{}} expression: left out")
            return None
        try:
            return lookup(self.context.values, dvc_tokens(m.group(1)))
        except Undefined:
            self.note(where, "refused", f"{text!r} is not defined: left out")
            return None

    def fields(self, name: str, body: dict[str, Any], out: dict[str, Any], ctx: Context,
               where: JsonPath, generated: bool) -> tuple[dict[str, Any], str] | None:
        wdir_raw = body.get("wdir", ".")
        wdir_text = self.render(str(wdir_raw), ctx, where + ("wdir",), generated=generated,
                                keep=False)
        if wdir_text is None:
            return None
        wdir = _join(self.base, wdir_text)
        if _outside(wdir):
            self.note(where + ("wdir",), "refused", f"wdir {wdir_raw!r} lies outside the "
                      "project root: stage left out (convert from a folder that holds it)")
            return None
        cmd = body.get("cmd")
        cmds = cmd if isinstance(cmd, list) else [cmd]
        if not cmds or not all(isinstance(c, str) and c for c in cmds):
            self.note(where, "refused", f"stage {name!r} has no usable cmd: left out")
            return None
        rendered = [self.render(str(c), ctx, where + ("cmd",), generated=generated, in_cmd=True)
                    for c in cmds]
        if any(r is None for r in rendered):
            return None
        out["cmd"] = rendered if isinstance(cmd, list) else rendered[0]
        if wdir != ".":
            out["wdir"] = wdir
        if body.get("desc"):
            out["desc"] = str(body["desc"])
        deps = self.paths(body.get("deps"), wdir, ctx, where + ("deps",), generated)
        if deps is None:
            return None
        if deps:
            out["deps"] = deps
        params = self.params(body.get("params"), wdir, ctx, where + ("params",), generated,
                             out)
        if params is None:
            return None
        if params:
            out["params"] = params
        for section in ("outs", "metrics", "plots"):
            items = self.outputs(body.get(section), wdir, ctx, where + (section,), section,
                                 generated)
            if items is None:
                return None
            for item in items:
                target = "outs" if section == "metrics" and "kind" not in item else section
                out.setdefault(target, []).append(item)
        if body.get("frozen"):
            out["frozen"] = True
        if body.get("always_changed"):
            out["always_run"] = True
        return out, wdir

    def path(self, raw: Any, wdir: str, ctx: Context, where: JsonPath,
             generated: bool) -> str | None:
        """A DVC path as a root-relative path ('' when left out with a note, None: refused)."""
        if not isinstance(raw, str) or not raw:
            self.note(where, "dropped", f"not a path: {raw!r}")
            return ""
        text = self.render(raw, ctx, where, generated=generated)
        if text is None:
            return None
        if URL.match(text):
            self.note(where, "dropped", f"{text!r} is outside the project (a URL); this "
                      "spec tracks files of the project only")
            return ""
        if "\\" in text and "/" not in text:  # [paths.form]: a Windows path, as DVC reads it
            self.note(where, "changed", f"{raw!r}: backslashes written as '/'")
            text = text.replace("\\", "/")
        slash = text.endswith("/")
        joined = _join(wdir, text)
        if _outside(joined):
            self.note(where, "dropped", f"path {raw!r} leaves the project root")
            return ""
        return joined + ("/" if slash else "")

    def paths(self, items: Any, wdir: str, ctx: Context, where: JsonPath,
              generated: bool) -> list[str] | None:
        found: list[str] = []
        for i, raw in enumerate(items if isinstance(items, list) else []):
            p = self.path(raw, wdir, ctx, where + (i,), generated)
            if p is None:
                return None
            if p and p in found:  # [pipeline.duplicates]
                self.note(where + (i,), "changed", f"{p!r} listed twice: kept once")
            elif p:
                found.append(p)
        return found

    def outputs(self, items: Any, wdir: str, ctx: Context, where: JsonPath, section: str,
                generated: bool) -> list[dict[str, Any]] | None:
        out: list[dict[str, Any]] = []
        for i, item in enumerate(items if isinstance(items, list) else []):
            spec: dict[str, Any] = {}
            raw, flags = (next(iter(item.items())) if isinstance(item, dict) and len(item) == 1
                          else (item, None))
            for key, value in (flags or {}).items():
                if key in ("cache", "persist") and isinstance(value, bool):
                    spec[key] = value
                else:
                    why = ("this spec defines no plot format" if section == "plots"
                           else "this spec has no such output flag")
                    self.note(where + (i, raw, key), "dropped",
                              f"{section} flag {key!r} of {raw!r}: {why}")
            path = self.path(raw, wdir, ctx, where + (i,), generated)
            if path is None:
                return None
            if not path:
                continue
            if section == "metrics":
                if path.endswith("/") or not path.endswith(PLAIN_EXTENSIONS):
                    self.note(where + (i,), "changed", f"metrics file {raw!r} is kept as an "
                              "output (not read as metrics: only JSON and YAML files are)")
                else:
                    spec["kind"] = "plain"  # [metrics.plain]
            out.append({"path": path, **spec})
        return out

    def params(self, items: Any, wdir: str, ctx: Context, where: JsonPath, generated: bool,
               stage: dict[str, Any]) -> dict[str, Any] | None:
        found: dict[str, Any] = {}

        def add(file: str, keys: list[str] | None, at: JsonPath) -> None:
            if posixpath.splitext(file)[1].lower() not in PARAMS_EXTENSIONS:
                self.note(at, "changed", f"params file {file!r} is not YAML, JSON or TOML: "
                          "tracked as a dep (the whole file)")
                stage.setdefault("deps", [])
                if file not in stage["deps"]:
                    stage["deps"].append(file)
                return
            if keys is None or found.get(file) == "*":
                found[file] = "*"
                return
            pointers = found.setdefault(file, [])
            for k in keys:
                pointer = pointer_for(*_dotted(k))  # [params.pointer]
                if pointer not in pointers:
                    pointers.append(pointer)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, str):
                key = self.render(item, ctx, where + (i,), generated=generated)
                if key is None:
                    return None
                add(_join(wdir, "params.yaml"), [key], where + (i,))
                continue
            if not isinstance(item, dict):
                self.note(where + (i,), "dropped", f"params entry {item!r} not understood")
                continue
            for file, keys in item.items():
                at = where + (i, file)
                target = self.render(str(file), ctx, at, generated=generated, keep=False)
                if target is None:
                    return None
                target = _join(wdir, target)
                if _outside(target):
                    self.note(at, "dropped", f"params file {file!r} leaves the project root")
                elif keys in (None, []):
                    add(target, None, at)  # DVC: every param of the file
                elif isinstance(keys, list) and all(isinstance(k, str) for k in keys):
                    rendered = [self.render(k, ctx, at, generated=generated) for k in keys]
                    if any(r is None for r in rendered):
                        return None
                    add(target, [r for r in rendered if r], at)
                else:
                    self.note(at, "dropped", f"params of {file!r}: not a list of keys")
        return found

    # -- the file ---------------------------------------------------------------------------

    def convert(self) -> dict[str, tuple[dict[str, Any], str]]:
        value = self.doc.value
        if not isinstance(value, dict):
            self.note((), "refused", "not a mapping of DVC keys")
            return {}
        for key in sorted(set(value) - TOP_KEYS):
            hint = " (DVC reads 'stages')" if key in ("steps", "stage", "pipeline") else ""
            self.note((key,), "refused" if "stages" not in value else "dropped",
                      f"top-level key {key!r} is not a DVC key{hint}")
        self.load_context(value)
        raw_stages = value.get("stages") or {}
        if not isinstance(raw_stages, dict):
            self.note(("stages",), "refused", "'stages' is not a mapping of stage names")
            return {}
        stages = {}
        for name, raw in raw_stages.items():
            converted = self.stage(str(name), raw)
            if converted is not None:
                stages[str(name)] = converted
        for key in ("params", "artifacts", "datasets"):
            if key in value:
                self.note((key,), "dropped", f"top-level {key!r} has no place in this spec")
        return stages


# ------------------------------------------------------------------------------ the project

class _Project:
    def __init__(self, root: Path, files: list[str]) -> None:
        self.root = root
        self.files = files
        self.notes: list[Note] = []
        self.hints = DirectoryHints(root)
        self.result = Conversion({}, self.notes, list(files))

    def convert(self) -> Conversion:
        per_file: list[tuple[_FileConverter, dict[str, tuple[dict[str, Any], str]]]] = []
        for rel in self.files:
            try:
                doc = _read_yaml(self.root, rel)
            except SpecError as e:  # [read.yaml] and the rest of section 3
                self.result.errors.extend(e.diagnostics)
                self.notes.append(Note(rel, e.diagnostics[0].line if e.diagnostics else None,
                                       "refused", "cannot be read (see the errors)"))
                continue
            conv = _FileConverter(self.root, rel, doc, self.notes)
            per_file.append((conv, conv.convert()))
        self.read_hints(per_file)
        stages = self.collect(per_file)
        self.decide_directories(stages, per_file)
        self.written_params(stages, per_file)
        self.top_level(per_file, stages)
        pipeline: dict[str, Any] = {"version": "1.0"}
        carried = self.carried_vars(per_file, stages)
        if carried:
            pipeline["vars"] = carried
        pipeline["stages"] = stages
        if any(o.get("kind") == "plain" for s in stages.values() for o in s.get("metrics", [])):
            pipeline["version"] = "1.1"  # [version.write]: kind plain is a 1.1 addition
        self.result.pipeline = pipeline
        self.result.notes.sort(key=lambda n: (self.files.index(n.file) if n.file in self.files
                                              else -1, n.line or 0, n.message))
        return self.result

    def read_hints(self, per_file: list[tuple[_FileConverter, Any]]) -> None:
        for conv, stages in per_file:
            lock = _join(conv.base, "dvc.lock")
            if (self.root / lock).is_file():
                self.hints.read_lock(lock, {n: w for n, (_, w) in stages.items()})
        self.hints.read_dvc_files()

    def collect(self, per_file: list[tuple[_FileConverter, Any]]) -> dict[str, Any]:
        taken: dict[str, str] = {}
        for conv, stages in per_file:
            for name in stages:
                taken.setdefault(name, conv.rel)
        out: dict[str, Any] = {}
        for conv, stages in per_file:
            self.result.dvc_stages[conv.rel] = len(stages)
            for name, (stage, _) in stages.items():
                ours = self.name_for(conv, name, taken, out)
                self.result.names[(conv.rel, name)] = ours
                out[ours] = stage
        return out

    def name_for(self, conv: _FileConverter, name: str, taken: dict[str, str],
                 out: dict[str, Any]) -> str:
        ours = name
        if not NAME.fullmatch(name):  # [pipeline.stage-name]
            ours = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".-")[:100] or "stage"
        if taken.get(name, conv.rel) != conv.rel or ours in out:
            prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", conv.base.replace("/", "."))
            ours = f"{prefix}.{ours}"[:100]
        n = 2
        while ours in out:
            ours, n = f"{ours[:96]}-{n}", n + 1
        if ours != name:
            conv.note(("stages", name), "changed", f"stage {name!r} is named {ours!r} here "
                      "(a stage name matches [A-Za-z0-9_][A-Za-z0-9_.-]* and is unique)")
        return ours

    def decide_directories(self, stages: dict[str, Any],
                           per_file: list[tuple[_FileConverter, Any]]) -> None:
        """[paths.directory]: `/` from an explicit `/`, dvc.lock, *.dvc, the disk, a path
        inside it; else a file, listed as guessed."""
        owners = {id(s): conv for conv, st in per_file for s, _ in st.values()}
        every = [_concrete(p, owners.get(id(s))) for s in stages.values()
                 for p in _stage_paths(s)]
        declared_dirs = {p.rstrip("/") for p in every if p.endswith("/")}
        inside = {posixpath.dirname(p.rstrip("/")) for p in every}
        guessed: dict[str, list[str]] = {}

        def decide(path: str, stage: dict[str, Any]) -> str:
            conv = owners.get(id(stage))
            concrete = _concrete(path, conv)
            if path.endswith("/") or "${" in concrete:
                return path
            path_ = path
            path = concrete
            kind = self.hints.kind(path)
            if kind is None and (path in declared_dirs or any(
                    d == path or d.startswith(path + "/") for d in inside)):
                kind = "dir"
            if kind is None:
                guessed.setdefault(conv.rel if conv else "", []).append(path)
            return path_ + "/" if kind == "dir" else path_
        for stage in stages.values():
            if "deps" in stage:
                seen: dict[str, str] = {}
                for p in (decide(p, stage) for p in stage["deps"]):
                    seen.setdefault(_concrete(p, owners.get(id(stage))), p)
                stage["deps"] = list(seen.values())
            for section in ("outs", "metrics", "plots"):
                for item in stage.get(section, []):
                    if section != "metrics":
                        item["path"] = decide(item["path"], stage)
        for rel, paths in guessed.items():
            self.notes.append(Note(rel, None, "guessed", "taken as files, for nothing (no "
                                   "final '/', dvc.lock, *.dvc file or the disk) says they "
                                   "are directories: " + ", ".join(sorted(set(paths)))))
        for stage in stages.values():
            for section in ("outs", "metrics", "plots"):
                if section in stage:
                    stage[section] = [_compact(item) for item in stage[section]]

    def written_params(self, stages: dict[str, Any],
                       per_file: list[tuple[_FileConverter, Any]]) -> None:
        """A params file that a stage writes is tracked as a dep of its reader: on a clone
        without the data it does not exist yet ([params.missing]), and a dep may be missing
        ([pipeline.deps-exist])."""
        owners = {id(s): conv for conv, st in per_file for s, _ in st.values()}
        outputs = [_concrete(p, owners.get(id(s))) for s in stages.values()
                   for p in _stage_paths(s) if p not in s.get("deps", [])]

        def written(file: str) -> bool:
            return any(file == o or (o.endswith("/") and file.startswith(o)) for o in outputs)
        for name, stage in stages.items():
            for file in [f for f in stage.get("params", {}) if written(f)]:
                del stage["params"][file]
                conv = owners.get(id(stage))
                deps = stage.setdefault("deps", [])
                if file not in (_concrete(d, conv) for d in deps):
                    deps.append(file)
                if conv is not None:
                    conv.all_notes.append(Note(conv.rel, None, "changed", f"stage {name!r}: "
                                               f"params file {file!r} is written by a stage: "
                                               "tracked as a dep (the whole file)"))
            if "params" in stage and not stage["params"]:
                del stage["params"]

    def top_level(self, per_file: list[tuple[_FileConverter, Any]],
                  stages: dict[str, Any]) -> None:
        """DVC's top-level `metrics` and `plots`: a file some stage writes as an output becomes
        that stage's plain metrics file; the rest is listed."""
        for conv, _ in per_file:
            value = conv.doc.value if isinstance(conv.doc.value, dict) else {}
            for i, raw in enumerate(value.get("metrics") or []):
                path = _join(conv.base, raw) if isinstance(raw, str) else ""
                if not self.promote(path, stages):
                    conv.note(("metrics", i), "dropped", f"top-level metrics {raw!r}: no "
                              "stage writes it as an output of its own (declare it in the "
                              "stage that writes it)")
                else:
                    conv.note(("metrics", i), "changed", f"top-level metrics {raw!r} is a "
                              "plain metrics file of the stage that writes it")
            plots = value.get("plots") or []
            for i, raw in enumerate(plots if isinstance(plots, list) else [plots]):
                label = next(iter(raw)) if isinstance(raw, dict) and raw else raw
                conv.note(("plots", i), "dropped", f"top-level plot {label!r}: this spec "
                          "defines no plot definitions")

    def promote(self, path: str, stages: dict[str, Any]) -> bool:
        if not path.endswith(PLAIN_EXTENSIONS):
            return False
        for stage in stages.values():
            for section in ("outs", "plots"):
                for i, item in enumerate(stage.get(section, [])):
                    p = item if isinstance(item, str) else item.get("path")
                    if p == path:
                        stage[section].pop(i)
                        if not stage[section]:
                            del stage[section]
                        base = {"path": p} if isinstance(item, str) else dict(item)
                        stage.setdefault("metrics", []).append({**base, "kind": "plain"})
                        return True
        return False

    def carried_vars(self, per_file: list[tuple[_FileConverter, Any]],
                     stages: dict[str, Any]) -> list[str]:
        """The vars files the kept `${}` read from. A name two of them define, or a file a
        stage writes, cannot be carried: then each `${}` over it is written out."""
        owners: dict[str, set[str]] = {}
        files: list[str] = []
        for conv, _ in per_file:
            for name, file in conv.carried.items():
                owners.setdefault(name, set()).add(file)
                if file not in files:
                    files.append(file)
        outputs = {p.rstrip("/") for s in stages.values() for p in _stage_paths(s)
                   if p not in s.get("deps", [])}
        bad = {f for f in files if f in outputs}
        top: dict[str, str] = {}
        for f in files:
            try:
                keys = read_values(self.root, f)
            except Undefined:
                bad.add(f)
                continue
            for k in keys:
                if k in top and top[k] != f:
                    bad.update((f, top[k]))
                top.setdefault(k, f)
        if bad:
            self.write_out(per_file, stages, bad)
        return [f for f in files if f not in bad]

    def write_out(self, per_file: list[tuple[_FileConverter, Any]], stages: dict[str, Any],
                  bad: set[str]) -> None:
        for conv, conv_stages in per_file:
            names = {n for n, f in conv.carried.items() if f in bad}
            if not names:
                continue
            for dvc_name, (stage, _) in conv_stages.items():
                _substitute(stage, names, conv.context)
            conv.note(("vars",), "changed", "values of " + ", ".join(sorted(bad)) +
                      " written out (two vars files define one name, or a stage writes "
                      "the file): a change to them no longer changes the stages")


def _concrete(path: str, conv: _FileConverter | None) -> str:
    """A path with the `${}` kept over vars files written out (those of item/key stay)."""
    if conv is None or "${" not in path:
        return path
    return str(_substitute(path, set(conv.carried), conv.context))


def _dotted(key: str) -> list[str]:
    """A DVC params key `a.b` as its parts, a `${...}` kept whole."""
    return [p for p in re.split(r"\.(?![^{]*\})", key) if p]


def _stage_paths(stage: dict[str, Any]) -> list[str]:
    out = list(stage.get("deps", []))
    for section in ("outs", "metrics", "plots"):
        out += [i if isinstance(i, str) else i["path"] for i in stage.get(section, [])]
    return out


def _compact(item: dict[str, Any]) -> Any:
    return item["path"] if set(item) == {"path"} else item


def _substitute(value: Any, names: set[str], ctx: Context) -> Any:
    """Write out, in place, every `${NAME...}` of `names` in a stage."""
    def one(m: re.Match[str]) -> str:
        parsed = parse_expr(m.group(1))
        if parsed and parsed[0] in names:
            try:
                return scalar_text(lookup(ctx.values, [parsed[0], *parsed[1]]))
            except Undefined:
                return m.group(0)
        return m.group(0)
    if isinstance(value, dict):
        for k in list(value):
            if k in ("foreach", "matrix"):
                continue
            value[k] = _substitute(value[k], names, ctx)
        return value
    if isinstance(value, list):
        return [_substitute(v, names, ctx) for v in value]
    if isinstance(value, str):
        return TEMPLATE.sub(one, value)
    return value


def convert(root: Path, files: list[str] | None = None) -> Conversion:
    """The pipeline for the `dvc.yaml` files (root-relative; default: all under root)."""
    return _Project(root, files if files is not None else find_dvc_files(root)).convert()


def to_yaml(pipeline: dict[str, Any], sources: list[str]) -> str:
    """The pipeline file's text: block style, `version` quoted, a header saying its origin."""
    import io

    from ruamel.yaml import YAML
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.representer.ignore_aliases = lambda *_: True  # a list used twice is written twice
    yaml.representer.sort_base_mapping_type_on_output = False  # version first, keys as built
    buf = io.StringIO()
    yaml.dump(pipeline, buf)
    # no editor modeline: the schema's $id is no address, and a path is the project's choice
    # (README, "In your editor")
    return f"# converted from {', '.join(sources)} by reftool import-dvc\n" + buf.getvalue()
