import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { ask, languageModelHarness } from "../../test-support/languageModelHarness.js"
import type { ScriptedServer } from "../../testing/scriptedServer.js"
import { startScriptedServer } from "../../testing/scriptedServer.js"
import { type BatchSettings, defaultBatchSettings } from "./batchSettings.js"
import type { RoleConfig } from "../roles.js"
import { openAiProvider } from "../openai.js"
import { SqliteRunStoreLive } from "../../store/SqliteRunStore.js"
import { RunStore } from "../../store/RunStore.js"
import { makeLanguageModel } from "../LanguageModel.js"
import { batchApi } from "./batchApi.js"
import { cacheKey } from "../responseCache.js"

const quick: BatchSettings = { ...defaultBatchSettings, gatherMs: 30, pollMs: 15, pollMaxMs: 60 }

/** How many times each custom id was submitted in a batch, by the server's log. */
const submissions = (s: ScriptedServer) => {
  const counts = new Map<string, number>()
  for (const { customId } of s.batchLog()) counts.set(customId, (counts.get(customId) ?? 0) + 1)
  return counts
}

describe("an endpoint in batch mode (scripted loopback server with the batch API)", () => {
  const { server, endpoint, withModel, dir } = languageModelHarness({ timeoutMs: 5_000 })
  const batchRole = (s: ScriptedServer, settings: BatchSettings = quick, extra: Partial<RoleConfig> = {}) => ({
    teacher: {
      maxAttempts: 8,
      backoffBaseMs: 5,
      backoffMaxMs: 20,
      ...extra,
      endpoints: [
        {
          provider: endpoint(s, { stream: false }),
          concurrency: 10_000,
          batch: settings,
          price: { input: 2, output: 8 }
        }
      ]
    }
  })

  it("sends gathered calls as one batch at half price, custom_id = cache key, and answers each", async () => {
    const s = await server({ batches: {} })
    const { results, stats } = await withModel(batchRole(s), (lm) =>
      Effect.gen(function* () {
        const results = yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => ask(`question ${i}`)),
          (r) => lm.complete("teacher", r),
          { concurrency: "unbounded" }
        )
        return { results, stats: yield* lm.stats }
      })
    )
    for (const [i, r] of results.entries()) expect(r.text).toContain(`question ${i}`)
    expect(s.batches()).toHaveLength(1)
    expect(s.batchLog()).toHaveLength(40)
    // No call went to the live endpoint.
    expect(s.requests.filter((r) => r.url !== "batch")).toHaveLength(0)
    const st = stats[0]!
    expect(st.batch).toMatchObject({ submitted: 1, done: 1, failed: 0, running: 0, linesWaiting: 0 })
    // Half price: what was paid equals what was saved.
    expect(st.costUsd).toBeGreaterThan(0)
    expect(st.batch!.savedUsd).toBeCloseTo(st.costUsd, 10)
    // Answers are cached like any other: asking again sends nothing.
    const again = await withModel(batchRole(s), (lm) => lm.complete("teacher", ask("question 3")))
    expect(again.cached).toBe(true)
    expect(s.batchLog()).toHaveLength(40)
  })

  it("splits batches at the request and byte limits", async () => {
    const s = await server({ batches: { maxRequests: 10, maxBytes: 4_000 } })
    await withModel(batchRole(s, { ...quick, maxRequests: 10, maxBytes: 4_000 }), (lm) =>
      Effect.forEach(
        Array.from({ length: 35 }, (_, i) => ask(`q${i} ${"x".repeat(i % 2 === 0 ? 10 : 600)}`)),
        (r) => lm.complete("teacher", r),
        { concurrency: "unbounded", discard: true }
      )
    )
    const batches = s.batches()
    expect(batches.length).toBeGreaterThanOrEqual(4)
    for (const b of batches) {
      expect(b.status).toBe("completed")
      expect(b.request_counts.total).toBeLessThanOrEqual(10)
    }
    expect(s.batchLog()).toHaveLength(35)
  })

  it("sends failed and expired lines again in a new batch, and never a line that was answered", async () => {
    const failing = new Set<string>()
    const s = await server({
      batches: {
        // The first batch: every fifth line fails; the second batch expires half-way; the third fails validation.
        failLine: (id, batch) => {
          if (batch !== 0 || failing.size >= 6 || failing.has(id)) return false
          failing.add(id)
          return true
        },
        expire: (batch) => batch === 1,
        failValidation: (batch) => batch === 2
      }
    })
    // A line may fail three times here (failed, expired, failed validation): three resubmissions.
    const results = await withModel(batchRole(s, { ...quick, resubmit: 3 }), (lm) =>
      Effect.forEach(
        Array.from({ length: 30 }, (_, i) => ask(`question ${i}`)),
        (r) => lm.complete("teacher", r),
        { concurrency: "unbounded" }
      )
    )
    for (const [i, r] of results.entries()) expect(r.text).toContain(`question ${i}`)
    const statuses = s.batches().map((b) => b.status)
    expect(statuses).toContain("expired")
    expect(statuses).toContain("failed")
    // Lines answered once are never sent again; the failed ones are, a bounded number of times.
    const answeredOnce = s.answered.length
    expect(answeredOnce).toBe(30)
    const counts = [...submissions(s).values()]
    expect(counts.filter((n) => n === 1)).toHaveLength(24)
    // A batch that fails validation runs none of its lines: the server's log has them three times at most.
    expect(Math.max(...counts)).toBe(3)
    expect(s.batches()).toHaveLength(4)
  })

  it("gives up after `resubmit` batches: fails the call, or sends it live when allowed", async () => {
    const s = await server({ batches: { failValidation: () => true } })
    const failed = await withModel(batchRole(s, { ...quick, resubmit: 1 }), (lm) =>
      Effect.either(lm.complete("teacher", ask("never in a batch")))
    )
    expect(failed._tag).toBe("Left")
    expect(s.batches()).toHaveLength(2)
    const live = await withModel(batchRole(s, { ...quick, resubmit: 1, fallbackLive: true }), (lm) =>
      Effect.zip(lm.complete("teacher", ask("live at last")), lm.stats)
    )
    expect(live[0].text).toContain("live at last")
    expect(live[1][0]!.batch).toMatchObject({ live: 1 })
    expect(s.requests.filter((r) => r.url !== "batch")).toHaveLength(1)
  })

  it("takes up the batches an interrupted run created, instead of sending the requests again", async () => {
    const s = await server({ batches: { completeMs: 600 } })
    const questions = Array.from({ length: 20 }, (_, i) => ask(`question ${i}`))
    // The first run ends (interrupted) while its batch is in progress.
    await withModel(batchRole(s), (lm) =>
      Effect.gen(function* () {
        const calls = yield* Effect.fork(
          Effect.forEach(questions, (r) => lm.complete("teacher", r), { concurrency: "unbounded" })
        )
        while (s.batches().length === 0 || s.batches()[0]!.status === "validating")
          yield* Effect.sleep(Duration.millis(10))
        yield* Fiber.interrupt(calls)
      })
    )
    expect(s.batches()[0]!.status).toBe("in_progress")
    const results = await withModel(batchRole(s), (lm) =>
      Effect.forEach(questions, (r) => lm.complete("teacher", r), { concurrency: "unbounded" })
    )
    for (const [i, r] of results.entries()) expect(r.text).toContain(`question ${i}`)
    expect(s.batches()).toHaveLength(1)
    for (const [, n] of submissions(s)) expect(n).toBe(1)
  })

  it("finds the batch whose creation went unanswered by its input file, after a restart", async () => {
    const s = await server({ batches: {} })
    const provider = endpoint(s, { stream: false })
    const question = ask("made before the crash")
    // What a run that died just after creating its batch leaves: the file uploaded and recorded, the batch made, its id not.
    const key = await Effect.runPromise(
      Effect.gen(function* () {
        const store = yield* RunStore
        const key = cacheKey("m", question, 0)
        const api = batchApi(provider.batch!, provider.id)
        const line = JSON.stringify({
          custom_id: key,
          method: "POST",
          url: "/v1/chat/completions",
          body: provider.batch!.body({ ...question, model: "m" } as typeof question)
        })
        const fileId = yield* api.upload("crash.jsonl", line + "\n")
        yield* api.create(fileId, {})
        const at = new Date().toISOString()
        yield* store.saveBatchJob({
          id: "job-before-crash",
          endpoint: `teacher: ${provider.id} (m)`,
          state: "uploaded",
          fileId,
          batchId: null,
          keys: [key],
          remoteStatus: null,
          completed: 0,
          failed: 0,
          createdAt: at,
          updatedAt: at
        })
        return key
      }).pipe(Effect.scoped, Effect.provide(SqliteRunStoreLive(join(dir(), "fastcot.db"))))
    )
    const result = await withModel(batchRole(s), (lm) => lm.complete("teacher", question))
    expect(result.text).toContain("made before the crash")
    expect(s.batches()).toHaveLength(1)
    expect(s.batchLog().map((l) => l.customId)).toEqual([key])
  })

  it("waits out a server that restarts mid-batch (its state on disk)", async () => {
    const stateFile = join(dir(), "batch-state.json")
    let s = await startScriptedServer({ batches: { stateFile, completeMs: 400 } })
    const port = Number(new URL(s.url).port)
    const questions = Array.from({ length: 10 }, (_, i) => ask(`question ${i}`))
    const provider = openAiProvider({ baseUrl: s.baseUrl, model: "m", stream: false, timeoutMs: 2_000 })
    const roles = {
      teacher: { maxAttempts: 4, backoffBaseMs: 5, endpoints: [{ provider, concurrency: 1_000, batch: quick }] }
    }
    const results = await Effect.runPromise(
      Effect.gen(function* () {
        const lm = yield* makeLanguageModel(roles)
        const calls = yield* Effect.fork(
          Effect.forEach(questions, (r) => lm.complete("teacher", r), { concurrency: "unbounded" })
        )
        while (s.batches().length === 0) yield* Effect.sleep(Duration.millis(10))
        yield* Effect.promise(() => s.close())
        yield* Effect.sleep(Duration.millis(150))
        s = yield* Effect.promise(() => startScriptedServer({ batches: { stateFile, completeMs: 400 }, port }))
        return yield* Fiber.join(calls)
      }).pipe(Effect.scoped, Effect.provide(SqliteRunStoreLive(join(dir(), "restart.db"))))
    )
    await s.close()
    for (const [i, r] of results.entries()) expect(r.text).toContain(`question ${i}`)
    expect(s.batches()).toHaveLength(1)
    expect(s.batchLog()).toHaveLength(10)
  })
})
