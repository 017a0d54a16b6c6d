import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { importFile } from "../io/importFile.js"
import { LanguageModel, makeLanguageModel } from "../llm/LanguageModel.js"
import { parsePipeline } from "../pipeline/config.js"
import { applyOverrides, buildRoles } from "../pipeline/models.js"
import { defaultPipelineText } from "../pipeline/recipe.js"
import type { RunEvent } from "../pipeline/events.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { type ScriptedServer, startScriptedServer } from "../testing/scriptedServer.js"
import { jsonl, tempDir } from "../test-support/fixtures.js"
import { writeFileSync } from "node:fs"
import { sampleTeacher } from "./teacherSampling.js"

describe("teacher sampling (scripted loopback teacher)", () => {
  let tmp: ReturnType<typeof tempDir>
  let server: ScriptedServer
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(async () => {
    await server?.close()
    tmp.cleanup()
  })

  const run = (overrides: { samples?: number; failFor?: string }, events: Array<RunEvent> = []) => {
    const base = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
    const config = applyOverrides(
      { ...base, stages: { ...base.stages, collect: { ...base.stages.collect, samplesPerProblem: overrides.samples ?? 2 } } },
      { teacher: `openai:teacher-x@${server.baseUrl}`, concurrency: 4 }
    )
    const roles = Either.getOrThrow(buildRoles(config, {}, ["teacher"]))
    const db = join(tmp.dir, "fastcot.db")
    return Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const lm = yield* makeLanguageModel({ teacher: { ...roles["teacher"]!, maxAttempts: 1 } })
          const report = yield* sampleTeacher(config, { concurrency: 4, onEvent: (e) => events.push(e) }).pipe(Effect.provide(Layer.succeed(LanguageModel, lm)))
          const store = yield* RunStore
          return { report, status: yield* store.status, items: yield* store.listItems({ limit: 1000 }) }
        }).pipe(Effect.provide(SqliteRunStoreLive(db)))
      )
    )
  }

  const seed = async () => {
    const file = join(tmp.dir, "p.jsonl")
    writeFileSync(file, jsonl([{ question: "What is 2+2?", answer: "4" }, { question: "What is 3+3?", answer: "6" }, { question: "Capital of France?", choices: ["Rome", "Paris"], answer: "B" }]))
    await Effect.runPromise(Effect.scoped(importFile(file).pipe(Effect.provide(SqliteRunStoreLive(join(tmp.dir, "fastcot.db"))))))
  }

  it("stores N samples per problem with their calls, then skips them on the next run", async () => {
    let failing = true
    server = await startScriptedServer({
      script: (r) => {
        const q = r.messages[1]!.content
        if (q.includes("3+3") && failing) return { content: "overloaded", status: 400 }
        if (q.includes("France")) return { content: "It is Paris. \\boxed{B}", reasoning: "long thinking", finishReason: "stop" }
        return { content: "Add them. \\boxed{4}", finishReason: q.includes("2+2") ? "stop" : "length" }
      }
    })
    await seed()
    const events: Array<RunEvent> = []
    const first = await run({}, events)
    expect(first.report).toMatchObject({ total: 6, done: 4, failed: 2, skipped: 0 })
    const byReason = first.items.filter((i) => i.fate === "dropped").map((i) => i.reason?.code)
    expect(byReason.sort()).toEqual(["teacher-error", "teacher-error"])
    const kept = first.items.filter((i) => i.fate === "pending")
    expect(kept).toHaveLength(4)
    const mc = kept.find((i) => i.trace!.long)!
    expect(mc.trace).toMatchObject({ reasoning: "long thinking", finalAnswer: "It is Paris. \\boxed{B}", origin: "teacher", model: "teacher-x", promptVersion: "teacher/v1" })
    expect(mc.rounds[0]!.calls[0]).toMatchObject({ role: "teacher", model: "teacher-x", cached: false })
    // The system prompt is the recipe's, and the choices are lettered.
    const sent = server.requests.find((r) => r.messages[1]!.content.includes("France"))!
    expect(sent.messages[0]!.content).toContain("You should think step-by-step.")
    expect(sent.messages[1]!.content).toContain("A. Rome\nB. Paris")
    // Samples differ by index: two distinct requests per problem reached the server.
    expect(server.requests.filter((r) => r.messages[1]!.content.includes("2+2"))).toHaveLength(2)
    expect(events.some((e) => e._tag === "item" && e.outcome === "failed")).toBe(true)

    failing = false
    const before = server.requests.length
    const second = await run({})
    expect(second.report).toMatchObject({ done: 2, failed: 0, skipped: 4 })
    // Only the two failed samples were sent again; the 3+3 replies hit max_tokens and are dropped as truncated.
    expect(server.requests.length - before).toBe(2)
    expect(second.status.dropReasons).toEqual({ truncated: 2 })
    expect(second.status.stages.verify).toBe(4)
    expect(second.status.llm.byRole["teacher"]).toMatchObject({ calls: 6 })
    expect(second.status.llm.calls).toBe(6)
  })
})
