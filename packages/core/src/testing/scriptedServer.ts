import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { type ScriptedBatch, scriptedBatchApi, type ScriptedBatchOptions } from "./scriptedBatches.js"

/**
 * A scripted chat-completions server for tests, benchmarks and the offline demo. It speaks the
 * OpenAI API on 127.0.0.1 only, answers from a script (no model behind it), and can inject faults.
 */

export interface ScriptedReply {
  readonly content: string
  readonly reasoning?: string | undefined
  /** The field reasoning is streamed in: DeepSeek's and vLLM's `reasoning_content` (default) or `reasoning`. */
  readonly reasoningField?: "reasoning_content" | "reasoning" | undefined
  readonly finishReason?: string | undefined
  readonly promptTokens?: number | undefined
  readonly completionTokens?: number | undefined
  /** Fields added to `usage` as a server sends them (`prompt_cache_hit_tokens`, SGLang's `reasoning_tokens`). */
  readonly usageExtra?: Readonly<Record<string, unknown>> | undefined
  /** Answer with this HTTP error status instead (and `content` as the error message). */
  readonly status?: number | undefined
  /** The error body to send with `status`, as a server writes it (default `{"error": {"message": content}}`). */
  readonly errorBody?: unknown
  /**
   * Fail in the middle of a 200 stream as servers do: after `afterChars` characters of content,
   * vLLM sends `data: {"error": {...}}`, SGLang a flat `{"object": "error", ...}`; then `[DONE]`.
   */
  readonly streamError?:
    { readonly style: "vllm" | "sglang"; readonly afterChars: number; readonly message: string } | undefined
  /** Milliseconds between streamed chunks (a slow, long reply). */
  readonly chunkDelayMs?: number | undefined
  /** Send `: keep-alive` comments this often while waiting before the first chunk (vLLM and proxies do). */
  readonly keepAliveEveryMs?: number | undefined
}

export interface ScriptedRequest {
  readonly model: string
  readonly messages: ReadonlyArray<{ readonly role: string; readonly content: string }>
  readonly stream: boolean
  readonly body: Record<string, unknown>
  readonly headers: IncomingMessage["headers"]
  /** The request target: path and query string. */
  readonly url: string
  /** When the server had read it (Date.now()). */
  readonly receivedAt: number
}

export type Fault = "429" | "500" | "slow" | "drop" | "truncate"

export interface ScriptedServerOptions {
  /** The reply to a request; default: a short math-style answer echoing the question. */
  readonly script?: (request: ScriptedRequest, index: number) => ScriptedReply
  /** Milliseconds before every reply (or before the first chunk of a stream). */
  readonly latencyMs?: number
  /** Fraction of requests (0..1) that get a fault instead of a reply. */
  readonly faultRate?: number
  readonly faults?: ReadonlyArray<Fault>
  /** The first N requests get a fault whatever the rate. */
  readonly faultFirst?: number
  /** For `slow` faults: how long the server sits on the request. */
  readonly slowMs?: number
  /** Retry-After seconds sent with 429s. */
  readonly retryAfterSeconds?: number
  readonly seed?: number
  readonly port?: number
  /** Extra headers on the reply to request `index` (e.g. `x-ratelimit-*`). */
  readonly replyHeaders?: (index: number) => Readonly<Record<string, string>>
  /** Keep every request in `requests` (default true; benchmarks turn it off). */
  readonly record?: boolean
  /**
   * Benchmarks: answer every request with this text from prebuilt bytes, without parsing the
   * request (no script, faults or recording), so the server spends as little CPU as it can.
   */
  readonly constantReply?: string
  /**
   * Behave as this vLLM version (its `/version` answers it): from 0.12 `structured_outputs.choice`
   * holds a reply to its choices and `guided_choice` is ignored; before, the reverse.
   */
  readonly vllmVersion?: string
  /** A server's limit on output tokens: a request asking more is refused with a 400, as vLLM and DeepSeek refuse it. */
  readonly maxOutputTokens?: number
  /** Refuse `max_tokens` with a 400, as OpenAI's reasoning models do (they take `max_completion_tokens`). */
  readonly maxCompletionTokensOnly?: boolean
  /** Refuse `stream: false` with a 400, as DashScope does for its streaming-only models. */
  readonly streamOnly?: boolean
  /**
   * A server of limited capacity behind a gateway, read at each request (so it can change
   * mid-run): `slots` requests are served at once (each for `latencyMs`), the rest queue; beyond
   * `admit` in flight the gateway answers 429 at once, with no rate-limit headers or Retry-After.
   */
  readonly capacity?: () => { readonly slots: number; readonly admit: number }
  /** Serve the batch API too (`/v1/files`, `/v1/batches`), with these faults. */
  readonly batches?: ScriptedBatchOptions
}

export interface ScriptedServer {
  readonly url: string
  readonly baseUrl: string
  /** Every request received, faulted or not. */
  readonly requests: Array<ScriptedRequest>
  /** Requests answered in full (a 200 reply with no injected fault that reached the client): the calls paid for. */
  readonly answered: Array<ScriptedRequest>
  readonly faultsInjected: Record<Fault, number>
  /** Requests whose client closed the connection before the reply was sent (a cancelled call). */
  readonly abandoned: () => number
  /** Requests refused by the `capacity` gateway, and those it let through. */
  readonly gateway: { readonly refused: number; readonly admitted: number }
  /** Every line submitted in a batch (across restarts, with a state file): what was paid for. */
  readonly batchLog: () => ReadonlyArray<{ readonly batch: string; readonly customId: string }>
  readonly batches: () => ReadonlyArray<ScriptedBatch>
  /**
   * Time spent on requests as this server saw them, from a request's arrival to its reply's
   * last byte: how many were served and their summed milliseconds (over a span, divided by the
   * span's length: the mean number in progress). A client's view adds its own queueing to these.
   */
  readonly service: () => { readonly served: number; readonly totalMs: number }
  readonly close: () => Promise<void>
}

const defaultScript = (request: ScriptedRequest): ScriptedReply => {
  const last = request.messages[request.messages.length - 1]?.content ?? ""
  return { content: `Let me work through it.\n\nThe question was: ${last.slice(0, 80)}\n\nThe answer is \\boxed{42}.` }
}

/** A small deterministic generator, so that fault patterns repeat run to run. */
const rng = (seed: number) => {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 0x1_0000_0000
  }
}

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const parts: Array<Buffer> = []
    req.on("data", (c: Buffer) => parts.push(c))
    req.on("end", () => resolve(Buffer.concat(parts).toString("utf8")))
    req.on("error", reject)
  })

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve())

const countTokens = (text: string) => Math.max(1, Math.ceil(text.length / 4))

/** The choices a request holds its reply to, as the given vLLM version reads the request. */
const constrainedChoices = (body: Record<string, unknown>, version: string): ReadonlyArray<string> | undefined => {
  const legacy = /^0\.(\d|1[01])\./.test(version)
  const structured = (body["structured_outputs"] as { choice?: unknown } | undefined)?.choice
  const field = legacy ? body["guided_choice"] : structured
  return Array.isArray(field) && field.every((c) => typeof c === "string") && field.length > 0
    ? (field as Array<string>)
    : undefined
}

export const startScriptedServer = (options: ScriptedServerOptions = {}): Promise<ScriptedServer> => {
  const script = options.script ?? defaultScript
  const random = rng(options.seed ?? 7)
  const faults = options.faults ?? ["429", "500", "slow", "drop", "truncate"]
  const requests: Array<ScriptedRequest> = []
  const answered: Array<ScriptedRequest> = []
  const faultsInjected: Record<Fault, number> = { "429": 0, "500": 0, slow: 0, drop: 0, truncate: 0 }
  let index = 0
  const constant =
    options.constantReply === undefined
      ? undefined
      : (() => {
          const usage = { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 }
          const json = Buffer.from(
            JSON.stringify({
              id: "c",
              object: "chat.completion",
              model: "scripted",
              choices: [
                { index: 0, message: { role: "assistant", content: options.constantReply }, finish_reason: "stop" }
              ],
              usage
            })
          )
          const chunk = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`
          const sse = Buffer.from(
            chunk({
              id: "c",
              object: "chat.completion.chunk",
              model: "scripted",
              choices: [{ index: 0, delta: { content: options.constantReply }, finish_reason: null }]
            }) +
              chunk({
                id: "c",
                object: "chat.completion.chunk",
                model: "scripted",
                choices: [{ index: 0, delta: {}, finish_reason: "stop" }]
              }) +
              chunk({ id: "c", object: "chat.completion.chunk", model: "scripted", choices: [], usage }) +
              "data: [DONE]\n\n"
          )
          return { json, sse }
        })()

  /** A non-streamed chat completion for a scripted reply, as the server (and vLLM version) would send it. */
  const completionOf = (request: ScriptedRequest, reply: ScriptedReply, n: number) => {
    // Constrained decoding as the vLLM version would apply it: a reply outside the choices becomes the first choice.
    const choices =
      options.vllmVersion !== undefined ? constrainedChoices(request.body, options.vllmVersion) : undefined
    const content = choices !== undefined && !choices.includes(reply.content.trim()) ? choices[0]! : reply.content
    const promptTokens = reply.promptTokens ?? countTokens(request.messages.map((m) => m.content).join(" "))
    const completionTokens = reply.completionTokens ?? countTokens(content + (reply.reasoning ?? ""))
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      ...reply.usageExtra
    }
    const finish = reply.finishReason ?? "stop"
    const completion = {
      id: `cmpl-${n}`,
      object: "chat.completion",
      model: request.model,
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content,
            ...(reply.reasoning !== undefined ? { [reply.reasoningField ?? "reasoning_content"]: reply.reasoning } : {})
          },
          finish_reason: finish
        }
      ],
      usage
    }
    return { completion, usage, finish, content }
  }

  /** One line of a batch, answered as a non-streamed call would be: its status and body. */
  const answerLine = (body: Record<string, unknown>): { readonly status: number; readonly body: unknown } => {
    const request: ScriptedRequest = {
      model: String(body["model"] ?? "scripted"),
      messages: (body["messages"] as ScriptedRequest["messages"]) ?? [],
      stream: false,
      body,
      headers: {},
      url: "batch",
      receivedAt: Date.now()
    }
    if (options.record !== false) requests.push(request)
    const n = index++
    const reply = script(request, n)
    if (reply.status !== undefined && reply.status !== 200)
      return { status: reply.status, body: reply.errorBody ?? { error: { message: reply.content } } }
    if (options.record !== false) answered.push(request)
    return { status: 200, body: completionOf(request, reply, n).completion }
  }
  const batchApi = options.batches === undefined ? undefined : scriptedBatchApi(options.batches, answerLine)

  // The capacity gateway: requests in flight, requests waiting for a slot, slots busy.
  const gateway = { refused: 0, admitted: 0 }
  let inFlight = 0
  let busy = 0
  const slotWaiters: Array<() => void> = []
  const takeSlot = (): Promise<void> => {
    if (busy < options.capacity!().slots) {
      busy++
      return Promise.resolve()
    }
    return new Promise((resolve) => slotWaiters.push(resolve))
  }
  const freeSlot = () => {
    busy--
    while (slotWaiters.length > 0 && busy < options.capacity!().slots) {
      busy++
      slotWaiters.shift()!()
    }
  }
  const throughGateway = async (req: IncomingMessage, res: ServerResponse) => {
    if (inFlight >= options.capacity!().admit) {
      gateway.refused++
      await readBody(req)
      res.writeHead(429, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: { message: "too many requests (scripted gateway)" } }))
      return
    }
    gateway.admitted++
    inFlight++
    await takeSlot()
    try {
      await handle(req, res)
    } finally {
      inFlight--
      freeSlot()
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const pathname = (req.url ?? "").split("?")[0]!
    if (req.method === "GET" && pathname === "/version" && options.vllmVersion !== undefined) {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({ version: options.vllmVersion }))
      return
    }
    if (req.method === "GET" && pathname.endsWith("/models")) {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(
        JSON.stringify({ object: "list", data: [{ id: "scripted", object: "model", owned_by: "fastcot-scripted" }] })
      )
      return
    }
    if (batchApi !== undefined && (await batchApi.handle(req, res, pathname))) return
    if (req.method !== "POST" || !pathname.endsWith("/chat/completions")) {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: { message: "not found" } }))
      return
    }
    if (constant !== undefined) {
      const raw = await readBody(req)
      await sleep(options.latencyMs ?? 0)
      if (raw.includes('"stream":true')) {
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.end(constant.sse)
      } else {
        res.writeHead(200, { "content-type": "application/json", "content-length": constant.json.length })
        res.end(constant.json)
      }
      return
    }
    let body: Record<string, unknown>
    try {
      body = JSON.parse(await readBody(req)) as Record<string, unknown>
    } catch {
      res.writeHead(400, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: { message: "body is not JSON" } }))
      return
    }
    const request: ScriptedRequest = {
      model: String(body["model"] ?? "scripted"),
      messages: (body["messages"] as ScriptedRequest["messages"]) ?? [],
      stream: body["stream"] === true,
      body,
      headers: req.headers,
      url: req.url ?? "",
      receivedAt: Date.now()
    }
    if (options.record !== false) requests.push(request)
    const n = index++
    const refuse = (message: string) => {
      res.writeHead(400, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: { message, type: "BadRequestError", code: 400 } }))
    }
    if (options.maxCompletionTokensOnly === true && body["max_tokens"] !== undefined) {
      return refuse(
        "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
      )
    }
    const asked = Number(body["max_tokens"] ?? body["max_completion_tokens"] ?? 0)
    if (options.maxOutputTokens !== undefined && asked > options.maxOutputTokens) {
      return refuse(`Invalid max_tokens value, the valid range of max_tokens is [1, ${options.maxOutputTokens}]`)
    }
    if (options.streamOnly === true && body["stream"] !== true) {
      return refuse("This model only support stream mode, please enable the stream parameter to access the model.")
    }
    const faulty = n < (options.faultFirst ?? 0) || ((options.faultRate ?? 0) > 0 && random() < options.faultRate!)
    const fault = faulty ? faults[Math.floor(random() * faults.length)] : undefined
    if (fault !== undefined) faultsInjected[fault]++
    await sleep(options.latencyMs ?? 0)
    if (fault === "429") {
      res.writeHead(429, {
        "content-type": "application/json",
        "retry-after": String(options.retryAfterSeconds ?? 0.05)
      })
      res.end(JSON.stringify({ error: { message: "rate limited (scripted)" } }))
      return
    }
    if (fault === "500") {
      res.writeHead(500, { "content-type": "application/json" })
      res.end(JSON.stringify({ error: { message: "internal error (scripted)" } }))
      return
    }
    if (fault === "drop") {
      req.socket.destroy()
      return
    }
    if (fault === "slow") {
      await sleep(options.slowMs ?? 5_000)
      if (req.socket.destroyed) return
    }
    let reply = script(request, n)
    // Answered in full: the whole 200 reply reached the client, with no fault in it.
    res.once("finish", () => {
      if (res.statusCode === 200 && fault !== "truncate" && reply.streamError === undefined && options.record !== false)
        answered.push(request)
    })
    if (reply.status !== undefined && reply.status !== 200) {
      res.writeHead(reply.status, { "content-type": "application/json" })
      res.end(JSON.stringify(reply.errorBody ?? { error: { message: reply.content } }))
      return
    }
    const { completion, usage, finish, content } = completionOf(request, reply, n)
    const extra = options.replyHeaders?.(n) ?? {}
    if (!request.stream) {
      res.writeHead(200, { "content-type": "application/json", ...extra })
      res.end(JSON.stringify(completion))
      return
    }
    reply = { ...reply, content }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...extra })
    const send = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`)
    const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
      send({
        id: `cmpl-${n}`,
        object: "chat.completion.chunk",
        model: request.model,
        choices: [{ index: 0, delta, finish_reason: finishReason }]
      })
    if (reply.keepAliveEveryMs !== undefined) {
      // Comments, not data: a client must not take them for progress.
      for (let waited = 0; waited < (reply.chunkDelayMs ?? 0) * 4; waited += reply.keepAliveEveryMs) {
        res.write(": keep-alive\n\n")
        await sleep(reply.keepAliveEveryMs)
      }
    }
    if (reply.reasoning !== undefined)
      chunk({ role: "assistant", [reply.reasoningField ?? "reasoning_content"]: reply.reasoning })
    const pieces = reply.content.match(/[\s\S]{1,24}/g) ?? [""]
    let sent = 0
    for (let i = 0; i < pieces.length; i++) {
      if (fault === "truncate" && i >= Math.floor(pieces.length / 2)) {
        req.socket.destroy()
        return
      }
      if (reply.streamError !== undefined && sent >= reply.streamError.afterChars) {
        const e = reply.streamError
        send(
          e.style === "vllm"
            ? { error: { message: e.message, type: "InternalServerError", param: null, code: 500 } }
            : { object: "error", message: e.message, type: "InternalServerError", param: null, code: 500 }
        )
        res.end("data: [DONE]\n\n")
        return
      }
      if (reply.chunkDelayMs !== undefined) {
        await sleep(reply.chunkDelayMs)
        if (req.socket.destroyed) return
      }
      chunk({ content: pieces[i] })
      sent += pieces[i]!.length
    }
    if (fault === "truncate") {
      req.socket.destroy()
      return
    }
    chunk({}, finish)
    send({ id: `cmpl-${n}`, object: "chat.completion.chunk", model: request.model, choices: [], usage })
    res.end("data: [DONE]\n\n")
  }

  let abandoned = 0
  let served = 0
  let servedMs = 0
  const server: Server = createServer((req, res) => {
    const arrived = performance.now()
    res.once("close", () => {
      if (!res.writableFinished) abandoned++
      served++
      servedMs += performance.now() - arrived
    })
    ;(options.capacity === undefined ? handle(req, res) : throughGateway(req, res)).catch(() => {
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  server.keepAliveTimeout = 30_000
  return new Promise((resolve) => {
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      const url = `http://127.0.0.1:${port}`
      resolve({
        url,
        baseUrl: `${url}/v1`,
        requests,
        answered,
        faultsInjected,
        abandoned: () => abandoned,
        gateway,
        batchLog: () => batchApi?.log() ?? [],
        batches: () => batchApi?.batches() ?? [],
        service: () => ({ served, totalMs: servedMs }),
        close: () =>
          new Promise<void>((done) => {
            batchApi?.stop()
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })
}

/**
 * A SCRIPTED teacher, judge and rewriter for problems "What is N + N?" (no model behind them):
 * the teacher adds correctly, rewriters keep the answer and say "Rewritten", and the judge rates a
 * rewritten trace medium and any other as `judge(N, userTurn)` says.
 */
export const arithmeticScript =
  (judge: (n: number, user: string) => "easy" | "medium" | "hard") =>
  (r: Pick<ScriptedRequest, "messages">): ScriptedReply => {
    const system = r.messages[0]?.content ?? ""
    const user = r.messages[r.messages.length - 1]?.content ?? ""
    const n = Number(/What is (\d+) \+/.exec(user)?.[1] ?? 0)
    if (system.includes("highly capable evaluator"))
      return { content: /Rewritten/.test(user) ? "medium" : judge(n, user) }
    if (system.includes("extending") || system.includes("simplifying")) {
      return {
        content: `Rewritten with every step spelled out.\n\nSo the answer is \\boxed{${/Answer:\n(.*)\n/.exec(user)?.[1] ?? ""}}.`
      }
    }
    return { content: `Add ${n} and ${n}.\n\nThe answer is \\boxed{${2 * n}}.` }
  }
