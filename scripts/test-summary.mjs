// Adds up the vitest JSON results of every workspace and prints one plain closing line.
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
let passed = 0
let failed = 0
let skipped = 0
for (const ws of pkg.workspaces) {
  const file = join(root, ws, ".vitest-results.json")
  if (!existsSync(file)) continue
  const r = JSON.parse(readFileSync(file, "utf8"))
  passed += r.numPassedTests
  failed += r.numFailedTests
  skipped += r.numPendingTests + (r.numTodoTests ?? 0)
  console.log(`${ws}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exitCode = failed > 0 || passed === 0 ? 1 : 0
