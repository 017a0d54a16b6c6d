// A scripted teacher, judge and rewriter (no model behind them) on 127.0.0.1, in its own process.
import { createHash } from "node:crypto"
import { arithmeticScript, startScriptedServer } from "@fastcot/core/testing"

const latencyMs = Number(process.argv[2] ?? 40)
const script = arithmeticScript(
  (_n, user) =>
    ["easy", "medium", "hard", "medium"][parseInt(createHash("sha256").update(user).digest("hex").slice(0, 4), 16) % 4]
)
const server = await startScriptedServer({ latencyMs, record: false, script })
process.stdout.write(server.baseUrl + "\n")
process.on("SIGTERM", () => server.close().then(() => process.exit(0)))
// SIGUSR2 marks the start of the timed run; the next one prints how busy this server's thread was since.
let since
process.on("SIGUSR2", () => {
  if (since === undefined) since = performance.eventLoopUtilization()
  else process.stdout.write(JSON.stringify({ busy: performance.eventLoopUtilization(since).utilization }) + "\n")
})
