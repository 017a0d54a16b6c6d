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

/** The statistics of `values`. */
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

/**
 * The same statistics from counted values (`n` lengths equal to `value`), as a `GROUP BY` reads
 * them: equal to `lengthStats` of the values written out, without holding them.
 */
export const lengthStatsOfCounts = (
  counts: ReadonlyArray<{ readonly value: number; readonly n: number }>
): LengthStats => {
  const sorted = counts.filter((c) => c.n > 0).sort((a, b) => a.value - b.value)
  const count = sorted.reduce((k, c) => k + c.n, 0)
  if (count === 0) return { count: 0, min: 0, mean: 0, median: 0, p90: 0, max: 0, total: 0 }
  const total = sorted.reduce((t, c) => t + c.value * c.n, 0)
  const at = (q: number) => {
    const index = Math.min(count - 1, Math.floor(q * (count - 1) + 0.5))
    let seen = 0
    for (const c of sorted) {
      seen += c.n
      if (index < seen) return c.value
    }
    return sorted[sorted.length - 1]!.value
  }
  return {
    count,
    min: sorted[0]!.value,
    mean: Math.round((total / count) * 10) / 10,
    median: at(0.5),
    p90: at(0.9),
    max: sorted[sorted.length - 1]!.value,
    total
  }
}
