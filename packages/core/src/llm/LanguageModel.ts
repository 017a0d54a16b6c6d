import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { type CacheEntry, type CallClaim, RunStore } from "../store/RunStore.js"
import { Budget, type BudgetOptions, type BudgetState, describeSpent } from "./budget.js"
import type { CacheMode, CallOptions, EndpointStats, Price, RoleConfig } from "./roles.js"
import {
  adaptOnFailure,
  adaptOnSuccess,
  type EndpointState,
  holdFor,
  newEndpointState,
  pickEndpoint,
  rateWait
} from "./endpointPool.js"
import { cacheKey, decodeCached } from "./responseCache.js"
import { retrySchedule } from "./retryPolicy.js"
import { makeBatchProvider } from "./batch/batchProvider.js"
import { BadRequest, BudgetExhausted, type LlmError, QuotaExhausted, repeatsForRequest } from "./errors.js"
import type { ProviderResult } from "./provider.js"
import { type ChatRequest, Completion } from "./schema.js"

/** One try of a call: the answer, its time, which try it was, and the endpoint that gave it. */
interface TryResult {
  readonly result: ProviderResult
  readonly latencyMs: number
  readonly attempt: number
  readonly state: EndpointState
}

/** A call's claim on a shared store: the cache's answer, read, or whether its lease is this worker's. */
interface CallClaimed {
  readonly hit: Option.Option<Effect.Effect<Completion, LlmError>>
  readonly taken: boolean
}

export interface LanguageModelShape {
  readonly roles: ReadonlyArray<string>
  /** The model name a role's requests go to (its first endpoint's), for records and cache keys. */
  readonly modelOf: (role: string) => string
  readonly complete: (role: string, request: ChatRequest, options?: CallOptions) => Effect.Effect<Completion, LlmError>
  readonly stats: Effect.Effect<ReadonlyArray<EndpointStats>>
  /** Where the spending limit stands, when the service has one. */
  readonly budget?: Effect.Effect<BudgetState> | undefined
}

/** Every stage and the evaluator talk to models through this service. */
export class LanguageModel extends Context.Tag("@fastcot/core/LanguageModel")<LanguageModel, LanguageModelShape>() {}

/** A request's prompt tokens, estimated before it is sent: four characters a token. */
const promptTokens = (request: ChatRequest): number =>
  Math.ceil(request.messages.reduce((n, m) => n + m.content.length, 0) / 4)

const costOf = (price: Price | undefined, r: ProviderResult): number | undefined => {
  if (price === undefined) return undefined
  const cached = price.cachedInput !== undefined ? Math.min(r.usage.cachedPromptTokens ?? 0, r.usage.promptTokens) : 0
  return (
    ((r.usage.promptTokens - cached) * price.input +
      cached * (price.cachedInput ?? price.input) +
      r.usage.completionTokens * price.output) /
    1e6
  )
}

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
    /** A hard spending limit on the calls sent (see `Budget`); cache hits are free. */
    readonly budget?: BudgetOptions | undefined
    /**
     * Told when the last endpoint of a role is stopped because its account cannot pay: the role's
     * calls then wait (as when paused) for the owner to stop the run with this message.
     */
    readonly onExhausted?: ((role: string, message: string) => void) | undefined
  } = {}
): Effect.Effect<LanguageModelShape, never, RunStore | Scope.Scope> =>
  Effect.gen(function* () {
    // Time from the Clock in context (a TestClock in tests), read in the synchronous callbacks below.
    const clock = yield* Effect.clock
    const store = yield* RunStore
    const states = new Map<string, Array<EndpointState>>()
    for (const [role, config] of Object.entries(roles)) {
      const list: Array<EndpointState> = []
      for (const endpoint of config.endpoints) {
        // Batch mode: the endpoint's calls go through its batch jobs (kept in the store).
        const wire = endpoint.provider.batch
        if (endpoint.batch !== undefined && wire !== undefined) {
          const batched = yield* makeBatchProvider(role, { ...endpoint.provider, batch: wire }, endpoint.batch, store)
          list.push(newEndpointState({ ...endpoint, provider: batched }, batched.batchStats))
        } else list.push(newEndpointState(endpoint))
      }
      states.set(role, list)
    }
    const inFlight = new Map<string, Deferred.Deferred<Completion, LlmError>>()
    const budget = defaults.budget !== undefined ? new Budget(defaults.budget) : undefined
    // Workers sharing a run keep to one budget: the workspace's spending is read again before
    // a call is reserved, at most once a second.
    const sharedSpending = defaults.budget?.workspaceSpending
    let lastSharedRead = Number.NEGATIVE_INFINITY
    const readSharedSpending =
      budget === undefined || sharedSpending === undefined
        ? Effect.void
        : Effect.suspend(() => {
            const now = clock.unsafeCurrentTimeMillis()
            if (now - lastSharedRead < 1_000) return Effect.void
            lastSharedRead = now
            return Effect.ignore(Effect.map(sharedSpending, (total) => budget.observeWorkspace(total)))
          })
    // A call's worst case for the budget: its prompt and its max_tokens, at the role's highest
    // price (the endpoint is chosen later, per attempt).
    const worstCase = (role: string, request: ChatRequest) => {
      const prompt = promptTokens(request)
      const completion = request.max_tokens ?? 0
      let usd = 0
      for (const s of states.get(role) ?? []) {
        const price = s.config.price
        if (price !== undefined) usd = Math.max(usd, (prompt * price.input + completion * price.output) / 1e6)
      }
      return { tokens: prompt + completion, usd }
    }

    // A role whose every endpoint's account cannot pay waits (as when paused) for its owner to stop the run.
    const exhaustedRoles = new Set<string>()
    const stopEndpoint = (role: string, list: Array<EndpointState>, s: EndpointState, message: string) => {
      s.exhausted ??= message
      if (list.every((x) => x.exhausted !== undefined) && !exhaustedRoles.has(role)) {
        exhaustedRoles.add(role)
        defaults.onExhausted?.(
          role,
          `every endpoint of the role \`${role}\` was stopped because its account cannot pay: ${message}`
        )
      }
    }

    // The hot path: one permit, the rate wait only when limits are set or the server's headers
    // asked for one, and the call.
    const callOnce = (s: EndpointState, request: ChatRequest, key: string) => {
      const configured = s.config.requestsPerMinute !== undefined || s.config.tokensPerMinute !== undefined
      const estimate = () => promptTokens(request) + (request.max_tokens ?? 512)
      const call = Effect.suspend(() => {
        s.stats.requests++
        const started = clock.unsafeCurrentTimeMillis()
        const answered = Effect.map(s.config.provider.call(request, key === "" ? undefined : { key }), (result) => {
          if (result.rateLimit !== undefined) holdFor(s, clock.unsafeCurrentTimeMillis(), result.rateLimit, estimate())
          adaptOnSuccess(s)
          return { result, latencyMs: clock.unsafeCurrentTimeMillis() - started }
        })
        if (s.window === undefined) return answered
        // An adaptive endpoint: the failure is a signal of load, for the window it was sent in.
        const epoch = s.window.sent()
        return Effect.tapError(answered, (error) =>
          Effect.sync(() => {
            if (error._tag === "RateLimited" && error.rateLimit !== undefined)
              holdFor(s, clock.unsafeCurrentTimeMillis(), error.rateLimit, estimate())
            adaptOnFailure(s, epoch, error._tag)
          })
        )
      })
      return s.permits.with(
        Effect.suspend(() => {
          const held = s.heldUntil - clock.unsafeCurrentTimeMillis()
          const waited = held > 0 ? Effect.zipRight(Effect.sleep(Duration.millis(held)), call) : call
          return configured
            ? Effect.zipRight(
                Effect.suspend(() => {
                  const waitMs = rateWait(s, clock.unsafeCurrentTimeMillis(), estimate())
                  return waitMs > 0 ? Effect.sleep(Duration.millis(waitMs)) : Effect.void
                }),
                waited
              )
            : waited
        })
      )
    }

    /** Each role's retry policy, made once (a schedule is a description; each call drives its own). */
    const schedules = new Map<string, Schedule.Schedule<unknown, LlmError>>()
    const scheduleOf = (role: string, config: RoleConfig) => {
      let schedule = schedules.get(role)
      if (schedule === undefined) {
        schedule = retrySchedule({
          maxAttempts: Math.max(1, config.maxAttempts ?? 6),
          backoffBaseMs: config.backoffBaseMs ?? 500,
          backoffMaxMs: config.backoffMaxMs ?? 30_000,
          maxRetryAfterMs: config.maxRetryAfterMs ?? 120_000
        })
        schedules.set(role, schedule)
      }
      return schedule
    }

    /**
     * A call on the role's best endpoint, retried by the role's policy (`retrySchedule`), each try
     * on the endpoint best placed then. An endpoint whose account cannot pay is stopped and the
     * same try goes to another (none left: the role waits for its owner, or fails).
     */
    const callWithRetries = (
      role: string,
      config: RoleConfig,
      list: Array<EndpointState>,
      request: ChatRequest,
      key: string
    ) => {
      const setAsideMs = config.setAsideMs ?? 15_000
      let attempt = 0
      let lastFailed: EndpointState | undefined
      const onEndpoint = (): Effect.Effect<TryResult, LlmError> => {
        if (exhaustedRoles.has(role))
          return defaults.onExhausted !== undefined
            ? Effect.never
            : Effect.fail(
                new QuotaExhausted({
                  endpoint: role,
                  status: 0,
                  message: `no endpoint of the role \`${role}\` can be paid for`
                })
              )
        const s = pickEndpoint(list, clock.unsafeCurrentTimeMillis())
        return Effect.matchEffect(callOnce(s, request, key), {
          onSuccess: ({ result, latencyMs }) => {
            s.consecutiveFailures = 0
            return Effect.succeed({ result, latencyMs, attempt, state: s })
          },
          onFailure: (error) => {
            s.stats.failed++
            if (error._tag === "QuotaExhausted") {
              stopEndpoint(role, list, s, error.message)
              // Another endpoint of the role may still be paid for; else the role waits or fails.
              return list.some((x) => x.exhausted === undefined) || defaults.onExhausted !== undefined
                ? onEndpoint()
                : Effect.fail(error)
            }
            if (error._tag === "RateLimited") s.stats.rateLimited++
            if (error._tag !== "RateLimited" && error._tag !== "BadRequest" && error._tag !== "Cancelled") {
              s.consecutiveFailures++
              if (list.length > 1 && s.consecutiveFailures >= 3)
                s.setAsideUntil = clock.unsafeCurrentTimeMillis() + setAsideMs
            }
            lastFailed = s
            return Effect.fail(error)
          }
        })
      }
      const tryOnce = Effect.suspend(() => {
        attempt++
        return onEndpoint()
      })
      // As `Effect.retry` with the role's schedule, but the schedule's driver is made only once a
      // try has failed (most calls succeed at once); a retry is counted on the endpoint that failed.
      const retried = (
        driver: Schedule.ScheduleDriver<unknown, LlmError, never>,
        error: LlmError
      ): Effect.Effect<TryResult, LlmError> =>
        Effect.matchEffect(driver.next(error), {
          onFailure: () => Effect.fail(error),
          onSuccess: () => {
            if (lastFailed) lastFailed.stats.retries++
            return Effect.catchAll(tryOnce, (again) => retried(driver, again))
          }
        })
      return Effect.catchAll(tryOnce, (error) =>
        Effect.flatMap(Schedule.driver(scheduleOf(role, config)), (driver) => retried(driver, error))
      )
    }

    /** A model call (with retries), its stats, and its answer stored in the cache unless it is off. */
    const fresh = (
      role: string,
      list: Array<EndpointState>,
      request: ChatRequest,
      model: string,
      mode: CacheMode,
      key: string
    ): Effect.Effect<Completion, LlmError> => {
      const call = Effect.flatMap(
        callWithRetries(role, roles[role]!, list, { ...request, model } as ChatRequest, key),
        ({ result: withLimits, latencyMs, attempt, state }) => {
          // The server's rate-limit state was used by the endpoint; it is no part of the answer.
          const result =
            withLimits.rateLimit === undefined ? withLimits : (({ rateLimit: _, ...answer }) => answer)(withLimits)
          const listCost = costOf(state.config.price, result)
          // A batch call costs the batch price; what it saved is counted.
          const costUsd =
            listCost === undefined || state.batch === undefined ? listCost : listCost * state.config.batch!.priceFactor
          if (state.batch !== undefined && listCost !== undefined) state.batch.savedUsd += listCost - costUsd!
          state.stats.succeeded++
          state.stats.promptTokens += result.usage.promptTokens
          state.stats.completionTokens += result.usage.completionTokens
          state.stats.costUsd += costUsd ?? 0
          state.stats.latencyMsTotal += latencyMs
          budget?.spend(result.usage.promptTokens + result.usage.completionTokens, costUsd ?? 0)
          store.recordSpend({
            role,
            model,
            promptTokens: result.usage.promptTokens,
            completionTokens: result.usage.completionTokens,
            costUsd: costUsd ?? 0
          })
          const completion = { ...result, latencyMs, cached: false, attempts: attempt, costUsd } satisfies Completion
          return mode === "off"
            ? Effect.succeed(completion)
            : store
                .cachePut({
                  key,
                  model,
                  value: JSON.stringify({ ...result, latencyMs }),
                  createdAt: new Date(clock.unsafeCurrentTimeMillis()).toISOString()
                })
                .pipe(
                  Effect.orElse(() => Effect.void),
                  Effect.as(completion)
                )
        }
      )
      // Past the budget, a call is held back like a paused one (the owner stops the run).
      const limited =
        budget === undefined
          ? call
          : Effect.zipRight(
              readSharedSpending,
              Effect.suspend(() => {
                const worst = worstCase(role, request)
                if (!budget.tryReserve(worst.tokens, worst.usd)) {
                  return defaults.budget?.whenReached === "fail"
                    ? Effect.fail(
                        new BudgetExhausted({
                          endpoint: role,
                          message: `not sent: the spending budget cannot pay for it (${describeSpent(budget.state)} spent)`
                        })
                      )
                    : Effect.never
                }
                return Effect.ensuring(
                  call,
                  Effect.sync(() => budget.release(worst.tokens, worst.usd))
                )
              })
            )
      // A refusal that repeats for this request is remembered, so that a rerun does not send it again.
      const remembered =
        mode === "off"
          ? limited
          : Effect.tapError(limited, (error) =>
              repeatsForRequest(error) && error._tag === "BadRequest"
                ? store
                    .cachePut({
                      key,
                      model,
                      value: JSON.stringify({
                        refused: {
                          status: error.status,
                          message: error.message,
                          at: new Date(clock.unsafeCurrentTimeMillis()).toISOString()
                        }
                      }),
                      createdAt: new Date(clock.unsafeCurrentTimeMillis()).toISOString()
                    })
                    .pipe(Effect.orElse(() => Effect.void))
                : Effect.void
            )
      return defaults.gate !== undefined ? Effect.zipRight(defaults.gate.await, remembered) : remembered
    }

    /** A cache entry as a call's answer (a refusal that repeats fails again); none when it cannot be read. */
    const answerOf = (
      list: Array<EndpointState>,
      entry: CacheEntry
    ): Option.Option<Effect.Effect<Completion, LlmError>> => {
      const value = decodeCached(entry.value)
      if (Option.isNone(value)) return Option.none()
      list[0]!.stats.cacheHits++
      const v = value.value
      if ("refused" in v) {
        return Option.some(
          Effect.fail(
            new BadRequest({
              endpoint: list[0]!.config.provider.id,
              status: v.refused.status,
              message: `${v.refused.message} (refused on ${v.refused.at}; not sent again while the request is the same)`
            })
          )
        )
      }
      return Option.some(Effect.succeed({ ...v, cached: true, attempts: 1, costUsd: 0 } satisfies Completion))
    }

    /** The cache's answer to a request, when it has one. */
    const cachedAnswer = (
      list: Array<EndpointState>,
      key: string
    ): Effect.Effect<Option.Option<Effect.Effect<Completion, LlmError>>> =>
      Effect.map(store.cacheGet(key).pipe(Effect.orElseSucceed(() => Option.none())), (hit) =>
        Option.flatMap(hit, (entry) => answerOf(list, entry))
      )

    /**
     * On a store that workers share, a call is leased under its cache key while it is in flight:
     * a worker about to send the same request waits for the other's answer to reach the cache
     * (or for its lease to end, when that worker stopped or died) instead of paying twice. The
     * look at the cache and the claim are one round trip (`RunStore.claimCall`).
     */
    const acrossWorkers = (
      list: Array<EndpointState>,
      key: string,
      call: Effect.Effect<Completion, LlmError>
    ): Effect.Effect<Completion, LlmError> => {
      const lease = `call:${key}`
      // A store that cannot say counts as free: the call goes out, as on one machine.
      const claimCall = store
        .claimCall(key, lease)
        .pipe(Effect.orElseSucceed((): CallClaim => ({ cached: Option.none(), taken: true })))
      // The cache's answer read once; an entry that cannot be read is no answer: the call is
      // claimed as on a miss.
      const claimed = Effect.flatMap(claimCall, (claim): Effect.Effect<CallClaimed> => {
        if (Option.isNone(claim.cached)) return Effect.succeed({ hit: Option.none(), taken: claim.taken })
        const hit = answerOf(list, claim.cached.value)
        return Option.isSome(hit)
          ? Effect.succeed({ hit, taken: claim.taken })
          : Effect.map(store.claim([lease]).pipe(Effect.orElseSucceed(() => new Set([lease]))), (taken) => ({
              hit,
              taken: taken.has(lease)
            }))
      })
      // One claim: the answer (from the cache or the call) when there is one or the lease was
      // ours, none when another worker holds it. The lease is given up however the call ends,
      // even if its caller is interrupted the moment the claim comes back (it is acquired
      // uninterruptibly).
      const claimOnce: Effect.Effect<Option.Option<Completion>, LlmError> = Effect.acquireUseRelease(
        claimed,
        (first) => {
          if (Option.isSome(first.hit)) return Effect.asSome(first.hit.value)
          if (!first.taken) return Effect.succeedNone
          // The claim's look may have missed an answer saved by the lease's last holder just
          // before it: look again, now that the lease is ours, before paying.
          return Effect.asSome(
            Effect.flatMap(cachedAnswer(list, key), (hit) => (Option.isSome(hit) ? hit.value : call))
          )
        },
        (first) => Effect.sync(() => first.taken && store.release([lease]))
      )
      // Held by another worker: wait for its answer to reach the cache, or for its lease to end,
      // outside the claim, so that a long wait is a loop rather than nested claims.
      const attempt: Effect.Effect<Completion, LlmError> = Effect.flatMap(claimOnce, (answer) =>
        Option.isSome(answer)
          ? Effect.succeed(answer.value)
          : Effect.zipRight(Effect.sleep(Duration.millis(200)), attempt)
      )
      return attempt
    }

    // Plain combinators rather than generators: this is the per-call hot path.
    const complete = (
      role: string,
      request: ChatRequest,
      options: CallOptions = {}
    ): Effect.Effect<Completion, LlmError> =>
      Effect.suspend(() => {
        const list = states.get(role)
        if (list === undefined || list.length === 0) {
          return Effect.fail(
            new BadRequest({ endpoint: role, status: 0, message: `no model is configured for the role \`${role}\`` })
          )
        }
        const model = request.model ?? list[0]!.config.provider.model
        const mode = options.cache ?? defaults.cache ?? "use"
        // With the cache off there is no key to make, nothing to look up and nothing to share.
        if (mode === "off") return fresh(role, list, request, model, mode, "")
        const key = cacheKey(model, request, options.sampleIndex ?? 0)
        if (mode === "refresh") return fresh(role, list, request, model, mode, key)
        const lookedUp = (hit: Option.Option<Effect.Effect<Completion, LlmError>>) => {
          if (Option.isSome(hit)) return hit.value
          // The same request already on its way: wait for it instead of paying twice.
          const pending = inFlight.get(key)
          if (pending !== undefined) {
            return Effect.map(Deferred.await(pending), (shared) => {
              list[0]!.stats.cacheHits++
              return { ...shared, cached: true, costUsd: 0 } satisfies Completion
            })
          }
          const deferred = Deferred.unsafeMake<Completion, LlmError>(FiberId.none)
          inFlight.set(key, deferred)
          // Whatever the outcome (an interruption too: the match is made while it is masked), the
          // requests waiting on this one get it.
          const settle = (exit: Exit.Exit<Completion, LlmError>) => {
            if (inFlight.get(key) === deferred) inFlight.delete(key)
            Deferred.unsafeDone(deferred, exit)
            return exit
          }
          const call = fresh(role, list, request, model, mode, key)
          return Effect.uninterruptibleMask((restore) =>
            Effect.matchCauseEffect(restore(store.shared ? acrossWorkers(list, key, call) : call), {
              onFailure: (cause) => settle(Exit.failCause(cause)),
              onSuccess: (completion) => settle(Exit.succeed(completion))
            })
          )
        }
        // On a store that workers share, the look at the cache is made with the call's claim.
        return store.shared ? lookedUp(Option.none()) : Effect.flatMap(cachedAnswer(list, key), lookedUp)
      })

    const stats = Effect.sync(() =>
      [...states.entries()].flatMap(([role, list]) =>
        list.map((s) => ({
          role,
          endpoint: s.config.provider.id,
          model: s.config.provider.model,
          setAside: s.setAsideUntil > clock.unsafeCurrentTimeMillis(),
          exhausted: s.exhausted,
          inFlight: s.permits.inUse,
          window: s.permits.size,
          ...s.stats,
          ...(s.batch === undefined ? {} : { batch: { ...s.batch.stats(), savedUsd: s.batch.savedUsd } })
        }))
      )
    )

    return {
      roles: Object.keys(roles),
      modelOf: (role) => states.get(role)?.[0]?.config.provider.model ?? role,
      complete,
      stats,
      budget: budget === undefined ? undefined : Effect.sync(() => budget.state)
    } satisfies LanguageModelShape
  })

export { cacheKey } from "./responseCache.js"
export { Permits } from "./permits.js"
export type { CacheMode, CallOptions, EndpointConfig, EndpointStats, Price, RoleConfig } from "./roles.js"
