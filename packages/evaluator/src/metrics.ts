import * as Schema from "effect/Schema"
/** Unbiased pass@k = 1 − C(n−c, k)/C(n, k), as a product; k is capped at the samples drawn. */
export const passAtK = (n: number, c: number, k: number): number => {
  const kk = Math.min(k, n)
  if (n - c < kk) return 1
  let miss = 1
  for (let i = n - c + 1; i <= n; i++) miss *= 1 - kk / i
  return 1 - miss
}

/** A benchmark's (or a group's) scores, as results.json records them (a Schema: reports read it back). */
export const Summary = Schema.Struct({
  items: Schema.Number,
  samples: Schema.Number,
  /** avg@k: the mean over items of the fraction of correct samples (pass@1). */
  accuracy: Schema.Number,
  /** 95% confidence half-width of the accuracy (normal approximation over items: 1.96 × stderr). */
  ci95: Schema.Number,
  /** Standard error of avg@k over items (absent in results written before it was recorded). */
  stderr: Schema.optional(Schema.Number),
  passAtK: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /** maj@k: an item counts when its most frequent answer (by the grader's key) is right. */
  majAtK: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number })),
  noAnswer: Schema.Number,
  truncated: Schema.Number,
  meanOutputTokens: Schema.Number,
  medianOutputTokens: Schema.Number,
  meanReasoningTokens: Schema.optional(Schema.Number)
})
export type Summary = typeof Summary.Type

export interface SampleOutcome {
  readonly itemId: string
  readonly correct: boolean
  /** The answer in one spelling (majority voting); absent when there is none. */
  readonly key?: string | undefined
  readonly noAnswer: boolean
  readonly truncated: boolean
  readonly outputTokens: number
  readonly reasoningTokens?: number | undefined
}

export const summarise = (outcomes: ReadonlyArray<SampleOutcome>): Summary => {
  const byItem = new Map<string, Array<SampleOutcome>>()
  for (const o of outcomes) byItem.set(o.itemId, [...(byItem.get(o.itemId) ?? []), o])
  const perItem = [...byItem.values()].map((s) => s.filter((x) => x.correct).length / s.length)
  const n = perItem.length
  const accuracy = n > 0 ? perItem.reduce((a, b) => a + b, 0) / n : 0
  const variance = n > 1 ? perItem.reduce((a, b) => a + (b - accuracy) ** 2, 0) / (n - 1) : 0
  const k = Math.min(...[...byItem.values()].map((s) => s.length))
  const pass: Record<string, number> = {}
  for (const kk of [1, 2, 4, 8, 16, 32, 64].filter((x) => x <= k)) {
    pass[`pass@${kk}`] =
      [...byItem.values()].reduce((a, s) => a + passAtK(s.length, s.filter((x) => x.correct).length, kk), 0) /
      Math.max(1, n)
  }
  const maj: Record<string, number> = {}
  if (k > 1)
    maj[`maj@${k}`] = [...byItem.values()].reduce((a, s) => a + (majorityCorrect(s) ? 1 : 0), 0) / Math.max(1, n)
  const tokens = outcomes.map((o) => o.outputTokens).sort((a, b) => a - b)
  const reasoning = outcomes.filter((o) => o.reasoningTokens !== undefined)
  return {
    items: n,
    samples: outcomes.length,
    accuracy,
    ci95: n > 1 ? 1.96 * Math.sqrt(variance / n) : 0,
    stderr: n > 1 ? Math.sqrt(variance / n) : 0,
    passAtK: pass,
    ...(k > 1 ? { majAtK: maj } : {}),
    noAnswer: outcomes.filter((o) => o.noAnswer).length,
    truncated: outcomes.filter((o) => o.truncated).length,
    meanOutputTokens: tokens.length > 0 ? tokens.reduce((a, b) => a + b, 0) / tokens.length : 0,
    medianOutputTokens: tokens.length > 0 ? tokens[Math.floor((tokens.length - 1) / 2)]! : 0,
    meanReasoningTokens:
      reasoning.length > 0 ? reasoning.reduce((a, o) => a + o.reasoningTokens!, 0) / reasoning.length : undefined
  }
}

/** Whether the most frequent answer among an item's samples is right (ties: the first seen; no answer never wins). */
const majorityCorrect = (samples: ReadonlyArray<SampleOutcome>): boolean => {
  const votes = new Map<string, { count: number; correct: boolean }>()
  for (const s of samples) {
    if (s.key === undefined || s.noAnswer) continue
    const v = votes.get(s.key) ?? { count: 0, correct: false }
    votes.set(s.key, { count: v.count + 1, correct: v.correct || s.correct })
  }
  let best: { count: number; correct: boolean } | undefined
  for (const v of votes.values()) if (best === undefined || v.count > best.count) best = v
  return best?.correct ?? false
}
