/**
 * Logits processors: changes to a row's next-token scores before sampling (as transformers.js's
 * `generation/logits_process`). Sampling's own filters (temperature, top-k/p, min-p, repetition
 * penalty, a choice constraint) live in `sampler.ts`.
 */

/** Forbids end-of-sequence tokens until `minNewTokens` are written (Hugging Face's min_new_tokens). */
export const suppressEosBelow = (
  logits: Float32Array,
  eosIds: ReadonlyArray<number>,
  generated: number,
  minNewTokens: number
): void => {
  if (generated < minNewTokens) for (const e of eosIds) logits[e] = -Infinity
}
