// A scripted teacher, judge and rewriter (no model behind them) on 127.0.0.1, in its own process.
import { startScriptedServer } from "@fastcot/core/testing"
import { pipelineScript as script } from "./pipeline-script.mjs"

const latencyMs = Number(process.argv[2] ?? 40)
const server = await startScriptedServer({ latencyMs, record: false, script })
process.stdout.write(server.baseUrl + "\n")
process.on("SIGTERM", () => server.close().then(() => process.exit(0)))
// SIGUSR2 marks the start of the timed run; the next one prints how busy this server's thread was
// since, and how long the requests served since took as this server saw them.
let since
let servedBefore
process.on("SIGUSR2", () => {
  if (since === undefined) {
    since = performance.eventLoopUtilization()
    servedBefore = server.service()
  } else {
    const now = server.service()
    const served = now.served - servedBefore.served
    process.stdout.write(
      JSON.stringify({
        busy: performance.eventLoopUtilization(since).utilization,
        serverMs: served > 0 ? (now.totalMs - servedBefore.totalMs) / served : 0
      }) + "\n"
    )
  }
})
