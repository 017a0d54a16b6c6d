import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import { isRetryable, type LlmError } from "./errors.js"

/** How a role retries a failed call (the role's settings; see `RoleConfig`). */
export interface RetrySettings {
  /** Tries per request, the first included. */
  readonly maxAttempts: number
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  /** The longest Retry-After honoured. */
  readonly maxRetryAfterMs: number
}

/**
 * The retry policy as a Schedule over the call's errors: only retryable errors are retried, at
 * most `maxAttempts - 1` times; the wait doubles from `backoffBaseMs` up to `backoffMaxMs`, and is
 * drawn between half of it and all of it (so that callers failing together do not retry together);
 * a rate limit's Retry-After, when the server gives one, is waited instead (up to
 * `maxRetryAfterMs`).
 */
export const retrySchedule = (settings: RetrySettings): Schedule.Schedule<unknown, LlmError> =>
  Schedule.exponential(Duration.millis(settings.backoffBaseMs)).pipe(
    Schedule.modifyDelay((_, delay) => Duration.min(delay, Duration.millis(settings.backoffMaxMs))),
    Schedule.jitteredWith({ min: 0.5, max: 1 }),
    Schedule.intersect(Schedule.recurs(Math.max(0, settings.maxAttempts - 1))),
    Schedule.zipRight(Schedule.identity<LlmError>()),
    Schedule.whileInput(isRetryable),
    Schedule.modifyDelay((error, delay) =>
      error._tag === "RateLimited" && error.retryAfterMs !== undefined
        ? Duration.millis(Math.min(settings.maxRetryAfterMs, error.retryAfterMs))
        : delay
    )
  )
