import * as Data from "effect/Data"
import type { RateLimitState } from "./rateLimitState.js"

/** Fields every model error carries; `endpoint` is a redacted URL, never one with credentials. */
interface Base {
  readonly endpoint: string
  readonly message: string
}

/** Marks every model error (see `isLlmError`), as Effect's own errors carry their type ids. */
export const LlmErrorTypeId: unique symbol = Symbol.for("@fastcot/core/LlmError")
export type LlmErrorTypeId = typeof LlmErrorTypeId

export class RateLimited extends Data.TaggedError("RateLimited")<
  Base & {
    readonly retryAfterMs?: number | undefined
    /** What the 429's `x-ratelimit-*` headers said of the server's limits, when it sent them. */
    readonly rateLimit?: RateLimitState | undefined
  }
> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
export class ServerError extends Data.TaggedError("ServerError")<Base & { readonly status: number }> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
export class Timeout extends Data.TaggedError("Timeout")<Base & { readonly afterMs: number }> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
export class ConnectionError extends Data.TaggedError("ConnectionError")<Base> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
/** The server refused the request (4xx): the same request will be refused again. */
export class BadRequest extends Data.TaggedError("BadRequest")<Base & { readonly status: number }> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
/**
 * A reply that failed on its way (HTTP 200): an error event inside the stream (vLLM, SGLang), a
 * finish reason of `abort` or `error`, or one the client does not know. Never a completion.
 */
export class StreamFailed extends Data.TaggedError("StreamFailed")<
  Base & { readonly finishReason?: string | undefined }
> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
/**
 * The account behind the endpoint cannot pay (OpenAI's `insufficient_quota` 429, DeepSeek's 402):
 * retrying does not help, so the endpoint is stopped.
 */
export class QuotaExhausted extends Data.TaggedError("QuotaExhausted")<Base & { readonly status: number }> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
export class BadResponse extends Data.TaggedError("BadResponse")<Base> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
export class Cancelled extends Data.TaggedError("Cancelled")<Base> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}
/** The call was not sent: the spending budget could not pay for its worst case (`endpoint` is the role). */
export class BudgetExhausted extends Data.TaggedError("BudgetExhausted")<Base> {
  readonly [LlmErrorTypeId] = LlmErrorTypeId
}

export type LlmError =
  | RateLimited
  | ServerError
  | Timeout
  | ConnectionError
  | BadRequest
  | BadResponse
  | Cancelled
  | BudgetExhausted
  | StreamFailed
  | QuotaExhausted

/** Whether a value is one of the model errors above (by its type id, across copies of the package). */
export const isLlmError = (e: unknown): e is LlmError => typeof e === "object" && e !== null && LlmErrorTypeId in e

/** Failures worth another try: the server or the network may do better next time. */
export const isRetryable = (e: LlmError): boolean =>
  e._tag === "RateLimited" ||
  e._tag === "ServerError" ||
  e._tag === "Timeout" ||
  e._tag === "ConnectionError" ||
  e._tag === "BadResponse" ||
  e._tag === "StreamFailed"

/**
 * Whether the same request would fail the same way again: a 400, 413 or 422 (a malformed or
 * too-long request, a parameter the model does not take). A rerun does not send it again unless
 * the request changes. Authentication (401, 403) and missing models (404) depend on settings
 * outside the request and are not remembered.
 */
export const repeatsForRequest = (e: LlmError): boolean =>
  e._tag === "BadRequest" && (e.status === 400 || e.status === 413 || e.status === 422)

/** Removes credentials and query strings from a URL so it can appear in errors and logs. */
export const redactUrl = (url: string): string => {
  try {
    const u = new URL(url)
    u.username = ""
    u.password = ""
    u.search = ""
    return u.toString().replace(/\/$/, "")
  } catch {
    return "<invalid url>"
  }
}

/** Replaces any occurrence of the secrets in a text (error bodies can echo headers). */
export const redactSecrets = (text: string, secrets: ReadonlyArray<string>): string => {
  let out = text
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join("[redacted]")
  return out
}

/** A model error for people and records: its kind, the endpoint (redacted) and what went wrong. */
export const describeLlmError = (error: LlmError): string => `${error._tag} from ${error.endpoint}: ${error.message}`
