import { BloomFilter } from "bloomfilter"

/** Above this many cached answers no filter is built (its load would hold up a run's start). */
export const CACHE_KEY_FILTER_MAX_KEYS = 5_000_000

/** Room for this many keys at least, so that a run's new answers fit without raising the error rate. */
const MIN_CAPACITY = 1_000_000
/** 10 bits and 7 hashes a key: about 1 % false positives at capacity. */
const BITS_PER_KEY = 10
const HASHES = 7

/**
 * Which LLM cache keys a store may hold: `mightHave` is false only for a key never added, so a
 * lookup it rules out is a miss without a read; true may be wrong (about 1 % of absent keys at
 * capacity, more past it), and then the store is read as before.
 */
export interface CacheKeyFilter {
  readonly mightHave: (key: string) => boolean
  readonly add: (key: string) => void
}

/**
 * A filter of `keys` (`count` of them), with room for as many again (a million at least); none
 * above `CACHE_KEY_FILTER_MAX_KEYS`.
 */
export const loadCacheKeyFilter = (count: number, keys: () => Iterable<string>): CacheKeyFilter | undefined => {
  if (count > CACHE_KEY_FILTER_MAX_KEYS) return undefined
  const bloom = new BloomFilter(Math.max(2 * count, MIN_CAPACITY) * BITS_PER_KEY, HASHES)
  for (const key of keys()) bloom.add(key)
  return { mightHave: (key) => bloom.test(key), add: (key) => bloom.add(key) }
}
