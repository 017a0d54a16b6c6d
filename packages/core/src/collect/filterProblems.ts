import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { mapRow } from "../import/layout.js"
import { formatFromPath, readRows, START } from "../import/readers.js"
import type { Problem } from "../schema/problem.js"
import { type ProblemFlag, RunStore } from "../store/RunStore.js"
import type { StoreError } from "../store/errors.js"
import { ImportError } from "../import/importFile.js"

export interface FilterSettings {
  readonly dedup: boolean
  /** Estimated Jaccard similarity of word 5-gram sets above which two problems are near-duplicates. */
  readonly nearDuplicateThreshold: number
  /** Benchmark files (any import format) whose problems must not be trained on. */
  readonly benchmarks: ReadonlyArray<string>
  /** Word n-gram size for benchmark overlap (open-r1 uses 8). */
  readonly ngram: number
}

export interface FilterReport {
  readonly problems: number
  /** Problems left out, whatever their flag: the sum of the counts below. */
  readonly flagged: number
  readonly duplicates: number
  readonly nearDuplicates: number
  readonly contaminated: number
  /** Problems no trace of which can be verified: no reference answer (no tests, for code). */
  readonly noReference: number
  readonly benchmarkProblems: number
  /** Up to 20 examples per flag, for the report. */
  readonly examples: ReadonlyArray<ProblemFlag>
}

/** Lowercase words of a question, LaTeX and punctuation reduced to spaces. */
export const words = (text: string): Array<string> =>
  text
    .toLowerCase()
    .replace(/\\[a-z]+/g, " ")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim()
    .split(" ")
    .filter((w) => w !== "")

const fnv = (s: string, seed: number): number => {
  let h = (2166136261 ^ seed) >>> 0
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0
  return h
}

const ngrams = (ws: ReadonlyArray<string>, n: number): Array<string> => {
  if (ws.length < n) return ws.length > 0 ? [ws.join(" ")] : []
  const out: Array<string> = []
  for (let i = 0; i + n <= ws.length; i++) out.push(ws.slice(i, i + n).join(" "))
  return out
}

const PERMUTATIONS = 64
const BANDS = 16
const ROWS = PERMUTATIONS / BANDS

/** A MinHash signature of a set of shingles: 64 minima of seeded hashes. */
export const minhash = (shingles: ReadonlyArray<string>): Uint32Array => {
  const sig = new Uint32Array(PERMUTATIONS).fill(0xffffffff)
  for (const s of shingles) {
    const base = fnv(s, 0)
    const step = fnv(s, 0x9e3779b9) | 1
    for (let k = 0; k < PERMUTATIONS; k++) {
      const h = (base + Math.imul(k, step)) >>> 0
      if (h < sig[k]!) sig[k] = h
    }
  }
  return sig
}

/**
 * Band `b` of a signature as a Map key: the band's number and its rows' 32-bit values as 16-bit
 * character pairs (exact, and a ninth of the decimal text's length to build and hash).
 */
const bandKey = (sig: Uint32Array, b: number): string => {
  let key = String.fromCharCode(b)
  for (let r = b * ROWS; r < (b + 1) * ROWS; r++) key += String.fromCharCode(sig[r]! >>> 16, sig[r]! & 0xffff)
  return key
}

const similarity = (a: Uint32Array, b: Uint32Array): number => {
  let same = 0
  for (let k = 0; k < PERMUTATIONS; k++) if (a[k] === b[k]) same++
  return same / PERMUTATIONS
}

/** Questions of a benchmark file, read with the import layouts (so any supported format works). */
const benchmarkQuestions = (file: string) =>
  Effect.tryPromise({
    try: async () => {
      const format = formatFromPath(file)
      if (format === undefined) throw new Error("cannot tell the format from the file name")
      const out: Array<string> = []
      for await (const batch of readRows(format, file, START, 2000)) {
        for (const row of batch.rows) {
          if (row.error !== undefined) continue
          const mapped = mapRow(row.value, row.line, { map: {}, file }, "")
          if (Either.isRight(mapped)) out.push(mapped.right.problem.question)
        }
      }
      return out
    },
    catch: (e) => new ImportError({ file, message: `cannot read the benchmark: ${(e as Error).message}` })
  })

/** Why no trace of `p` could be verified, when none could: code without tests, any other without an answer. */
const missingReference = (p: Problem): string | undefined =>
  p.domain === "code"
    ? (p.tests?.length ?? 0) === 0
      ? "a code problem without tests"
      : undefined
    : (p.answer ?? "").trim() === ""
      ? "no reference answer"
      : undefined

/**
 * Flags problems to leave out: problems sharing a word n-gram with a benchmark's problems
 * (decontamination), problems without a reference (no trace of theirs could be verified, so no
 * call is paid for one), exact duplicates (same normalised question) and near-duplicates (MinHash
 * over word 5-grams, LSH with 16 bands of 4). Of duplicates, the earliest problem by id with a
 * reference is kept. The flags replace the previous pass's, so the filter is idempotent.
 */
export const filterProblems = (
  settings: FilterSettings
): Effect.Effect<FilterReport, StoreError | ImportError, RunStore> =>
  Effect.gen(function* () {
    const store = yield* RunStore
    const benchmarkGrams = new Set<string>()
    let benchmarkProblems = 0
    for (const file of settings.benchmarks) {
      const questions = yield* benchmarkQuestions(file)
      benchmarkProblems += questions.length
      for (const q of questions) for (const g of ngrams(words(q), settings.ngram)) benchmarkGrams.add(g)
    }
    const exact = new Map<string, string>()
    const buckets = new Map<string, string>()
    const signatures = new Map<string, Uint32Array>()
    const flags: Array<ProblemFlag> = []
    let count = 0
    let afterId: string | undefined
    for (;;) {
      const page: ReadonlyArray<Problem> = yield* store.listProblems({ afterId, limit: 1000 })
      if (page.length === 0) break
      afterId = page[page.length - 1]!.id
      for (const p of page) {
        count++
        const ws = words(p.question)
        if (benchmarkGrams.size > 0) {
          const hit = ngrams(ws, settings.ngram).find((g) => benchmarkGrams.has(g))
          if (hit !== undefined) {
            flags.push({
              problemId: p.id,
              flag: "contaminated",
              detail: `shares the ${settings.ngram}-gram "${hit}" with a benchmark problem`
            })
            continue
          }
        }
        const missing = missingReference(p)
        if (missing !== undefined) {
          flags.push({ problemId: p.id, flag: "no-reference", detail: missing })
          continue
        }
        if (!settings.dedup) continue
        const key = ws.join(" ")
        const first = exact.get(key)
        if (first !== undefined) {
          flags.push({ problemId: p.id, flag: "duplicate", detail: `the same question as ${first}` })
          continue
        }
        exact.set(key, p.id)
        const sig = minhash(ngrams(ws, 5))
        let near: string | undefined
        // The bands no earlier problem has: this one becomes their bucket's first, if it is kept.
        const unclaimed: Array<string> = []
        for (let b = 0; b < BANDS; b++) {
          const band = bandKey(sig, b)
          const other = buckets.get(band)
          if (other === undefined) unclaimed.push(band)
          else if (near === undefined && similarity(sig, signatures.get(other)!) >= settings.nearDuplicateThreshold)
            near = other
        }
        if (near !== undefined) {
          flags.push({
            problemId: p.id,
            flag: "near-duplicate",
            detail: `estimated similarity ≥ ${settings.nearDuplicateThreshold} with ${near}`
          })
          continue
        }
        signatures.set(p.id, sig)
        for (const band of unclaimed) buckets.set(band, p.id)
      }
    }
    yield* store.setProblemFlags(flags)
    const by = (f: ProblemFlag["flag"]) => flags.filter((x) => x.flag === f)
    return {
      problems: count,
      flagged: flags.length,
      duplicates: by("duplicate").length,
      nearDuplicates: by("near-duplicate").length,
      contaminated: by("contaminated").length,
      noReference: by("no-reference").length,
      benchmarkProblems,
      examples: [
        ...by("duplicate").slice(0, 20),
        ...by("near-duplicate").slice(0, 20),
        ...by("contaminated").slice(0, 20),
        ...by("no-reference").slice(0, 20)
      ]
    } satisfies FilterReport
  })
