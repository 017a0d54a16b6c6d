// The LLM layer's throughput against the scripted loopback server (its own process) at a fixed
// 40 ms reply latency and 256 requests in flight: achieved requests/s as a fraction of the ideal
// (256 / 0.040 s = 6400/s), and this process's CPU time per request.
import { spawn } from "node:child_process"
import { Effect } from "effect"
import { join } from "node:path"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { ChatRequest, makeLanguageModel, openAiProvider, SqliteRunStoreLive } from "@fastcot/core"
import { Agent, request } from "undici"

const CONCURRENCY = 256
const LATENCY_MS = 40
const REQUESTS = Number(process.env.REQUESTS ?? 30_000)
const ideal = CONCURRENCY / (LATENCY_MS / 1000)

const child = spawn(process.execPath, [join(import.meta.dirname, "scripted-server.mjs"), String(LATENCY_MS)], { stdio: ["ignore", "pipe", "inherit"] })
const baseUrl = await new Promise((resolve) => child.stdout.once("data", (d) => resolve(String(d).trim())))
const dir = mkdtempSync(join(tmpdir(), "fastcot-llm-bench-"))

const run = (stream, cache) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const lm = yield* makeLanguageModel(
          { teacher: { endpoints: [{ provider: openAiProvider({ baseUrl, model: "bench", stream }), concurrency: CONCURRENCY }] } },
          { cache }
        )
        // Warm up connections.
        yield* Effect.forEach(Array.from({ length: CONCURRENCY }, (_, i) => i), (i) => lm.complete("teacher", new ChatRequest({ messages: [{ role: "user", content: `warm ${i} ${stream}` }] }), { cache: "off" }), { concurrency: CONCURRENCY })
        const cpu0 = process.cpuUsage()
        const t0 = performance.now()
        yield* Effect.forEach(
          Array.from({ length: REQUESTS }, (_, i) => i),
          (i) => lm.complete("teacher", new ChatRequest({ messages: [{ role: "user", content: `What is ${i} + ${i}? (${stream}, ${cache})` }], max_tokens: 64 })),
          { concurrency: CONCURRENCY, discard: true }
        )
        const seconds = (performance.now() - t0) / 1000
        const cpu = process.cpuUsage(cpu0)
        return { seconds, cpuUsPerRequest: (cpu.user + cpu.system) / REQUESTS }
      }).pipe(Effect.provide(SqliteRunStoreLive(join(dir, `bench-${stream}-${cache}.db`))))
    )
  )

// The peer: undici's request API in a bare loop (no retries, cache, limits or validation).
const peer = async () => {
  const agent = new Agent({ keepAliveTimeout: 30_000 })
  const one = async (i) => {
    const r = await request(baseUrl + "/chat/completions", { method: "POST", dispatcher: agent, headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "bench", messages: [{ role: "user", content: `peer ${i}` }], max_tokens: 64 }) })
    return JSON.parse(await r.body.text())
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => one(i)))
  let next = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < REQUESTS) await one(next++) }))
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await agent.close()
  return { seconds, cpuUsPerRequest: (cpu.user + cpu.system) / REQUESTS }
}

console.log(`llm: ${REQUESTS} requests, ${CONCURRENCY} in flight, ${LATENCY_MS} ms server latency; ideal ${ideal.toFixed(0)} req/s`)
// The provider alone (its Effect interface, no service layer): what issue-level "drives the
// provider" measures.
const providerOnly = async (stream) => {
  const provider = openAiProvider({ baseUrl, model: "bench", stream })
  const req = (i) => new ChatRequest({ messages: [{ role: "user", content: `provider ${i} ${stream}` }], max_tokens: 64 })
  const loop = async () => {
    let next = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < REQUESTS) await Effect.runPromise(provider.call(req(next++))) }))
  }
  await loop()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await loop()
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { seconds, cpuUsPerRequest: (cpu.user + cpu.system) / REQUESTS }
}

const p = await peer()
const peerRate = REQUESTS / p.seconds
console.log(`  peer: bare undici loop      ${peerRate.toFixed(0).padStart(6)} req/s  = ${(peerRate / ideal).toFixed(2)} of ideal   CPU ${p.cpuUsPerRequest.toFixed(0)} µs/request`)
for (const stream of [false, true]) {
  const r = await providerOnly(stream)
  const rate = REQUESTS / r.seconds
  console.log(`  provider ${stream ? "streaming " : "JSON reply"}          ${rate.toFixed(0).padStart(6)} req/s  = ${(rate / ideal).toFixed(2)} of ideal, ${(rate / peerRate).toFixed(2)} of peer   CPU ${r.cpuUsPerRequest.toFixed(0)} µs/request`)
}
for (const [stream, cache] of [[false, "off"], [true, "off"], [false, "use"]]) {
  const r = await run(stream, cache)
  const rate = REQUESTS / r.seconds
  console.log(
    `  fastcot ${stream ? "streaming " : "JSON reply"} cache ${cache.padEnd(3)} ${rate.toFixed(0).padStart(6)} req/s  = ${(rate / ideal).toFixed(2)} of ideal, ${(rate / peerRate).toFixed(2)} of peer   CPU ${r.cpuUsPerRequest.toFixed(0)} µs/request`
  )
}
console.log("  goal: 0.9 of ideal (the scripted server shares this machine's two cores with the client)")
child.kill("SIGTERM")
rmSync(dir, { recursive: true, force: true })
