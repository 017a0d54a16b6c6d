import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { importFile } from "../import/importFile.js"
import { LanguageModel, makeLanguageModel } from "../llm/LanguageModel.js"
import { parsePipeline, type PipelineConfig } from "../recipe/config.js"
import { applyOverrides, buildRoles } from "../pipeline/models.js"
import { defaultPipelineText } from "../recipe/defaultPipeline.js"
import type { RunEvent } from "../recipe/events.js"
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

  const run = (
    overrides: {
      samples?: number
      failFor?: string
      collect?: Partial<PipelineConfig["stages"]["collect"]>
      maxTokens?: number
    },
    events: Array<RunEvent> = []
  ) => {
    const parsed = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
    const teacher = parsed.models.teacher!
    const base =
      overrides.maxTokens === undefined
        ? parsed
        : {
            ...parsed,
            models: {
              ...parsed.models,
              teacher: { ...teacher, sampling: { ...teacher.sampling, max_tokens: overrides.maxTokens } }
            }
          }
    const config = applyOverrides(
      {
        ...base,
        stages: {
          ...base.stages,
          collect: { ...base.stages.collect, samplesPerProblem: overrides.samples ?? 2, ...overrides.collect }
        }
      },
      { teacher: `openai:teacher-x@${server.baseUrl}`, concurrency: 4 }
    )
    const roles = Either.getOrThrow(buildRoles(config, {}, ["teacher"]))
    const db = join(tmp.dir, "fastcot.db")
    return Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const lm = yield* makeLanguageModel({ teacher: { ...roles["teacher"]!, maxAttempts: 1 } })
          const report = yield* sampleTeacher(config, { concurrency: 4, onEvent: (e) => events.push(e) }).pipe(
            Effect.provide(Layer.succeed(LanguageModel, lm))
          )
          const store = yield* RunStore
          return { report, status: yield* store.status, items: yield* store.listItems({ limit: 1000 }) }
        }).pipe(Effect.provide(SqliteRunStoreLive(db)))
      )
    )
  }

  const seed = async () => {
    const file = join(tmp.dir, "p.jsonl")
    writeFileSync(
      file,
      jsonl([
        { question: "What is 2+2?", answer: "4" },
        { question: "What is 3+3?", answer: "6" },
        { question: "Capital of France?", choices: ["Rome", "Paris"], answer: "B" }
      ])
    )
    await Effect.runPromise(
      Effect.scoped(importFile(file).pipe(Effect.provide(SqliteRunStoreLive(join(tmp.dir, "fastcot.db")))))
    )
  }

  it("stores N samples per problem with their calls, then skips them on the next run", async () => {
    let failing = true
    server = await startScriptedServer({
      script: (r) => {
        const q = r.messages[1]!.content
        if (q.includes("3+3") && failing) return { content: "overloaded", status: 503 }
        if (q.includes("France"))
          return { content: "It is Paris. \\boxed{B}", reasoning: "long thinking", finishReason: "stop" }
        return { content: "Add them. \\boxed{4}", finishReason: q.includes("2+2") ? "stop" : "length" }
      }
    })
    await seed()
    const events: Array<RunEvent> = []
    const first = await run({}, events)
    expect(first.report).toMatchObject({ total: 6, done: 4, failed: 2, skipped: 0 })
    // A failure that may pass (a 503 after the retries) fails the sample; the next run asks again.
    const byReason = first.items.filter((i) => i.fate === "failed").map((i) => i.reason?.code)
    expect(byReason.sort()).toEqual(["teacher-error", "teacher-error"])
    // The reason names the endpoint that failed, for a run with several.
    const details = first.items.filter((i) => i.fate === "failed").map((i) => i.reason?.detail)
    expect(details).toEqual([
      expect.stringMatching(new RegExp(`^ServerError from ${server.baseUrl.replace(/[.]/g, "\\.")}: `)),
      expect.stringMatching(/^ServerError from /)
    ])
    expect(first.status).toMatchObject({ failed: 2, failReasons: { "teacher-error": 2 } })
    const kept = first.items.filter((i) => i.fate === "pending")
    expect(kept).toHaveLength(4)
    const mc = kept.find((i) => i.trace!.long)!
    expect(mc.trace).toMatchObject({
      reasoning: "long thinking",
      finalAnswer: "It is Paris. \\boxed{B}",
      origin: "teacher",
      model: "teacher-x",
      promptVersion: "teacher/v1"
    })
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
    expect(second.status.failed).toBe(0)
    // Short traces go on to verify; long (reasoning) ones wait at collect for long-to-short.
    expect(second.status.stages.verify).toBe(2)
    expect(second.items.filter((i) => i.fate === "pending" && i.stage === "collect").map((i) => i.trace!.long)).toEqual(
      [true, true]
    )
    expect(second.status.llm.byRole["teacher"]).toMatchObject({ calls: 6 })
    expect(second.status.llm.calls).toBe(6)
  })

  it("truncation: extend asks a cut reply again with twice the room, up to the cap, and records every call", async () => {
    // "2+2" ends once it is given 2,000 tokens; "3+3" never ends; "France" ends at once.
    server = await startScriptedServer({
      script: (r) => {
        const room = Number(r.body["max_tokens"])
        const q = r.messages[1]!.content
        const ends = q.includes("France") || (q.includes("2+2") && room >= 2000)
        return {
          content: "Add them. \\boxed{4}",
          finishReason: ends ? "stop" : "length",
          completionTokens: Math.min(room, 700)
        }
      }
    })
    await seed()
    const { report, items } = await run({
      samples: 1,
      maxTokens: 500,
      collect: { truncation: "extend", extendUpTo: 4000 }
    })
    const asked = (q: string) =>
      server.requests.filter((r) => r.messages[1]!.content.includes(q)).map((r) => r.body["max_tokens"])
    expect(asked("2+2")).toEqual([500, 1000, 2000])
    expect(asked("3+3")).toEqual([500, 1000, 2000, 4000])
    expect(asked("France")).toEqual([500])
    expect(report).toMatchObject({ total: 3, done: 3, failed: 0 })
    const extended = items.find((i) => i.fate === "pending" && i.rounds[0]!.calls.length === 3)!
    expect(extended.rounds[0]!.note).toBe("cut at max_tokens 500, asked again with 2000")
    expect(extended.rounds[0]!.calls.map((c) => c.completionTokens)).toEqual([500, 700, 700])
    const dropped = items.find((i) => i.fate === "dropped")!
    expect(dropped.reason).toEqual({
      code: "truncated",
      detail: "the teacher's reply hit max_tokens (4000, after 3 extensions from 500)"
    })
    expect(dropped.rounds[0]!.calls).toHaveLength(4)
  })
})
