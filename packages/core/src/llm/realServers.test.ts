import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { alignStage } from "../align/stages.js"
import { sampleTeacher } from "../collect/teacherSampling.js"
import { importFile } from "../import/importFile.js"
import { parsePipeline, type PipelineConfig } from "../recipe/config.js"
import { applyOverrides, buildRoles } from "../pipeline/models.js"
import { defaultPipelineText } from "../recipe/defaultPipeline.js"
import { makeItem } from "../schema/item.js"
import { Trace } from "../schema/trace.js"
import { RunStore } from "../store/RunStore.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import {
  type ScriptedReply,
  type ScriptedRequest,
  type ScriptedServer,
  startScriptedServer
} from "../testing/scriptedServer.js"
import { jsonl, tempDir } from "../test-support/fixtures.js"
import { ask, languageModelHarness } from "../test-support/languageModelHarness.js"
import { QwenTokenCounterLive } from "../tokens/TokenCounter.js"
import { BasicVerifierLive } from "../verify/Verifier.js"
import { LanguageModel, makeLanguageModel } from "./LanguageModel.js"
import { isOpenAiReasoningModel, olderThan, type OpenAiEndpointConfig, streamingOnly } from "./openai.js"

/**
 * What real servers do that the first scripted server did not (vLLM, SGLang, DeepSeek, OpenAI,
 * DashScope), reproduced by the scripted loopback server sending their formats: one test per
 * finding of the issue that found them, each failing on the code before it.
 */
describe("the LLM layer against real servers' formats (scripted loopback server)", () => {
  const { server, endpoint, withModel } = languageModelHarness({ stallTimeoutMs: 2_000 })
  const fast = { maxAttempts: 4, backoffBaseMs: 5, backoffMaxMs: 50 }
  it("an in-band vLLM error and an SGLang abort are retried and never cached as a completion", async () => {
    for (const [k, failure] of [
      { streamError: { style: "vllm" as const, afterChars: 24, message: "CUDA out of memory" } },
      { streamError: { style: "sglang" as const, afterChars: 0, message: "scheduler aborted" } },
      { finishReason: "abort" },
      { finishReason: "error" }
    ].entries()) {
      // Every other reply fails half-way; the good one must be what is returned and cached.
      const s = await server({
        script: (_r, i): ScriptedReply =>
          i % 2 === 0
            ? { content: "half a trace that was cut off mid", ...failure }
            : { content: "The whole answer: \\boxed{4}" }
      })
      const roles = { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 1 }], ...fast } }
      const first = await withModel(roles, (lm) => lm.complete("teacher", ask(`q${k}`)))
      expect(first).toMatchObject({ text: "The whole answer: \\boxed{4}", attempts: 2, cached: false })
      const again = await withModel(roles, (lm) => lm.complete("teacher", ask(`q${k}`)))
      expect(again).toMatchObject({ text: "The whole answer: \\boxed{4}", cached: true })
      // A call that only ever fails is a StreamFailed error, and nothing is cached for it.
      const broken = await server({ script: () => ({ content: "cut ".repeat(20), ...failure }) })
      const brokenRoles = { teacher: { endpoints: [{ provider: endpoint(broken), concurrency: 1 }], ...fast } }
      const exit = await withModel(brokenRoles, (lm) => Effect.either(lm.complete("teacher", ask(`broken${k}`))))
      expect(Either.isLeft(exit) && exit.left._tag).toBe("StreamFailed")
      const before = broken.requests.length
      await withModel(brokenRoles, (lm) => Effect.exit(lm.complete("teacher", ask(`broken${k}`))))
      expect(broken.requests.length).toBe(before + 4)
    }
  })

  it("reads repetition as truncated, and refuses an unknown finish reason instead of taking it as success", async () => {
    const s = await server({
      script: (r) => ({ content: "x", finishReason: r.messages[0]!.content === "rep" ? "repetition" : "weird_reason" })
    })
    const roles = { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 1 }], ...fast } }
    const rep = await withModel(roles, (lm) => lm.complete("teacher", ask("rep"), { cache: "off" }))
    expect(rep.finishReason).toBe("length")
    const weird = await withModel(roles, (lm) => Effect.either(lm.complete("teacher", ask("other"), { cache: "off" })))
    expect(Either.isLeft(weird) && weird.left).toMatchObject({ _tag: "StreamFailed", finishReason: "weird_reason" })
  })

  it("holds the judge to its choices the way each server takes it: structured_outputs on current vLLM, guided_choice before 0.12, regex on SGLang, a JSON schema on OpenAI", async () => {
    const choice = ["easy", "medium", "hard"]
    const current = await server({
      vllmVersion: "0.12.0",
      script: () => ({ content: "Well, I think it is medium-ish." })
    })
    const old = await server({ vllmVersion: "0.11.2", script: () => ({ content: "Hmm. hard, I guess" }) })
    const sglang = await server({ script: () => ({ content: "medium" }) })
    const openai = await server({ script: () => ({ content: '{"choice": "hard"}' }) })
    const judge = async (s: ScriptedServer, guidedDecoding: OpenAiEndpointConfig["guidedDecoding"]) =>
      withModel(
        { judge: { endpoints: [{ provider: endpoint(s, { guidedDecoding }), concurrency: 1 }], ...fast } },
        (lm) => lm.complete("judge", ask("judge this", { choice }), { cache: "off" })
      )
    expect((await judge(current, "vllm")).text).toBe("easy")
    expect(current.requests.at(-1)!.body).toMatchObject({ structured_outputs: { choice } })
    expect(current.requests.at(-1)!.body["guided_choice"]).toBeUndefined()
    expect((await judge(old, "vllm")).text).toBe("easy")
    expect(old.requests.at(-1)!.body).toMatchObject({ guided_choice: choice })
    expect(old.requests.at(-1)!.body["structured_outputs"]).toBeUndefined()
    expect((await judge(sglang, "sglang")).text).toBe("medium")
    expect(sglang.requests.at(-1)!.body).toMatchObject({ regex: "(easy|medium|hard)" })
    expect((await judge(openai, "openai")).text).toBe("hard")
    expect(openai.requests.at(-1)!.body).toMatchObject({
      response_format: { type: "json_schema", json_schema: { schema: { properties: { choice: { enum: choice } } } } }
    })
    expect(olderThan("0.11.2", [0, 12, 0])).toBe(true)
    expect(olderThan("0.12.0", [0, 12, 0])).toBe(false)
    expect(olderThan("1.0.0rc1", [0, 12, 0])).toBe(false)
  })

  it("says once, loudly, that a server ignored the choice it was asked to hold to", async () => {
    // A vLLM server too new for the field it was sent (vllm-legacy on 0.12): it ignores guided_choice.
    const s = await server({ vllmVersion: "0.12.0", script: () => ({ content: "I would say it is fine overall." }) })
    const warnings: Array<string> = []
    const roles = {
      judge: {
        endpoints: [
          {
            provider: endpoint(s, { guidedDecoding: "vllm-legacy", onWarning: (m) => warnings.push(m) }),
            concurrency: 1
          }
        ],
        ...fast
      }
    }
    await withModel(roles, (lm) =>
      Effect.all(
        [1, 2, 3].map((i) =>
          lm.complete("judge", ask(`judge ${i}`, { choice: ["easy", "medium", "hard"] }), { cache: "off" })
        )
      )
    )
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(
      /a reply outside the choices it was constrained to \(easy, medium, hard\).*did not apply guidedDecoding: vllm-legacy/
    )
  })

  it("sends a pipeline endpoint's extraBody and max-token field, and caps max_tokens at the endpoint's maxOutputTokens", async () => {
    const s = await server({ maxCompletionTokensOnly: true, maxOutputTokens: 8192, script: () => ({ content: "ok" }) })
    const text = `${defaultPipelineText()}`
    const parsed = Either.getOrThrow(parsePipeline(text, "default"))
    const config: PipelineConfig = {
      ...parsed,
      models: {
        teacher: {
          endpoints: [
            {
              ...parsed.models.teacher!.endpoints[0]!,
              model: `openai:thinker@${s.baseUrl}`,
              apiKeyEnv: undefined,
              extraBody: { chat_template_kwargs: { enable_thinking: false }, top_k: 20 },
              maxTokensField: "max_completion_tokens",
              maxOutputTokens: 8192
            }
          ],
          sampling: {},
          maxAttempts: 1
        }
      }
    }
    const roles = Either.getOrThrow(buildRoles(config, {}, ["teacher"]))
    const reply = await withModel(roles, (lm) => lm.complete("teacher", ask("q", { max_tokens: 16384 })))
    expect(reply.text).toBe("ok")
    expect(s.requests[0]!.body).toMatchObject({
      chat_template_kwargs: { enable_thinking: false },
      top_k: 20,
      max_completion_tokens: 8192
    })
    expect(s.requests[0]!.body["max_tokens"]).toBeUndefined()
    // The pipeline file takes the settings, and names a wrong one with its line.
    const bad = parsePipeline(
      text.replace("concurrency: 16", "concurrency: 16\n        maxTokensField: max_length"),
      "p.yaml"
    )
    expect(Either.isLeft(bad) && bad.left).toMatch(/p\.yaml:\d+: models\.teacher\.endpoints\.0\.maxTokensField/)
    expect(isOpenAiReasoningModel("api.openai.com", "o3-mini")).toBe(true)
    expect(isOpenAiReasoningModel("api.openai.com", "gpt-5")).toBe(true)
    expect(isOpenAiReasoningModel("api.openai.com", "gpt-4o")).toBe(false)
    expect(isOpenAiReasoningModel("127.0.0.1", "o3-mini")).toBe(false)
  })

  it("a stream that keeps sending tokens past the whole-request limit completes; one that sends only keep-alives is cut", async () => {
    // 40 chunks 60 ms apart: 2.4 s of streaming, past a 1 s whole-request limit, with no gap over the 500 ms stall limit.
    const content = "a".repeat(24 * 40)
    const s = await server({
      script: (r) =>
        r.messages[0]!.content === "stall"
          ? { content: "x", chunkDelayMs: 1_500, keepAliveEveryMs: 100 }
          : { content, chunkDelayMs: 60 }
    })
    const roles = {
      teacher: {
        endpoints: [
          {
            provider: endpoint(s, { timeoutMs: 1_000, stallTimeoutMs: 500, firstTokenTimeoutMs: 1_000 }),
            concurrency: 1
          }
        ],
        maxAttempts: 1
      }
    }
    const long = await withModel(roles, (lm) => lm.complete("teacher", ask("long"), { cache: "off" }))
    expect(long.text).toBe(content)
    const stalled = await withModel(roles, (lm) =>
      Effect.either(lm.complete("teacher", ask("stall"), { cache: "off" }))
    )
    expect(Either.isLeft(stalled) && stalled.left).toMatchObject({
      _tag: "Timeout",
      message: expect.stringMatching(/no first token within 1000 ms/)
    })
  })

  it("stops an endpoint whose account cannot pay at once, and carries on with another; the role's last stops the run", async () => {
    const broke = await server({
      script: () => ({
        content: "quota",
        status: 429,
        errorBody: {
          error: {
            message: "You exceeded your current quota, please check your plan and billing details.",
            type: "insufficient_quota",
            code: "insufficient_quota"
          }
        }
      })
    })
    const deepseek = await server({ script: () => ({ content: "Insufficient Balance", status: 402 }) })
    const healthy = await server({ script: () => ({ content: "fine" }) })
    const roles = {
      teacher: {
        endpoints: [
          { provider: endpoint(broke), concurrency: 1 },
          { provider: endpoint(healthy), concurrency: 1 }
        ],
        ...fast
      }
    }
    const replies = await withModel(roles, (lm) =>
      Effect.all([1, 2, 3, 4].map((i) => lm.complete("teacher", ask(`q${i}`), { cache: "off" })))
    )
    expect(replies.every((r) => r.text === "fine")).toBe(true)
    // The quota error was not retried on the broke endpoint: one request reached it.
    expect(broke.requests.length).toBe(1)
    // A role with no endpoint left: the owner is told once, with the server's message, and calls wait.
    const told: Array<string> = []
    const alone = { teacher: { endpoints: [{ provider: endpoint(deepseek), concurrency: 1 }], ...fast } }
    const waited = await withModel(
      alone,
      (lm) =>
        Effect.all([
          lm.complete("teacher", ask("a"), { cache: "off" }),
          lm.complete("teacher", ask("b"), { cache: "off" })
        ]).pipe(Effect.timeout("300 millis"), Effect.either),
      { onExhausted: (_role, message) => told.push(message) }
    )
    expect(Either.isLeft(waited)).toBe(true)
    expect(told).toHaveLength(1)
    expect(told[0]).toMatch(
      /every endpoint of the role `teacher` was stopped because its account cannot pay: .*402.*Insufficient Balance/
    )
    // Without an owner to stop the run (an evaluation), the call fails at once.
    const failed = await withModel(alone, (lm) => Effect.either(lm.complete("teacher", ask("c"), { cache: "off" })))
    expect(Either.isLeft(failed) && failed.left._tag).toBe("QuotaExhausted")
  })

  it("prices cache-hit input tokens apart, and reads SGLang's reasoning tokens and OpenAI's cached tokens", async () => {
    const s = await server({
      script: (r): ScriptedReply =>
        r.messages[0]!.content === "deepseek"
          ? {
              content: "a",
              promptTokens: 1_000_000,
              completionTokens: 1_000_000,
              usageExtra: { prompt_cache_hit_tokens: 600_000, prompt_cache_miss_tokens: 400_000 }
            }
          : {
              content: "b",
              reasoning: "thinking",
              reasoningField: "reasoning",
              promptTokens: 10,
              completionTokens: 20,
              usageExtra: { reasoning_tokens: 12, prompt_tokens_details: { cached_tokens: 4 } }
            }
    })
    const roles = {
      teacher: {
        endpoints: [{ provider: endpoint(s), concurrency: 1, price: { input: 0.56, cachedInput: 0.07, output: 1.68 } }],
        ...fast
      }
    }
    const [ds, sg] = await withModel(roles, (lm) =>
      Effect.all([
        lm.complete("teacher", ask("deepseek"), { cache: "off" }),
        lm.complete("teacher", ask("sglang"), { cache: "off" })
      ])
    )
    expect(ds!.usage.cachedPromptTokens).toBe(600_000)
    expect(ds!.costUsd).toBeCloseTo(0.4 * 0.56 + 0.6 * 0.07 + 1.68)
    expect(sg).toMatchObject({ reasoning: "thinking", usage: { reasoningTokens: 12, cachedPromptTokens: 4 } })
  })

  it("streams the models a provider serves only as a stream, whatever the endpoint says", async () => {
    const s = await server({ streamOnly: true, script: () => ({ content: "streamed" }) })
    expect(streamingOnly("dashscope.aliyuncs.com", "qwq-plus", undefined)).toBe(true)
    expect(streamingOnly("dashscope-intl.aliyuncs.com", "qwen-plus", { enable_thinking: true })).toBe(true)
    expect(streamingOnly("dashscope.aliyuncs.com", "qwen-plus", undefined)).toBe(false)
    expect(streamingOnly("127.0.0.1", "qwq-32b", undefined)).toBe(false)
    // On loopback the host rule does not apply: a non-streamed call is refused with the server's words, not retried.
    const roles = { teacher: { endpoints: [{ provider: endpoint(s, { stream: false }), concurrency: 1 }], ...fast } }
    const refused = await withModel(roles, (lm) => Effect.either(lm.complete("teacher", ask("q"), { cache: "off" })))
    expect(Either.isLeft(refused) && refused.left).toMatchObject({
      _tag: "BadRequest",
      message: expect.stringContaining("only support stream mode")
    })
    expect(s.requests).toHaveLength(1)
  })
})

describe("no item stuck or lost to a deterministic error (scripted loopback teacher, rewriter and judge)", () => {
  let tmp: ReturnType<typeof tempDir>
  let server: ScriptedServer
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(async () => {
    await server?.close()
    tmp.cleanup()
  })
  const db = () => join(tmp.dir, "fastcot.db")
  const seed = async () => {
    const file = join(tmp.dir, "p.jsonl")
    writeFileSync(file, jsonl([{ question: "What is 2+2?", answer: "4" }]))
    await Effect.runPromise(Effect.scoped(importFile(file).pipe(Effect.provide(SqliteRunStoreLive(db())))))
  }
  const teacherConfig = (
    collect: Partial<PipelineConfig["stages"]["collect"]>,
    endpointExtra: Record<string, unknown> = {}
  ) => {
    const parsed = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
    const withCollect = {
      ...parsed,
      stages: { ...parsed.stages, collect: { ...parsed.stages.collect, samplesPerProblem: 1, ...collect } }
    }
    const config = applyOverrides(withCollect, { teacher: `openai:deepseek-chat@${server.baseUrl}` })
    const teacher = config.models.teacher!
    return {
      ...config,
      models: {
        ...config.models,
        teacher: {
          ...teacher,
          sampling: { max_tokens: 4096 },
          endpoints: [{ ...teacher.endpoints[0]!, ...endpointExtra }]
        }
      }
    }
  }
  const sample = (config: PipelineConfig) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const roles = Either.getOrThrow(buildRoles(config, {}, ["teacher"]))
          const lm = yield* makeLanguageModel({ teacher: { ...roles["teacher"]!, maxAttempts: 2, backoffBaseMs: 5 } })
          const report = yield* sampleTeacher(config, { concurrency: 2 }).pipe(
            Effect.provide(Layer.succeed(LanguageModel, lm))
          )
          const store = yield* RunStore
          return { report, status: yield* store.status, items: yield* store.listItems({ limit: 10 }) }
        }).pipe(Effect.provide(SqliteRunStoreLive(db())))
      )
    )
  // A teacher that always runs out of room, behind a server that refuses more than 8192 tokens (deepseek-chat).
  const alwaysLong = (r: ScriptedRequest): ScriptedReply => ({
    content: `still going at ${String(r.body["max_tokens"])}`,
    finishReason: "length"
  })

  it("truncation: extend stops at the endpoint's maxOutputTokens, instead of asking past it", async () => {
    server = await startScriptedServer({ maxOutputTokens: 8192, script: alwaysLong })
    await seed()
    const { items } = await sample(teacherConfig({ truncation: "extend" }, { maxOutputTokens: 8192 }))
    expect(server.requests.map((r) => r.body["max_tokens"])).toEqual([4096, 8192])
    expect(items[0]).toMatchObject({ fate: "dropped", reason: { code: "truncated" } })
  })

  it("a 400 that will repeat ends the item as failed with its paid replies kept, and a rerun does not send it again", async () => {
    server = await startScriptedServer({ maxOutputTokens: 8192, script: alwaysLong })
    await seed()
    const config = teacherConfig({ truncation: "extend" })
    const first = await sample(config)
    // 4096 and 8192 were answered (and paid for); 16384 was refused, not retried.
    expect(server.requests.map((r) => r.body["max_tokens"])).toEqual([4096, 8192, 16384])
    const item = first.items[0]!
    expect(item).toMatchObject({
      fate: "failed",
      reason: { code: "request-refused", detail: expect.stringContaining("valid range of max_tokens is [1, 8192]") }
    })
    expect(item.rounds[0]!.calls.map((c) => c.completionTokens > 0)).toEqual([true, true])
    expect(first.status).toMatchObject({ failed: 1, failReasons: { "request-refused": 1 } })
    // The rerun asks again: the two paid replies come from the cache, and the refused request is not sent.
    const second = await sample(config)
    expect(server.requests).toHaveLength(3)
    expect(second.items[0]).toMatchObject({ fate: "failed", reason: { code: "request-refused" } })
    // With the settings changed (the endpoint's limit known), the item goes on.
    await sample(teacherConfig({ truncation: "extend" }, { maxOutputTokens: 8192 }))
    expect(server.requests).toHaveLength(3)
  })

  it("an alignment 400 ends the item as failed with the reason and the rounds so far, visible in status; a rerun tries it again", async () => {
    let refuse = true
    server = await startScriptedServer({
      script: (r) => {
        const system = r.messages[0]!.content
        if (system.includes("highly capable evaluator")) return { content: "hard" }
        return refuse
          ? {
              content: "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens.",
              status: 400
            }
          : { content: "Short. \\boxed{4}" }
      }
    })
    await seed()
    const parsed = Either.getOrThrow(parsePipeline(defaultPipelineText(), "default"))
    const spec = `openai:scripted@${server.baseUrl}`
    const config = applyOverrides(parsed, { rewriter: spec, judge: spec })
    const align = (config: PipelineConfig) =>
      Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const store = yield* RunStore
            const problem = (yield* store.listProblems({ limit: 1 }))[0]!
            const now = new Date().toISOString()
            yield* store.addItems([
              makeItem({
                id: "i_00000000000000aa" as never,
                problemId: problem.id,
                stage: "align",
                fate: "pending",
                trace: new Trace({ reasoning: "Two and two. \\boxed{4}", origin: "imported" }),
                rounds: [],
                createdAt: now,
                updatedAt: now
              })
            ])
            const roles = Either.getOrThrow(buildRoles(config, {}, ["rewriter", "judge"]))
            const lm = yield* makeLanguageModel({
              rewriter: { ...roles["rewriter"]!, maxAttempts: 2, backoffBaseMs: 5 },
              judge: { ...roles["judge"]!, maxAttempts: 2, backoffBaseMs: 5 }
            })
            const report = yield* alignStage(config, { concurrency: 1 }).pipe(
              Effect.provide(Layer.mergeAll(Layer.succeed(LanguageModel, lm), BasicVerifierLive, QwenTokenCounterLive))
            )
            return { report, status: yield* store.status, item: (yield* store.listItems({ limit: 1 }))[0]! }
          }).pipe(Effect.provide(SqliteRunStoreLive(db())))
        )
      )
    const first = await align(config)
    expect(first.report.failed).toBe(1)
    expect(first.item).toMatchObject({
      fate: "failed",
      stage: "align",
      reason: { code: "request-refused", detail: expect.stringContaining("maximum context length") }
    })
    expect(first.item.rounds.map((r) => r.action)).toEqual(["judge"])
    expect(first.status).toMatchObject({ failed: 1, pending: 0, failReasons: { "request-refused": 1 } })
    // A rerun takes the failed item up again, but does not send the request the server refused: nothing changed.
    refuse = false
    const sent = server.requests.length
    const second = await align(config)
    expect(server.requests.length).toBe(sent)
    expect(second.item).toMatchObject({
      fate: "failed",
      reason: {
        code: "request-refused",
        detail: expect.stringContaining("not sent again while the request is the same")
      }
    })
    // With the settings changed (a smaller max_tokens for the rewriter), the request is new: it is sent and the item goes on.
    const rewriter = config.models.rewriter!
    const third = await align({
      ...config,
      models: { ...config.models, rewriter: { ...rewriter, sampling: { ...rewriter.sampling, max_tokens: 2048 } } }
    })
    expect(server.requests.length).toBeGreaterThan(sent)
    expect(third.item.fate).not.toBe("failed")
    expect(third.status.failed).toBe(0)
  })
})
