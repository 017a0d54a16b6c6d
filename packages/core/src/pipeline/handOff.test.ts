import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { importFile } from "../import/importFile.js"
import { LanguageModel, makeLanguageModel } from "../llm/LanguageModel.js"
import { parsePipeline } from "../recipe/config.js"
import { defaultPipelineText } from "../recipe/defaultPipeline.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { type ScriptedRequest, type ScriptedServer, startScriptedServer } from "../testing/scriptedServer.js"
import { jsonl, tempDir } from "../test-support/fixtures.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { BasicVerifierLive } from "../verify/Verifier.js"
import { applyOverrides, buildRoles } from "./models.js"
import { runPipeline } from "./runPipeline.js"

const N = 40

/** A problem's text the judge refuses (HTTP 400) whenever it is asked about it, when set. */
let refused: string | undefined

/**
 * A scripted teacher, rewriter and judge: odd problems get a long (reasoning) reply, which
 * long-to-short rewrites; the judge rates a trace easy when its problem is a multiple of 3, and
 * every expansion medium.
 */
const script = (r: ScriptedRequest) => {
  const system = r.messages[0]!.content
  const user = r.messages[r.messages.length - 1]!.content
  const answer = /Answer:\n(.*)\n/.exec(user)?.[1] ?? ""
  if (refused !== undefined && system.includes("highly capable evaluator") && user.includes(refused))
    return { status: 400, content: "this request is refused (scripted)" }
  if (system.includes("highly capable evaluator"))
    return { content: /EASY/.test(user) && !/Expanded/.test(user) ? "easy" : "medium" }
  if (system.includes("extending")) return { content: `Expanded, step by step. So the answer is \\boxed{${answer}}.` }
  if (system.includes("simplifying"))
    return { content: `${/EASY/.test(user) ? "EASY " : ""}Shorter. So the answer is \\boxed{${answer}}.` }
  const n = Number(/What is (\d+) \+/.exec(user)?.[1] ?? 0)
  const tag = n % 3 === 0 ? "EASY " : ""
  return n % 2 === 1
    ? {
        content: `The answer is \\boxed{${2 * n}}.`,
        reasoning: `${tag}${"Let me think about this sum once more. ".repeat(12)}${n} + ${n} = ${2 * n}.`
      }
    : { content: `${tag}Add ${n} and ${n}: \\boxed{${2 * n}}.` }
}

describe("stages hand items on in memory (scripted teacher, rewriter and judge on loopback)", () => {
  let tmp: ReturnType<typeof tempDir>
  let server: ScriptedServer
  beforeEach(async () => {
    tmp = tempDir()
    server = await startScriptedServer({ script, latencyMs: 5 })
    const file = join(tmp.dir, "problems.jsonl")
    writeFileSync(
      file,
      jsonl(
        Array.from({ length: N }, (_, i) => ({ question: `What is ${i + 1} + ${i + 1}?`, answer: String(2 * (i + 1)) }))
      )
    )
    await Effect.runPromise(
      Effect.scoped(importFile(file).pipe(Effect.provide(SqliteRunStoreLive(join(tmp.dir, "db")))))
    )
  })
  afterEach(async () => {
    refused = undefined
    await server.close()
    tmp.cleanup()
  })

  /**
   * The recipe over the scripted roles; `blind` hides pending work from the stages' reads of the
   * store, and otherwise those reads are slowed so that they list items handed over meanwhile.
   */
  const run = (blind: boolean) => {
    const base = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
    const spec = `openai:scripted@${server.baseUrl}`
    const config = applyOverrides(
      { ...base, stages: { ...base.stages, collect: { ...base.stages.collect, longToShortAboveTokens: 20 } } },
      { teacher: spec, rewriter: spec, judge: spec, concurrency: 6 }
    )
    const roles = Either.getOrThrow(buildRoles(config, {}))
    const storeLayer = Layer.effect(
      RunStore,
      Effect.map(RunStore, (store) => ({
        ...store,
        listItems: (filter: Parameters<typeof store.listItems>[0]) =>
          filter.stage === undefined
            ? store.listItems(filter)
            : blind
              ? Effect.succeed([])
              : Effect.zipRight(Effect.sleep("40 millis"), store.listItems(filter))
      }))
    ).pipe(Layer.provide(SqliteRunStoreLive(join(tmp.dir, "db"))))
    return Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const lm = yield* makeLanguageModel(roles)
          const report = yield* runPipeline(config).pipe(Effect.provide(Layer.succeed(LanguageModel, lm)))
          const store = yield* RunStore
          return { report, status: yield* store.status }
        }).pipe(Effect.provide(Layer.mergeAll(storeLayer, BasicVerifierLive, QwenTokenCounterLive)))
      )
    )
  }

  it("carries every item through every stage when the store's pending lists show nothing", async () => {
    const { report, status } = await run(true)
    expect(status.stages).toMatchObject({ collect: 0, verify: 0, align: 0, done: N })
    expect(status.kept).toBe(N)
    // Long (reasoning) teacher traces went through long-to-short; short ones straight to verify.
    expect(report.longToShort?.processed).toBe(N / 2)
    expect(status.llm.byRole["rewriter"]?.calls).toBe(N / 2 + Math.floor(N / 3))
    expect(report.verify?.processed).toBe(N)
    expect(report.align?.processed).toBe(N)
    expect(status.keptAs).toEqual({ "initial-medium": N - Math.floor(N / 3), "easy-to-medium": Math.floor(N / 3) })
  })

  it("works each item once a stage when both the hand-off and the store hold it", async () => {
    const { report, status } = await run(false)
    expect(status.stages).toMatchObject({ collect: 0, verify: 0, align: 0, done: N })
    expect(report.longToShort?.processed).toBe(N / 2)
    expect(report.verify?.processed).toBe(N)
    expect(report.align?.processed).toBe(N)
    // One call per teacher sample, per long trace, per judgement and per expansion: none twice.
    const calls = server.requests.length
    expect(calls).toBe(N + N / 2 + N + 2 * Math.floor(N / 3))
  })

  it("ends with an item the judge refuses for good failed, asked once in the run (before: a pass for ever)", async () => {
    refused = "What is 5 + 5?"
    const askedAbout = () =>
      server.requests.filter(
        (r) =>
          r.messages[0]!.content.includes("highly capable evaluator") && r.messages.at(-1)!.content.includes(refused!)
      ).length
    const first = await run(false)
    expect(first.status.failed).toBe(1)
    expect(first.status.kept).toBe(N - 1)
    expect(first.status.stages).toMatchObject({ align: 1, done: N - 1 })
    expect(askedAbout()).toBe(1)
    // The next run tries it again and ends the same, the refusal answered from the cache.
    const second = await run(false)
    expect(second.status.failed).toBe(1)
    expect(askedAbout()).toBe(1)
  }, 60_000)
})
