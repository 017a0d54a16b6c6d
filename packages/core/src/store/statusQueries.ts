import type Database from "better-sqlite3"
import { lengthStatsOfCounts } from "../util/lengthStats.js"
import type { RunLockHolder } from "./errors.js"
import type { ImportProgress, SpendTotals, StoreStatus, WorkerView } from "./RunStore.js"

/** An `imports` row as either backend returns it (SQLite's `done` is 0/1, PostgreSQL's a boolean). */
export const importProgressOf = (row: Record<string, unknown>): ImportProgress => ({
  key: String(row["key"]),
  path: String(row["path"]),
  rows: Number(row["rows"]),
  offset: Number(row["offset"]),
  line: Number(row["line"]),
  problemsAdded: Number(row["problems_added"]),
  itemsAdded: Number(row["items_added"]),
  duplicates: Number(row["duplicates"]),
  rejected: Number(row["rejected"]),
  done: row["done"] === true || Number(row["done"]) === 1
})

/** Rows counted by one key column (`k`, `n`): counts per fate, stage, reason. */
export const countBy = (db: Database.Database, sql: string): Record<string, number> =>
  countsOf(db.prepare(sql).all() as Array<{ k: string | null; n: number }>)

/** `{k, n}` rows as a record; rows without a key are left out. */
export const countsOf = (rows: ReadonlyArray<{ readonly k: string | null; readonly n: number | string }>) => {
  const out: Record<string, number> = {}
  for (const row of rows) if (row.k !== null) out[row.k] = Number(row.n)
  return out
}

/** Kept items counted by one reasoning length (`value`), as a backend's query reads them. */
export interface LengthCount {
  readonly value: number | string
  readonly n: number | string
}

/** The kept items' reasoning lengths, counted per length before and after alignment. */
export interface TokenCounts {
  readonly after: ReadonlyArray<LengthCount>
  readonly before: ReadonlyArray<LengthCount>
  readonly tokenizer: string | null
}

/** The LLM calls recorded in items' rounds, summed per role, as a backend's query reads them. */
export interface CallRow {
  readonly role: string
  readonly calls: number
  readonly cached: number
  readonly prompt: number | null
  readonly completion: number | null
  readonly cost: number | null
  readonly paid: number | null
}

/** Reviewed items by decision and reviewer. */
export interface ReviewRow {
  readonly decision: string
  readonly reviewer: string | null
  readonly n: number | string
}

/** The review counts' query, the same SQL on SQLite and PostgreSQL. */
export const REVIEW_ROWS = `SELECT review AS decision, reviewer, COUNT(*) AS n FROM items
  WHERE review IS NOT NULL GROUP BY review, reviewer`

/** What a backend reads for `status`; `statusOf` turns it into the report. */
export interface StatusParts {
  readonly problems: number
  readonly items: number
  readonly fates: Record<string, number>
  readonly stages: Record<string, number>
  readonly keptAs: Record<string, number>
  readonly dropReasons: Record<string, number>
  readonly failReasons: Record<string, number>
  readonly domains: Record<string, number>
  readonly flags: Record<string, number>
  readonly reviews: ReadonlyArray<ReviewRow>
  readonly tokens: TokenCounts
  readonly calls: ReadonlyArray<CallRow>
  readonly ledger: SpendTotals
  readonly imports: ReadonlyArray<ImportProgress>
  readonly running: RunLockHolder | null
  readonly workers: ReadonlyArray<WorkerView>
}

/**
 * The kept items' reasoning lengths, counted per length (after alignment, then before), and one
 * kept item's tokenizer: the same SQL on SQLite and PostgreSQL, each read along `items_tokens`.
 */
export const TOKEN_COUNTS = {
  after: `SELECT reasoning_tokens AS value, COUNT(*) AS n FROM items
    WHERE fate = 'kept' AND reasoning_tokens IS NOT NULL GROUP BY reasoning_tokens`,
  before: `SELECT COALESCE(original_reasoning_tokens, reasoning_tokens) AS value, COUNT(*) AS n FROM items
    WHERE fate = 'kept' AND reasoning_tokens IS NOT NULL GROUP BY 1`,
  tokenizer: `SELECT tokenizer FROM items WHERE fate = 'kept' AND reasoning_tokens IS NOT NULL LIMIT 1`
} as const

const BUCKETS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, Infinity]
/** Reasoning-token lengths of the kept items, before and after alignment, with a histogram. */
export const tokenStatsOf = (counts: TokenCounts): StoreStatus["tokens"] => {
  const numbers = (rows: ReadonlyArray<LengthCount>) => rows.map((r) => ({ value: Number(r.value), n: Number(r.n) }))
  const before = numbers(counts.before)
  const after = numbers(counts.after)
  const beforeStats = lengthStatsOfCounts(before)
  const afterStats = lengthStatsOfCounts(after)
  const within = (rows: ReadonlyArray<{ value: number; n: number }>, lo: number, upTo: number) =>
    rows.reduce((k, r) => (r.value > lo && r.value <= upTo ? k + r.n : k), 0)
  return {
    tokenizer: counts.tokenizer,
    before: beforeStats,
    after: afterStats,
    ratio: afterStats.count > 0 && beforeStats.total > 0 ? afterStats.total / beforeStats.total : null,
    histogram: BUCKETS.map((upTo, i) => {
      const lo = i === 0 ? -1 : BUCKETS[i - 1]!
      return {
        upTo: Number.isFinite(upTo) ? upTo : null,
        before: within(before, lo, upTo),
        after: within(after, lo, upTo)
      }
    }).filter((b) => b.before > 0 || b.after > 0)
  }
}

/** Review counts from the rows `REVIEW_ROWS` reads. */
export const reviewStatsOf = (rows: ReadonlyArray<ReviewRow>): StoreStatus["reviews"] => {
  const counts = { reviewed: 0, accepted: 0, rejected: 0, edited: 0 }
  const byReviewer: Record<string, number> = {}
  for (const row of rows) {
    const n = Number(row.n)
    counts.reviewed += n
    if (row.decision === "accepted" || row.decision === "rejected" || row.decision === "edited")
      counts[row.decision] += n
    const who = row.reviewer ?? "unknown"
    byReviewer[who] = (byReviewer[who] ?? 0) + n
  }
  return { ...counts, byReviewer }
}

/** The status report from what a backend read: the same arithmetic whatever the database. */
export const statusOf = (parts: StatusParts): StoreStatus => {
  const { fates, stages, calls } = parts
  const byRole: Record<string, { calls: number; promptTokens: number; completionTokens: number; costUsd: number }> = {}
  for (const c of calls)
    byRole[c.role] = {
      calls: Number(c.calls),
      promptTokens: Number(c.prompt ?? 0),
      completionTokens: Number(c.completion ?? 0),
      costUsd: Number(c.cost ?? 0)
    }
  const sum = (f: (c: CallRow) => number | null) => calls.reduce((n, c) => n + Number(f(c) ?? 0), 0)
  const kept = fates["kept"] ?? 0
  return {
    problems: parts.problems,
    items: parts.items,
    pending: fates["pending"] ?? 0,
    kept,
    dropped: fates["dropped"] ?? 0,
    failed: fates["failed"] ?? 0,
    stages: {
      collect: stages["collect"] ?? 0,
      verify: stages["verify"] ?? 0,
      align: stages["align"] ?? 0,
      done: stages["done"] ?? 0
    },
    fates: {
      pending: fates["pending"] ?? 0,
      kept,
      dropped: fates["dropped"] ?? 0,
      failed: fates["failed"] ?? 0
    },
    keptAs: parts.keptAs,
    dropReasons: parts.dropReasons,
    failReasons: parts.failReasons,
    domains: parts.domains,
    flags: parts.flags,
    reviews: reviewStatsOf(parts.reviews),
    tokens: tokenStatsOf(parts.tokens),
    llm: {
      calls: sum((c) => c.calls),
      cachedCalls: sum((c) => c.cached),
      promptTokens: sum((c) => c.prompt),
      completionTokens: sum((c) => c.completion),
      costUsd: sum((c) => c.cost),
      paidTokens: sum((c) => c.paid),
      ledger: parts.ledger,
      byRole,
      costPerKeptItemUsd: kept > 0 ? sum((c) => c.cost) / kept : null,
      tokensPerKeptItem: kept > 0 ? (sum((c) => c.prompt) + sum((c) => c.completion)) / kept : null
    },
    imports: parts.imports.map((p) => ({
      path: p.path,
      rows: p.rows,
      problemsAdded: p.problemsAdded,
      rejected: p.rejected,
      done: p.done
    })),
    running: parts.running,
    workers: parts.workers
  }
}
