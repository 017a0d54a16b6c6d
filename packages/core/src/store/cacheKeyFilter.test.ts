import { describe, expect, it } from "vitest"
import { sha256Hex } from "../util/hash.js"
import { CACHE_KEY_FILTER_MAX_KEYS, loadCacheKeyFilter } from "./cacheKeyFilter.js"

describe("cache key filter", () => {
  const keys = (from: number, n: number) => Array.from({ length: n }, (_, i) => sha256Hex(`request ${from + i}`))

  it("never rules out a key it was given, loaded or added, and rules out nearly every other", () => {
    const loaded = keys(0, 50_000)
    const filter = loadCacheKeyFilter(loaded.length, () => loaded)!
    const added = keys(50_000, 950_000)
    for (const key of added) filter.add(key)
    // At its capacity (a million keys): no false negative, about 1 % false positives.
    expect(loaded.every((k) => filter.mightHave(k)) && added.every((k) => filter.mightHave(k))).toBe(true)
    const absent = keys(2_000_000, 100_000)
    const falsePositives = absent.filter((k) => filter.mightHave(k)).length / absent.length
    expect(falsePositives).toBeLessThan(0.02)
    expect(falsePositives).toBeGreaterThan(0)
  })

  it("is not built above its bound, and then nothing is ruled out", () => {
    let read = 0
    const filter = loadCacheKeyFilter(CACHE_KEY_FILTER_MAX_KEYS + 1, () => {
      read++
      return []
    })
    expect(filter).toBeUndefined()
    expect(read).toBe(0)
  })
})
