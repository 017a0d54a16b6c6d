// Items per second through the whole recipe (filter, teacher, verify, judge, expand/simplify,
// re-judge) against scripted roles on loopback with a fixed reply latency, as a fraction of the
// ideal that the slowest role's concurrency allows: min over roles of concurrency / (latency x
// that role's calls per item).
//
// ITEMS=N problems (1,200); WARMUPS=N whole runs first in this process, untimed (0: a fresh
// process pays V8's warm-up inside the timed run); COLD=1 starts the clock before the tokenizer's
// thread is ready; CACHE=off|use|refresh; PROFILE=FILE writes a CPU profile of the timed run, ALLOCATIONS=FILE a
// sampled profile of every allocation it makes (collected ones too);
// STORE=postgres runs on a throwaway PostgreSQL cluster on loopback (a fresh database a run)
// instead of a SQLite file. ENDPOINTS=in-process answers the same script in this process after
// the same latency, with no HTTP and no server process: what the pipeline reaches without the
// transport and the scripted server on the machine's cores (a diagnostic, not the goal's bench).
// SERVER=lean serves the same script from a minimal HTTP/1.1 responder (pipeline-lean-server.mjs)
// instead of node:http: the same client and transport, a server process that takes less of the
// machine's cores (a diagnostic too).
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"
import { Session } from "node:inspector/promises"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Effect, Either, Layer } from "effect"
import {
  applyOverrides,
  BasicVerifierLive,
  buildRoles,
  defaultPipelineText,
  importFile,
  LanguageModel,
  makeLanguageModel,
  parsePipeline,
  QwenTokenCounterLive,
  TokenCounter,
  runPipeline,
  PgRunStoreLive,
  RunStore,
  SqliteRunStoreLive
} from "@fastcot/core"
import { pipelineScript } from "./pipeline-script.mjs"

const ITEMS = Number(process.env.ITEMS ?? 1200)
const LATENCY_MS = 40
const CONCURRENCY = 32
const ENDPOINTS = process.env.ENDPOINTS ?? "http"
if (ENDPOINTS !== "http" && ENDPOINTS !== "in-process") throw new Error(`ENDPOINTS=${ENDPOINTS}: http or in-process`)
const SERVER = process.env.SERVER ?? "node"
if (SERVER !== "node" && SERVER !== "lean") throw new Error(`SERVER=${SERVER}: node or lean`)
const serverScript = SERVER === "lean" ? "pipeline-lean-server.mjs" : "pipeline-server.mjs"
const child =
  ENDPOINTS === "http"
    ? spawn(process.execPath, [join(import.meta.dirname, serverScript), String(LATENCY_MS)], {
        stdio: ["ignore", "pipe", "inherit"]
      })
    : undefined
const baseUrl = child
  ? await new Promise((resolve) => child.stdout.once("data", (d) => resolve(String(d).trim())))
  : "http://127.0.0.1:9" // never called: every endpoint's provider is replaced below
/** A fresh workspace directory and a problems file of ITEMS sums, from `first` on. */
const problemsFrom = (first) => {
  const dir = mkdtempSync(join(tmpdir(), "fastcot-pipeline-bench-"))
  const file = join(dir, "problems.jsonl")
  writeFileSync(
    file,
    Array.from({ length: ITEMS }, (_, i) =>
      JSON.stringify({ question: `What is ${i + first} + ${i + first}?`, answer: String(2 * (i + first)) })
    ).join("\n") + "\n"
  )
  return { dir, file }
}
// WARMUPS=N: the whole run N times first, in this process, each on a workspace and problems of
// its own, untimed: the timed run then measures warm code (V8's JIT has optimized it), where a
// fresh process (the default) pays its warm-up inside the run.
const WARMUPS = Number(process.env.WARMUPS ?? 0)
const STORE = process.env.STORE ?? "sqlite"
if (STORE !== "sqlite" && STORE !== "postgres") throw new Error(`STORE=${STORE}: sqlite or postgres`)
const cluster = STORE === "postgres" ? await (await import("@fastcot/core/testing")).startPostgresCluster() : undefined
if (cluster) process.env.PGPASSWORD = cluster.password
let runs = 0
/** User and system CPU time (ms) in a /proc `stat` line (Linux's clock ticks of 10 ms). */
const cpuMsOfStat = (stat) => {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10
}
/**
 * CPU time (ms) of every process named `postgres` now (Linux: /proc): the
 * server shares this machine's cores with the pipeline and the scripted server.
 */
const postgresCpuMs = () => {
  let ms = 0
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      if (stat.includes("(postgres)")) ms += cpuMsOfStat(stat)
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return ms
}
/**
 * CPU time (ms) of this process's main thread and of its other threads (V8's compiler and
 * garbage-collector helpers, the tokenizer, on SQLite the writer), from Linux's /proc; undefined
 * elsewhere. On a machine of few cores the other threads compete with the main thread.
 */
const threadCpuMs = () => {
  try {
    let main = 0
    let others = 0
    for (const tid of readdirSync("/proc/self/task")) {
      const ms = cpuMsOfStat(readFileSync(`/proc/self/task/${tid}/stat`, "utf8"))
      if (Number(tid) === process.pid) main += ms
      else others += ms
    }
    return { main, others }
  } catch {
    return undefined
  }
}
/**
 * CPU time (ms) of the scripted server's process, all its threads (Linux: /proc; undefined
 * elsewhere or without it). Loopback TCP's kernel work is mostly charged to the process that sends.
 */
const serverCpuMs = () => {
  if (!child) return undefined
  try {
    return cpuMsOfStat(readFileSync(`/proc/${child.pid}/stat`, "utf8"))
  } catch {
    return undefined
  }
}
/** The run's store: a SQLite file in its workspace, or a fresh database on the cluster. */
const storeLayer = (dir) =>
  cluster ? PgRunStoreLive(cluster.createDatabase(`pipeline_${++runs}`)) : SqliteRunStoreLive(join(dir, "fastcot.db"))

const base = Either.getOrThrow(parsePipeline(defaultPipelineText(), "built-in"))
const spec = `openai:scripted@${baseUrl}`
// CACHE=off|use|refresh: the LLM cache's mode for the run (the pipeline file's default otherwise).
const config = {
  ...applyOverrides(base, { teacher: spec, rewriter: spec, judge: spec, concurrency: CONCURRENCY }),
  ...(process.env.CACHE ? { cache: process.env.CACHE } : {})
}
const httpRoles = Either.getOrThrow(buildRoles(config, {}))
/** The scripted server's answer to `request`, given in this process after LATENCY_MS (Effect's Clock). */
const inProcessProvider = (model) => ({
  id: "scripted, in this process",
  model,
  call: (request) =>
    Effect.as(Effect.sleep(LATENCY_MS), {
      text: pipelineScript(request).content,
      finishReason: "stop",
      usage: { promptTokens: 0, completionTokens: 0 },
      model
    })
})
const roles =
  ENDPOINTS === "http"
    ? httpRoles
    : Object.fromEntries(
        Object.entries(httpRoles).map(([role, r]) => [
          role,
          { ...r, endpoints: r.endpoints.map((e) => ({ ...e, provider: inProcessProvider(e.provider.model) })) }
        ])
      )
/**
 * With PROFILE=FILE, a CPU profile of the timed run alone (no imports, no set-up) is written to FILE;
 * with ALLOCATIONS=FILE, a sampled allocation profile of it (a `.heapprofile`).
 */
async function startProfile(path, allocationsPath) {
  if (!path && !allocationsPath) return { stop: async () => {} }
  const session = new Session()
  session.connect()
  if (path) {
    await session.post("Profiler.enable")
    await session.post("Profiler.start")
  }
  if (allocationsPath) {
    // Every allocation sampled, collected ones too: where the run's garbage comes from.
    await session.post("HeapProfiler.enable")
    await session.post("HeapProfiler.startSampling", {
      samplingInterval: 16384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true
    })
  }
  return {
    stop: async () => {
      if (path) writeFileSync(path, JSON.stringify((await session.post("Profiler.stop")).profile))
      if (allocationsPath)
        writeFileSync(allocationsPath, JSON.stringify((await session.post("HeapProfiler.stopSampling")).profile))
      session.disconnect()
    }
  }
}

let tokenizerWaitMs
/** One whole run on fresh problems (numbers from `first` on); only the timed one is profiled and reported in full. */
const runOnce = (first, timed) => {
  const { dir, file } = problemsFrom(first)
  return Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        yield* importFile(file)
        // As `fastcot run` does before its pipeline starts (the store's writer thread starts with it).
        yield* (yield* RunStore).lockRun("pipeline bench")
        const lm = yield* makeLanguageModel(roles)
        // The Qwen tokenizer is built on a thread of its own from the layer's start (about 1.1 s);
        // a real run's start-up and first teacher replies take longer than that. The timed run
        // starts once it is ready, unless COLD=1 (then the first count waits for it inside the run).
        if (!process.env.COLD) {
          const t = performance.now()
          ;(yield* TokenCounter).count("ready?")
          if (timed) tokenizerWaitMs = performance.now() - t
        }
        const profiler = yield* Effect.promise(() =>
          startProfile(timed ? process.env.PROFILE : undefined, timed ? process.env.ALLOCATIONS : undefined)
        )
        const cpu0 = process.cpuUsage()
        const threads0 = threadCpuMs()
        const pgCpu0 = cluster ? postgresCpuMs() : 0
        const serverCpu0 = serverCpuMs()
        const elu0 = performance.eventLoopUtilization()
        if (timed) child?.kill("SIGUSR2")
        // How late the event loop ran a 1 ms timer during the timed run: a reply that arrives
        // while the loop is busy waits as long before it is read.
        const loopDelay = monitorEventLoopDelay({ resolution: 1 })
        if (timed) loopDelay.enable()
        const t0 = performance.now()
        const report = yield* runPipeline(config).pipe(Effect.provideService(LanguageModel, lm))
        const seconds = (performance.now() - t0) / 1000
        loopDelay.disable()
        const cpu = process.cpuUsage(cpu0)
        const threads1 = threadCpuMs()
        const pgCpuMs = cluster ? postgresCpuMs() - pgCpu0 : undefined
        const serverProcessMs = serverCpu0 === undefined ? undefined : serverCpuMs() - serverCpu0
        const elu = performance.eventLoopUtilization(elu0)
        const server =
          timed && child
            ? yield* Effect.promise(
                () =>
                  new Promise((resolve) => {
                    child.stdout.once("data", (d) => resolve(JSON.parse(String(d))))
                    child.kill("SIGUSR2")
                  })
              )
            : undefined
        yield* Effect.promise(() => profiler.stop())
        return {
          report,
          seconds,
          cpuMs: (cpu.user + cpu.system) / 1000,
          threadMs:
            threads0 && threads1
              ? { main: threads1.main - threads0.main, others: threads1.others - threads0.others }
              : undefined,
          mainThreadBusy: elu.utilization,
          pgCpuMs,
          serverBusy: server?.busy,
          serverMs: server?.serverMs,
          serverProcessMs,
          loopDelayMs: [50, 90, 99].map((p) => loopDelay.percentile(p) / 1e6),
          stats: yield* lm.stats
        }
      }).pipe(Effect.provide(Layer.mergeAll(storeLayer(dir), BasicVerifierLive, QwenTokenCounterLive)))
    )
  ).finally(() => rmSync(dir, { recursive: true, force: true }))
}
for (let w = 1; w <= WARMUPS; w++) {
  const warm = await runOnce(1 + w * 1_000_000, false)
  const done = warm.report.align.kept + warm.report.align.dropped
  console.log(
    `warm-up run ${w}: ${(done / warm.seconds).toFixed(0)} items/s, ${(warm.cpuMs / done).toFixed(2)} ms CPU per item (untimed)`
  )
}
const result = await runOnce(1, true).finally(() => cluster?.stop())
child?.kill("SIGTERM")

const done = result.report.align.kept + result.report.align.dropped
const rate = done / result.seconds
const perRole = result.stats.map((s) => ({
  role: s.role,
  callsPerItem: s.requests / ITEMS,
  ideal: CONCURRENCY / ((LATENCY_MS / 1000) * (s.requests / ITEMS)),
  // As this process saw them: a reply's mean time (the server's 40 ms plus both sides' queues on
  // the shared cores), and by Little's law the calls in flight on average over the run.
  seenMs: s.latencyMsTotal / Math.max(1, s.requests),
  inFlight: s.latencyMsTotal / (result.seconds * 1000)
}))
const ideal = Math.min(...perRole.map((r) => r.ideal))
const requests = result.stats.reduce((n, s) => n + s.requests, 0)
console.log(
  `pipeline on ${cluster ? "PostgreSQL (loopback)" : "SQLite"}: ${ITEMS} problems, ${LATENCY_MS} ms replies, ${CONCURRENCY} in flight per role; ` +
    (tokenizerWaitMs === undefined
      ? "timed from the run's start (COLD=1), the tokenizer perhaps still building on its thread"
      : `timed once the tokenizer's thread had built it (${tokenizerWaitMs.toFixed(0)} ms after set-up)`) +
    (child
      ? SERVER === "lean"
        ? "; the scripted server a minimal HTTP/1.1 responder (SERVER=lean)"
        : ""
      : "; endpoints answered in this process (no HTTP, no server process)") +
    (WARMUPS > 0 ? `; after ${WARMUPS} untimed run(s) in this process` : "; in a fresh process (WARMUPS=0)")
)
for (const r of perRole)
  console.log(
    `  ${r.role.padEnd(9)} ${r.callsPerItem.toFixed(2)} calls/item -> at most ${r.ideal.toFixed(0)} items/s; replies took ${r.seenMs.toFixed(1)} ms as seen here, ${r.inFlight.toFixed(1)} of ${CONCURRENCY} in flight on average`
  )
console.log(
  `  ${done} items through alignment (${result.report.align.kept} kept) in ${result.seconds.toFixed(2)} s = ${rate.toFixed(0)} items/s`
)
console.log(
  `  this process: ${(result.cpuMs / done).toFixed(2)} ms CPU per item (${((100 * result.cpuMs) / 1000 / result.seconds).toFixed(0)} % of one core)`
)
if (result.threadMs)
  console.log(
    `  of which the main thread ${(result.threadMs.main / done).toFixed(2)} ms, its other threads (V8's compiler and GC helpers, the tokenizer, on SQLite the writer) ${(result.threadMs.others / done).toFixed(2)} ms (Linux's clock ticks of 10 ms)`
  )
console.log(`  ratio to the slowest role's ideal (${ideal.toFixed(0)} items/s): ${(rate / ideal).toFixed(2)}`)
// The pipeline's JavaScript runs on one thread: busy near 1, it is the limit, whatever the endpoints allow.
const ceiling = rate / result.mainThreadBusy
console.log(
  `  main thread busy ${(100 * result.mainThreadBusy).toFixed(0)} % of the run (event-loop utilization): at 100 % it would carry ${ceiling.toFixed(0)} items/s = ${(ceiling / ideal).toFixed(2)} of the ideal`
)
console.log(
  `  event-loop delay (a 1 ms timer's lateness): p50 ${result.loopDelayMs[0].toFixed(1)} ms, p90 ${result.loopDelayMs[1].toFixed(1)} ms, p99 ${result.loopDelayMs[2].toFixed(1)} ms`
)
if (result.pgCpuMs !== undefined)
  console.log(
    `  PostgreSQL's processes: ${(result.pgCpuMs / done).toFixed(2)} ms CPU per item (${((100 * result.pgCpuMs) / 1000 / result.seconds).toFixed(0)} % of one core, on the same ${availableParallelism()} cores)`
  )
// The scripted server shares the machine: busy, it answers later than its 40 ms.
if (child)
  console.log(
    `  the scripted server's thread busy ${(100 * result.serverBusy).toFixed(0)} % of the run; it took ${result.serverMs.toFixed(1)} ms a request as it saw them (from arrival to the reply's last byte; ${LATENCY_MS} ms asked)` +
      (result.serverProcessMs === undefined
        ? ""
        : `; its process ${((1000 * result.serverProcessMs) / requests).toFixed(0)} µs CPU a request (${((100 * result.serverProcessMs) / 1000 / result.seconds).toFixed(0)} % of one core, its kernel's TCP work included)`)
  )
