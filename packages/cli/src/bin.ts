#!/usr/bin/env node
import { runCli } from "./main.js"

runCli(process.argv).then((code) => {
  process.exitCode = code
})
