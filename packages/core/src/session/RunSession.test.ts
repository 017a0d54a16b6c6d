import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { importFile } from "../import/importFile.js"
import { applyOverrides } from "../pipeline/models.js"
import { parsePipeline } from "../recipe/config.js"
import { defaultPipelineText } from "../recipe/defaultPipeline.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { type ScriptedServer, arithmeticScript, startScriptedServer } from "../testing/scriptedServer.js"
import { jsonl, tempDir } from "../test-support/fixtures.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { BasicVerifierLive } from "../verify/Verifier.js"
import { languageModelLayer } from "./languageModelLayer.js"
import { type RunRequest, RunSession } from "./RunSession.js"
import { LanguageModel } from "../llm/LanguageModel.js"
import { ChatRequest } from "../llm/schema.js"

/** SCRIPTED models on loopback (no model behind them): the teacher adds, the judge finds all medium. */
describe("RunSession: one run's setup for every front-end (real SQLite file, scripted loopback server)", () => {
  let tmp: ReturnType<typeof tempDir>
  let server: ScriptedServer
  beforeEach(async () => {
    tmp = tempDir()
    server = await startScriptedServer({ script: arithmeticScript(() => "medium") })
  })
  afterEach(async () => {
    await server.close()
    tmp.cleanup()
  })
  const db = () => join(tmp.dir, "fastcot.db")
  const config = () => {
    const spec = `openai:scripted@${server.baseUrl}`
    return applyOverrides(Either.getOrThrow(parsePipeline(defaultPipelineText(), "built-in")), {
      teacher: spec,
      rewriter: spec,
      judge: spec,
      concurrency: 2
    })
  }
  const request = (extra: Partial<RunRequest> = {}): RunRequest => ({
    config: config(),
    holder: "a test",
    env: {},
    ...extra
  })
  const seed = async (n: number) => {
    const file = join(tmp.dir, "p.jsonl")
    writeFileSync(
      file,
      jsonl(Array.from({ length: n }, (_, i) => ({ question: `What is ${i} + ${i}?`, answer: String(2 * i) })))
    )
    await Effect.runPromise(Effect.scoped(importFile(file).pipe(Effect.provide(SqliteRunStoreLive(db())))))
  }
  const inStore = <A, E>(effect: Effect.Effect<A, E, RunStore | Scope.Scope>) =>
    Effect.runPromise(Effect.scoped(effect).pipe(Effect.provide(SqliteRunStoreLive(db()))))

  it("refuses what it cannot run before any call: unknown stages, no problems, a dollar budget on an unpriced endpoint", async () => {
    const stages = await inStore(Effect.flip(RunSession.make(request({ stages: ["teacher", "polish"] }))))
    expect(stages).toMatchObject({
      _tag: "RunSetupError",
      reason: "stages",
      message: expect.stringContaining("polish")
    })
    const empty = await inStore(Effect.flip(RunSession.make(request())))
    expect(empty).toMatchObject({ _tag: "RunSetupError", reason: "no-problems" })
    await seed(2)
    const unpriced = await inStore(Effect.flip(RunSession.make(request({ budget: { usd: 1 } }))))
    expect(unpriced).toMatchObject({ _tag: "RunSetupError", reason: "unpriced" })
    const local = await inStore(
      Effect.flip(
        RunSession.make(request({ config: applyOverrides(config(), { judge: `onnx:${join(tmp.dir, "none")}` }) }))
      )
    )
    expect(local).toMatchObject({ _tag: "RunSetupError", reason: "local-model" })
    expect(server.requests.length).toBe(0)
  })

  it("holds the workspace's run lock while its scope is open, and runs the pipeline over its own models", async () => {
    await seed(4)
    const report = await inStore(
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const session = yield* RunSession.make(request()).pipe(Scope.extend(scope))
        // A second session on the same workspace is refused while the first is open.
        const second = yield* Effect.flip(Effect.scoped(RunSession.make(request({ holder: "another test" }))))
        expect(second._tag).toBe("WorkspaceBusy")
        const report = yield* session
          .pipeline(() => {})
          .pipe(Effect.provide(Layer.merge(BasicVerifierLive, QwenTokenCounterLive)))
        yield* Scope.close(scope, Exit.void)
        // Closed: the lock is free again.
        const third = yield* Effect.scoped(RunSession.make(request({ holder: "a third" })))
        expect(third.status.kept).toBe(4)
        expect(Option.isNone(yield* third.stopped)).toBe(true)
        return report
      })
    )
    expect(report.teacher?.done).toBe(4)
    expect(report.align?.kept).toBe(4)
  })

  it("stops for its budget: stopWhen says why, with what the workspace had spent before", async () => {
    await seed(6)
    const why = await inStore(
      Effect.gen(function* () {
        const session = yield* RunSession.make(request({ budget: { tokens: 1 } }))
        const run = yield* Effect.fork(
          session.pipeline(() => {}).pipe(Effect.provide(Layer.merge(BasicVerifierLive, QwenTokenCounterLive)))
        )
        const why = yield* session.stopWhen
        // Calls past the budget never start: the owner stops the run (as q does).
        yield* Fiber.interrupt(run)
        return why
      })
    )
    expect(why._tag).toBe("budget")
  })

  it("languageModelLayer: the roles' models as a scoped Layer, refusing a spec it cannot build", async () => {
    const answer = await inStore(
      Effect.gen(function* () {
        const lm = yield* LanguageModel
        return yield* lm.complete(
          "teacher",
          new ChatRequest({ messages: [{ role: "user", content: "What is 2 + 2?" }] })
        )
      }).pipe(Effect.provide(languageModelLayer(config(), { env: {}, roles: ["teacher"] })))
    )
    expect(answer.text).toContain("4")
    const bad = await inStore(
      Effect.flip(
        Effect.provide(
          LanguageModel,
          languageModelLayer(applyOverrides(config(), { judge: "gpt-4o" }), { env: {}, roles: ["judge"] })
        )
      )
    )
    expect(bad._tag).toBe("RoleModelsError")
  })
})
