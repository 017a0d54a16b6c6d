import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { StringDecoder } from "node:string_decoder"
import { createRequire } from "node:module"
import type { Dispatcher } from "undici"
import { splitThink } from "../util/latex.js"
import { isLoopbackHost } from "../util/net.js"
import {
  BadRequest,
  BadResponse,
  Cancelled,
  ConnectionError,
  isLlmError,
  type LlmError,
  QuotaExhausted,
  RateLimited,
  redactSecrets,
  redactUrl,
  ServerError,
  StreamFailed,
  Timeout
} from "./errors.js"
import type { BatchWire, ModelProvider, ProviderResult, RateLimitState } from "./provider.js"
import {
  type ChatRequest,
  type FinishReason,
  finishReason,
  isPlainWireChunk,
  isPlainWireCompletion,
  WireChunk,
  WireCompletion
} from "./schema.js"

/**
 * How a reply is held to a set of choices (the judge's easy / medium / hard): vLLM's
 * `structured_outputs.choice` (vLLM 0.12 and later; older servers are told apart by their
 * `/version`), the `guided_choice` field of earlier vLLM (`vllm-legacy`), SGLang's `regex`,
 * OpenAI's JSON-schema response format, or not at all.
 */
export type GuidedDecoding = "vllm" | "vllm-legacy" | "sglang" | "openai" | "none"

export interface OpenAiEndpointConfig {
  /** e.g. `http://127.0.0.1:8000/v1`; `/chat/completions` is appended. */
  readonly baseUrl: string
  readonly model: string
  /** Read from the environment by the caller; never stored. */
  readonly apiKey?: string | undefined
  /** Stream replies (default). Providers that only stream some models (DashScope's QwQ, thinking modes) stream whatever this says. */
  readonly stream?: boolean | undefined
  /** Non-streamed calls: the whole request (default 600 s). Streams are held by the two limits below instead. */
  readonly timeoutMs?: number | undefined
  /** Streams: the first token must arrive within this (default 300 s: a long prompt's prefill on a busy server). */
  readonly firstTokenTimeoutMs?: number | undefined
  /** Streams: a stream that sends no token for this long is cut and retried (keep-alive comments do not count; default 60 s). */
  readonly stallTimeoutMs?: number | undefined
  readonly guidedDecoding?: GuidedDecoding | undefined
  /** Extra fields merged into every request body (a server's own parameters), last: they win. */
  readonly extraBody?: Readonly<Record<string, unknown>> | undefined
  /** The field the reply length is sent in; default `max_completion_tokens` for OpenAI's reasoning models (o1, o3, o4, gpt-5), else `max_tokens`. */
  readonly maxTokensField?: "max_tokens" | "max_completion_tokens" | undefined
  /** The most output tokens the endpoint allows: a request asking more is sent with this. */
  readonly maxOutputTokens?: number | undefined
  /** Told once per endpoint about what the endpoint does not do as configured (e.g. a choice it ignored). */
  readonly onWarning?: ((message: string) => void) | undefined
}

const decodeCompletion = Schema.decodeUnknownEither(WireCompletion)
const decodeChunk = Schema.decodeUnknownEither(WireChunk)

/** `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, in milliseconds. */
export const retryAfterMs = (header: (name: string) => string | undefined): number | undefined => {
  const ms = header("retry-after-ms")
  if (ms !== undefined && Number.isFinite(Number(ms))) return Math.max(0, Number(ms))
  const value = header("retry-after")
  if (value === undefined) return undefined
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.max(0, Number(value) * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/** A rate-limit reset as servers write it: `1s`, `6m0s`, `59.5ms`, `1h2m3s`, or plain seconds. */
export const durationMs = (text: string): number | undefined => {
  const t = text.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== t) return undefined
  return parts.reduce(
    (n, [, v, unit]) => n + Number(v) * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000),
    0
  )
}

/**
 * The `x-ratelimit-*` headers (OpenAI's names, which other APIs copy): requests and tokens left in
 * the window and when it resets. One pass over the raw headers, and only when one starts with
 * `x-ratelimit-`: most replies carry none, and this runs on every call.
 */
export const rateLimitOf = (rawHeaders: ReadonlyArray<Buffer | string>): RateLimitState | undefined => {
  let state: { -readonly [K in keyof RateLimitState]: RateLimitState[K] } | undefined
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const raw = rawHeaders[i]!
    if (raw.length < 20 || (raw[0] !== 120 && raw[0] !== 88 && raw[0] !== "x" && raw[0] !== "X")) continue
    const name = String(raw).toLowerCase()
    if (!name.startsWith("x-ratelimit-")) continue
    const value = String(rawHeaders[i + 1])
    const number = Number(value)
    state ??= {}
    if (name === "x-ratelimit-remaining-requests" && Number.isFinite(number)) state.remainingRequests = number
    else if (name === "x-ratelimit-remaining-tokens" && Number.isFinite(number)) state.remainingTokens = number
    else if (name === "x-ratelimit-reset-requests") state.resetRequestsMs = durationMs(value)
    else if (name === "x-ratelimit-reset-tokens") state.resetTokensMs = durationMs(value)
  }
  return state
}

// undici is loaded when the first endpoint is made: it compiles its HTTP parser as it loads, which
// commands that never talk to a server (status, export, inspect) need not wait for.
let undiciModule: typeof import("undici") | undefined
const undici = (): typeof import("undici") =>
  (undiciModule ??= createRequire(import.meta.url)("undici") as typeof import("undici"))

/** A result with the server's rate-limit state, when its headers gave one (a new object only then). */
const withRateLimit = (
  result: ProviderResult,
  ex: { readonly rawHeaders: ReadonlyArray<Buffer | string> }
): ProviderResult => {
  const rateLimit = rateLimitOf(ex.rawHeaders)
  return rateLimit === undefined ? result : { ...result, rateLimit }
}

/** Deadlines checked by one unref'd interval, instead of a timer per request; an entry's time may move. */
interface Deadline {
  at: number
  why: Why
  readonly fire: (why: Why) => void
}
const deadlines = new Set<Deadline>()
let sweeper: NodeJS.Timeout | undefined
const watchDeadline = (at: number, why: Why, fire: (why: Why) => void) => {
  const entry: Deadline = { at, why, fire }
  deadlines.add(entry)
  if (sweeper === undefined) {
    sweeper = setInterval(() => {
      const now = Date.now()
      for (const d of deadlines) {
        if (d.at > now) continue
        deadlines.delete(d)
        d.fire(d.why)
      }
      if (deadlines.size === 0) {
        clearInterval(sweeper)
        sweeper = undefined
      }
    }, 100)
    sweeper.unref()
  }
  return { entry, done: () => deadlines.delete(entry) }
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Splits a leading `<think>` block from the content when the server did not separate it. */
const separateReasoning = (content: string, reasoning: string | undefined): { text: string; reasoning?: string } => {
  if (reasoning !== undefined && reasoning !== "") return { text: content, reasoning }
  if (content.includes("</think>")) {
    const split = splitThink(content)
    return split.think !== undefined ? { text: split.rest, reasoning: split.think } : { text: content }
  }
  return { text: content }
}

/** The usage a reply reports (a stream reports it in one chunk; zeros when it reports none). */
const usageOf = (u: (typeof WireCompletion.Type)["usage"]): ProviderResult["usage"] => {
  const cached = u?.prompt_tokens_details?.cached_tokens ?? u?.prompt_cache_hit_tokens ?? undefined
  return {
    promptTokens: u?.prompt_tokens ?? 0,
    completionTokens: u?.completion_tokens ?? 0,
    reasoningTokens: u?.completion_tokens_details?.reasoning_tokens ?? u?.reasoning_tokens ?? undefined,
    ...(cached !== undefined && cached > 0 ? { cachedPromptTokens: cached } : {})
  }
}

/** An error object a server sent inside a reply: vLLM's `{"error": {...}}`, SGLang's flat `{"object": "error", ...}`. */
const inBandError = (parsed: unknown): string | undefined => {
  if (typeof parsed !== "object" || parsed === null) return undefined
  const o = parsed as Record<string, unknown>
  if (o["error"] !== undefined && o["error"] !== null) {
    const e = o["error"]
    if (typeof e === "string") return e
    if (typeof e === "object") {
      const m = (e as Record<string, unknown>)["message"]
      return typeof m === "string" ? m : JSON.stringify(e).slice(0, 300)
    }
  }
  if (o["object"] === "error") return typeof o["message"] === "string" ? o["message"] : JSON.stringify(o).slice(0, 300)
  return undefined
}

/** What one SSE stream has said so far. */
class SseAccumulator {
  private readonly decoder = new StringDecoder("utf8")
  private buffer = ""
  content = ""
  reasoning = ""
  finish: string | undefined = undefined
  done = false
  model: string
  usage: ProviderResult["usage"] = { promptTokens: 0, completionTokens: 0 }
  /** When a token last arrived (keep-alive comments and empty chunks do not count). */
  lastTokenAt: number | undefined = undefined
  constructor(
    model: string,
    private readonly endpoint: string,
    private readonly onToken: () => void = () => {}
  ) {
    this.model = model
  }
  /** Consumes a chunk of bytes; throws BadResponse on an event that is not a chat-completion chunk. */
  push(bytes: Buffer): void {
    this.buffer += this.decoder.write(bytes)
    if (this.buffer.includes("\r")) this.buffer = this.buffer.replace(/\r\n?/g, "\n")
    let sep: number
    while ((sep = this.buffer.indexOf("\n\n")) >= 0) {
      const event = this.buffer.slice(0, sep)
      this.buffer = this.buffer.slice(sep + 2)
      for (const line of event.split("\n")) if (line.startsWith("data:")) this.data(line.slice(5).trim())
    }
  }
  private data(data: string): void {
    if (data === "[DONE]") {
      this.done = true
      return
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(data)
    } catch {
      throw new BadResponse({ endpoint: this.endpoint, message: "a streamed chunk is not JSON" })
    }
    // vLLM and SGLang report a failure during generation inside the stream, then send [DONE].
    const error = inBandError(parsed)
    if (error !== undefined)
      throw new StreamFailed({
        endpoint: this.endpoint,
        message: `the server reported an error in the stream: ${error.slice(0, 300)}`
      })
    const c = isPlainWireChunk(parsed)
      ? parsed
      : decodeChunk(parsed).pipe(
          Either.getOrThrowWith(
            () =>
              new BadResponse({ endpoint: this.endpoint, message: "a streamed chunk is not a chat-completion chunk" })
          )
        )
    if (c.model !== undefined) this.model = c.model
    for (const choice of c.choices ?? []) {
      const content = choice.delta?.content ?? ""
      const reasoning = choice.delta?.reasoning_content ?? choice.delta?.reasoning ?? ""
      this.content += content
      this.reasoning += reasoning
      if (content !== "" || reasoning !== "") this.onToken()
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) this.finish = choice.finish_reason
    }
    if (c.usage !== undefined && c.usage !== null) this.usage = usageOf(c.usage)
  }
}

type Why = "cancel" | "timeout" | "stall" | "first-token"

const envValue = (name: string): string | undefined => {
  const v = process.env[name.toLowerCase()] ?? process.env[name.toUpperCase()]
  return v === undefined || v.trim() === "" ? undefined : v.trim()
}

/**
 * The proxy an endpoint's calls go through, read from the environment as curl reads it
 * (HTTPS_PROXY or HTTP_PROXY by scheme; NO_PROXY's hosts, `.domains`, `host:port` and `*`),
 * except that a loopback endpoint is always reached directly.
 */
export const proxyFor = (endpoint: URL): URL | undefined => {
  const host = endpoint.hostname.toLowerCase()
  if (isLoopbackHost(host)) return undefined
  const raw =
    endpoint.protocol === "https:" ? (envValue("https_proxy") ?? envValue("http_proxy")) : envValue("http_proxy")
  if (raw === undefined) return undefined
  const port = endpoint.port !== "" ? endpoint.port : endpoint.protocol === "https:" ? "443" : "80"
  for (const entry of (envValue("no_proxy") ?? "").split(/[\s,]+/).filter((e) => e !== "")) {
    if (entry === "*") return undefined
    const [name, entryPort] = entry.replace(/^\*?\./, ".").split(":") as [string, string | undefined]
    if (entryPort !== undefined && entryPort !== port) continue
    const bare = name.replace(/^\./, "").toLowerCase()
    if (host === bare || host.endsWith(`.${bare}`)) return undefined
  }
  try {
    return new URL(raw.includes("://") ? raw : `http://${raw}`)
  } catch {
    return undefined
  }
}

/**
 * One request/response exchange as an undici dispatch handler: the body is gathered (or, for a
 * 2xx stream, parsed as it arrives) without a Readable stream, an AbortController or an event
 * target in between; `cancel` aborts it whether or not it has reached a socket yet.
 */
class Exchange implements Dispatcher.DispatchHandler {
  status = 0
  rawHeaders: Array<Buffer | string> = []
  readonly chunks: Array<Buffer> = []
  why: Why | undefined = undefined
  private abortFn: ((err: Error) => void) | undefined = undefined
  private settled = false
  constructor(
    readonly sse: SseAccumulator | undefined,
    private readonly settle: (outcome: { readonly error?: unknown }) => void
  ) {}
  cancel(why: Why): void {
    if (this.settled) return
    this.why ??= why
    const reason = Object.assign(new Error(`request ${why}`), { code: "FASTCOT_ABORTED" })
    if (this.abortFn !== undefined) this.abortFn(reason)
    else this.finish({ error: reason })
  }
  onConnect(abort: (err?: Error) => void): void {
    if (this.settled) abort(Object.assign(new Error("request cancel"), { code: "FASTCOT_ABORTED" }))
    else this.abortFn = abort
  }
  onHeaders(status: number, rawHeaders: Array<Buffer>): boolean {
    this.status = status
    this.rawHeaders = rawHeaders
    return true
  }
  onData(chunk: Buffer): boolean {
    // A 2xx stream is parsed as it arrives (a bad chunk throws, which undici turns into onError).
    if (this.sse !== undefined && this.status >= 200 && this.status < 300) this.sse.push(chunk)
    else this.chunks.push(chunk)
    return true
  }
  onComplete(): void {
    this.finish({})
  }
  onError(error: Error): void {
    this.finish({ error })
  }
  header(name: string): string | undefined {
    for (let i = 0; i + 1 < this.rawHeaders.length; i += 2) {
      if (String(this.rawHeaders[i]).toLowerCase() === name) return String(this.rawHeaders[i + 1])
    }
    return undefined
  }
  text(): string {
    return this.chunks.length === 1 ? this.chunks[0]!.toString("utf8") : Buffer.concat(this.chunks).toString("utf8")
  }
  private finish(outcome: { readonly error?: unknown }): void {
    if (this.settled) return
    this.settled = true
    this.settle(outcome)
  }
}

/**
 * A provider for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama, llama.cpp
 * server, DashScope, DeepSeek, OpenAI). Streaming or not; interruption aborts the HTTP request.
 */
export const openAiProvider = (config: OpenAiEndpointConfig): ModelProvider => {
  // Credentials in the URL become a Basic authorization header; the URL itself never carries them.
  const parsed = new URL(config.baseUrl)
  const basic =
    parsed.username !== ""
      ? Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString("base64")
      : undefined
  const path = parsed.pathname.replace(/\/+$/, "") + "/chat/completions" + parsed.search
  const endpoint = redactUrl(config.baseUrl)
  const secrets = [config.apiKey, basic, decodeURIComponent(parsed.password)].filter(
    (x): x is string => x !== undefined && x !== ""
  )
  const clean = (text: string) => redactSecrets(text, secrets).slice(0, 500)
  const timeoutMs = config.timeoutMs ?? 600_000
  const firstTokenTimeoutMs = config.firstTokenTimeoutMs ?? 300_000
  const stallTimeoutMs = config.stallTimeoutMs ?? 60_000
  const warned = new Set<string>()
  const warnOnce = (key: string, message: string) => {
    if (warned.has(key)) return
    warned.add(key)
    config.onWarning?.(`${endpoint} (${config.model}): ${message}`)
  }
  // Providers that answer some models only as a stream are streamed whatever the setting says.
  const streamOnly = streamingOnly(parsed.hostname, config.model, config.extraBody)
  if (streamOnly && config.stream === false)
    warnOnce("stream", "this model is served only as a stream; streaming it although the endpoint says stream: false")
  const stream = streamOnly || (config.stream ?? true)
  const maxTokensField =
    config.maxTokensField ??
    (isOpenAiReasoningModel(parsed.hostname, config.model) ? "max_completion_tokens" : "max_tokens")
  // vLLM's constrained choice moved from `guided_choice` to `structured_outputs` in 0.12: which one
  // a `vllm` endpoint takes is asked of its /version once, before the first constrained request.
  let guided: GuidedDecoding = config.guidedDecoding ?? "none"
  let versionChecked = guided !== "vllm"
  // One keep-alive pool for the endpoint's origin, driven through undici's dispatch API, which
  // costs less CPU per call than undici's own request() API (bench/llm.bench.mjs). Behind
  // HTTP(S)_PROXY (and not excluded by NO_PROXY), calls go through the proxy; a loopback endpoint
  // never does (no proxy can reach this machine's loopback).
  const proxy = proxyFor(parsed)
  const pooling = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connect: { timeout: 30_000 } }
  const { Pool, ProxyAgent } = undici()
  const pool = proxy === undefined ? new Pool(parsed.origin, pooling) : new ProxyAgent({ ...pooling, uri: proxy.href })
  if (proxy !== undefined && proxy.password !== "") secrets.push(decodeURIComponent(proxy.password))
  // A refused or failed connection names the proxy it went through: that is often what is wrong.
  const via = proxy === undefined ? "" : ` (through the proxy ${redactUrl(proxy.href)})`
  const headers: Array<string> = ["content-type", "application/json"]
  if (config.apiKey !== undefined && config.apiKey !== "") headers.push("authorization", `Bearer ${config.apiKey}`)
  else if (basic !== undefined) headers.push("authorization", `Basic ${basic}`)

  /** The request's body as the endpoint takes it, streamed or not (a batch line is never streamed). */
  const bodyOf = (request: ChatRequest, streamed: boolean): Record<string, unknown> => {
    const out: Record<string, unknown> = {
      model: request.model ?? config.model,
      messages: request.messages,
      stream: streamed
    }
    if (request.temperature !== undefined) out["temperature"] = request.temperature
    if (request.top_p !== undefined) out["top_p"] = request.top_p
    if (request.max_tokens !== undefined)
      out[maxTokensField] =
        config.maxOutputTokens !== undefined ? Math.min(request.max_tokens, config.maxOutputTokens) : request.max_tokens
    if (request.seed !== undefined) out["seed"] = request.seed
    if (request.stop !== undefined && request.stop.length > 0) out["stop"] = request.stop
    if (streamed) out["stream_options"] = { include_usage: true }
    if (request.choice !== undefined && request.choice.length > 0) {
      if (guided === "vllm") out["structured_outputs"] = { choice: request.choice }
      if (guided === "vllm-legacy") out["guided_choice"] = request.choice
      if (guided === "sglang") out["regex"] = `(${request.choice.map(escapeRegex).join("|")})`
      if (guided === "openai") {
        out["response_format"] = {
          type: "json_schema",
          json_schema: {
            name: "choice",
            strict: true,
            schema: {
              type: "object",
              properties: { choice: { type: "string", enum: request.choice } },
              required: ["choice"],
              additionalProperties: false
            }
          }
        }
      }
    }
    return config.extraBody === undefined ? out : { ...out, ...config.extraBody }
  }
  const body = (request: ChatRequest) => JSON.stringify(bodyOf(request, stream))

  /** Asks a vLLM server its version (GET /version at the origin); older than 0.12 takes `guided_choice`. */
  const checkVersion = Effect.promise(async () => {
    if (versionChecked) return
    versionChecked = true
    try {
      const { request } = undici()
      const res = await request(`${parsed.origin}/version`, {
        method: "GET",
        headers: Object.fromEntries(pairs(headers)),
        headersTimeout: 5_000,
        bodyTimeout: 5_000
      })
      const text = await res.body.text()
      const version = res.statusCode === 200 ? (JSON.parse(text) as { version?: unknown }).version : undefined
      if (typeof version === "string" && olderThan(version, [0, 12, 0])) guided = "vllm-legacy"
    } catch {
      // No /version (a gateway, another server): the current field is sent.
    }
  })

  /** A constrained reply outside its choices: the server ignored the constraint. Said once, loudly. */
  const checkChoice = (request: ChatRequest, result: ProviderResult): ProviderResult => {
    if (request.choice === undefined || request.choice.length === 0 || guided === "none") return result
    let text = result.text.trim()
    if (guided === "openai") {
      try {
        const value = (JSON.parse(text) as { choice?: unknown }).choice
        if (typeof value === "string") text = value
      } catch {
        // Not JSON: judged below as a reply outside the choices.
      }
    }
    if (!request.choice.includes(text)) {
      warnOnce(
        "choice",
        `a reply outside the choices it was constrained to (${request.choice.join(", ")}): "${text.slice(0, 40)}". The server did not apply guidedDecoding: ${guided}; check the server's version and this setting.`
      )
      return result
    }
    return text === result.text ? result : { ...result, text }
  }

  /** The typed error for a transport failure, given why (if at all) this side cut the request. */
  const failure = (e: unknown, why: Why | undefined): LlmError => {
    if (isLlmError(e)) return e
    const code = (e as { code?: string }).code
    if (why === undefined && code === "UND_ERR_BODY_TIMEOUT") why = "stall"
    if (why === undefined && code === "UND_ERR_HEADERS_TIMEOUT") why = stream ? "first-token" : "timeout"
    if (why === "cancel") return new Cancelled({ endpoint, message: "cancelled" })
    if (why === "timeout")
      return new Timeout({
        endpoint,
        message: `no complete reply within ${timeoutMs} ms (the whole-request limit of a non-streamed call)`,
        afterMs: timeoutMs
      })
    if (why === "first-token")
      return new Timeout({
        endpoint,
        message: `no first token within ${firstTokenTimeoutMs} ms`,
        afterMs: firstTokenTimeoutMs
      })
    if (why === "stall")
      return new Timeout({
        endpoint,
        message: `the stream sent no token for ${stallTimeoutMs} ms`,
        afterMs: stallTimeoutMs
      })
    const cause = (e as { cause?: { code?: string; message?: string } }).cause
    const detail = code ?? cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e)
    return new ConnectionError({ endpoint, message: clean(`connection failed: ${detail}${via}`) })
  }

  /** A finish reason that is not a completion's: `abort`, `error`, one this client does not know, or none. */
  const checkFinish = (raw: string | null | undefined): FinishReason => {
    const reason = finishReason(raw)
    if (reason !== "unknown") return reason
    const said = raw === undefined || raw === null ? "no finish reason" : `finish reason "${raw}"`
    throw new StreamFailed({
      endpoint,
      finishReason: raw ?? undefined,
      message: `the reply ended with ${said}${raw === "abort" || raw === "error" ? " (the server gave up on it)" : ""}: not a completion`
    })
  }

  /** The typed error for a reply of a status other than 2xx. */
  const refusal = (status: number, text: string, ex: Exchange | undefined): LlmError => {
    if (status === 402 || (status === 429 && /insufficient_quota|exceeded your current quota/i.test(text))) {
      return new QuotaExhausted({ endpoint, status, message: clean(`the account cannot pay (${status}): ${text}`) })
    }
    if (status === 429)
      return new RateLimited({
        endpoint,
        message: clean(`rate limited (429): ${text}`),
        retryAfterMs: ex === undefined ? undefined : retryAfterMs((name) => ex.header(name)),
        rateLimit: ex === undefined ? undefined : rateLimitOf(ex.rawHeaders)
      })
    if (status >= 500 || status === 408)
      return new ServerError({ endpoint, status, message: clean(`server error ${status}: ${text}`) })
    return new BadRequest({ endpoint, status, message: clean(`request rejected (${status}): ${text}`) })
  }

  /** The answer in a non-streamed reply's JSON (throws the typed error of one that is not an answer). */
  const completionFrom = (json: unknown): ProviderResult => {
    const error = inBandError(json)
    if (error !== undefined)
      throw new StreamFailed({ endpoint, message: clean(`the server reported an error: ${error}`) })
    const c = isPlainWireCompletion(json)
      ? json
      : decodeCompletion(json).pipe(
          Either.getOrThrowWith(() => new BadResponse({ endpoint, message: "the reply is not a chat completion" }))
        )
    const choice = c.choices[0]
    return {
      ...separateReasoning(
        choice.message.content ?? "",
        choice.message.reasoning_content ?? choice.message.reasoning ?? undefined
      ),
      finishReason: checkFinish(choice.finish_reason),
      model: c.model ?? config.model,
      usage: usageOf(c.usage)
    }
  }

  /** The result (or typed error) of a completed exchange. */
  const conclude = (ex: Exchange): ProviderResult => {
    const status = ex.status
    if (status < 200 || status >= 300) {
      throw refusal(status, ex.text(), ex)
    }
    if (ex.sse !== undefined) {
      const sse = ex.sse
      if (!sse.done && sse.finish === undefined)
        throw new ConnectionError({ endpoint, message: "the stream ended before the reply was complete" })
      return withRateLimit(
        {
          ...separateReasoning(sse.content, sse.reasoning),
          finishReason: checkFinish(sse.finish),
          model: sse.model,
          usage: sse.usage
        },
        ex
      )
    }
    let json: unknown
    try {
      json = JSON.parse(ex.text())
    } catch (e) {
      throw new BadResponse({ endpoint, message: `the reply is not JSON: ${(e as Error).message}` })
    }
    return withRateLimit(completionFrom(json), ex)
  }

  const send = (request: ChatRequest): Effect.Effect<ProviderResult, LlmError> =>
    Effect.withFiberRuntime<ProviderResult, LlmError>((fiber) =>
      Effect.async<ProviderResult, LlmError>((resume) => {
        let requestBody: string
        try {
          requestBody = body(request)
        } catch (e) {
          resume(
            Effect.fail(
              new BadRequest({
                endpoint,
                status: 0,
                message: clean(`the request cannot be encoded: ${(e as Error).message}`)
              })
            )
          )
          return
        }
        // One shared sweeper enforces the deadlines (no timer per request): a non-streamed call's
        // whole-request limit; a stream's first token, then the gap between tokens, which moves
        // on as tokens arrive (a reply that keeps streaming is never cut).
        const started = Date.now()
        const onToken = () => {
          deadline.entry.at = Date.now() + stallTimeoutMs
          deadline.entry.why = "stall"
        }
        const ex: Exchange = new Exchange(
          stream ? new SseAccumulator(config.model, endpoint, onToken) : undefined,
          (outcome) => {
            deadline.done()
            fiber.removeObserver(interrupted)
            if ("error" in outcome) return resume(Effect.fail(failure(outcome.error, ex.why)))
            try {
              resume(Effect.succeed(checkChoice(request, conclude(ex))))
            } catch (e) {
              resume(Effect.fail(failure(e, ex.why)))
            }
          }
        )
        const interrupted = () => ex.cancel("cancel")
        fiber.addObserver(interrupted)
        const deadline = watchDeadline(
          started + (stream ? firstTokenTimeoutMs : timeoutMs),
          stream ? "first-token" : "timeout",
          (why) => ex.cancel(why)
        )
        // undici's own timers back these up: headers within the first-token (stream) or whole
        // limit; a stream's body is held by the token deadline above, not by bytes (keep-alive
        // comments are bytes), so undici's body timer is only a last resort.
        pool.dispatch(
          {
            origin: parsed.origin,
            path,
            method: "POST",
            headers,
            body: requestBody,
            headersTimeout: stream ? firstTokenTimeoutMs : timeoutMs,
            bodyTimeout: stream ? Math.max(firstTokenTimeoutMs, stallTimeoutMs) * 2 : timeoutMs
          },
          ex
        )
      })
    )

  const basePath = parsed.pathname.replace(/\/+$/, "")
  const batch: BatchWire = {
    api: (method, apiPath, payload) =>
      Effect.tryPromise({
        try: async (signal) => {
          const { request } = undici()
          const res = await request(`${parsed.origin}${basePath}${apiPath}`, {
            method,
            dispatcher: pool,
            signal,
            headers: {
              ...Object.fromEntries(pairs(headers)),
              ...(payload === undefined ? {} : { "content-type": payload.contentType })
            },
            ...(payload === undefined ? {} : { body: payload.data }),
            headersTimeout: timeoutMs,
            bodyTimeout: timeoutMs
          })
          return { status: res.statusCode, text: await res.body.text() }
        },
        catch: (e) => failure(e, undefined)
      }),
    body: (request) => bodyOf(request, false),
    answer: (request, status, replyBody) => {
      if (status < 200 || status >= 300) return Either.left(refusal(status, JSON.stringify(replyBody), undefined))
      try {
        return Either.right(checkChoice(request, completionFrom(replyBody)))
      } catch (e) {
        return Either.left(failure(e, undefined))
      }
    },
    refusal: (status, text) => refusal(status, text, undefined)
  }

  return {
    id: endpoint,
    model: config.model,
    batch,
    // Interruption (Ctrl-C, a dashboard's stop, a timeout or race around the call) aborts the HTTP
    // request when the calling fiber ends: it is watched with a fiber observer rather than a
    // canceler, because a canceler wraps every call in Effect's onInterrupt, which cut throughput
    // to a small fraction of ideal (bench/llm.bench.mjs). (Interruption cannot be caught: an interrupted
    // fiber always ends, so the observer always fires.)
    call: (request) =>
      !versionChecked && request.choice !== undefined && request.choice.length > 0
        ? Effect.zipRight(checkVersion, send(request))
        : send(request)
  }
}

const pairs = (flat: ReadonlyArray<string>): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!])
  return out
}

/** Whether a dotted version is older than `than` (`0.11.2` < 0.12.0; `0.12.0rc1` is not). */
export const olderThan = (version: string, than: readonly [number, number, number]): boolean => {
  const parts = (/^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim()) ?? []).slice(1).map((p) => Number(p ?? 0))
  if (parts.length === 0 || parts.some(Number.isNaN)) return false
  for (let i = 0; i < 3; i++) if ((parts[i] ?? 0) !== than[i]) return (parts[i] ?? 0) < than[i]!
  return false
}

/** OpenAI's reasoning models, which refuse `max_tokens` and take `max_completion_tokens`. */
export const isOpenAiReasoningModel = (host: string, model: string): boolean =>
  /(^|\.)openai\.com$/i.test(host) && /^(o\d|gpt-5)/i.test(model)

/**
 * Models a provider serves only as a stream: DashScope's QwQ and QVQ, its thinking modes
 * (`enable_thinking: true`, `*-thinking` models) and Qwen3's commercial thinking models.
 */
export const streamingOnly = (
  host: string,
  model: string,
  extraBody: Readonly<Record<string, unknown>> | undefined
): boolean =>
  /(^|\.)dashscope(-intl)?\.aliyuncs\.com$/i.test(host) &&
  (/^(qwq|qvq)/i.test(model) || /thinking/i.test(model) || extraBody?.["enable_thinking"] === true)
