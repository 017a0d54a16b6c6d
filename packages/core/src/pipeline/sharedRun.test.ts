import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { describe, expect, it } from "vitest"
import { LanguageModel, makeLanguageModel } from "../llm/LanguageModel.js"
import { parsePipeline, type PipelineConfig } from "../recipe/config.js"
import { defaultPipelineText } from "../recipe/defaultPipeline.js"
import { Item } from "../schema/item.js"
import { PgRunStoreLive } from "../store/PgRunStore.js"
import { RunStore } from "../store/RunStore.js"
import { type ScriptedServer, startScriptedServer } from "../testing/scriptedServer.js"
import { usePostgresCluster } from "../test-support/postgresHooks.js"
import { importBatch, item, problem } from "../test-support/storeRecords.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { BasicVerifierLive } from "../verify/Verifier.js"
import { applyOverrides, buildRoles } from "./models.js"
import { runPipeline, type StageName } from "./runPipeline.js"
import { teacherItemId } from "../collect/teacherSampling.js"

const cluster = usePostgresCluster()

/** The default recipe with every role on the scripted server, and its roles. */
const scriptedRecipe = (server: ScriptedServer, concurrency: number) => {
  const base = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
  const spec = `openai:scripted@${server.baseUrl}`
  const config = applyOverrides(base, { teacher: spec, rewriter: spec, judge: spec, concurrency })
  return { config, roles: Either.getOrThrow(buildRoles(config, {})) }
}

/** One worker's store on the shared run (a worker of its own), open for the scope. */
const workerStore = (url: string) =>
  Effect.map(Layer.build(PgRunStoreLive(url, { leaseMs: 5_000 })), (ctx) => Context.get(ctx, RunStore))

/** The recipe's `stages`, run as the worker on `store`. */
const runAs = (
  store: RunStore["Type"],
  lm: LanguageModel["Type"],
  config: PipelineConfig,
  stages: ReadonlyArray<StageName>
) =>
  runPipeline(config, { stages }).pipe(
    Effect.provideService(LanguageModel, lm),
    Effect.provideService(RunStore, store),
    Effect.provide(Layer.merge(BasicVerifierLive, QwenTokenCounterLive))
  )

describe("a stage of a shared run (a real PostgreSQL server, a scripted judge on loopback)", () => {
  it("does not end while another worker holds work of a stage before it that may still come its way", async () => {
    const server = await startScriptedServer({ script: () => ({ content: "medium" }), latencyMs: 5 })
    const url = cluster().createDatabase("feeding_stages")
    try {
      const problems = Array.from({ length: 6 }, (_, i) => problem(`What is ${i} + ${i}?`))
      const verifying = problems.map((p) => new Item({ ...item(p), stage: "verify" }))
      const { config, roles } = scriptedRecipe(server, 4)
      const storeOf = workerStore(url)
      const outcome = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            // Another worker sharing the run is verifying every item (it holds their leases).
            const other = yield* storeOf
            yield* other.commitImportBatch(importBatch(problems, verifying))
            const held = yield* other.claim(verifying.map((i) => `verify:${i.id}`))
            // This worker runs only the alignment stage: nothing is pending there yet.
            const mine = yield* storeOf
            const lm = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, mine))
            const run = yield* Effect.fork(runAs(mine, lm, config, ["align"]))
            yield* Effect.sleep("600 millis")
            const endedEarly = yield* Fiber.poll(run)
            // The other worker saves the verified items at alignment and gives up its leases.
            yield* Effect.forEach(problems, (p) => other.saveItem(item(p)), { discard: true })
            other.release([...held])
            const report = yield* Fiber.join(run)
            return { held: held.size, endedEarly, report, status: yield* mine.status }
          })
        )
      )
      expect(outcome.held).toBe(problems.length)
      expect(outcome.endedEarly._tag).toBe("None")
      expect(outcome.report.align?.processed).toBe(problems.length)
      expect(outcome.status.kept).toBe(problems.length)
    } finally {
      await server.close()
    }
  })

  it("does not end on a pass that found items held by another worker, and takes them over when it dies", async () => {
    const server = await startScriptedServer({ script: () => ({ content: "medium" }), latencyMs: 5 })
    const url = cluster().createDatabase("held_then_dropped")
    try {
      const problems = Array.from({ length: 12 }, (_, i) => problem(`What is ${i} + ${i}?`))
      const pending = problems.map((p) => item(p))
      const { config, roles } = scriptedRecipe(server, 4)
      const storeOf = workerStore(url)
      const outcome = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const other = yield* storeOf
            yield* other.commitImportBatch(importBatch(problems, pending))
            const mine = yield* storeOf
            // After this worker has read the other workers' leases (none) and before its first
            // claim, the other worker takes every item; it dies with them 800 ms later.
            let raced = false
            const racing: RunStore["Type"] = {
              ...mine,
              claim: (wanted) =>
                raced || !wanted.some((k) => k.startsWith("align:"))
                  ? mine.claim(wanted)
                  : Effect.gen(function* () {
                      raced = true
                      const held = yield* other.claim(pending.map((i) => `align:${i.id}`))
                      yield* Effect.forkDaemon(
                        Effect.delay(
                          Effect.sync(() => other.release([...held])),
                          "800 millis"
                        )
                      )
                      return yield* mine.claim(wanted)
                    })
            }
            const lm = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, racing))
            const report = yield* runAs(racing, lm, config, ["align"])
            return { raced, report, status: yield* mine.status }
          })
        )
      )
      expect(outcome.raced).toBe(true)
      expect(outcome.report.align?.processed).toBe(problems.length)
      expect(outcome.status.kept).toBe(problems.length)
    } finally {
      await server.close()
    }
  })

  it("ends teacher sampling only after a pass that found no sample held by another worker", async () => {
    const server = await startScriptedServer({ latencyMs: 5 })
    const url = cluster().createDatabase("samples_held_then_dropped")
    try {
      const problems = Array.from({ length: 12 }, (_, i) => problem(`What is ${i} + ${i}?`))
      // Two in flight: the pass claims four samples at a time, in the problems' id order.
      const { config, roles } = scriptedRecipe(server, 2)
      const storeOf = workerStore(url)
      const outcome = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const other = yield* storeOf
            yield* other.commitImportBatch(importBatch(problems))
            const mine = yield* storeOf
            const lm = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, mine))
            const last = [...problems].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(-4)
            const keys = last.map((p) => `teacher:${teacherItemId(p.id, lm.modelOf("teacher"), 0)}`)
            // At this worker's first claim the other worker takes the last four samples, which
            // this pass has yet to reach; it dies with them unsampled 800 ms later.
            let raced = false
            const racing: RunStore["Type"] = {
              ...mine,
              claim: (wanted) =>
                raced || !wanted.some((k) => k.startsWith("teacher:"))
                  ? mine.claim(wanted)
                  : Effect.gen(function* () {
                      raced = true
                      const held = yield* other.claim(keys)
                      yield* Effect.forkDaemon(
                        Effect.delay(
                          Effect.sync(() => other.release([...held])),
                          "800 millis"
                        )
                      )
                      return yield* mine.claim(wanted)
                    })
            }
            const report = yield* runAs(racing, lm, config, ["teacher"])
            return { raced, report, status: yield* mine.status }
          })
        )
      )
      expect(outcome.raced).toBe(true)
      expect(outcome.report.teacher?.done).toBe(problems.length)
      expect(outcome.status.items).toBe(problems.length)
    } finally {
      await server.close()
    }
  })

  it("leaves an item it listed alone when another worker finished it before the claim", async () => {
    const server = await startScriptedServer({ script: () => ({ content: "medium" }), latencyMs: 5 })
    const url = cluster().createDatabase("listed_then_finished")
    try {
      const problems = Array.from({ length: 6 }, (_, i) => problem(`What is ${i} + ${i}?`))
      const pending = problems.map((p) => item(p))
      const { config, roles } = scriptedRecipe(server, 8)
      const storeOf = workerStore(url)
      const outcome = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const other = yield* storeOf
            yield* other.commitImportBatch(importBatch(problems, pending))
            const keys = pending.map((i) => `align:${i.id}`)
            yield* other.claim(keys)
            const mine = yield* storeOf
            // Between this worker's listing and its claim, the other worker finishes every item
            // and gives up its leases (they are gone from the server within a quarter second).
            let raced = false
            const racing: RunStore["Type"] = {
              ...mine,
              claim: (wanted) =>
                raced || !wanted.some((k) => k.startsWith("align:"))
                  ? mine.claim(wanted)
                  : Effect.gen(function* () {
                      raced = true
                      yield* Effect.forEach(
                        pending,
                        (i) =>
                          other.saveItem(new Item({ ...i, stage: "done", fate: "kept", keptAs: "initial-medium" })),
                        { discard: true }
                      )
                      other.release(keys)
                      yield* Effect.sleep("600 millis")
                      return yield* mine.claim(wanted)
                    })
            }
            const lm = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, racing))
            const report = yield* runAs(racing, lm, config, ["align"])
            // Leases given up leave the server within a quarter second.
            yield* Effect.sleep("500 millis")
            return { raced, report, status: yield* mine.status, heldHere: yield* other.heldByOthers("align:") }
          })
        )
      )
      expect(outcome.raced).toBe(true)
      expect(outcome.report.align?.processed).toBe(0)
      expect(server.requests).toHaveLength(0)
      expect(outcome.status.kept).toBe(problems.length)
      // The leases it took on items that had moved on were given up.
      expect(outcome.heldHere).toBe(0)
    } finally {
      await server.close()
    }
  })

  it("leaves a teacher sample alone when another worker saved it between the look and the claim", async () => {
    const server = await startScriptedServer({ latencyMs: 5 })
    const url = cluster().createDatabase("sampled_then_saved")
    try {
      const problems = Array.from({ length: 5 }, (_, i) => problem(`What is ${i} + ${i}?`))
      const { config, roles } = scriptedRecipe(server, 8)
      const storeOf = workerStore(url)
      const outcome = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const other = yield* storeOf
            yield* other.commitImportBatch(importBatch(problems))
            const mine = yield* storeOf
            const lm = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, mine))
            const saved = problems.map(
              (p) =>
                new Item({
                  ...item(p),
                  id: teacherItemId(p.id, lm.modelOf("teacher"), 0) as Item["id"],
                  stage: "verify"
                })
            )
            // The other worker saves every sample after this one looked for them and before it claims.
            let raced = false
            const racing: RunStore["Type"] = {
              ...mine,
              claim: (wanted) =>
                raced || !wanted.some((k) => k.startsWith("teacher:"))
                  ? mine.claim(wanted)
                  : Effect.gen(function* () {
                      raced = true
                      yield* Effect.forEach(saved, (i) => other.saveItem(i), { discard: true })
                      return yield* mine.claim(wanted)
                    })
            }
            const report = yield* runAs(racing, lm, config, ["teacher"])
            yield* Effect.sleep("500 millis")
            return { raced, report, heldHere: yield* other.heldByOthers("teacher:") }
          })
        )
      )
      expect(outcome.raced).toBe(true)
      expect(server.requests).toHaveLength(0)
      expect(outcome.report.teacher?.done).toBe(0)
      expect(outcome.heldHere).toBe(0)
    } finally {
      await server.close()
    }
  })
})
