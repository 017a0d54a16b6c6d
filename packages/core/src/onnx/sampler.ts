/** How the next token is chosen. temperature 0 (or doSample false) is greedy. */
export interface SamplingParams {
  readonly temperature: number
  readonly topP: number
  readonly topK: number
  readonly minP: number
  readonly repetitionPenalty: number
  readonly seed: number
}

export const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0, minP: 0, repetitionPenalty: 1, seed: 0 }

/** A small seeded generator (mulberry32): the same seed gives the same draws on every machine. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Candidates further than this below the best logit carry under e^-30 of its weight each. */
const CUTOFF = 30

/**
 * Chooses a token from one row of logits (modified in place by the repetition penalty). Sampling
 * looks only at tokens within e^-30 of the best one, sorted: exact for top-k / top-p / min-p up to
 * a neglected mass below 1e-8 even for a 150k vocabulary, and far cheaper than sorting everything.
 */
export const sampleToken = (
  logits: Float32Array,
  params: SamplingParams,
  seen: ReadonlySet<number>,
  random: () => number,
  allowed?: ReadonlySet<number>
): number => {
  if (params.repetitionPenalty !== 1) {
    for (const id of seen) {
      const v = logits[id]!
      logits[id] = v < 0 ? v * params.repetitionPenalty : v / params.repetitionPenalty
    }
  }
  if (allowed !== undefined) {
    // Guided decoding: only the allowed ids compete.
    let best = -1
    let bestV = -Infinity
    for (const id of allowed) if (logits[id]! > bestV) [bestV, best] = [logits[id]!, id]
    if (params.temperature <= 0 || allowed.size === 1) return best
    const ids = [...allowed]
    const weights = ids.map((id) => Math.exp((logits[id]! - bestV) / params.temperature))
    return pick(ids, weights, random)
  }
  let best = 0
  let bestV = -Infinity
  for (let i = 0; i < logits.length; i++) if (logits[i]! > bestV) [bestV, best] = [logits[i]!, i]
  if (params.temperature <= 0) return best
  const floor = bestV - CUTOFF * params.temperature
  const ids: Array<number> = []
  for (let i = 0; i < logits.length; i++) if (logits[i]! >= floor) ids.push(i)
  ids.sort((a, b) => logits[b]! - logits[a]!)
  let n = params.topK > 0 ? Math.min(params.topK, ids.length) : ids.length
  const probs = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) sum += probs[i] = Math.exp((logits[ids[i]!]! - bestV) / params.temperature)
  for (let i = 0; i < n; i++) probs[i]! /= sum
  if (params.minP > 0) {
    const min = params.minP * probs[0]!
    let m = 1
    while (m < n && probs[m]! >= min) m++
    n = m
  }
  if (params.topP < 1) {
    let cumulative = 0
    let m = 0
    while (m < n && cumulative < params.topP) cumulative += probs[m++]!
    n = Math.max(1, m)
  }
  return pick(ids.slice(0, n), Array.from(probs.subarray(0, n)), random)
}

const pick = (ids: ReadonlyArray<number>, weights: ReadonlyArray<number>, random: () => number): number => {
  let total = 0
  for (const w of weights) total += w
  let r = random() * total
  for (let i = 0; i < ids.length; i++) {
    r -= weights[i]!
    if (r <= 0) return ids[i]!
  }
  return ids[ids.length - 1]!
}

/** Token sequences a reply may take (one per allowed string), walked as a trie while decoding. */
export class ChoiceConstraint {
  private readonly sequences: ReadonlyArray<ReadonlyArray<number>>
  constructor(
    sequences: ReadonlyArray<ReadonlyArray<number>>,
    private readonly eos: number
  ) {
    this.sequences = sequences.filter((s) => s.length > 0)
  }
  /** The ids allowed after `prefix`; EOS once a whole choice is written. */
  allowed(prefix: ReadonlyArray<number>): Set<number> {
    const out = new Set<number>()
    for (const s of this.sequences) {
      if (s.length < prefix.length) continue
      let ok = true
      for (let i = 0; i < prefix.length && ok; i++) ok = s[i] === prefix[i]
      if (!ok) continue
      out.add(s.length === prefix.length ? this.eos : s[prefix.length]!)
    }
    if (out.size === 0) out.add(this.eos)
    return out
  }
}
