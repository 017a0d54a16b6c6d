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
