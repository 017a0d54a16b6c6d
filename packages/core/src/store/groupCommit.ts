import type Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import { StoreError } from "./errors.js"

interface Pending<T> {
  readonly entry: T
  readonly resume: (effect: Effect.Effect<void, StoreError>) => void
}

interface Channel<T> {
  pending: Array<Pending<T>>
  readonly what: (entry: T) => string
  readonly writeMany: (entries: ReadonlyArray<T>) => void
  readonly committed: (entries: ReadonlyArray<T>) => void
}

export interface GroupCommitChannel<T> {
  /** Writes `entry` in the next shared transaction; succeeds once that transaction has committed. */
  readonly write: (entry: T) => Effect.Effect<void, StoreError>
}

/**
 * Group commit over one database: writes made in the same turn of the event loop, through any of
 * its channels (items, cache entries, ...), share one transaction, and each caller resumes only
 * after it has committed (durable before it returns). Should the shared transaction fail, each
 * entry is written on its own, so one bad entry fails only its caller. A channel opened with
 * `withdrawable` lets a caller interrupted before the commit take its write back: what an
 * interrupted run reports as stored is then what is stored (items); without it the write still
 * lands (cache entries, whose caller has paid for them).
 */
export const makeGroupCommit = (db: Database.Database) => {
  const channels: Array<Channel<unknown>> = []
  let scheduled = false

  // The two transactions, made once: every channel's entries of a turn together, or one entry alone.
  const commitTurn = db.transaction(
    (batches: ReadonlyArray<{ channel: Channel<unknown>; entries: ReadonlyArray<unknown> }>) => {
      for (const { channel, entries } of batches) channel.writeMany(entries)
    }
  )
  const commitOne = db.transaction((channel: Channel<unknown>, entry: unknown) => channel.writeMany([entry]))

  const runAlone = (channel: Channel<unknown>, p: Pending<unknown>) => {
    try {
      commitOne.immediate(channel, p.entry)
      channel.committed([p.entry])
      p.resume(Effect.void)
    } catch (cause) {
      p.resume(
        Effect.fail(
          new StoreError({
            message: `${channel.what(p.entry)}: ${cause instanceof Error ? cause.message : String(cause)}`,
            cause
          })
        )
      )
    }
  }

  const flush = () => {
    scheduled = false
    const batches = channels
      .filter((c) => c.pending.length > 0)
      .map((channel) => {
        const batch = channel.pending
        channel.pending = []
        return { channel, batch, entries: batch.map((p) => p.entry) }
      })
    if (batches.length === 0) return
    try {
      commitTurn.immediate(batches)
    } catch {
      for (const { batch, channel } of batches) for (const p of batch) runAlone(channel, p)
      return
    }
    for (const { batch, channel, entries } of batches) {
      channel.committed(entries)
      for (const p of batch) p.resume(Effect.void)
    }
  }

  return {
    channel: <T>(
      what: (entry: T) => string,
      writeMany: (entries: ReadonlyArray<T>) => void,
      options: { readonly committed?: (entries: ReadonlyArray<T>) => void; readonly withdrawable?: boolean } = {}
    ): GroupCommitChannel<T> => {
      const channel: Channel<T> = { pending: [], what, writeMany, committed: options.committed ?? (() => {}) }
      channels.push(channel as Channel<unknown>)
      return {
        write: (entry) =>
          Effect.async<void, StoreError>((resume) => {
            const pending = { entry, resume }
            channel.pending.push(pending)
            if (!scheduled) {
              scheduled = true
              setImmediate(flush)
            }
            if (options.withdrawable === true) {
              return Effect.sync(() => {
                const i = channel.pending.indexOf(pending)
                if (i >= 0) channel.pending.splice(i, 1)
              })
            }
          })
      }
    },
    /** Commits whatever is pending now (before the database is closed). */
    flushNow: () => flush()
  }
}
