import { Effect, Schema } from "effect"
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
export const retryAfterMs = (headers: Headers): number | undefined => {
  const ms = headers.get("retry-after-ms")
  if (ms !== null && Number.isFinite(Number(ms))) return Math.max(0, Number(ms))
  const value = headers.get("retry-after")
  if (value === null) return undefined
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.max(0, Number(value) * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
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

  const run = async (request: ChatRequest, outer: AbortSignal): Promise<ProviderResult> => {
    const controller = new AbortController()
    let why: "cancel" | "timeout" | "stall" | undefined
    const abort = (reason: typeof why) => {
      why ??= reason
      controller.abort()
    }
    const onOuter = () => abort("cancel")
    outer.addEventListener("abort", onOuter)
    const timer = setTimeout(() => abort("timeout"), timeoutMs)
    let stallTimer: NodeJS.Timeout | undefined
    const armStall = () => {
      if (stallTimer !== undefined) clearTimeout(stallTimer)
      stallTimer = setTimeout(() => abort("stall"), stallTimeoutMs)
    }
    const failure = (e: unknown): LlmError => {
      if (why === "cancel") return new Cancelled({ endpoint, message: "cancelled" })
      if (why === "timeout") return new Timeout({ endpoint, message: `no complete reply within ${timeoutMs} ms`, afterMs: timeoutMs })
      if (why === "stall") return new Timeout({ endpoint, message: `the stream stalled for ${stallTimeoutMs} ms`, afterMs: stallTimeoutMs })
      const cause = (e as { cause?: { code?: string; message?: string } }).cause
      const detail = cause?.code ?? cause?.message ?? (e as Error).message
      return new ConnectionError({ endpoint, message: clean(`connection failed: ${detail}`) })
    }
    try {
      const headers: Record<string, string> = { "content-type": "application/json" }
      if (config.apiKey !== undefined && config.apiKey !== "") headers["authorization"] = `Bearer ${config.apiKey}`
      else if (basic !== undefined) headers["authorization"] = `Basic ${basic}`
      let response: Response
      try {
        response = await fetch(url, { method: "POST", headers, body: body(request), signal: controller.signal })
      } catch (e) {
        throw failure(e)
      }
      if (!response.ok) {
        const text = await response.text().catch(() => "")
        const status = response.status
        if (status === 429) {
          throw new RateLimited({ endpoint, message: clean(`rate limited (429): ${text}`), retryAfterMs: retryAfterMs(response.headers) })
        }
        if (status >= 500 || status === 408) throw new ServerError({ endpoint, status, message: clean(`server error ${status}: ${text}`) })
        throw new BadRequest({ endpoint, status, message: clean(`request rejected (${status}): ${text}`) })
      }
      if (!stream) {
        let json: unknown
        try {
          json = await response.json()
        } catch (e) {
          if (why !== undefined || (e as Error).name === "AbortError") throw failure(e)
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
      if (response.body === null) throw new BadResponse({ endpoint, message: "the streamed reply has no body" })
      const reader = response.body.getReader()
      const decoder = new TextDecoder()
      let buffer = ""
      let content = ""
      let reasoning = ""
      let finish: string | undefined
      let done = false
      let model = config.model
      let usage: ProviderResult["usage"] = { promptTokens: 0, completionTokens: 0 }
      armStall()
      try {
        for (;;) {
          const { value, done: ended } = await reader.read()
          if (ended) break
          armStall()
          buffer += decoder.decode(value, { stream: true })
          let sep: number
          while ((sep = buffer.search(/\r?\n\r?\n/)) >= 0) {
            const event = buffer.slice(0, sep)
            buffer = buffer.slice(sep + (buffer[sep] === "\r" ? 4 : 2))
            for (const line of event.split(/\r?\n/)) {
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
        if (e instanceof BadResponse) throw e
        throw failure(e)
      }
      if (!done && finish === undefined) {
        throw new ConnectionError({ endpoint, message: "the stream ended before the reply was complete" })
      }
      const split = separateReasoning(content, reasoning)
      return { ...split, finishReason: finishReason(finish), model, usage }
    } finally {
      clearTimeout(timer)
      if (stallTimer !== undefined) clearTimeout(stallTimer)
      outer.removeEventListener("abort", onOuter)
    }
  }

  return {
    id: endpoint,
    model: config.model,
    call: (request) =>
      Effect.tryPromise({
        try: (signal) => run(request, signal),
        catch: (e) =>
          e instanceof RateLimited || e instanceof ServerError || e instanceof Timeout || e instanceof ConnectionError ||
          e instanceof BadRequest || e instanceof BadResponse || e instanceof Cancelled
            ? e
            : new ConnectionError({ endpoint, message: clean(String((e as Error)?.message ?? e)) })
      })
  }
}
