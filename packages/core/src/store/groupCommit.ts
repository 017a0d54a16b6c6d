import * as Effect from "effect/Effect"
import { StoreError } from "./errors.js"
import type { Committer, WriteOp } from "./committer.js"

interface Slot {
  outcome?: Effect.Effect<void, StoreError>
  waiter?: (outcome: Effect.Effect<void, StoreError>) => void
}

interface Pending<T> {
  readonly entry: T
  /** Resumes the writer once its entry is handed to the committer, with the wait for the outcome. */
  readonly posted: (wait: Effect.Effect<Effect.Effect<void, StoreError>>) => void
}

interface Channel<T> {
  pending: Array<Pending<T>>
  readonly what: (entry: T) => string
  readonly ops: (entry: T) => ReadonlyArray<WriteOp>
  readonly committed: (entries: ReadonlyArray<T>) => void
}

export interface GroupCommitChannel<T> {
  /** Writes `entry` in the next shared transaction; succeeds once that transaction has committed. */
  readonly write: (entry: T) => Effect.Effect<void, StoreError>
}

/**
 * Group commit: writes made in the same turn of the event loop, through any channel (items,
 * cache entries, ...), share one transaction, and each caller resumes only after it has committed
 * (durable before it returns). Should the shared transaction fail, each entry is written on its
 * own, so one bad entry fails only its caller. The `committer` runs the transactions, on this
 * thread or on a writer thread of its own. A channel opened with `withdrawable` lets a caller
 * interrupted before its entry is handed over take it back, and once handed over waits for the
 * outcome uninterruptibly: what an interrupted run reports as stored is then what is stored
 * (items); without it the write lands anyway (cache entries, whose caller has paid for them).
 */
export const makeGroupCommit = (committer: Committer) => {
  const channels: Array<Channel<unknown>> = []
  let scheduled = false

  const flush = () => {
    scheduled = false
    const handed: Array<{ channel: Channel<unknown>; pending: Pending<unknown>; slot: Slot }> = []
    for (const channel of channels) {
      for (const pending of channel.pending) handed.push({ channel, pending, slot: {} })
      channel.pending = []
    }
    if (handed.length === 0) return
    const settle = (slot: Slot, outcome: Effect.Effect<void, StoreError>) => {
      slot.outcome = outcome
      slot.waiter?.(outcome)
    }
    committer.commit(
      handed.map((h) => h.channel.ops(h.pending.entry)),
      (failures) => {
        for (const [i, h] of handed.entries()) {
          const failure = failures[i]
          if (failure === undefined) {
            h.channel.committed([h.pending.entry])
            settle(h.slot, Effect.void)
          } else
            settle(
              h.slot,
              Effect.fail(
                new StoreError({ message: `${h.channel.what(h.pending.entry)}: ${failure.message}`, cause: failure })
              )
            )
        }
      }
    )
    // The writers wait for their outcome (settled above already when the committer is this thread).
    for (const h of handed)
      h.pending.posted(
        Effect.succeed(
          Effect.async<void, StoreError>((resume) => {
            if (h.slot.outcome !== undefined) resume(h.slot.outcome)
            else h.slot.waiter = resume
          })
        )
      )
  }

  return {
    channel: <T>(
      what: (entry: T) => string,
      ops: (entry: T) => ReadonlyArray<WriteOp>,
      options: { readonly committed?: (entries: ReadonlyArray<T>) => void; readonly withdrawable?: boolean } = {}
    ): GroupCommitChannel<T> => {
      const channel: Channel<T> = { pending: [], what, ops, committed: options.committed ?? (() => {}) }
      channels.push(channel as Channel<unknown>)
      const handOver = (entry: T) =>
        Effect.async<Effect.Effect<void, StoreError>>((resume) => {
          const pending: Pending<T> = { entry, posted: (wait) => resume(wait) }
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
      return {
        write: (entry) =>
          options.withdrawable === true
            ? Effect.uninterruptibleMask((restore) => Effect.flatten(restore(handOver(entry))))
            : Effect.flatten(handOver(entry))
      }
    },
    /** Commits whatever is pending now and waits for every commit handed over (before closing). */
    flushNow: () => {
      flush()
      committer.drain()
    }
  }
}
