import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { RunStore } from "../store/RunStore.js"
import { sha256Hex } from "../util/hash.js"
import { BadRequest, isRetryable, type LlmError } from "./errors.js"
import type { ModelProvider, ProviderResult } from "./provider.js"
import { type ChatRequest, Completion } from "./schema.js"

/** USD per million tokens. */
export interface Price {
  readonly input: number
  readonly output: number
}

export interface EndpointConfig {
  readonly provider: ModelProvider
  /** Requests in flight at once on this endpoint. */
  readonly concurrency: number
  readonly requestsPerMinute?: number | undefined
  readonly tokensPerMinute?: number | undefined
  readonly price?: Price | undefined
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
}

export interface LanguageModelShape {
  readonly roles: ReadonlyArray<string>
  /** The model name a role's requests go to (its first endpoint's), for records and cache keys. */
  readonly modelOf: (role: string) => string
  readonly complete: (role: string, request: ChatRequest, options?: CallOptions) => Effect.Effect<Completion, LlmError>
  readonly stats: Effect.Effect<ReadonlyArray<EndpointStats>>
}

/** Every stage and the evaluator talk to models through this service. */
export class LanguageModel extends Context.Tag("@fastcot/core/LanguageModel")<LanguageModel, LanguageModelShape>() {}

const CachedValue = Schema.parseJson(
  Schema.Struct({
    text: Schema.String,
    reasoning: Schema.optional(Schema.String),
    finishReason: Completion.fields.finishReason,
    usage: Completion.fields.usage,
    model: Schema.String,
    latencyMs: Schema.Number
  })
)
const decodeCached = Schema.decodeUnknownOption(CachedValue)

/** The cache key: everything that determines a completion, never the URL or a credential. */
export const cacheKey = (model: string, request: ChatRequest, sampleIndex: number): string =>
  sha256Hex(
    // Explicit field order (no key sorting needed): this runs once per call on the hot path.
    JSON.stringify({
      v: 1,
      model: request.model ?? model,
      messages: request.messages.map((m) => [m.role, m.content]),
      temperature: request.temperature,
      top_p: request.top_p,
      max_tokens: request.max_tokens,
      seed: request.seed,
      stop: request.stop,
      n: request.n,
      choice: request.choice,
      sampleIndex
    })
  )

interface EndpointState {
  readonly config: EndpointConfig
  readonly semaphore: Effect.Semaphore
  stats: { -readonly [K in keyof Omit<EndpointStats, "role" | "endpoint" | "model" | "setAside">]: EndpointStats[K] }
  consecutiveFailures: number
  setAsideUntil: number
  /** Earliest time the next request may start, for requests-per-minute. */
  nextRequestAt: number
  /** Tokens spent in the current minute window, for tokens-per-minute. */
  windowStart: number
  windowTokens: number
}

const costOf = (price: Price | undefined, r: ProviderResult): number | undefined =>
  price === undefined ? undefined : (r.usage.promptTokens * price.input + r.usage.completionTokens * price.output) / 1e6

/**
 * Builds the service over roles of endpoints: per-endpoint concurrency and rate limits, load
 * balancing with failing endpoints set aside, bounded retries with exponential backoff, jitter and
 * Retry-After, a content-keyed response cache in the run store, and in-flight de-duplication so
 * that two identical requests pay once.
 */
export const makeLanguageModel = (
  roles: Readonly<Record<string, RoleConfig>>,
  defaults: {
    readonly cache?: CacheMode
    /** While closed, no new model call starts (in-flight ones finish; cache hits still answer): pause. */
    readonly gate?: Effect.Latch
  } = {}
): Effect.Effect<LanguageModelShape, never, RunStore> =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const states = new Map<string, Array<EndpointState>>()
    for (const [role, config] of Object.entries(roles)) {
      const list: Array<EndpointState> = []
      for (const endpoint of config.endpoints) {
        list.push({
          config: endpoint,
          semaphore: yield* Effect.makeSemaphore(Math.max(1, endpoint.concurrency)),
          stats: { inFlight: 0, requests: 0, succeeded: 0, failed: 0, retries: 0, rateLimited: 0, cacheHits: 0, promptTokens: 0, completionTokens: 0, costUsd: 0, latencyMsTotal: 0 },
          consecutiveFailures: 0,
          setAsideUntil: 0,
          nextRequestAt: 0,
          windowStart: 0,
          windowTokens: 0
        })
      }
      states.set(role, list)
    }
    const inFlight = new Map<string, Deferred.Deferred<Completion, LlmError>>()

    const endpointsOf = (role: string): Effect.Effect<Array<EndpointState>, LlmError> => {
      const list = states.get(role)
      return list === undefined || list.length === 0
        ? Effect.fail(new BadRequest({ endpoint: role, status: 0, message: `no model is configured for the role \`${role}\`` }))
        : Effect.succeed(list)
    }

    /** The healthy endpoint with the most free capacity; else the one back soonest. */
    const pick = (list: Array<EndpointState>): EndpointState => {
      const now = Date.now()
      let best: EndpointState | undefined
      let bestLoad = Infinity
      for (const s of list) {
        if (s.setAsideUntil > now) continue
        const load = s.stats.inFlight / Math.max(1, s.config.concurrency)
        if (load < bestLoad) (best = s), (bestLoad = load)
      }
      return best ?? list.reduce((a, b) => (a.setAsideUntil <= b.setAsideUntil ? a : b))
    }

    const waitForRate = (s: EndpointState, estimatedTokens: number) =>
      Effect.suspend(() => {
        const now = Date.now()
        let waitMs = 0
        if (s.config.requestsPerMinute !== undefined && s.config.requestsPerMinute > 0) {
          const gap = 60_000 / s.config.requestsPerMinute
          const start = Math.max(now, s.nextRequestAt)
          s.nextRequestAt = start + gap
          waitMs = start - now
        }
        if (s.config.tokensPerMinute !== undefined && s.config.tokensPerMinute > 0) {
          if (now - s.windowStart >= 60_000) (s.windowStart = now), (s.windowTokens = 0)
          if (s.windowTokens + estimatedTokens > s.config.tokensPerMinute && s.windowTokens > 0) {
            waitMs = Math.max(waitMs, s.windowStart + 60_000 - now)
            s.windowStart += 60_000
            s.windowTokens = 0
          }
          s.windowTokens += estimatedTokens
        }
        return waitMs > 0 ? Effect.sleep(Duration.millis(waitMs)) : Effect.void
      })

    // The hot path: one permit, the rate wait only when limits are set, and the call.
    const callOnce = (s: EndpointState, request: ChatRequest) => {
      const limited = s.config.requestsPerMinute !== undefined || s.config.tokensPerMinute !== undefined
      const call = Effect.suspend(() => {
        s.stats.inFlight++
        s.stats.requests++
        const started = Date.now()
        return Effect.onExit(
          Effect.map(s.config.provider.call(request), (result) => ({ result, latencyMs: Date.now() - started })),
          () => Effect.sync(() => void s.stats.inFlight--)
        )
      })
      const estimate = () => Math.ceil(request.messages.reduce((n, m) => n + m.content.length, 0) / 4) + (request.max_tokens ?? 512)
      return s.semaphore.withPermits(1)(limited ? Effect.zipRight(Effect.suspend(() => waitForRate(s, estimate())), call) : call)
    }

    const callWithRetries = (role: string, config: RoleConfig, list: Array<EndpointState>, request: ChatRequest) => {
      const maxAttempts = Math.max(1, config.maxAttempts ?? 6)
      const base = config.backoffBaseMs ?? 500
      const cap = config.backoffMaxMs ?? 30_000
      const setAsideMs = config.setAsideMs ?? 15_000
      const loop = (attempt: number): Effect.Effect<{ result: ProviderResult; latencyMs: number; attempt: number; state: EndpointState }, LlmError> => {
        const s = pick(list)
        return callOnce(s, request).pipe(
          Effect.map(({ result, latencyMs }) => {
            s.consecutiveFailures = 0
            return { result, latencyMs, attempt, state: s }
          }),
          Effect.catchAll((error) => {
            s.stats.failed++
            if (error._tag === "RateLimited") s.stats.rateLimited++
            if (error._tag !== "RateLimited" && error._tag !== "BadRequest" && error._tag !== "Cancelled") {
              s.consecutiveFailures++
              if (list.length > 1 && s.consecutiveFailures >= 3) s.setAsideUntil = Date.now() + setAsideMs
            }
            if (!isRetryable(error) || attempt >= maxAttempts) return Effect.fail(error)
            s.stats.retries++
            const backoff = Math.min(cap, base * 2 ** (attempt - 1))
            const jittered = backoff / 2 + Math.random() * (backoff / 2)
            const delay = error._tag === "RateLimited" && error.retryAfterMs !== undefined ? Math.min(config.maxRetryAfterMs ?? 120_000, error.retryAfterMs) : jittered
            return Effect.sleep(Duration.millis(delay)).pipe(Effect.zipRight(loop(attempt + 1)))
          })
        )
      }
      void role
      return loop(1)
    }

    const complete = (role: string, request: ChatRequest, options: CallOptions = {}): Effect.Effect<Completion, LlmError> =>
      Effect.gen(function* () {
        const list = yield* endpointsOf(role)
        const config = roles[role]!
        const model = request.model ?? list[0]!.config.provider.model
        const mode = options.cache ?? defaults.cache ?? "use"
        // With the cache off there is no key to make, nothing to look up and nothing to share.
        const key = mode === "off" ? "" : cacheKey(model, request, options.sampleIndex ?? 0)
        if (mode === "use") {
          const hit = yield* store.cacheGet(key).pipe(Effect.orElseSucceed(() => Option.none()))
          if (Option.isSome(hit)) {
            const value = decodeCached(hit.value.value)
            if (Option.isSome(value)) {
              list[0]!.stats.cacheHits++
              return { ...value.value, cached: true, attempts: 1, costUsd: 0 } satisfies Completion
            }
          }
          // The same request already on its way: wait for it instead of paying twice.
          const pending = inFlight.get(key)
          if (pending !== undefined) {
            const shared = yield* Deferred.await(pending)
            list[0]!.stats.cacheHits++
            return { ...shared, cached: true, costUsd: 0 } satisfies Completion
          }
        }
        const run = Effect.gen(function* () {
          if (defaults.gate !== undefined) yield* defaults.gate.await
          const { result, latencyMs, attempt, state } = yield* callWithRetries(role, config, list, { ...request, model } as ChatRequest)
          const costUsd = costOf(state.config.price, result)
          state.stats.succeeded++
          state.stats.promptTokens += result.usage.promptTokens
          state.stats.completionTokens += result.usage.completionTokens
          state.stats.costUsd += costUsd ?? 0
          state.stats.latencyMsTotal += latencyMs
          if (mode !== "off") {
            yield* store
              .cachePut({ key, model, value: JSON.stringify({ ...result, latencyMs }), createdAt: new Date().toISOString() })
              .pipe(Effect.orElse(() => Effect.void))
          }
          return { ...result, latencyMs, cached: false, attempts: attempt, costUsd } satisfies Completion
        })
        if (mode !== "use") return yield* run
        const deferred = yield* Deferred.make<Completion, LlmError>()
        inFlight.set(key, deferred)
        return yield* run.pipe(
          Effect.onExit((exit) =>
            Effect.suspend(() => {
              if (inFlight.get(key) === deferred) inFlight.delete(key)
              return Exit.isSuccess(exit) ? Deferred.succeed(deferred, exit.value) : Exit.isFailure(exit) ? Deferred.failCause(deferred, exit.cause) : Effect.void
            })
          )
        )
      })

    const stats = Effect.sync(() =>
      [...states.entries()].flatMap(([role, list]) =>
        list.map((s) => ({
          role,
          endpoint: s.config.provider.id,
          model: s.config.provider.model,
          setAside: s.setAsideUntil > Date.now(),
          ...s.stats
        }))
      )
    )

    return {
      roles: Object.keys(roles),
      modelOf: (role) => states.get(role)?.[0]?.config.provider.model ?? role,
      complete,
      stats
    } satisfies LanguageModelShape
  })
