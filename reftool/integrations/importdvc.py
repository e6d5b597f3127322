"""`reftool import-dvc`: a DVC project's `dvc.yaml` as a pipeline file of this spec.

Carries over stages (cmd, wdir, deps, params, outs with cache and persist, metrics, plots,
frozen, always_changed, desc), `foreach`/`do`, `matrix`, `vars` and `${}` templating, and lists
every DVC feature it could not carry over with the line it came from. Paths are rewritten from
DVC's `wdir`-relative form to this spec's root-relative form ([paths.form]); directories get
their final `/` from the disk ([paths.directory]). The lock is not converted: DVC's md5
digests are not this spec's digests ([digest.form]).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files.documents import Document, JsonPath, load
from ..files.spec import MAX_TEXT_FILE_BYTES
from ..files.values import pointer_for

STAGE_KEYS = {"cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen",
              "always_changed", "desc", "meta", "foreach", "do", "matrix", "vars"}


@dataclass
class Conversion:
    pipeline: dict[str, Any]
    notes: list[tuple[int | None, str]] = field(default_factory=list)  # (line, what was lost)


class _Converter:
    def __init__(self, doc: Document, root: Path) -> None:
        self.doc = doc
        self.root = root
        self.notes: list[tuple[int | None, str]] = []

    def note(self, path: JsonPath, message: str) -> None:
        loc = self.doc.locate(path, key=True)
        self.notes.append((loc[0] if loc else None, message))

    def path(self, raw: Any, wdir: str, where: JsonPath) -> str | None:
        """A DVC path (relative to wdir) as a root-relative POSIX path of this spec."""
        if not isinstance(raw, str) or not raw:
            self.note(where, f"not a path: {raw!r}")
            return None
        if "${" in raw and wdir != ".":
            joined = f"{wdir}/{raw}"
        else:
            joined = posixpath.normpath(posixpath.join(wdir, raw))
        if joined.startswith("../") or joined == ".." or posixpath.isabs(joined):
            self.note(where, f"path {raw!r} leaves the project; left out")
            return None
        if "${" not in joined and (self.root / joined).is_dir():
            joined += "/"
        return joined

    def default_params(self, wdir: str, where: JsonPath) -> str:
        """DVC's default params file: params.yaml in the stage's wdir, else at the root."""
        near = posixpath.normpath(posixpath.join(wdir, "params.yaml"))
        if near != "params.yaml" and not (self.root / near).exists() and \
                (self.root / "params.yaml").exists():
            self.note(where, f"no {near}: the params are read from params.yaml at the root")
            return "params.yaml"
        return near

    def outputs(self, items: Any, wdir: str, where: JsonPath, section: str) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(items if isinstance(items, list) else []):
            spec: dict[str, Any] = {}
            if isinstance(item, dict) and len(item) == 1:
                (raw, flags), = item.items()
                for key, value in (flags or {}).items():
                    if key in ("cache", "persist") and isinstance(value, bool):
                        spec[key] = value
                    else:
                        self.note(where + (i, raw, key),
                                  f"{section} flag {key!r} of {raw!r} is not carried over")
            else:
                raw = item
            path = self.path(raw, wdir, where + (i,))
            if path is None:
                continue
            if not path.endswith("/") and "${" not in path and \
                    not (self.root / path).exists() and not posixpath.splitext(path)[1]:
                self.note(where + (i,), f"{raw!r} does not exist yet, so whether it is a "
                          "directory cannot be told: written as a file; if it is a directory, "
                          "end it with '/'")
            if section == "metrics" and path.endswith("/"):
                self.note(where + (i,), f"metrics directory {raw!r} is not a metrics file")
                continue
            out.append({"path": path, **spec} if spec else path)
        return out

    def params(self, items: Any, wdir: str, where: JsonPath) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def add(file: str, keys: list[str] | None) -> None:
            if keys is None:
                found[file] = "*"
            elif found.get(file) != "*":
                pointers = found.setdefault(file, [])
                pointers.extend(p for p in (pointer_for(*k.split(".")) for k in keys)
                                if p not in pointers)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, str):
                add(self.default_params(wdir, where + (i,)), [item])
            elif isinstance(item, dict):
                for file, keys in item.items():
                    target = self.path(file, wdir, where + (i, file))
                    if target is None:
                        continue
                    if keys in (None, []):
                        add(target, None)  # DVC: every param of the file
                    elif isinstance(keys, list) and all(isinstance(k, str) for k in keys):
                        add(target, keys)
                    else:
                        self.note(where + (i, file), f"params of {file!r}: not a list of keys")
            else:
                self.note(where + (i,), f"params entry {item!r} not understood")
        return found

    def expansion(self, name: str, body: dict[str, Any], out: dict[str, Any],
                  where: JsonPath) -> JsonPath | None:
        """Carry `foreach`/`do` over into `out`, merging `do` into `body`; the path of the
        stage's body, or None when the stage cannot be carried over."""
        if "foreach" not in body:
            return where
        items = body.pop("foreach")
        do = body.pop("do", None)
        if isinstance(items, str):
            self.note(where + ("foreach",), f"foreach over {items!r} (a variable) is not "
                      "carried over: write the list or mapping out")
            return None
        if isinstance(items, list) and any(isinstance(x, (dict, list)) for x in items):
            items = {str(i): x for i, x in enumerate(items)}  # DVC names these by index
        out["foreach"] = items
        if not isinstance(do, dict):
            self.note(where, f"foreach stage {name!r} has no 'do'")
            return None
        body.update(do)
        return where + ("do",)

    def stage(self, name: str, raw: Any, where: JsonPath) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.note(where, f"stage {name!r} is not a mapping")
            return None
        body = dict(raw)
        out: dict[str, Any] = {}
        where_body = self.expansion(name, body, out, where)
        if where_body is None:
            return None
        if "matrix" in body:
            out["matrix"] = body.pop("matrix")
            self.note(where + ("matrix",), f"matrix stage {name!r}: generated stage names "
                      "change from DVC's name@v1-v2 to name@axis=v1,axis=v2")
        for key in sorted(set(body) - STAGE_KEYS):
            self.note(where_body + (key,), f"stage key {key!r} is not carried over")
        if "meta" in body:
            self.note(where_body + ("meta",), "'meta' is not carried over")
        if "vars" in body:
            self.note(where_body + ("vars",), "stage-level 'vars' are not carried over")
        wdir = body.get("wdir", ".")
        wdir = posixpath.normpath(wdir) if isinstance(wdir, str) else "."
        if wdir.startswith(".."):
            self.note(where_body + ("wdir",), f"wdir {wdir!r} leaves the project")
            return None
        if "cmd" not in body:
            self.note(where_body, f"stage {name!r} has no cmd")
            return None
        out["cmd"] = body["cmd"]
        if wdir != ".":
            out["wdir"] = wdir
        if body.get("desc"):
            out["desc"] = str(body["desc"])
        deps = [self.path(d, wdir, where_body + ("deps", i))
                for i, d in enumerate(body.get("deps") or [])]
        if any(deps):
            out["deps"] = [d for d in deps if d]
        params = self.params(body.get("params"), wdir, where_body + ("params",))
        if params:
            out["params"] = params
        for section in ("outs", "metrics", "plots"):
            items = self.outputs(body.get(section), wdir, where_body + (section,), section)
            if items:
                out[section] = items
        if body.get("frozen"):
            out["frozen"] = True
        if body.get("always_changed"):
            out["always_run"] = True
        return out

    def convert(self) -> Conversion:
        value = self.doc.value if isinstance(self.doc.value, dict) else {}
        pipeline: dict[str, Any] = {"version": "1.0"}
        vars_files = []
        for i, item in enumerate(value.get("vars") or []):
            if isinstance(item, str) and ":" not in item:
                vars_files.append(item)
            elif isinstance(item, str):
                vars_files.append(item.split(":", 1)[0])
                self.note(("vars", i), f"vars {item!r}: only whole files are carried over")
            else:
                self.note(("vars", i), "inline vars are not carried over: put them in a "
                          "params file and list it under vars")
        if vars_files:
            pipeline["vars"] = list(dict.fromkeys(vars_files))
        stages: dict[str, Any] = {}
        raw_stages = value.get("stages") or {}
        if not isinstance(raw_stages, dict):
            self.note(("stages",), "'stages' is not a mapping of stage names")
            raw_stages = {}
        for name, raw in raw_stages.items():
            converted = self.stage(name, raw, ("stages", name))
            if converted is not None:
                stages[name] = converted
        pipeline["stages"] = stages
        for key in ("metrics", "plots", "params", "artifacts", "datasets"):
            if key in value:
                self.note((key,), f"top-level {key!r} is not carried over: declare the files "
                          "as outputs of the stages that write them")
        return Conversion(pipeline, sorted(self.notes, key=lambda n: (n[0] or 0, n[1])))


def convert(root: Path, name: str = "dvc.yaml") -> Conversion:
    doc = load(root / name, display=name, fmt="yaml", limit=MAX_TEXT_FILE_BYTES)
    return _Converter(doc, root).convert()


def to_yaml(pipeline: dict[str, Any], source: str) -> str:
    """The pipeline file's text: block style, `version` quoted, a header saying its origin."""
    import io

    from ruamel.yaml import YAML
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    buf = io.StringIO()
    yaml.dump(pipeline, buf)
    # no editor modeline: the schema's $id is no address, and a path is the project's choice
    # (README, "In your editor")
    return f"# converted from {source} by reftool import-dvc\n" + buf.getvalue()
