import * as Data from "effect/Data"

/** Fields every model error carries; `endpoint` is a redacted URL, never one with credentials. */
interface Base {
  readonly endpoint: string
  readonly message: string
}

export class RateLimited extends Data.TaggedError("RateLimited")<Base & { readonly retryAfterMs?: number | undefined }> {}
export class ServerError extends Data.TaggedError("ServerError")<Base & { readonly status: number }> {}
export class Timeout extends Data.TaggedError("Timeout")<Base & { readonly afterMs: number }> {}
export class ConnectionError extends Data.TaggedError("ConnectionError")<Base> {}
export class BadRequest extends Data.TaggedError("BadRequest")<Base & { readonly status: number }> {}
export class BadResponse extends Data.TaggedError("BadResponse")<Base> {}
export class Cancelled extends Data.TaggedError("Cancelled")<Base> {}
/** The call was not sent: the spending budget could not pay for its worst case (`endpoint` is the role). */
export class BudgetExhausted extends Data.TaggedError("BudgetExhausted")<Base> {}

export type LlmError = RateLimited | ServerError | Timeout | ConnectionError | BadRequest | BadResponse | Cancelled | BudgetExhausted

/** Failures worth another try: the server or the network may do better next time. */
export const isRetryable = (e: LlmError): boolean =>
  e._tag === "RateLimited" || e._tag === "ServerError" || e._tag === "Timeout" || e._tag === "ConnectionError" || e._tag === "BadResponse"

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
