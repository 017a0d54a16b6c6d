import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { importFile } from "../import/importFile.js"
import { LanguageModel, makeLanguageModel } from "../llm/LanguageModel.js"
import { parsePipeline } from "../recipe/config.js"
import { applyOverrides, buildRoles } from "../pipeline/models.js"
import { defaultPipelineText } from "../recipe/defaultPipeline.js"
import { pipelineEvents, runPipeline } from "../pipeline/runPipeline.js"
import { RunEvent } from "../recipe/events.js"
import * as Chunk from "effect/Chunk"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { describeReason, type Item } from "../schema/item.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { type ScriptedRequest, type ScriptedServer, startScriptedServer } from "../testing/scriptedServer.js"
import { jsonl, tempDir } from "../test-support/fixtures.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { BasicVerifierLive } from "../verify/Verifier.js"
import { parseVerdict } from "./prompts.js"
import { majorityVerdict } from "./stages.js"

/**
 * A scripted judge and rewriter: the judge reads a LEVEL marker in the reasoning; the rewriters
 * answer as the marker asks (expand to medium, simplify to medium, keep it hard, change the answer).
 */
const script = () => {
  const seen = new Map<string, number>()
  return (r: ScriptedRequest) => {
    const system = r.messages[0]!.content
    const user = r.messages[1]!.content
    const answer = /Answer:\n(.*)\n/.exec(user)?.[1] ?? ""
    const level = /LEVEL:(\w+)/.exec(user)?.[1] ?? "medium"
    if (system.includes("highly capable evaluator")) {
      const n = (seen.get(user) ?? 0) + 1
      seen.set(user, n)
      if (level === "garbage") return { content: n === 1 ? "I would say it is fine overall." : "Medium." }
      if (level === "split") return { content: ["easy", "medium", "medium"][(n - 1) % 3]! }
      if (level === "splitlow") return { content: ["easy", "easy", "hard"][(n - 1) % 3]! }
      if (level === "stuck" || level === "wrong") return { content: "hard" }
      return { content: level === "hard" ? "**Hard**" : level === "easy" ? "<think>short?</think> easy" : "medium" }
    }
    if (system.includes("extending reasoning"))
      return { content: `Step 1: more detail.\n\nStep 2: LEVEL:medium so \\boxed{${answer}}` }
    if (level === "wrong") return { content: "Shorter: \\boxed{999}" }
    if (level === "stuck") return { content: `Still convoluted LEVEL:stuck \\boxed{${answer}}` }
    return { content: `Short. LEVEL:medium \\boxed{${answer}}` }
  }
}

describe("the recipe's alignment loop (scripted judge and rewriter on loopback)", () => {
  let tmp: ReturnType<typeof tempDir>
  let server: ScriptedServer
  beforeEach(async () => {
    tmp = tempDir()
    server = await startScriptedServer({ script: script() })
  })
  afterEach(async () => {
    await server.close()
    tmp.cleanup()
  })

  const db = () => join(tmp.dir, "fastcot.db")
  const pipeline = (judges = 1) => {
    const parsed = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
    const base = { ...parsed, stages: { ...parsed.stages, align: { ...parsed.stages.align, judges } } }
    const spec = `openai:scripted@${server.baseUrl}`
    const config = applyOverrides(
      { ...base, stages: { ...base.stages, collect: { ...base.stages.collect, longToShortAboveTokens: 20 } } },
      { rewriter: spec, judge: spec, concurrency: 4 }
    )
    return { config, roles: Either.getOrThrow(buildRoles(config, {}, ["rewriter", "judge"])) }
  }
  const run = (judges = 1) => {
    const { config, roles } = pipeline(judges)
    return Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const lm = yield* makeLanguageModel(roles)
          const report = yield* runPipeline(config).pipe(Effect.provide(Layer.succeed(LanguageModel, lm)))
          const store = yield* RunStore
          return { report, status: yield* store.status, items: yield* store.listItems({ limit: 100 }) }
        }).pipe(Effect.provide(Layer.mergeAll(SqliteRunStoreLive(db()), BasicVerifierLive, QwenTokenCounterLive)))
      )
    )
  }

  const rows = [
    { question: "Q medium: 1+1?", answer: "2", solution: "LEVEL:medium. 1+1 = \\boxed{2}" },
    { question: "Q easy: 2+2?", answer: "4", solution: "LEVEL:easy \\boxed{4}" },
    { question: "Q hard: 3+3?", answer: "6", solution: "LEVEL:hard. Consider the group Z... \\boxed{6}" },
    { question: "Q stuck: 4+4?", answer: "8", solution: "LEVEL:stuck \\boxed{8}" },
    { question: "Q wrong: 5+5?", answer: "10", solution: "LEVEL:wrong \\boxed{10}" },
    { question: "Q garbage: 6+6?", answer: "12", solution: "LEVEL:garbage \\boxed{12}" },
    { question: "Q mismatch: 7+7?", answer: "14", solution: "LEVEL:medium \\boxed{15}" },
    {
      question: "Q long: 8+8?",
      answer: "16",
      output: `<think>${"Let me reconsider this again carefully. ".repeat(20)}LEVEL:hard</think>\n\nThe answer is \\boxed{16}.`
    },
    {
      question: "Q choice: which is red?",
      choices: ["sky", "blood"],
      answer: "B",
      solution: "LEVEL:medium. Blood is red, so the answer is \\boxed{B}"
    }
  ]

  it("keeps medium, expands easy, simplifies hard, drops what never reaches medium or changes the answer, with every round recorded", async () => {
    const file = join(tmp.dir, "traces.jsonl")
    writeFileSync(file, jsonl(rows))
    await Effect.runPromise(Effect.scoped(importFile(file).pipe(Effect.provide(SqliteRunStoreLive(db())))))
    const { report, status, items } = await run()
    const byQuestion = async (q: string): Promise<Item> => {
      const problems = await Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(RunStore, (s) => s.getProblems(items.map((i) => i.problemId))).pipe(
            Effect.provide(SqliteRunStoreLive(db()))
          )
        )
      )
      const p = problems.find((x) => x.question.startsWith(q))!
      return items.find((i) => i.problemId === p.id)!
    }
    expect(report.verify).toMatchObject({ processed: 9, dropped: 1 })
    expect(status).toMatchObject({ kept: 6, dropped: 3, pending: 0 })
    expect(status.keptAs).toEqual({ "initial-medium": 4, "easy-to-medium": 1, "hard-to-medium": 1 })
    expect(status.dropReasons).toEqual({ "answer-mismatch": 1, "max-rounds": 1, "rewrite-changed-answer": 1 })

    expect(status.tokens).toMatchObject({ tokenizer: "qwen2.5", after: { count: 6 }, before: { count: 6 } })
    expect(status.tokens.ratio).toBeGreaterThan(0)
    expect(status.tokens.histogram.reduce((n, b) => n + b.after, 0)).toBe(6)
    const easy = await byQuestion("Q easy")
    expect(easy).toMatchObject({ fate: "kept", keptAs: "easy-to-medium", stage: "done" })
    expect(easy.rounds.map((r) => r.action)).toEqual(["verify", "judge", "expand", "judge"])
    expect(easy.rounds[1]!.verdict).toMatchObject({ level: "easy", raw: "easy", promptVersion: "judge/v1" })
    expect(easy.rounds[2]!.calls[0]).toMatchObject({ role: "rewriter", promptVersion: "expand/v1" })
    expect(easy.original!.reasoning).toBe("LEVEL:easy \\boxed{4}")
    expect(easy.trace!.origin).toBe("expand")

    const stuck = await byQuestion("Q stuck")
    expect(stuck.reason).toMatchObject({
      code: "max-rounds",
      detail: expect.stringContaining("hard → hard → hard → hard")
    })
    expect(stuck.rounds.filter((r) => r.action === "simplify")).toHaveLength(3)

    const wrong = await byQuestion("Q wrong")
    expect(wrong.reason!.code).toBe("rewrite-changed-answer")
    expect(wrong.rounds.filter((r) => r.action === "simplify").map((r) => r.verification!.ok)).toEqual([
      false,
      false,
      false
    ])

    const garbage = await byQuestion("Q garbage")
    expect(garbage.fate).toBe("kept")
    expect(garbage.rounds.filter((r) => r.action === "judge").map((r) => r.verdict!.level)).toEqual([
      "unparseable",
      "medium"
    ])

    const long = await byQuestion("Q long")
    expect(long.rounds[0]).toMatchObject({ action: "long-to-short" })
    expect(long.original!.long).toBe(true)
    expect(long.fate).toBe("kept")

    const mismatch = await byQuestion("Q mismatch")
    expect(mismatch.reason).toMatchObject({ code: "answer-mismatch", detail: "answer-mismatch: 15 vs reference 14" })
    // As one line, the code once (inspect, the dashboard and the desktop app show it so).
    expect(describeReason(mismatch.reason!)).toBe("answer-mismatch: 15 vs reference 14")
    expect(describeReason({ code: "judge-error", detail: "judge: timed out" })).toBe("judge-error: judge: timed out")

    // The judge was asked with the recipe's prompt and a constrained choice.
    const judged = server.requests.find((r) =>
      r.messages[0]!.content.startsWith("You are a highly capable evaluator.")
    )!
    expect(judged.messages[0]!.content).toContain("(e.g., 7B)")

    // A second run finds nothing pending and sends nothing.
    const sent = server.requests.length
    const again = await run()
    expect(server.requests.length).toBe(sent)
    expect(again.status).toEqual(status)
  })

  it("streams typed progress events that decode against their schema, ending with pipeline-done", async () => {
    const file = join(tmp.dir, "traces.jsonl")
    writeFileSync(file, jsonl(rows))
    await Effect.runPromise(Effect.scoped(importFile(file).pipe(Effect.provide(SqliteRunStoreLive(db())))))
    const { config, roles } = pipeline()
    const events = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const lm = yield* makeLanguageModel(roles)
          return yield* Stream.runCollect(pipelineEvents(config).pipe(Stream.provideService(LanguageModel, lm)))
        }).pipe(Effect.provide(Layer.mergeAll(SqliteRunStoreLive(db()), BasicVerifierLive, QwenTokenCounterLive)))
      )
    )
    const list = Chunk.toReadonlyArray(events)
    for (const e of list) Schema.decodeUnknownSync(RunEvent)(JSON.parse(JSON.stringify(e)))
    expect(list[list.length - 1]).toEqual({ _tag: "pipeline-done", kept: 6, dropped: 3, failed: 0 })
    expect(
      list
        .filter((e) => e._tag === "stage-done")
        .map((e) => (e as { stage: string }).stage)
        .sort()
    ).toEqual(["align", "filter", "long-to-short", "verify"])
    expect(list.filter((e) => e._tag === "item" && e.stage === "align")).toHaveLength(8)
    // every judge answer is also a verdict event
    expect(list.filter((e) => e._tag === "verdict").length).toBeGreaterThanOrEqual(8)
  })

  it("with k=3 judges, each round's verdict is the majority of three recorded votes", async () => {
    const file = join(tmp.dir, "votes.jsonl")
    writeFileSync(
      file,
      jsonl([
        { question: "Q split: 9+9?", answer: "18", solution: "LEVEL:split \\boxed{18}" },
        { question: "Q splitlow: 10+10?", answer: "20", solution: "LEVEL:splitlow \\boxed{20}" }
      ])
    )
    await Effect.runPromise(Effect.scoped(importFile(file).pipe(Effect.provide(SqliteRunStoreLive(db())))))
    const { status, items } = await run(3)
    expect(status.keptAs).toEqual({ "initial-medium": 1, "easy-to-medium": 1 })
    const split = items.find((i) => i.keptAs === "initial-medium")!
    expect(split.rounds.filter((r) => r.action === "judge").map((r) => [r.verdict!.level, r.note])).toEqual([
      ["easy", "vote 1 of 3"],
      ["medium", "vote 2 of 3"],
      ["medium", "vote 3 of 3"]
    ])
    const low = items.find((i) => i.keptAs === "easy-to-medium")!
    expect(low.rounds.map((r) => r.action)).toEqual([
      "verify",
      "judge",
      "judge",
      "judge",
      "expand",
      "judge",
      "judge",
      "judge"
    ])
    expect(majorityVerdict(["easy", "hard"])).toBe("hard")
    expect(majorityVerdict(["easy", "medium", "unparseable"])).toBe("medium")
    expect(majorityVerdict(["unparseable", "unparseable"])).toBe("unparseable")
    expect(majorityVerdict(["easy", "easy", "medium"])).toBe("easy")
  })

  it("parses verdicts strictly", () => {
    expect(parseVerdict("medium")).toBe("medium")
    expect(parseVerdict("  **Hard**.\n")).toBe("hard")
    expect(parseVerdict("<think>hmm, maybe easy</think>\n`EASY`")).toBe("easy")
    expect(parseVerdict("medium, because it is balanced")).toBeUndefined()
    expect(parseVerdict("The answer: medium")).toBeUndefined()
    expect(parseVerdict("")).toBeUndefined()
  })
})
