import type Database from "better-sqlite3"
import { lengthStats } from "../util/lengthStats.js"

/** Rows counted by one key column (`k`, `n`): counts per fate, stage, reason. */
export const countBy = (db: Database.Database, sql: string): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const row of db.prepare(sql).all() as Array<{ k: string | null; n: number }>) {
    if (row.k !== null) out[row.k] = row.n
  }
  return out
}

const BUCKETS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, Infinity]
/** Reasoning-token lengths of the kept items, before and after alignment, with a histogram. */
export const tokenStats = (db: Database.Database) => {
  const rows = db
    .prepare(
      `SELECT json_extract(data, '$.trace.tokens.reasoning') AS after,
              COALESCE(json_extract(data, '$.original.tokens.reasoning'), json_extract(data, '$.trace.tokens.reasoning')) AS before,
              json_extract(data, '$.trace.tokens.tokenizer') AS tokenizer
       FROM items WHERE fate = 'kept' AND json_extract(data, '$.trace.tokens.reasoning') IS NOT NULL`
    )
    .all() as Array<{ after: number; before: number; tokenizer: string }>
  const before = rows.map((r) => r.before)
  const after = rows.map((r) => r.after)
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
