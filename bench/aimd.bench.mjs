// Adaptive concurrency (AIMD) against a server whose capacity changes mid-run and that says
// nothing of its limits: a vLLM-like server with K slots (each reply takes LATENCY_MS; more queue)
// behind a gateway that answers 429, with no rate-limit headers, beyond 2K requests in flight. K
// changes from phase to phase. Each contender runs the same phases against a fresh server
// process: the adaptive endpoint (starting at 8), and fixed concurrencies swept from 4 to 64.
// Printed: each phase's throughput as a fraction of the best fixed setting for that phase (the
// issue's goal: within 10 %), and 429s as a share of the requests sent (goal: under 2 %).
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect } from "effect"
import { ChatRequest, makeLanguageModel, openAiProvider, SqliteRunStoreLive } from "@fastcot/core"

const LATENCY_MS = Number(process.env.LATENCY_MS ?? 40)
const PHASE_MS = Number(process.env.PHASE_MS ?? 4_000)
const PHASES = (process.env.SLOTS ?? "8,24,6")
  .split(",")
  .map((k) => ({ slots: Number(k), admit: 2 * Number(k), ms: PHASE_MS }))
const FIXED = (process.env.FIXED ?? "4,8,12,16,24,32,48,64").split(",").map(Number)
const TOTAL_MS = PHASES.length * PHASE_MS
const dir = mkdtempSync(join(tmpdir(), "fastcot-aimd-bench-"))

const startServer = () =>
  new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, "gateway-server.mjs"), JSON.stringify(PHASES), String(LATENCY_MS)],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    const lines = []
    let buffered = ""
    child.stdout.on("data", (d) => {
      buffered += String(d)
      let i
      while ((i = buffered.indexOf("\n")) >= 0) {
        lines.push(buffered.slice(0, i))
        buffered = buffered.slice(i + 1)
        if (lines.length === 1) resolve({ baseUrl: lines[0], stop })
      }
    })
    const stop = () =>
      new Promise((done) => {
        child.once("exit", () => done(JSON.parse(lines[1])))
        child.kill("SIGTERM")
      })
  })

/** One contender over all phases: completions per phase (by the client's clock) and the server's gateway counts. */
const contend = async (name, endpointSettings) => {
  const server = await startServer()
  const done = PHASES.map(() => 0)
  let t0 = 0
  // Calls that ran out of retries (a fixed setting far over capacity): counted, not fatal.
  let failed = 0
  const run = Effect.scoped(
    Effect.gen(function* () {
      const lm = yield* makeLanguageModel({
        teacher: {
          endpoints: [
            {
              provider: openAiProvider({ baseUrl: server.baseUrl, model: "bench", stream: false }),
              ...endpointSettings
            }
          ]
        }
      })
      let i = 0
      t0 = Date.now()
      // More workers than any window: the endpoint's permits, not the offered load, set what is in flight.
      const worker = Effect.whileLoop({
        while: () => Date.now() - t0 < TOTAL_MS,
        body: () =>
          Effect.map(
            Effect.either(
              lm.complete(
                "teacher",
                new ChatRequest({ messages: [{ role: "user", content: `q ${i++}` }], max_tokens: 16 }),
                {
                  cache: "off"
                }
              )
            ),
            (answer) => {
              if (answer._tag === "Left") return void failed++
              const phase = Math.floor((Date.now() - t0) / PHASE_MS)
              if (phase < PHASES.length) done[phase]++
            }
          ),
        step: () => {}
      })
      // At the end, calls still waiting out a backoff are cut (fixed settings far over capacity have many).
      yield* Effect.forEach(Array.from({ length: 256 }), () => worker, {
        concurrency: "unbounded",
        discard: true
      }).pipe(Effect.timeoutOption(Duration.millis(TOTAL_MS + 200)))
      return yield* lm.stats
    }).pipe(Effect.provide(SqliteRunStoreLive(join(dir, `${name}.db`))))
  )
  const stats = await Effect.runPromise(run)
  const gateway = await server.stop()
  return {
    name,
    perSecond: done.map((n) => n / (PHASE_MS / 1000)),
    refusedShare: gateway.refused / (gateway.refused + gateway.admitted),
    window: stats[0].window,
    failed
  }
}

const pct = (x) => `${(100 * x).toFixed(1)} %`
console.log(
  `AIMD bench: ${PHASES.length} phases of ${PHASE_MS / 1000} s, slots ${PHASES.map((p) => p.slots).join(" → ")} ` +
    `(gateway admits 2× slots), ${LATENCY_MS} ms a reply; ideal ${PHASES.map((p) => ((1000 * p.slots) / LATENCY_MS).toFixed(0)).join(" / ")} req/s`
)
const fixed = []
for (const c of FIXED) {
  const r = await contend(`fixed-${c}`, { concurrency: c })
  fixed.push(r)
  console.log(
    `  fixed ${String(c).padStart(3)}: ${r.perSecond.map((x) => x.toFixed(0).padStart(5)).join(" ")} req/s, 429s ${pct(r.refusedShare)}${r.failed > 0 ? `, ${r.failed} calls out of retries` : ""}`
  )
}
const aimd = await contend("aimd", { concurrency: 8, adaptive: { min: 1, max: 256 } })
console.log(
  `  adaptive : ${aimd.perSecond.map((x) => x.toFixed(0).padStart(5)).join(" ")} req/s, 429s ${pct(aimd.refusedShare)}, final window ${aimd.window}`
)
const ratios = PHASES.map((_, p) => aimd.perSecond[p] / Math.max(...fixed.map((f) => f.perSecond[p])))
console.log(
  `  adaptive / best fixed per phase: ${ratios.map((r) => r.toFixed(3)).join(" / ")} (goal ≥ 0.90); ` +
    `429s ${pct(aimd.refusedShare)} of requests (goal < 2 %)`
)
rmSync(dir, { recursive: true, force: true })
