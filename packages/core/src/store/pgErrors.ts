import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"

/**
 * The SQLSTATE of a driver error, when the server gave one. Node's own error codes (EPIPE,
 * ECONNRESET) are not SQLSTATEs: no class of those begins with E.
 */
export const sqlState = (e: SqlError): string | undefined => {
  const code = (e.cause as { code?: unknown } | undefined)?.code
  return typeof code === "string" && /^[0-9A-DF-Z][0-9A-Z]{4}$/.test(code) ? code : undefined
}

/**
 * Whether a statement may succeed if tried again: the connection failed (no SQLSTATE: refused,
 * reset, cut, timed out), the server is restarting or shutting down (class 57P), the connection
 * broke (class 08), or the transaction lost a serialization race or a deadlock (40001, 40P01).
 * Constraint violations and bad statements are not.
 */
export const isTransient = (e: SqlError): boolean => {
  const state = sqlState(e)
  if (state === undefined) return true
  return state.startsWith("08") || state.startsWith("57P") || state === "40001" || state === "40P01"
}

/** A driver error as a person reads it: the driver's own message and the server's. */
export const describeSqlError = (e: SqlError): string => {
  const cause = e.cause instanceof Error ? e.cause.message : undefined
  const state = sqlState(e)
  return cause !== undefined && cause !== e.message
    ? `${e.message}: ${cause}${state !== undefined ? ` (SQLSTATE ${state})` : ""}`
    : e.message
}

/**
 * How a statement that failed transiently is retried: from 100 ms, doubling up to 2 s, for about
 * 30 s in all (a server restart or a short network cut), then the error stands.
 */
export const transientRetry = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.modifyDelay((_, d) => Duration.min(d, Duration.seconds(2))),
  Schedule.upTo(Duration.seconds(30))
)
