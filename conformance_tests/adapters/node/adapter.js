#!/usr/bin/env node
// A second implementation of the spec's canonical forms and digests, in JavaScript with
// Node's standard library only: it proves the protocol and the vectors are language-neutral.
// Operations: canonicalize (typed value trees), digest (file, directory, params).
"use strict";
const crypto = require("crypto");
const readline = require("readline");

// [values.int-text]: decimal text of a typed int, via BigInt (exact at any size)
function intText(text) { return BigInt(text).toString(); }

// [values.float-text]: ECMAScript Number::toString is exactly the spec's canonical form
function floatText(text) {
  const n = text === "NaN" ? NaN : text === "Infinity" ? Infinity :
    text === "-Infinity" ? -Infinity : Number(text);
  if (Object.is(n, -0)) return "0";
  return String(n);
}

// the canonical typed tree: int and float texts normalized
function normalize(tree) {
  const [kind] = Object.keys(tree);
  const v = tree[kind];
  switch (kind) {
    case "int": return { int: intText(v) };
    case "float": return { float: floatText(v) };
    case "list": return { list: v.map(normalize) };
    case "map": {
      const out = {};
      for (const k of Object.keys(v)) out[k] = normalize(v[k]);
      return { map: out };
    }
    default: return { [kind]: v };
  }
}

// [values.jcs]: RFC 8785 for values without numbers; JS sorts strings by UTF-16 code units
function jcs(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(jcs).join(",") + "]";
  const keys = Object.keys(value).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + jcs(value[k])).join(",") + "}";
}

function sha256(bytes) { return crypto.createHash("sha256").update(bytes).digest("hex"); }

// [digest.directory]: lines sorted by the UTF-8 bytes of the path
function directoryDigest(files) {
  const rows = files.map((f) => {
    const data = Buffer.from(f.base64, "base64");
    return { path: Buffer.from(f.path, "utf8"), line: Buffer.concat([
      Buffer.from(`${sha256(data)} ${data.length} ${f.executable ? "x" : "-"} `, "utf8"),
      Buffer.from(f.path, "utf8"), Buffer.from("\n")]) };
  });
  rows.sort((a, b) => Buffer.compare(a.path, b.path));
  return "sha256:" + sha256(Buffer.concat(rows.map((r) => r.line)));
}

function handle(req) {
  if (req.op === "hello") {
    return { hello: { protocol: 1, implementation: { name: "reftool-js", version: "0.1.0" },
      spec_versions: ["1.0"], operations: ["canonicalize", "digest"], features: [] } };
  }
  const inp = req.input || {};
  if (req.op === "canonicalize") {
    if (!inp.value) return { skipped: "only typed value trees, no parsing of YAML, JSON, TOML" };
    return { result: { text: jcs(normalize(inp.value)) } };
  }
  if (req.op === "digest") {
    if (inp.kind === "file") return { result: { digest: "sha256:" + sha256(Buffer.from(inp.base64, "base64")) } };
    if (inp.kind === "directory") return { result: { digest: directoryDigest(inp.files) } };
    if (inp.kind === "params" && inp.value) {
      return { result: { digest: "sha256:" + sha256(Buffer.from(jcs(normalize(inp.value)), "utf8")) } };
    }
    return { skipped: "params given as text: no parser here" };
  }
  return { skipped: `operation ${req.op} not implemented` };
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let req;
  try { req = JSON.parse(line); } catch (e) {
    process.stdout.write(JSON.stringify({ id: null, errored: "bad request: " + e.message }) + "\n");
    return;
  }
  let out;
  try { out = handle(req); } catch (e) { out = { errored: String(e) }; }
  process.stdout.write(JSON.stringify({ id: req.id, ...out }) + "\n");
});
