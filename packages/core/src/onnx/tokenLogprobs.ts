/** A generated token's log-probability under the model, and the `top` most likely tokens at its step. */
export interface TokenLogprob {
  readonly id: number
  readonly logprob: number
  readonly top: ReadonlyArray<{ readonly id: number; readonly logprob: number }>
}

/**
 * Log-probabilities of one step's raw logits (before sampling settings or constraints, as vLLM
 * reports them by default): the chosen token's, and the `k` largest.
 */
export const tokenLogprob = (logits: Float32Array, chosen: number, k: number): TokenLogprob => {
  let max = Number.NEGATIVE_INFINITY
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!
  let sum = 0
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max)
  const lse = max + Math.log(sum)
  // The k largest by one pass over a small sorted list (k is at most 20).
  const top: Array<{ id: number; logprob: number }> = []
  if (k > 0) {
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i]!
      if (top.length === k && v <= top[k - 1]!.logprob) continue
      let at = top.length
      while (at > 0 && top[at - 1]!.logprob < v) at--
      top.splice(at, 0, { id: i, logprob: v })
      if (top.length > k) top.pop()
    }
  }
  return {
    id: chosen,
    logprob: logits[chosen]! - lse,
    top: top.map((t) => ({ id: t.id, logprob: t.logprob - lse }))
  }
}
