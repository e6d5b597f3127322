"""The schemas work in the tools users have, from the schema file alone and with no network:
`check-jsonschema` (what the pre-commit hook of README "Without reftool" runs) and the YAML
language server (what editors run), driven over LSP with the modeline the examples carry."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO
from reftool.files.validate import validate_project

EXAMPLES = sorted(p.parent for p in (REPO / "examples").glob("*/pipeline.yaml"))
MODELINE = "# yaml-language-server: $schema=../../schemas/pipeline.schema.json"

# check-jsonschema in this interpreter, with every socket refused: a $ref left to fetch fails.
_OFFLINE_CHECK = """\
import socket, runpy, sys
def refuse(*args, **kwargs):
    raise OSError("network access refused by the test")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
sys.argv[0] = "check-jsonschema"
runpy.run_module("check_jsonschema", run_name="__main__", alter_sys=True)
"""


def check_jsonschema(schema: Path, *files: Path, cwd: Path | None = None,
                     tmp: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("check_jsonschema")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache")}  # no schema cached earlier
    return subprocess.run([sys.executable, "-c", _OFFLINE_CHECK, "--schemafile", str(schema),
                           *map(str, files)], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def _alone(name: str, tmp: Path) -> Path:
    """A copy of schemas/NAME in a folder of its own: nothing beside it to resolve against."""
    folder = tmp / "vendored" / name
    folder.mkdir(parents=True)
    return Path(shutil.copy(REPO / "schemas" / name, folder / name))


def _files_by_schema(tmp: Path) -> dict[str, list[Path]]:
    """Each example file the tool checks against a schema, by schema file; a series file is
    split into its header line and its record lines (check-jsonschema reads whole files)."""
    found: dict[str, list[Path]] = {}
    for example in EXAMPLES:
        for display, kind in validate_project(example, "pipeline.yaml").files:
            path = Path(display)
            if kind in ("pipeline", "lock", "metrics", "experiment"):
                found.setdefault(f"{kind}.schema.json", []).append(path)
            elif kind == "series":
                lines = path.read_text(encoding="utf-8").splitlines()
                for i, line in enumerate(lines):
                    out = tmp / "lines" / f"{example.name}-{path.stem}-{i + 1}.json"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(line)
                    name = "series-header" if i == 0 else "series-record"
                    found.setdefault(f"{name}.schema.json", []).append(out)
    return found


def test_the_examples_have_files_of_each_kind(tmp_path: Path) -> None:
    assert set(_files_by_schema(tmp_path)) == {
        "pipeline.schema.json", "lock.schema.json", "metrics.schema.json",
        "series-header.schema.json", "series-record.schema.json"}


@pytest.mark.parametrize("schema", ["pipeline.schema.json", "lock.schema.json",
                                    "metrics.schema.json", "series-header.schema.json",
                                    "series-record.schema.json"])
def test_check_jsonschema_accepts_the_examples_offline(schema: str, tmp_path: Path) -> None:
    files = _files_by_schema(tmp_path)[schema]
    r = check_jsonschema(_alone(schema, tmp_path), *files, tmp=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok -- validation done" in r.stdout


def test_check_jsonschema_accepts_the_schemas_as_2020_12(tmp_path: Path) -> None:
    pytest.importorskip("check_jsonschema")
    r = subprocess.run([sys.executable, "-c", _OFFLINE_CHECK, "--check-metaschema",
                        *map(str, sorted((REPO / "schemas").glob("*.schema.json")))],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


BROKEN = {
    # a typo in a stage key: the schema's own additionalProperties
    "typo": (("    deps:", "    dpes:"), "dpes"),
    # rules of the definitions copied from common.schema.json: reached only through $refs
    "version": (('version: "1.1"', 'version: "9.9"'), "9.9"),
    "path": (("      - src/prepare.py", "      - /src/prepare.py"), "/src/prepare.py"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_jsonschema_rejects_a_broken_pipeline(case: str, tmp_path: Path) -> None:
    (old, new), shown = BROKEN[case]
    text = (REPO / "examples" / "classifier" / "pipeline.yaml").read_text(encoding="utf-8")
    assert old in text
    project = tmp_path / "project"
    project.mkdir()
    (project / "pipeline.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    # the README's pre-commit form: a relative --schemafile, from the project's root
    (project / "schemas").mkdir()
    shutil.copy(REPO / "schemas" / "pipeline.schema.json", project / "schemas")
    r = check_jsonschema(Path("schemas/pipeline.schema.json"), Path("pipeline.yaml"),
                         cwd=project, tmp=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Schema validation errors were encountered" in r.stdout and shown in r.stdout
    assert "network access refused" not in r.stdout + r.stderr


def test_the_offline_guard_bites_on_a_schema_that_needs_the_network(tmp_path: Path) -> None:
    # the hand-written source refs common.schema.json against its reftool.dev $id: the issue
    r = check_jsonschema(REPO / "schemas" / "src" / "pipeline.schema.json",
                         REPO / "examples" / "classifier" / "pipeline.yaml", tmp=tmp_path)
    assert r.returncode != 0
    assert "network access refused by the test" in r.stdout + r.stderr


# ------------------------------------------------------------------------- YAML language server

NODE = shutil.which("node")
LSP = REPO / "tests" / "lsp"
SERVER = LSP / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
SETTINGS = {
    "yaml": {"validate": True, "hover": False, "completion": False, "format": {"enable": False},
             "schemas": {}, "schemaStore": {"enable": False}, "yamlVersion": "1.2"},
    "http": {"proxy": "", "proxyStrictSSL": True},
    "[yaml]": {}, "editor": {},
}


def _needs_server() -> None:
    if NODE is None:
        pytest.skip("node is not installed")
    if not SERVER.is_file():
        pytest.skip("yaml-language-server is not installed (npm ci --prefix tests/lsp)")


class LanguageServer:
    """yaml-language-server over stdio JSON-RPC, network refused, bounded in time."""

    def __init__(self, root: Path, log: Path) -> None:
        self.log = log
        self._err = open(log, "wb")
        self.proc = subprocess.Popen(
            [str(NODE), "--require", str(LSP / "no-network.js"), str(SERVER), "--stdio"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, cwd=root)
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.request("initialize", {
                "processId": os.getpid(), "rootUri": root.as_uri(),
                "capabilities": {"workspace": {"configuration": True},
                                 "textDocument": {"publishDiagnostics": {}}}}, timeout=30)
            self.notify("initialized", {})
            self.notify("workspace/didChangeConfiguration", {"settings": SETTINGS})
        except BaseException:
            self.close()
            raise

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    self.messages.put(None)
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            assert length is not None
            self.messages.put(json.loads(out.read(length)))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float) -> Any:
        self._next += 1
        self._send({"id": self._next, "method": method, "params": params})
        return self.pump(lambda m: m.get("id") == self._next and "method" not in m,
                         timeout)["result"]

    def pump(self, until: Any, timeout: float) -> dict[str, Any]:
        """Handle what the server sends until a message satisfies `until`; return it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer in {timeout} s; server log: {self.stderr()}")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if m is None:
                raise RuntimeError(f"the server exited; its log: {self.stderr()}")
            if m.get("method") == "textDocument/publishDiagnostics":
                self.diagnostics[m["params"]["uri"]] = m["params"]["diagnostics"]
            elif "method" in m and "id" in m:  # a request from the server
                result: Any = None
                if m["method"] == "workspace/configuration":
                    result = [SETTINGS.get(item.get("section", ""), None)
                              for item in m["params"]["items"]]
                self._send({"id": m["id"], "result": result})
            if until(m):
                return m

    def open(self, uri: str, text: str) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": 1, "text": text}})

    def wait_for(self, uris: list[str], timeout: float = 60) -> None:
        """Until each document has diagnostics published, then a moment for late ones."""
        def done(_: dict[str, Any]) -> bool:
            return all(u in self.diagnostics for u in uris)
        if not done({}):
            self.pump(done, timeout)
        try:
            self.pump(lambda m: False, 1.0)
        except TimeoutError:
            pass

    def stderr(self) -> str:
        self._err.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None, timeout=5)
                self.notify("exit", None)
                self.proc.wait(timeout=5)
        except (OSError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self._err.close()


@pytest.fixture()
def server(tmp_path: Path) -> Any:
    _needs_server()
    ls = LanguageServer(REPO, tmp_path / "server.log")
    try:
        yield ls
    finally:
        ls.close()
    assert "network access refused" not in ls.log.read_text(errors="replace")


def _broken(text: str) -> tuple[str, int, int, int]:
    """The classifier's pipeline with a `dpes:` typo in its first stage, the version made
    "9.9" and an absolute output path; and the lines (0-based) where the three errors are."""
    lines = text.splitlines(keepends=True)
    typo = next(i for i, line in enumerate(lines) if line == "    deps:\n")
    version = next(i for i, line in enumerate(lines) if line.startswith("version: "))
    out = next(i for i, line in enumerate(lines) if line == "    outs:\n") + 1
    lines[typo] = "    dpes:\n"
    lines[version] = 'version: "9.9"\n'
    lines[out] = lines[out].replace("- ", "- /", 1)
    return "".join(lines), typo, version, out


def _at(diagnostics: list[dict[str, Any]], line: int) -> list[str]:
    return [d["message"] for d in diagnostics if d["range"]["start"]["line"] == line]


def test_the_examples_carry_the_modeline() -> None:
    for example in EXAMPLES:
        first = (example / "pipeline.yaml").read_text(encoding="utf-8").splitlines()[0]
        assert first == MODELINE
        target = first.partition("$schema=")[2]
        assert (example / target).resolve() == (REPO / "schemas" / "pipeline.schema.json")


def test_language_server_reports_errors_where_they_are(server: LanguageServer) -> None:
    # the example as an editor has it open, with unsaved edits: nothing is written to disk
    path = REPO / "examples" / "classifier" / "pipeline.yaml"
    text, typo, version, out = _broken(path.read_text(encoding="utf-8"))
    assert text.splitlines()[0] == MODELINE
    server.open(path.as_uri(), text)
    server.wait_for([path.as_uri()])
    found = server.diagnostics[path.as_uri()]
    assert any("dpes" in m for m in _at(found, typo)), found
    assert _at(found, version) and _at(found, out), found  # rules reached through $refs
    assert not [d for d in found if "schema" in d["message"].lower()
                and "load" in d["message"].lower()], found


def test_language_server_finds_no_error_in_the_examples(server: LanguageServer) -> None:
    uris = []
    for example in EXAMPLES:
        path = example / "pipeline.yaml"
        server.open(path.as_uri(), path.read_text(encoding="utf-8"))
        uris.append(path.as_uri())
    server.wait_for(uris)
    assert {u: server.diagnostics[u] for u in uris} == {u: [] for u in uris}


def test_language_server_uses_a_vendored_copy_alone(tmp_path: Path) -> None:
    # the schema file by itself, with no sibling schema to resolve a $ref against
    _needs_server()
    project = tmp_path / "examples" / "classifier"
    project.mkdir(parents=True)
    (tmp_path / "schemas").mkdir()
    shutil.copy(REPO / "schemas" / "pipeline.schema.json", tmp_path / "schemas")
    text, typo, version, out = _broken(
        (REPO / "examples" / "classifier" / "pipeline.yaml").read_text(encoding="utf-8"))
    (project / "pipeline.yaml").write_text(text, encoding="utf-8")
    ls = LanguageServer(tmp_path, tmp_path / "server.log")
    try:
        uri = (project / "pipeline.yaml").as_uri()
        ls.open(uri, text)
        ls.wait_for([uri])
        found = ls.diagnostics[uri]
    finally:
        ls.close()
    assert any("dpes" in m for m in _at(found, typo)), found
    assert _at(found, version) and _at(found, out), found
    assert "network access refused" not in ls.log.read_text(errors="replace")


def test_language_server_cannot_use_the_id_as_an_address(tmp_path: Path) -> None:
    # the modeline the README used to give: the $id is an identifier, nothing is served there
    # (and here the network is refused); the server says it cannot load the schema
    _needs_server()
    path = REPO / "examples" / "classifier" / "pipeline.yaml"
    text, typo, _, _ = _broken(path.read_text(encoding="utf-8"))
    text = text.replace(MODELINE, "# yaml-language-server: $schema="
                        "https://reftool.dev/schemas/1.0/pipeline.schema.json", 1)
    ls = LanguageServer(REPO, tmp_path / "server.log")
    try:
        ls.open(path.as_uri(), text)
        ls.wait_for([path.as_uri()])
        found = ls.diagnostics[path.as_uri()]
    finally:
        ls.close()
    assert not _at(found, typo), found
    assert "network access refused: reftool.dev:443" in ls.log.read_text(errors="replace")


# ------------------------------------------------------------------- README and SPEC, as written

README = (REPO / "README.md").read_text(encoding="utf-8")
SPEC = (REPO / "SPEC.md").read_text(encoding="utf-8")


def _readme_section(title: str) -> str:
    start = README.index(f"### {title}\n")
    return README[start:README.index("\n##", start + 1)]


def _project_as_readme_says(tmp: Path) -> Path:
    """The classifier example, with copies of the schemas in its own `schemas/` and the
    modeline README "In your editor" gives for a project."""
    project = tmp / "project"
    shutil.copytree(REPO / "examples" / "classifier", project)
    (project / "schemas").mkdir()
    for name in ("pipeline", "lock", "metrics"):
        shutil.copy(REPO / "schemas" / f"{name}.schema.json", project / "schemas")
    (modeline,) = re.findall(r"```yaml\n(# yaml-language-server: .*)\n```",
                             _readme_section("In your editor"))
    text = (project / "pipeline.yaml").read_text(encoding="utf-8")
    (project / "pipeline.yaml").write_text(text.replace(MODELINE, modeline, 1), encoding="utf-8")
    return project


def test_readme_pre_commit_hooks_pass_and_fail(tmp_path: Path) -> None:
    from ruamel.yaml import YAML
    block = re.search(r"```yaml\n(# \.pre-commit-config\.yaml\n.*?)```",
                      _readme_section("Without reftool: editors and pre-commit"), re.S)
    assert block
    (repo,) = YAML(typ="safe").load(block.group(1))["repos"]
    assert repo["repo"] == "https://github.com/python-jsonschema/check-jsonschema"
    project = _project_as_readme_says(tmp_path)
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    for hook in repo["hooks"]:
        assert hook["id"] == "check-jsonschema"
        matched = [f for f in files if re.search(hook["files"], f)]
        assert len(matched) == 1, (hook, matched)
        if not matched[0].endswith((".json", ".yaml", ".yml")):  # the hook's types_or
            assert hook.get("types_or") == ["text"], hook
        r = check_jsonschema(Path(hook["args"][1]), Path(matched[0]), cwd=project, tmp=tmp_path)
        assert hook["args"][0] == "--schemafile" and len(hook["args"]) == 2
        assert r.returncode == 0, r.stdout + r.stderr
    text = (project / "pipeline.yaml").read_text(encoding="utf-8")
    (project / "pipeline.yaml").write_text(text.replace("    deps:", "    dpes:", 1))
    r = check_jsonschema(Path("schemas/pipeline.schema.json"), Path("pipeline.yaml"),
                         cwd=project, tmp=tmp_path)
    assert r.returncode == 1 and "dpes" in r.stdout


def test_readme_and_spec_modelines_work_with_a_copy_in_the_project(tmp_path: Path) -> None:
    _needs_server()
    project = _project_as_readme_says(tmp_path)
    m = re.search(r"Example \(a fixture of the test suite\):\n\n```yaml\n(.*?)```", SPEC, re.S)
    assert m
    spec_example = m.group(1)
    (modeline,) = re.findall(r"```yaml\n(# yaml-language-server: .*)\n```",
                             _readme_section("In your editor"))
    assert spec_example.splitlines()[0] == modeline
    docs = {
        project / "pipeline.yaml": (project / "pipeline.yaml").read_text(encoding="utf-8"),
        project / "spec-example.yaml": spec_example,
        project / "spec-example-typo.yaml": spec_example.replace("    deps:", "    dpes:", 1),
    }
    ls = LanguageServer(project, tmp_path / "server.log")
    try:
        for path, text in docs.items():
            path.write_text(text, encoding="utf-8")
            ls.open(path.as_uri(), text)
        ls.wait_for([p.as_uri() for p in docs])
        found = {p.name: ls.diagnostics[p.as_uri()] for p in docs}
    finally:
        ls.close()
    assert found["pipeline.yaml"] == [] and found["spec-example.yaml"] == [], found
    typo = spec_example.splitlines().index("    deps: [src/prepare.py, data/raw.csv]")
    assert any("dpes" in m for m in _at(found["spec-example-typo.yaml"], typo)), found
    assert "network access refused" not in ls.log.read_text(errors="replace")
