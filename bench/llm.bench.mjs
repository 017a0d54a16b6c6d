// The LLM layer's throughput against the scripted loopback server (its own process) at a fixed
// 40 ms reply latency and 256 requests in flight: achieved requests/s as a fraction of the ideal
// (256 / 0.040 s = 6400/s), and the client's CPU time per request. Every measurement runs in a
// fresh child process (its own heap and JIT), against one server process, in interleaved rounds.
import { spawn } from "node:child_process"
import { Effect } from "effect"
import { join } from "node:path"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { ChatRequest, makeLanguageModel, openAiProvider, SqliteRunStoreLive } from "@fastcot/core"
import { Agent, request } from "undici"

const CONCURRENCY = 256
const LATENCY_MS = 40
const REQUESTS = Number(process.env.REQUESTS ?? 20_000)
const ROUNDS = Number(process.env.ROUNDS ?? 3)
// Every contender first serves this many requests (connections open, JIT warm), unmeasured.
const WARMUP = Number(process.env.WARMUP ?? 4_000)
const ideal = CONCURRENCY / (LATENCY_MS / 1000)

const [, , mode, which, baseUrlArg, roundArg] = process.argv
const worker = mode === "--one"
const child = worker
  ? undefined
  : spawn(process.execPath, [join(import.meta.dirname, "scripted-server.mjs"), String(LATENCY_MS)], {
      stdio: ["ignore", "pipe", "inherit"]
    })
const baseUrl = worker
  ? baseUrlArg
  : await new Promise((resolve) => child.stdout.once("data", (d) => resolve(String(d).trim())))
const dir = worker ? mkdtempSync(join(tmpdir(), "fastcot-llm-bench-")) : undefined

const run = (stream, cache, round) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const lm = yield* makeLanguageModel(
          {
            teacher: {
              endpoints: [{ provider: openAiProvider({ baseUrl, model: "bench", stream }), concurrency: CONCURRENCY }]
            }
          },
          { cache }
        )
        // Warm up connections.
        yield* Effect.forEach(
          Array.from({ length: WARMUP }, (_, i) => i),
          (i) =>
            lm.complete(
              "teacher",
              new ChatRequest({ messages: [{ role: "user", content: `warm ${i} ${stream} ${round}` }] }),
              { cache: "off" }
            ),
          { concurrency: CONCURRENCY }
        )
        const cpu0 = process.cpuUsage()
        const t0 = performance.now()
        yield* Effect.forEach(
          Array.from({ length: REQUESTS }, (_, i) => i),
          (i) =>
            lm.complete(
              "teacher",
              new ChatRequest({
                messages: [{ role: "user", content: `What is ${i} + ${i}? (${stream}, ${cache}, ${round})` }],
                max_tokens: 64
              })
            ),
          { concurrency: CONCURRENCY, discard: true }
        )
        const seconds = (performance.now() - t0) / 1000
        const cpu = process.cpuUsage(cpu0)
        return { seconds, cpuUsPerRequest: (cpu.user + cpu.system) / REQUESTS }
      }).pipe(Effect.provide(SqliteRunStoreLive(join(dir, `bench-${stream}-${cache}-${round}.db`))))
    )
  )

// The peer: undici's request API in a bare loop (no retries, cache, limits or validation).
const peer = async () => {
  const agent = new Agent({ keepAliveTimeout: 30_000 })
  const one = async (i) => {
    const r = await request(baseUrl + "/chat/completions", {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "bench", messages: [{ role: "user", content: `peer ${i}` }], max_tokens: 64 })
    })
    return JSON.parse(await r.body.text())
  }
  let next = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < WARMUP) await one(next++)
    })
  )
  next = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) await one(next++)
    })
  )
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await agent.close()
  return { seconds, cpuUsPerRequest: (cpu.user + cpu.system) / REQUESTS }
}

// The provider alone (its Effect interface, no service layer): what issue-level "drives the
// provider" measures. It is driven the way the peer is: CONCURRENCY fibers (the peer: async
// functions), each sending its next request as soon as its last is answered, in one Effect
// runtime. The "Effect.forEach" row drives it instead with one forEach element per request, which
// costs a few µs of CPU per element (a yield and a result kept per element) on top.
const providerOnly = async (stream, driver = "workers") => {
  const provider = openAiProvider({ baseUrl, model: "bench", stream })
  const req = (i) =>
    new ChatRequest({ messages: [{ role: "user", content: `provider ${i} ${stream}` }], max_tokens: 64 })
  const loop =
    driver === "workers"
      ? (count) =>
          Effect.runPromise(
            Effect.suspend(() => {
              let next = 0
              const worker = Effect.whileLoop({
                while: () => next < count,
                body: () => provider.call(req(next++)),
                step: () => {}
              })
              return Effect.forEach(Array.from({ length: CONCURRENCY }), () => worker, {
                concurrency: CONCURRENCY,
                discard: true
              })
            })
          )
      : (count) =>
          Effect.runPromise(
            Effect.forEach(
              Array.from({ length: count }, (_, i) => i),
              (i) => provider.call(req(i)),
              { concurrency: CONCURRENCY, discard: true }
            )
          )
  await loop(WARMUP)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await loop(REQUESTS)
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { seconds, cpuUsPerRequest: (cpu.user + cpu.system) / REQUESTS }
}

// The machine is shared and noisy: every configuration runs once per round, rounds interleave,
// and each line prints the median of the rounds (ratios to the peer are medians of per-round ratios).
const configs = [
  ["peer: bare undici request() loop", () => peer()],
  ["provider JSON reply", () => providerOnly(false)],
  ["provider streaming", () => providerOnly(true)],
  ["provider JSON, Effect.forEach", () => providerOnly(false, "forEach")],
  ["fastcot JSON reply cache off", (round) => run(false, "off", round)],
  ["fastcot streaming  cache off", (round) => run(true, "off", round)],
  ["fastcot JSON reply cache use", (round) => run(false, "use", round)]
]
if (worker) {
  const r = await configs[Number(which)][1](Number(roundArg))
  process.stdout.write(JSON.stringify(r) + "\n")
  rmSync(dir, { recursive: true, force: true })
  process.exit(0)
}
// The scripted server's own CPU time (Linux /proc; utime + stime in clock ticks of 10 ms): it
// shares this machine's cores with the client, so the report shows its share per request.
const serverCpuUs = () => {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return undefined
  }
}
const measure = (i, round) =>
  new Promise((resolve, reject) => {
    const one = spawn(process.execPath, [import.meta.filename, "--one", String(i), baseUrl, String(round)], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    one.stdout.on("data", (d) => (out += d))
    const server0 = serverCpuUs()
    one.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`${configs[i][0]} exited ${code}`))
      const server1 = serverCpuUs()
      // The warm-up's requests hit the server too: its share is per request served in all.
      resolve({
        ...JSON.parse(out),
        serverCpuUs:
          server0 === undefined || server1 === undefined ? undefined : (server1 - server0) / (REQUESTS + WARMUP)
      })
    })
  })
console.log(
  `llm: ${REQUESTS} requests per run, ${ROUNDS} interleaved rounds, ${CONCURRENCY} in flight, ${LATENCY_MS} ms server latency; ideal ${ideal.toFixed(0)} req/s; ${availableParallelism()} cores`
)
const results = configs.map(() => [])
// Which configuration runs first rotates from round to round: the one that follows another
// process's 256 connections (closing as it exits) must not always be the same.
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < configs.length; k++) {
    const i = (k + round) % configs.length
    const r = await measure(i, round)
    results[i].push({ rate: REQUESTS / r.seconds, cpu: r.cpuUsPerRequest, server: r.serverCpuUs })
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
for (const [i, [name]] of configs.entries()) {
  const rate = median(results[i].map((r) => r.rate))
  const ofPeer = median(results[i].map((r, k) => r.rate / results[0][k].rate))
  console.log(
    `  ${name.padEnd(32)} ${rate.toFixed(0).padStart(6)} req/s = ${(rate / ideal).toFixed(2)} of ideal${i > 0 ? `, ${ofPeer.toFixed(2)} of peer` : "             "}   CPU ${median(results[i].map((r) => r.cpu)).toFixed(0)} µs/request` +
      `${results[i][0].server !== undefined ? ` (server ${median(results[i].map((r) => r.server)).toFixed(0)})` : ""}   (rounds: ${results[i].map((r) => (r.rate / ideal).toFixed(2)).join(" ")})`
  )
}
console.log(
  `  goal: 0.9 of ideal (the scripted server shares this machine's ${availableParallelism()} cores with the client: on 2 cores even the bare peer falls short of it)`
)
child.kill("SIGTERM")
