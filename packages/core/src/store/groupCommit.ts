import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Runtime from "effect/Runtime"
import { StoreError } from "./errors.js"
import type { Committer, WriteOp } from "./committer.js"
import { makeTurnBatcherOn } from "./turnBatcher.js"

interface Channel<T> {
  readonly what: (entry: T) => string
  readonly ops: (entry: T) => ReadonlyArray<WriteOp>
  readonly committed: (entry: T) => void
  readonly withdrawable: boolean
}

/** One caller's write: its entry and the channel it came through. */
interface Write {
  readonly channel: Channel<unknown>
  readonly entry: unknown
}

export interface GroupCommitChannel<T> {
  /** Writes `entry` in the next shared transaction; succeeds once that transaction has committed. */
  readonly write: (entry: T) => Effect.Effect<void, StoreError>
}

/**
 * Group commit: writes made in the same turn of the event loop, through any channel (items,
 * cache entries, ...), share one transaction (a turn batcher whose `run` is the committer), and
 * each caller resumes only after it has committed (durable before it returns). Should the shared
 * transaction fail, each entry is written on its own, so one bad entry fails only its caller. The
 * `committer` runs the transactions, on this thread or on a writer thread of its own. A channel
 * opened with `withdrawable` lets a caller interrupted before its entry is handed over take it
 * back, and once handed over waits for the outcome uninterruptibly: what an interrupted run reports
 * as stored is then what is stored (items); without it the write lands anyway (cache entries,
 * whose caller has paid for them).
 */
export const makeGroupCommit = (committer: Committer, runtime: Runtime.Runtime<never> = Runtime.defaultRuntime) => {
  const commit = (writes: ReadonlyArray<Write>) =>
    Effect.async<ReadonlyArray<Either.Either<void, StoreError>>>((resume) =>
      committer.commit(
        writes.map((w) => w.channel.ops(w.entry)),
        (failures) =>
          resume(
            Effect.succeed(
              writes.map((w, i) => {
                const failure = failures[i]
                if (failure === undefined) {
                  w.channel.committed(w.entry)
                  return Either.void
                }
                return Either.left(
                  new StoreError({ message: `${w.channel.what(w.entry)}: ${failure.message}`, cause: failure })
                )
              })
            )
          )
      )
    )
  const batcher = makeTurnBatcherOn(runtime, commit, {
    maxBatch: Infinity,
    withdrawable: (w) => w.channel.withdrawable
  })

  return {
    channel: <T>(
      what: (entry: T) => string,
      ops: (entry: T) => ReadonlyArray<WriteOp>,
      options: { readonly committed?: (entry: T) => void; readonly withdrawable?: boolean } = {}
    ): GroupCommitChannel<T> => {
      const channel = {
        what,
        ops,
        committed: options.committed ?? (() => {}),
        withdrawable: options.withdrawable === true
      } as Channel<unknown>
      return { write: (entry) => batcher.call({ channel, entry }) }
    },
    /** Commits whatever is pending now and waits for every commit handed over (before closing). */
    flushNow: () => {
      batcher.flushNow()
      committer.drain()
    }
  }
}
