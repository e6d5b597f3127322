// Parse each Mermaid block given on stdin (a JSON list of strings) with the real mermaid
// parser, in Node with jsdom's window (mermaid's sanitiser needs a DOM). Prints a JSON list:
// null for a block that parses, else the parser's message. No network: nothing is fetched.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMPurify = undefined;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const text of JSON.parse(input)) {
  try {
    const ok = await mermaid.parse(text);
    out.push(ok ? null : "mermaid.parse returned false");
  } catch (e) {
    out.push(String(e && e.message ? e.message : e));
  }
}
process.stdout.write(JSON.stringify(out) + "\n");
