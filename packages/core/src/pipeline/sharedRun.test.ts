import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { describe, expect, it } from "vitest"
import { LanguageModel, makeLanguageModel } from "../llm/LanguageModel.js"
import { parsePipeline, type PipelineConfig } from "../recipe/config.js"
import { defaultPipelineText } from "../recipe/defaultPipeline.js"
import { Item } from "../schema/item.js"
import type { Problem } from "../schema/problem.js"
import { PgRunStoreLive } from "../store/PgRunStore.js"
import { RunStore } from "../store/RunStore.js"
import type { StoreError } from "../store/errors.js"
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

/**
 * `mine`, except that its first claim of work under `prefix` (a `claim` of such keys, or a
 * `claimItems` page of them) lets `race` run first: another worker's move between this worker's
 * look at the store and its claim. `raced` says whether it ran.
 */
const raceFirstClaim = <E>(mine: RunStore["Type"], prefix: string, race: Effect.Effect<void, E>) => {
  let raced = false
  const first = <A>(applies: boolean, claim: Effect.Effect<A, StoreError>) =>
    raced || !applies
      ? claim
      : Effect.suspend(() => {
          raced = true
          return Effect.zipRight(Effect.orDie(race), claim)
        })
  const store: RunStore["Type"] = {
    ...mine,
    claim: (wanted) =>
      first(
        wanted.some((k) => k.startsWith(prefix)),
        mine.claim(wanted)
      ),
    claimItems: (page, keyPrefix) => first(keyPrefix === prefix, mine.claimItems(page, keyPrefix))
  }
  return { store, raced: () => raced }
}

interface SharedRun {
  readonly problems: ReadonlyArray<Problem>
  readonly items: ReadonlyArray<Item>
  /** Another worker's store on the run, which imported it. */
  readonly other: RunStore["Type"]
  /** This worker's store, and its language model over the scripted server. */
  readonly mine: RunStore["Type"]
  readonly lm: LanguageModel["Type"]
  readonly config: PipelineConfig
  readonly server: ScriptedServer
}

/**
 * Runs `body` on a new database of `problems` sums (and an item of each, made by `items`) that
 * another worker imported, with every role on a scripted server (`judge`: it answers every
 * judgement medium; otherwise it replies as a teacher), closed afterwards.
 */
const onSharedRun = async <A>(
  database: string,
  setup: { problems: number; items?: (p: Problem) => Item; concurrency: number; judge?: boolean },
  body: (run: SharedRun) => Effect.Effect<A, unknown, Scope.Scope>
): Promise<A> => {
  const server = await startScriptedServer({
    ...(setup.judge === true ? { script: () => ({ content: "medium" }) } : {}),
    latencyMs: 5
  })
  try {
    const problems = Array.from({ length: setup.problems }, (_, i) => problem(`What is ${i} + ${i}?`))
    const items = setup.items === undefined ? [] : problems.map(setup.items)
    const { config, roles } = scriptedRecipe(server, setup.concurrency)
    const storeOf = workerStore(cluster().createDatabase(database))
    return await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const other = yield* storeOf
          yield* other.commitImportBatch(importBatch(problems, items))
          const mine = yield* storeOf
          const lm = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, mine))
          return yield* body({ problems, items, other, mine, lm, config, server })
        })
      )
    )
  } finally {
    await server.close()
  }
}

/**
 * Runs `stage` as this worker while, at its first claim of `prefix` work, the other worker takes
 * `keys` and dies with them 800 ms later (its leases gone, the work undone).
 */
const runWhileAnotherTakesAndDies = (
  { other, mine, lm, config }: SharedRun,
  stage: StageName,
  prefix: string,
  keys: ReadonlyArray<string>
) =>
  Effect.gen(function* () {
    const takeAndDie = Effect.flatMap(other.claim(keys), (held) =>
      Effect.asVoid(
        Effect.forkDaemon(
          Effect.delay(
            Effect.sync(() => other.release([...held])),
            "800 millis"
          )
        )
      )
    )
    const racing = raceFirstClaim(mine, prefix, takeAndDie)
    const report = yield* runAs(racing.store, lm, config, [stage])
    return { raced: racing.raced(), report, status: yield* mine.status }
  })

describe("a stage of a shared run (a real PostgreSQL server, a scripted judge on loopback)", () => {
  it("does not end while another worker holds work of a stage before it that may still come its way", async () => {
    const verifying = (p: Problem) => new Item({ ...item(p), stage: "verify" })
    const outcome = await onSharedRun(
      "feeding_stages",
      { problems: 6, items: verifying, concurrency: 4, judge: true },
      ({ problems, items, other, mine, lm, config }) =>
        Effect.gen(function* () {
          // Another worker sharing the run is verifying every item (it holds their leases).
          const held = yield* other.claim(items.map((i) => `verify:${i.id}`))
          // This worker runs only the alignment stage: nothing is pending there yet.
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
    expect(outcome.held).toBe(6)
    expect(outcome.endedEarly._tag).toBe("None")
    expect(outcome.report.align?.processed).toBe(6)
    expect(outcome.status.kept).toBe(6)
  })

  it("does not end on a pass that found items held by another worker, and takes them over when it dies", async () => {
    const outcome = await onSharedRun(
      "held_then_dropped",
      { problems: 12, items: (p) => item(p), concurrency: 4, judge: true },
      // After this worker has read the other workers' leases (none) and before its first claim,
      // the other worker takes every item; it dies with them 800 ms later.
      (run) =>
        runWhileAnotherTakesAndDies(
          run,
          "align",
          "align:",
          run.items.map((i) => `align:${i.id}`)
        )
    )
    expect(outcome.raced).toBe(true)
    expect(outcome.report.align?.processed).toBe(12)
    expect(outcome.status.kept).toBe(12)
  })

  it("ends teacher sampling only after a pass that found no sample held by another worker", async () => {
    // Two in flight: the pass claims four samples at a time, in the problems' id order.
    const outcome = await onSharedRun(
      "samples_held_then_dropped",
      { problems: 12, concurrency: 2 },
      // At this worker's first claim the other worker takes the last four samples, which this
      // pass has yet to reach; it dies with them unsampled 800 ms later.
      (run) => {
        const last = [...run.problems].sort((a, b) => (a.id < b.id ? -1 : 1)).slice(-4)
        const keys = last.map((p) => `teacher:${teacherItemId(p.id, run.lm.modelOf("teacher"), 0)}`)
        return runWhileAnotherTakesAndDies(run, "teacher", "teacher:", keys)
      }
    )
    expect(outcome.raced).toBe(true)
    expect(outcome.report.teacher?.done).toBe(12)
    expect(outcome.status.items).toBe(12)
  })

  it("leaves an item alone when another worker finished it before the claim", async () => {
    const outcome = await onSharedRun(
      "listed_then_finished",
      { problems: 6, items: (p) => item(p), concurrency: 8, judge: true },
      ({ items, other, mine, lm, config, server }) =>
        Effect.gen(function* () {
          const keys = items.map((i) => `align:${i.id}`)
          yield* other.claim(keys)
          // Before this worker's claim, the other worker finishes every item and gives up its
          // leases (they are gone from the server within a quarter second).
          const racing = raceFirstClaim(
            mine,
            "align:",
            Effect.gen(function* () {
              yield* Effect.forEach(
                items,
                (i) => other.saveItem(new Item({ ...i, stage: "done", fate: "kept", keptAs: "initial-medium" })),
                { discard: true }
              )
              other.release(keys)
              yield* Effect.sleep("600 millis")
            })
          )
          const report = yield* runAs(racing.store, lm, config, ["align"])
          // Leases given up leave the server within a quarter second.
          yield* Effect.sleep("500 millis")
          return {
            raced: racing.raced(),
            report,
            sent: server.requests.length,
            status: yield* mine.status,
            heldHere: yield* other.heldByOthers("align:")
          }
        })
    )
    expect(outcome.raced).toBe(true)
    expect(outcome.report.align?.processed).toBe(0)
    expect(outcome.sent).toBe(0)
    expect(outcome.status.kept).toBe(6)
    // The leases it took on items that had moved on were given up.
    expect(outcome.heldHere).toBe(0)
  })

  it("leaves a teacher sample alone when another worker saved it between the look and the claim", async () => {
    const outcome = await onSharedRun(
      "sampled_then_saved",
      { problems: 5, concurrency: 8 },
      ({ problems, other, mine, lm, config, server }) =>
        Effect.gen(function* () {
          const saved = problems.map(
            (p) =>
              new Item({ ...item(p), id: teacherItemId(p.id, lm.modelOf("teacher"), 0) as Item["id"], stage: "verify" })
          )
          // The other worker saves every sample after this one looked for them and before it claims.
          const racing = raceFirstClaim(
            mine,
            "teacher:",
            Effect.forEach(saved, (i) => other.saveItem(i), { discard: true })
          )
          const report = yield* runAs(racing.store, lm, config, ["teacher"])
          yield* Effect.sleep("500 millis")
          return {
            raced: racing.raced(),
            report,
            sent: server.requests.length,
            heldHere: yield* other.heldByOthers("teacher:")
          }
        })
    )
    expect(outcome.raced).toBe(true)
    expect(outcome.sent).toBe(0)
    expect(outcome.report.teacher?.done).toBe(0)
    expect(outcome.heldHere).toBe(0)
  })
})
