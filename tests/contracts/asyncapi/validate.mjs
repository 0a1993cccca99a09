// Validates AsyncAPI documents with the AsyncAPI project's own parser (@asyncapi/parser,
// the library @asyncapi/cli validate runs): node validate.mjs FILE...
// Prints every diagnostic; exits 1 when any is an error (severity 0) or a warning
// (severity 1), so a document must be clean, not merely parseable.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Parser, fromFile } from "@asyncapi/parser";

const parser = new Parser();
let failed = false;
for (const file of process.argv.slice(2)) {
  const { document, diagnostics } = await fromFile(parser, resolve(file)).parse();
  const severities = ["error", "warning", "info", "hint"];
  for (const d of diagnostics) {
    console.log(`${file}: ${severities[d.severity]} ${d.code} at ${d.path.join(".")}: ${d.message}`);
    if (d.severity <= 1) failed = true;
  }
  if (!document) failed = true;
  else console.log(`${file}: AsyncAPI ${document.version()}, ${document.channels().length} channels, ${document.messages().length} messages`);
}
process.exit(failed ? 1 : 0);
