import { describe, expect, it } from "vitest"
import { lengthStats, lengthStatsOfCounts } from "./lengthStats.js"

describe("length statistics", () => {
  it("reads the same from counted lengths as from the lengths written out", () => {
    let seed = 7
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
    for (const size of [1, 2, 3, 10, 101, 1000]) {
      const values = Array.from({ length: size }, () => next() % 50)
      const counts = new Map<number, number>()
      for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
      const counted = [...counts].map(([value, n]) => ({ value, n }))
      expect(lengthStatsOfCounts(counted)).toEqual(lengthStats(values))
    }
    expect(lengthStatsOfCounts([])).toEqual(lengthStats([]))
    expect(lengthStatsOfCounts([{ value: 5, n: 0 }])).toEqual(lengthStats([]))
  })
})
