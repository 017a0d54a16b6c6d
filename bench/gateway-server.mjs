// A scripted server of changing capacity behind a gateway, in its own process, for the AIMD
// bench: argv[2] is a JSON list of phases `{ slots, admit, ms }`, argv[3] the reply latency. The
// phase clock starts at the first request. On SIGTERM it prints the gateway's counts as JSON.
import { startScriptedServer } from "@fastcot/core/testing"

const phases = JSON.parse(process.argv[2])
const latencyMs = Number(process.argv[3] ?? 40)
let start
const capacity = () => {
  start ??= Date.now()
  let t = Date.now() - start
  for (const p of phases) {
    if (t < p.ms) return p
    t -= p.ms
  }
  return phases[phases.length - 1]
}
const server = await startScriptedServer({ latencyMs, capacity, constantReply: "The answer is \\boxed{4}." })
process.stdout.write(server.baseUrl + "\n")
process.on("SIGTERM", () => {
  process.stdout.write(JSON.stringify(server.gateway) + "\n")
  server.close().then(() => process.exit(0))
})
