import type Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import { StoreError } from "./errors.js"

/**
 * Group commit: writes made in the same turn of the event loop share one transaction, and each
 * caller resumes only after it has committed (durable before it returns). Should the shared
 * transaction fail, each entry is written on its own, so one bad entry fails only its caller.
 * With `withdrawable`, a caller interrupted before the commit takes its write back: what an
 * interrupted run reports as stored is then what is stored (items); without it the write still
 * lands (cache entries, whose caller has paid for them).
 */
export const groupCommit = <T>(
  db: Database.Database,
  what: (entry: T) => string,
  writeMany: (entries: ReadonlyArray<T>) => void,
  options: { readonly committed?: (entries: ReadonlyArray<T>) => void; readonly withdrawable?: boolean } = {}
) => {
  const committed = options.committed ?? (() => {})
  const tx = db.transaction(writeMany)
  let pending: Array<{ entry: T; resume: (effect: Effect.Effect<void, StoreError>) => void }> = []
  const flush = () => {
    const batch = pending
    pending = []
    if (batch.length === 0) return
    try {
      const entries = batch.map((p) => p.entry)
      tx.immediate(entries)
      committed(entries)
      for (const p of batch) p.resume(Effect.void)
    } catch {
      for (const p of batch) {
        try {
          tx.immediate([p.entry])
          committed([p.entry])
          p.resume(Effect.void)
        } catch (cause) {
          p.resume(
            Effect.fail(
              new StoreError({
                message: `${what(p.entry)}: ${cause instanceof Error ? cause.message : String(cause)}`,
                cause
              })
            )
          )
        }
      }
    }
  }
  return {
    write: (entry: T) =>
      Effect.async<void, StoreError>((resume) => {
        const write = { entry, resume }
        pending.push(write)
        if (pending.length === 1) setImmediate(flush)
        if (options.withdrawable === true) {
          return Effect.sync(() => {
            const i = pending.indexOf(write)
            if (i >= 0) pending.splice(i, 1)
          })
        }
      }),
    flushNow: () => {
      if (pending.length > 0) flush()
    }
  }
}
