import type { Effect } from "effect"
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

/** One place that answers chat requests: an HTTP endpoint or a local model. */
export interface ModelProvider {
  /** For logs and dashboards: a redacted URL or a model folder. Never holds a credential. */
  readonly id: string
  /** The model name requests are sent with (and cache keys are made of). */
  readonly model: string
  readonly call: (request: ChatRequest) => Effect.Effect<ProviderResult, LlmError>
}
