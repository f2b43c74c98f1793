// Parses an AsyncAPI document with the official parser and prints its diagnostics as JSON.
// Usage: node validate-asyncapi.mjs docs/events/asyncapi.json
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const text = await readFile(process.argv[2], "utf8");
const { document, diagnostics } = await new Parser().parse(text);
const severities = ["error", "warning", "info", "hint"];
const out = diagnostics.map((d) => ({
  severity: severities[d.severity] ?? String(d.severity),
  code: d.code,
  message: d.message,
  path: d.path.join("/"),
}));
console.log(JSON.stringify({ parsed: document !== undefined, diagnostics: out }, null, 2));
process.exit(document === undefined || out.some((d) => d.severity === "error") ? 1 : 0);
