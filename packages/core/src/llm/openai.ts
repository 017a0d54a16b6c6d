import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Agent, request as httpRequest } from "undici"
import { splitThink } from "../util/latex.js"
import { BadRequest, BadResponse, Cancelled, ConnectionError, type LlmError, RateLimited, redactSecrets, redactUrl, ServerError, Timeout } from "./errors.js"
import type { ModelProvider, ProviderResult } from "./provider.js"
import { type ChatRequest, finishReason, WireChunk, WireCompletion } from "./schema.js"

export interface OpenAiEndpointConfig {
  /** e.g. `http://127.0.0.1:8000/v1`; `/chat/completions` is appended. */
  readonly baseUrl: string
  readonly model: string
  /** Read from the environment by the caller; never stored. */
  readonly apiKey?: string | undefined
  readonly stream?: boolean | undefined
  /** Whole-request limit. */
  readonly timeoutMs?: number | undefined
  /** A stream that sends nothing for this long is cut (and retried). */
  readonly stallTimeoutMs?: number | undefined
  /** How to constrain a reply to a set of choices: vLLM's guided_choice, SGLang's regex, or not at all. */
  readonly guidedDecoding?: "vllm" | "sglang" | "none" | undefined
  /** Extra fields merged into every request body (server-specific options). */
  readonly extraBody?: Readonly<Record<string, unknown>> | undefined
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

/** Deadlines checked by one unref'd interval, instead of a timer per request. */
const deadlines = new Set<{ at: number; fire: () => void }>()
let sweeper: NodeJS.Timeout | undefined
const watchDeadline = (at: number, fire: () => void) => {
  const entry = { at, fire }
  deadlines.add(entry)
  if (sweeper === undefined) {
    sweeper = setInterval(() => {
      const now = Date.now()
      for (const d of deadlines) if (d.at <= now) (deadlines.delete(d), d.fire())
      if (deadlines.size === 0) (clearInterval(sweeper), (sweeper = undefined))
    }, 100)
    sweeper.unref()
  }
  return { done: () => deadlines.delete(entry) }
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

/**
 * A provider for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, Ollama, llama.cpp
 * server, DashScope, DeepSeek, OpenAI). Streaming or not; interruption aborts the HTTP request.
 */
export const openAiProvider = (config: OpenAiEndpointConfig): ModelProvider => {
  // fetch refuses URLs with credentials: they become a Basic authorization header instead.
  const parsed = new URL(config.baseUrl)
  const basic = parsed.username !== "" ? Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString("base64") : undefined
  parsed.username = ""
  parsed.password = ""
  const url = parsed.toString().replace(/\/+$/, "") + "/chat/completions"
  const endpoint = redactUrl(config.baseUrl)
  const secrets = [config.apiKey, basic, decodeURIComponent(new URL(config.baseUrl).password)].filter((x): x is string => x !== undefined && x !== "")
  const clean = (text: string) => redactSecrets(text, secrets).slice(0, 500)
  const timeoutMs = config.timeoutMs ?? 600_000
  const stallTimeoutMs = config.stallTimeoutMs ?? 60_000
  const stream = config.stream ?? true
  // undici's request API over a keep-alive pool: far less CPU per call than fetch's web streams.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connect: { timeout: 30_000 } })

  const body = (request: ChatRequest) => {
    const out: Record<string, unknown> = {
      model: request.model ?? config.model,
      messages: request.messages,
      stream
    }
    if (request.temperature !== undefined) out["temperature"] = request.temperature
    if (request.top_p !== undefined) out["top_p"] = request.top_p
    if (request.max_tokens !== undefined) out["max_tokens"] = request.max_tokens
    if (request.seed !== undefined) out["seed"] = request.seed
    if (request.stop !== undefined && request.stop.length > 0) out["stop"] = request.stop
    if (stream) out["stream_options"] = { include_usage: true }
    if (request.choice !== undefined && request.choice.length > 0) {
      if (config.guidedDecoding === "vllm") out["guided_choice"] = request.choice
      if (config.guidedDecoding === "sglang") out["regex"] = `(${request.choice.map(escapeRegex).join("|")})`
    }
    return JSON.stringify({ ...out, ...config.extraBody })
  }

  const run = async (request: ChatRequest, controller: AbortController, cancel: { why?: "cancel" | "timeout" | "stall" }): Promise<ProviderResult> => {
    let why: "cancel" | "timeout" | "stall" | undefined
    const abort = (reason: typeof why) => {
      why ??= reason
      cancel.why ??= reason
      controller.abort()
    }
    // One shared sweeper enforces whole-request deadlines (no timer per request); undici's own
    // headersTimeout and bodyTimeout cut a silent server and a stalled stream.
    const deadline = watchDeadline(Date.now() + timeoutMs, () => abort("timeout"))
    const failure = (e: unknown): LlmError => {
      const code = (e as { code?: string }).code
      if (code === "UND_ERR_BODY_TIMEOUT") why ??= "stall"
      if (code === "UND_ERR_HEADERS_TIMEOUT") why ??= "timeout"
      why ??= cancel.why
      if (why === "cancel") return new Cancelled({ endpoint, message: "cancelled" })
      if (why === "timeout") return new Timeout({ endpoint, message: `no complete reply within ${timeoutMs} ms`, afterMs: timeoutMs })
      if (why === "stall") return new Timeout({ endpoint, message: `the stream stalled for ${stallTimeoutMs} ms`, afterMs: stallTimeoutMs })
      const cause = (e as { cause?: { code?: string; message?: string } }).cause
      const detail = code ?? cause?.code ?? cause?.message ?? (e as Error).message
      return new ConnectionError({ endpoint, message: clean(`connection failed: ${detail}`) })
    }
    try {
      const headers: Record<string, string> = { "content-type": "application/json" }
      if (config.apiKey !== undefined && config.apiKey !== "") headers["authorization"] = `Bearer ${config.apiKey}`
      else if (basic !== undefined) headers["authorization"] = `Basic ${basic}`
      let response: Awaited<ReturnType<typeof httpRequest>>
      try {
        response = await httpRequest(url, {
          method: "POST",
          headers,
          body: body(request),
          signal: controller.signal,
          dispatcher,
          headersTimeout: timeoutMs,
          bodyTimeout: stallTimeoutMs
        })
      } catch (e) {
        throw failure(e)
      }
      const header = (name: string) => {
        const v = response.headers[name]
        return Array.isArray(v) ? v[0] : v
      }
      const status = response.statusCode
      if (status < 200 || status >= 300) {
        const text = await response.body.text().catch(() => "")
        if (status === 429) {
          throw new RateLimited({ endpoint, message: clean(`rate limited (429): ${text}`), retryAfterMs: retryAfterMs(header) })
        }
        if (status >= 500 || status === 408) throw new ServerError({ endpoint, status, message: clean(`server error ${status}: ${text}`) })
        throw new BadRequest({ endpoint, status, message: clean(`request rejected (${status}): ${text}`) })
      }
      if (!stream) {
        let json: unknown
        try {
          json = JSON.parse(await response.body.text())
        } catch (e) {
          if (why !== undefined || e instanceof Error && (e.name === "AbortError" || "code" in e)) throw failure(e)
          throw new BadResponse({ endpoint, message: `the reply is not JSON: ${(e as Error).message}` })
        }
        const decoded = decodeCompletion(json)
        if (decoded._tag === "Left") throw new BadResponse({ endpoint, message: "the reply is not a chat completion" })
        const c = decoded.right
        const choice = c.choices[0]
        const split = separateReasoning(choice.message.content ?? "", choice.message.reasoning_content ?? choice.message.reasoning ?? undefined)
        return {
          ...split,
          finishReason: finishReason(choice.finish_reason),
          model: c.model ?? config.model,
          usage: {
            promptTokens: c.usage?.prompt_tokens ?? 0,
            completionTokens: c.usage?.completion_tokens ?? 0,
            reasoningTokens: c.usage?.completion_tokens_details?.reasoning_tokens ?? undefined
          }
        }
      }
      // Server-sent events: accumulate deltas until [DONE] or a finish reason with the stream closed.
      const decoder = new TextDecoder()
      let buffer = ""
      let content = ""
      let reasoning = ""
      let finish: string | undefined
      let done = false
      let model = config.model
      let usage: ProviderResult["usage"] = { promptTokens: 0, completionTokens: 0 }
      try {
        for await (const value of response.body as AsyncIterable<Buffer>) {
          buffer += decoder.decode(value, { stream: true })
          if (buffer.includes("\r")) buffer = buffer.replace(/\r\n?/g, "\n")
          let sep: number
          while ((sep = buffer.indexOf("\n\n")) >= 0) {
            const event = buffer.slice(0, sep)
            buffer = buffer.slice(sep + 2)
            for (const line of event.split("\n")) {
              if (!line.startsWith("data:")) continue
              const data = line.slice(5).trim()
              if (data === "[DONE]") {
                done = true
                continue
              }
              let parsed: unknown
              try {
                parsed = JSON.parse(data)
              } catch {
                throw new BadResponse({ endpoint, message: "a streamed chunk is not JSON" })
              }
              const chunk = decodeChunk(parsed)
              if (chunk._tag === "Left") throw new BadResponse({ endpoint, message: "a streamed chunk is not a chat-completion chunk" })
              const c = chunk.right
              if (c.model !== undefined) model = c.model
              for (const choice of c.choices ?? []) {
                content += choice.delta?.content ?? ""
                reasoning += choice.delta?.reasoning_content ?? choice.delta?.reasoning ?? ""
                if (choice.finish_reason !== undefined && choice.finish_reason !== null) finish = choice.finish_reason
              }
              if (c.usage !== undefined && c.usage !== null) {
                usage = {
                  promptTokens: c.usage.prompt_tokens ?? 0,
                  completionTokens: c.usage.completion_tokens ?? 0,
                  reasoningTokens: c.usage.completion_tokens_details?.reasoning_tokens ?? undefined
                }
              }
            }
          }
        }
      } catch (e) {
        response.body.destroy()
        if (e instanceof BadResponse) throw e
        throw failure(e)
      }
      if (!done && finish === undefined) {
        throw new ConnectionError({ endpoint, message: "the stream ended before the reply was complete" })
      }
      const split = separateReasoning(content, reasoning)
      return { ...split, finishReason: finishReason(finish), model, usage }
    } finally {
      deadline.done()
    }
  }

  return {
    id: endpoint,
    model: config.model,
    // Interruption (Ctrl-C, a dashboard's stop) aborts the HTTP request through one controller.
    call: (request) =>
      Effect.async<ProviderResult, LlmError>((resume) => {
        const controller = new AbortController()
        const cancel: { why?: "cancel" | "timeout" | "stall" } = {}
        run(request, controller, cancel).then(
          (result) => resume(Effect.succeed(result)),
          (e: unknown) =>
            resume(
              Effect.fail(
                e instanceof RateLimited || e instanceof ServerError || e instanceof Timeout || e instanceof ConnectionError ||
                  e instanceof BadRequest || e instanceof BadResponse || e instanceof Cancelled
                  ? e
                  : new ConnectionError({ endpoint, message: clean(String((e as Error)?.message ?? e)) })
              )
            )
        )
        return Effect.sync(() => {
          cancel.why ??= "cancel"
          controller.abort()
        })
      })
  }
}
