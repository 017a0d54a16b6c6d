import type { Effect, Either } from "effect"
import type { ChatRequest, FinishReason, Usage } from "./schema.js"
import type { LlmError } from "./errors.js"
import type { RateLimitState } from "./rateLimitState.js"

export type { RateLimitState } from "./rateLimitState.js"

/** What a provider returns for one call; the service adds caching, retries and accounting. */
export interface ProviderResult {
  readonly text: string
  readonly reasoning?: string | undefined
  readonly finishReason: FinishReason
  readonly usage: Usage
  readonly model: string
  /** What the server said is left of its rate limits (`x-ratelimit-*` headers), when it says. */
  readonly rateLimit?: RateLimitState | undefined
}

/** What the service says of a call besides its request. */
export interface CallContext {
  /** The call's cache key (absent when the cache is off): a batch line's `custom_id`. */
  readonly key?: string | undefined
}

/** A reply of the endpoint's API outside chat completions (files, batches). */
export interface ApiReply {
  readonly status: number
  readonly text: string
}

/**
 * What a batch job needs of an OpenAI-compatible endpoint: its API (through the endpoint's own
 * connection pool, proxy and credentials), and its request and reply formats for one line.
 */
export interface BatchWire {
  /** Calls the API at `path` below the base URL (`/files`, `/batches/ID`); transport failures are typed. */
  readonly api: (
    method: "GET" | "POST",
    path: string,
    body?: { readonly contentType: string; readonly data: Buffer | string }
  ) => Effect.Effect<ApiReply, LlmError>
  /** A request's body as a batch line carries it (never streamed). */
  readonly body: (request: ChatRequest) => Record<string, unknown>
  /** The answer (or typed error) in a batch line's response: its status code and body. */
  readonly answer: (request: ChatRequest, status: number, body: unknown) => Either.Either<ProviderResult, LlmError>
  /** Typed error for an API reply of a status other than 2xx. */
  readonly refusal: (status: number, text: string) => LlmError
}

/** One place that answers chat requests: an HTTP endpoint or a local model. */
export interface ModelProvider {
  /** For logs and dashboards: a redacted URL or a model folder. Never holds a credential. */
  readonly id: string
  /** The model name requests are sent with (and cache keys are made of). */
  readonly model: string
  readonly call: (request: ChatRequest, context?: CallContext) => Effect.Effect<ProviderResult, LlmError>
  /** Present when the endpoint speaks the OpenAI batch API's formats (an HTTP endpoint). */
  readonly batch?: BatchWire | undefined
}
