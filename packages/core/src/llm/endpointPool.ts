import type { EndpointConfig, EndpointStats } from "./roles.js"
import type { BatchStats } from "./batch/batchSettings.js"
import { AdaptiveWindow } from "./adaptiveWindow.js"
import { Permits } from "./permits.js"
import type { RateLimitState } from "./provider.js"

/** One endpoint of a role as the service keeps it: its permits, its limits' state and its counts. */
export interface EndpointState {
  readonly config: EndpointConfig
  readonly permits: Permits
  /** Why the endpoint takes no more calls (its account cannot pay), once it is so. */
  exhausted: string | undefined
  stats: {
    -readonly [
      K in keyof Omit<EndpointStats, "role" | "endpoint" | "model" | "setAside" | "inFlight" | "window" | "batch">
    ]: EndpointStats[K]
  }
  consecutiveFailures: number
  setAsideUntil: number
  /** Earliest time the next request may start, for requests-per-minute. */
  nextRequestAt: number
  /** Tokens spent in the current minute window, for tokens-per-minute. */
  windowStart: number
  windowTokens: number
  /** No request starts before this time: the server's rate-limit headers said its window is used up. */
  heldUntil: number
  /** The adaptive window, when the endpoint has one and the server has not sent limits of its own. */
  window: AdaptiveWindow | undefined
  /** Batch mode: its jobs so far, and what the batch price has saved. */
  batch: { readonly stats: () => BatchStats; savedUsd: number } | undefined
}

/** A fresh endpoint: nothing sent, nothing held. */
export const newEndpointState = (config: EndpointConfig, batchStats?: () => BatchStats): EndpointState => ({
  config,
  exhausted: undefined,
  permits: new Permits(
    config.adaptive === undefined
      ? config.concurrency
      : Math.min(config.adaptive.max, Math.max(config.adaptive.min, config.concurrency))
  ),
  stats: {
    requests: 0,
    succeeded: 0,
    failed: 0,
    retries: 0,
    rateLimited: 0,
    cacheHits: 0,
    promptTokens: 0,
    completionTokens: 0,
    costUsd: 0,
    latencyMsTotal: 0
  },
  consecutiveFailures: 0,
  setAsideUntil: 0,
  nextRequestAt: 0,
  windowStart: 0,
  windowTokens: 0,
  heldUntil: 0,
  window: config.adaptive === undefined ? undefined : new AdaptiveWindow(config.adaptive, config.concurrency),
  batch: batchStats === undefined ? undefined : { stats: batchStats, savedUsd: 0 }
})

/** The healthy endpoint with the most free capacity; else the one back soonest (never an exhausted one while another is left). */
export const pickEndpoint = (list: ReadonlyArray<EndpointState>, now: number): EndpointState => {
  let best: EndpointState | undefined
  let bestLoad = Infinity
  for (const s of list) {
    if (s.setAsideUntil > now || s.exhausted !== undefined) continue
    const load = s.permits.inUse / s.permits.size
    if (load < bestLoad) [best, bestLoad] = [s, load]
  }
  const usable = list.filter((s) => s.exhausted === undefined)
  return best ?? (usable.length > 0 ? usable : list).reduce((a, b) => (a.setAsideUntil <= b.setAsideUntil ? a : b))
}

/** Milliseconds a request must wait for the endpoint's configured requests and tokens per minute (reserving its place). */
export const rateWait = (s: EndpointState, now: number, estimatedTokens: number): number => {
  let waitMs = 0
  if (s.config.requestsPerMinute !== undefined && s.config.requestsPerMinute > 0) {
    const gap = 60_000 / s.config.requestsPerMinute
    const start = Math.max(now, s.nextRequestAt)
    s.nextRequestAt = start + gap
    waitMs = start - now
  }
  if (s.config.tokensPerMinute !== undefined && s.config.tokensPerMinute > 0) {
    if (now - s.windowStart >= 60_000) [s.windowStart, s.windowTokens] = [now, 0]
    if (s.windowTokens + estimatedTokens > s.config.tokensPerMinute && s.windowTokens > 0) {
      waitMs = Math.max(waitMs, s.windowStart + 60_000 - now)
      s.windowStart += 60_000
      s.windowTokens = 0
    }
    s.windowTokens += estimatedTokens
  }
  return waitMs
}

/**
 * Adapts to the server's own limits: when its `x-ratelimit-*` headers say the window has no
 * request left, or fewer tokens than a request like this one needs, the endpoint sends nothing
 * more until that window resets (instead of collecting 429s and backing off). An adaptive window
 * stops adapting once the server sends these headers.
 */
export const holdFor = (s: EndpointState, now: number, limit: RateLimitState, tokensNeeded: number): void => {
  // The server's own limits govern from now on: the adaptive window stops where it is.
  s.window = undefined
  const wasHeld = s.heldUntil > now
  if (limit.remainingRequests !== undefined && limit.remainingRequests <= 0 && limit.resetRequestsMs !== undefined) {
    s.heldUntil = Math.max(s.heldUntil, now + limit.resetRequestsMs)
  }
  if (
    limit.remainingTokens !== undefined &&
    limit.remainingTokens < tokensNeeded &&
    limit.resetTokensMs !== undefined
  ) {
    s.heldUntil = Math.max(s.heldUntil, now + limit.resetTokensMs)
  }
  if (!wasHeld && s.heldUntil > now) s.stats.rateLimited++
}

/** A request on an adaptive endpoint was answered: the window may grow. */
export const adaptOnSuccess = (s: EndpointState): void => {
  if (s.window === undefined) return
  s.window.succeeded()
  if (s.window.size !== s.permits.size) s.permits.resize(s.window.size)
}

/**
 * A request sent in `epoch` failed: a 429 (the server's limits not known) or a burst of
 * timeouts shrinks an adaptive window.
 */
export const adaptOnFailure = (s: EndpointState, epoch: number, tag: string): void => {
  if (s.window === undefined) return
  if (tag === "RateLimited") s.window.overloaded(epoch)
  else if (tag === "Timeout") s.window.timedOut(epoch)
  else return
  if (s.window.size !== s.permits.size) s.permits.resize(s.window.size)
}
