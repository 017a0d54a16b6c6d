// The LanguageModel service's settings (roles of endpoints, their prices and limits) and what it counts.
import type { AdaptiveBounds } from "./adaptiveWindow.js"
import type { BatchSettings, BatchStats } from "./batch/batchSettings.js"
import type { ModelProvider } from "./provider.js"

/** USD per million tokens; prompt tokens the server read from its cache at `cachedInput` when given. */
export interface Price {
  readonly input: number
  readonly output: number
  readonly cachedInput?: number | undefined
}

export interface EndpointConfig {
  readonly provider: ModelProvider
  /** Requests in flight at once on this endpoint (with `adaptive`, where the window starts). */
  readonly concurrency: number
  /**
   * Concurrency that adapts to the server between these bounds (additive increase, multiplicative
   * decrease; see `AdaptiveWindow`). The server's `x-ratelimit-*` headers, once it sends them,
   * govern instead.
   */
  readonly adaptive?: AdaptiveBounds | undefined
  readonly requestsPerMinute?: number | undefined
  readonly tokensPerMinute?: number | undefined
  readonly price?: Price | undefined
  /**
   * Batch mode: calls are gathered into the provider's batch jobs (at `priceFactor` of `price`)
   * instead of being sent one by one; `concurrency` is then the most calls waiting at once. Only
   * for providers that speak the OpenAI batch API.
   */
  readonly batch?: BatchSettings | undefined
}

export interface RoleConfig {
  readonly endpoints: ReadonlyArray<EndpointConfig>
  /** Tries per request, the first included. */
  readonly maxAttempts?: number | undefined
  readonly backoffBaseMs?: number | undefined
  readonly backoffMaxMs?: number | undefined
  /** The longest Retry-After honoured (a server asking for more is waited on this long). */
  readonly maxRetryAfterMs?: number | undefined
  /** How long a failing endpoint is set aside when others can serve. */
  readonly setAsideMs?: number | undefined
}

export type CacheMode = "use" | "off" | "refresh"

export interface CallOptions {
  /** Distinguishes samples of the same request: sample 0 and sample 1 are cached apart. */
  readonly sampleIndex?: number | undefined
  readonly cache?: CacheMode | undefined
}

export interface EndpointStats {
  readonly role: string
  readonly endpoint: string
  readonly model: string
  readonly inFlight: number
  /** Requests the endpoint lets in flight now (its adaptive window, or its fixed concurrency). */
  readonly window: number
  readonly requests: number
  readonly succeeded: number
  readonly failed: number
  readonly retries: number
  readonly rateLimited: number
  readonly cacheHits: number
  readonly promptTokens: number
  readonly completionTokens: number
  readonly costUsd: number
  readonly latencyMsTotal: number
  readonly setAside: boolean
  /** The account behind the endpoint cannot pay: it takes no more calls. */
  readonly exhausted?: string | undefined
  /** Batch mode: its jobs, and what the batch price saved against the live price. */
  readonly batch?: (BatchStats & { readonly savedUsd: number }) | undefined
}
