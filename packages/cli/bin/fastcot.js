#!/usr/bin/env node
// The installed `fastcot` command. It lives outside dist/ so that `npm ci` links it before the
// first build (npm skips a bin whose file does not exist yet).
import { existsSync } from "node:fs"

const entry = new URL("../dist/bin.js", import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write("fastcot is not built yet: run `npm run build` in the repository root\n")
  process.exit(1)
}
await import(entry.href)
