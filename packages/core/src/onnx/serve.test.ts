import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeLanguageModel } from "../llm/LanguageModel.js"
import { openAiProvider } from "../llm/openai.js"
import { ChatRequest } from "../llm/schema.js"
import { SqliteRunStoreLive } from "../store/SqliteRunStore.js"
import { LocalEngine } from "./engine.js"
import { DType, GraphBuilder } from "./graph.js"
import { inspectModel } from "./inspect.js"
import { LocalModel } from "./localModel.js"
import { buildQwen2Model } from "./qwen2Builder.js"
import { type LocalServer, serveLocalModel } from "./serve.js"
import { fullLogits } from "../test-support/onnxRuns.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "fastcot-serve-"))
const dir = path.join(tmp, "tiny")
let scope: Scope.CloseableScope
let server: LocalServer
let model: LocalModel

/** What the server logged (serve prints these lines to stderr). */
const log: Array<string> = []

beforeAll(async () => {
  buildQwen2Model({ dir, variants: ["fp32", "q4"], seed: 5 })
  scope = Effect.runSync(Scope.make())
  model = await Effect.runPromise(Scope.extend(LocalModel.scoped(dir, { threads: 1 }), scope))
  server = await Effect.runPromise(
    Scope.extend(
      serveLocalModel({
        engine: new LocalEngine(model, 4),
        modelName: "tiny-qwen",
        onRequest: (line) => log.push(line)
      }),
      scope
    )
  )
})
afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe("fastcot serve: a local model behind an OpenAI-compatible API", () => {
  it("binds to loopback and answers the official OpenAI client, plain and streaming", async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)
    const client = new OpenAI({ baseURL: server.url, apiKey: "unused" })
    const models = await client.models.list()
    expect(models.data.map((m) => m.id)).toEqual(["tiny-qwen"])
    const reply = await client.chat.completions.create({
      model: "tiny-qwen",
      messages: [{ role: "user", content: "What is 2+2?" }],
      max_tokens: 7,
      temperature: 0
    })
    expect(reply.choices[0]!.finish_reason).toBe("length")
    expect(reply.usage!.completion_tokens).toBe(7)
    // the same greedy answer as the model gives directly
    const direct = await model.generate([
      {
        promptIds: model.tokenizer.encode(
          model.tokenizer.applyChatTemplate([{ role: "user", content: "What is 2+2?" }])
        ),
        maxNewTokens: 7,
        sampling: { temperature: 0, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1.05, seed: 0 }
      }
    ])
    expect(reply.choices[0]!.message.content).toBe(direct[0]!.text)
    const stream = await client.chat.completions.create({
      model: "tiny-qwen",
      messages: [{ role: "user", content: "What is 2+2?" }],
      max_tokens: 7,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true }
    })
    let text = ""
    let finish: string | null = null
    let usage = 0
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ""
      finish = chunk.choices[0]?.finish_reason ?? finish
      usage = chunk.usage?.completion_tokens ?? usage
    }
    expect(text).toBe(reply.choices[0]!.message.content)
    expect(finish).toBe("length")
    expect(usage).toBe(7)
  })

  it("answers /v1/completions with a text or token-id prompt, and log-probabilities that are the model's own", async () => {
    const client = new OpenAI({ baseURL: server.url, apiKey: "unused" })
    const ids = model.tokenizer.encode("What is 2+2?")
    const ask = (prompt: string | Array<number>) =>
      client.completions.create({ model: "tiny-qwen", prompt, max_tokens: 6, temperature: 0, logprobs: 3 })
    const [byText, byIds] = await Promise.all([ask("What is 2+2?"), ask(ids)])
    expect(byIds.object).toBe("text_completion")
    expect(byIds.choices[0]!.text).toBe(byText.choices[0]!.text)
    const lp = byIds.choices[0]!.logprobs!
    expect(lp.token_logprobs).toHaveLength(byIds.usage!.completion_tokens)
    expect(lp.tokens!.join("")).toContain(byIds.choices[0]!.text)
    // Keyed by token text, as vLLM's completions format is: tokens that print alike share a key.
    for (const top of lp.top_logprobs!) expect(Object.keys(top!).length).toBeGreaterThanOrEqual(1)
    // The first step's top three, against a forward pass of the file's own graph over the prompt.
    const raw = await Effect.runPromise(LocalModel.load(dir, { threads: 1, graph: "as-exported" }))
    const logits = await fullLogits(raw, ids)
    await raw.release()
    const V = logits.length / ids.length
    const last = Array.from(logits.subarray(logits.length - V))
    const max = Math.max(...last)
    const lse = max + Math.log(last.reduce((a, v) => a + Math.exp(v - max), 0))
    const expected = last
      .map((v) => v - lse)
      .sort((a, b) => b - a)
      .slice(0, 3)
    for (const v of Object.values(lp.top_logprobs![0]!))
      expect(Math.min(...expected.map((e) => Math.abs(e - v)))).toBeLessThan(1e-4)
    expect(Math.max(...Object.values(lp.top_logprobs![0]!))).toBeCloseTo(expected[0]!, 4)
    expect(lp.token_logprobs![0]!).toBeLessThanOrEqual(expected[0]! + 1e-4)

    const chat = await client.chat.completions.create({
      model: "tiny-qwen",
      messages: [{ role: "user", content: "What is 2+2?" }],
      max_tokens: 4,
      temperature: 0,
      logprobs: true,
      top_logprobs: 2
    })
    const content = chat.choices[0]!.logprobs!.content!
    expect(content).toHaveLength(chat.usage!.completion_tokens)
    for (const c of content) {
      expect(c.top_logprobs).toHaveLength(2)
      expect(c.logprob).toBeLessThanOrEqual(0)
      expect(Buffer.from(c.bytes!).toString("utf8")).toBe(c.token)
    }
    // Nothing to generate is asked only with echo.
    const bare = await fetch(`${server.url}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "x", max_tokens: 0 })
    })
    expect(bare.status).toBe(400)
    expect(await bare.text()).toContain("echo")
  })

  it("scores a prompt by log-likelihood (echo): each prompt token's log-probability is the model's at its position", async () => {
    const client = new OpenAI({ baseURL: server.url, apiKey: "unused" })
    const texts = ["What is 2+2? It is four.", "Name a prime: 7", "x"]
    const prompts = texts.map((t) => model.tokenizer.encode(t))
    const raw = await Effect.runPromise(LocalModel.load(dir, { threads: 1, graph: "as-exported" }))
    try {
      // Three at once: the engine batches them, left-padded, and runs their prompts a position at a time.
      const scored = await Promise.all(
        prompts.map((prompt) =>
          client.completions.create({ model: "tiny-qwen", prompt, max_tokens: 0, echo: true, logprobs: 2 })
        )
      )
      for (const [k, ids] of prompts.entries()) {
        const choice = scored[k]!.choices[0]!
        expect(choice.text).toBe(model.tokenizer.decode(ids, false))
        expect(scored[k]!.usage!.completion_tokens).toBe(0)
        const lp = choice.logprobs!
        expect(lp.token_logprobs).toHaveLength(ids.length)
        expect(lp.token_logprobs![0]).toBeNull()
        expect(lp.top_logprobs![0]).toBeNull()
        const logits = await fullLogits(raw, ids)
        const V = logits.length / ids.length
        for (let i = 1; i < ids.length; i++) {
          const row = Array.from(logits.subarray((i - 1) * V, i * V))
          const max = Math.max(...row)
          const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0))
          expect(Math.abs(lp.token_logprobs![i]! - (row[ids[i]!]! - lse))).toBeLessThan(1e-4)
          const best = Math.max(...row) - lse
          expect(Math.max(...Object.values(lp.top_logprobs![i]!))).toBeCloseTo(best, 4)
        }
      }
      // Echo with a completion: the prompt's tokens, then the same completion as without echo.
      const ids = prompts[0]!
      const [plain, echoed] = await Promise.all([
        client.completions.create({ model: "tiny-qwen", prompt: ids, max_tokens: 4, temperature: 0, logprobs: 1 }),
        client.completions.create({
          model: "tiny-qwen",
          prompt: ids,
          max_tokens: 4,
          temperature: 0,
          logprobs: 1,
          echo: true
        })
      ])
      expect(echoed.choices[0]!.text).toBe(texts[0] + plain.choices[0]!.text)
      const both = echoed.choices[0]!.logprobs!.token_logprobs!
      expect(both).toHaveLength(ids.length + plain.usage!.completion_tokens)
      const generated = both.slice(ids.length)
      for (const [i, v] of plain.choices[0]!.logprobs!.token_logprobs!.entries())
        expect(Math.abs(generated[i]! - v!)).toBeLessThan(1e-4)
      // Echo without log-probabilities: the text only.
      const textOnly = await client.completions.create({
        model: "tiny-qwen",
        prompt: texts[1]!,
        max_tokens: 0,
        echo: true
      })
      expect(textOnly.choices[0]!.text).toBe(texts[1])
      expect(textOnly.choices[0]!.logprobs).toBeNull()
    } finally {
      await raw.release()
    }
  })

  it("with a token, answers only requests that carry it as the API key (constant-time compared); /health stays open", async () => {
    const tokenScope = Effect.runSync(Scope.make())
    try {
      const guarded = await Effect.runPromise(
        Scope.extend(
          serveLocalModel({
            engine: new LocalEngine(model, 1),
            modelName: "tiny-qwen",
            token: "sekret-token-0123456789"
          }),
          tokenScope
        )
      )
      const wrong = new OpenAI({ baseURL: guarded.url, apiKey: "not-it", maxRetries: 0 })
      await expect(wrong.models.list()).rejects.toMatchObject({ status: 401 })
      const bare = await fetch(`${guarded.url}/chat/completions`, { method: "POST", body: "{}" })
      expect(bare.status).toBe(401)
      expect((await fetch(guarded.url.replace(/\/v1$/, "/health"))).status).toBe(200)
      const right = new OpenAI({ baseURL: guarded.url, apiKey: "sekret-token-0123456789" })
      expect((await right.models.list()).data.map((m) => m.id)).toEqual(["tiny-qwen"])
    } finally {
      await Effect.runPromise(Scope.close(tokenScope, Exit.void))
    }
  })

  it("rejects bad requests with a 400 that names the field, and unknown routes with 404", async () => {
    const from = log.length
    const bad = await fetch(`${server.url}/chat/completions`, {
      method: "POST",
      body: JSON.stringify({ messages: [{ role: "user", content: 5 }] })
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain("content")
    expect((await fetch(`${server.url}/embeddings`, { method: "POST", body: "{}" })).status).toBe(404)
    expect((await fetch(`${server.url}/completions`, { method: "POST", body: "{}" })).status).toBe(400)
    expect((await fetch(`${server.url}/chat/completions`, { method: "POST", body: "{not json" })).status).toBe(400)
    // The server's log shows each refusal and why.
    expect(log.slice(from).filter((l) => / (400|404) /.test(l))).toEqual([
      expect.stringMatching(/^POST \/v1\/chat\/completions 400 .*content/),
      "POST /v1/embeddings 404 no route POST /v1/embeddings",
      expect.stringMatching(/^POST \/v1\/completions 400 .*prompt/),
      expect.stringMatching(/^POST \/v1\/chat\/completions 400 the body is not JSON/)
    ])
  })

  it("serves fastcot's own provider through the LanguageModel service, with guided choice", async () => {
    const provider = openAiProvider({ baseUrl: server.url, model: "tiny-qwen", stream: true, guidedDecoding: "vllm" })
    const replies = await Effect.runPromise(
      makeLanguageModel({ judge: { endpoints: [{ provider, concurrency: 4 }] } }).pipe(
        Effect.flatMap((lm) =>
          Effect.forEach(
            [1, 2, 3, 4, 5, 6],
            (seed) =>
              lm.complete(
                "judge",
                new ChatRequest({
                  messages: [{ role: "user", content: `Rate ${seed}` }],
                  temperature: 1,
                  seed,
                  max_tokens: 5,
                  choice: ["easy", "medium", "hard"]
                })
              ),
            { concurrency: 6 }
          )
        ),
        Effect.scoped,
        Effect.provide(SqliteRunStoreLive(path.join(tmp, "fastcot.db")))
      )
    )
    for (const r of replies) expect(["easy", "medium", "hard"]).toContain(r.text)
  })

  it("inspect reports the folder and checks each graph", async () => {
    const r = await Effect.runPromise(inspectModel(dir, { graphs: true }))
    expect(r.architecture).toBe("Qwen2ForCausalLM")
    expect(r.variants.map((v) => [v.name, v.graph?.runnable])).toEqual([
      ["fp32", true],
      ["q4", true]
    ])
    expect(r.chatTemplate).toBe(true)
    expect(r.missing).toEqual([])
    // A graph without a KV cache, and a file that is not ONNX: each says why it cannot run.
    const g = new GraphBuilder()
    g.node("Identity", [g.op("Cast", ["input_ids"], { to: DType.float })], {}, { outputs: ["logits"] })
    const noCache = g.model({
      inputs: [
        { name: "input_ids", type: DType.int64, dims: ["b", "s"] },
        { name: "attention_mask", type: DType.int64, dims: ["b", "t"] }
      ],
      outputs: [{ name: "logits", type: DType.float, dims: ["b", "s"] }],
      name: "nocache",
      producer: "test",
      opset: 17
    })
    fs.writeFileSync(path.join(dir, "onnx", "model_fp16.onnx"), noCache)
    fs.writeFileSync(path.join(dir, "onnx", "model_int8.onnx"), "not a model")
    const broken = await Effect.runPromise(inspectModel(dir, { graphs: true }))
    const verdict = (name: string) => broken.variants.find((v) => v.name === name)?.graph
    expect(verdict("fp16")).toMatchObject({
      runnable: false,
      message: expect.stringContaining("no `past_key_values.N.key/value` inputs")
    })
    expect(verdict("int8")).toMatchObject({
      runnable: false,
      message: expect.stringMatching(/^cannot load: not a readable ONNX model \(truncated or corrupt\?\)/)
    })
    expect(verdict("q4")?.runnable).toBe(true)
    fs.rmSync(path.join(dir, "onnx", "model_fp16.onnx"))
    fs.rmSync(path.join(dir, "onnx", "model_int8.onnx"))
    fs.rmSync(path.join(dir, "generation_config.json"))
    const again = await Effect.runPromise(inspectModel(dir))
    expect(again.missing).toEqual(["generation_config.json"])
  })
})
