import type Database from "better-sqlite3"
import { lengthStats } from "../util/lengthStats.js"
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

/** A kept item's reasoning length before and after alignment, as a backend's query reads it. */
export interface TokenRow {
  readonly after: number
  readonly before: number
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
  readonly tokenRows: ReadonlyArray<TokenRow>
  readonly calls: ReadonlyArray<CallRow>
  readonly ledger: SpendTotals
  readonly imports: ReadonlyArray<ImportProgress>
  readonly running: RunLockHolder | null
  readonly workers: ReadonlyArray<WorkerView>
}

/** The kept items' reasoning lengths, the same SQL on SQLite and PostgreSQL. */
export const TOKEN_ROWS = `SELECT reasoning_tokens AS after,
    COALESCE(original_reasoning_tokens, reasoning_tokens) AS before, tokenizer
  FROM items WHERE fate = 'kept' AND reasoning_tokens IS NOT NULL`

const BUCKETS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, Infinity]
/** Reasoning-token lengths of the kept items, before and after alignment, with a histogram. */
export const tokenStatsOf = (rows: ReadonlyArray<TokenRow>): StoreStatus["tokens"] => {
  const before = rows.map((r) => Number(r.before))
  const after = rows.map((r) => Number(r.after))
  const sum = (xs: Array<number>) => xs.reduce((a, b) => a + b, 0)
  return {
    tokenizer: rows[0]?.tokenizer ?? null,
    before: lengthStats(before),
    after: lengthStats(after),
    ratio: rows.length > 0 && sum(before) > 0 ? sum(after) / sum(before) : null,
    histogram: BUCKETS.map((upTo, i) => {
      const lo = i === 0 ? -1 : BUCKETS[i - 1]!
      return {
        upTo: Number.isFinite(upTo) ? upTo : null,
        before: before.filter((x) => x > lo && x <= upTo).length,
        after: after.filter((x) => x > lo && x <= upTo).length
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
    tokens: tokenStatsOf(parts.tokenRows),
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
