/** A server's rate-limit headers: requests and tokens left in the current window, and when each window resets. */
export interface RateLimitState {
  readonly remainingRequests?: number | undefined
  readonly resetRequestsMs?: number | undefined
  readonly remainingTokens?: number | undefined
  readonly resetTokensMs?: number | undefined
}
