import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"

/**
 * Calls made in the same turn of the event loop, run as one: each caller's input joins the
 * turn's batch, `run` gets the batch once the turn's I/O callbacks have run (`setImmediate`), and
 * each caller resumes with its own outcome. For a database a round trip away, one statement for
 * many rows costs little more than one for a single row, and far less than a statement a row.
 */
export interface TurnBatcher<A, B, E> {
  /** Joins the turn's batch; succeeds or fails with this input's own outcome. */
  readonly call: (input: A) => Effect.Effect<B, E>
  /** Runs what is pending now and waits until every batch handed over has finished. */
  readonly drain: Effect.Effect<void>
  /**
   * Hands what is pending to `run` now, on this thread, without waiting: each batch's `run` starts
   * before this returns (for a synchronous close that then waits on its own terms).
   */
  readonly flushNow: () => void
}

export interface TurnBatcherOptions<A> {
  /**
   * At most this many inputs in one `run` (a turn with more runs several): 500 by default;
   * `Infinity` for one `run` a turn, however many.
   */
  readonly maxBatch?: number
  /**
   * Which inputs a caller takes back when interrupted before they are handed to `run`; once
   * handed over, such a caller waits for the outcome uninterruptibly, so what an interrupted
   * caller reports as done is done (item saves). Any other input runs anyway and its interrupted
   * caller stops waiting (reads, and writes that must land: a cache entry someone paid for).
   * None by default.
   */
  readonly withdrawable?: (input: A) => boolean
}

interface Pending<A, B, E> {
  readonly input: A
  /** Resumes the caller once its input is handed over, with the wait for its outcome. */
  readonly handed: (wait: Effect.Effect<B, E>) => void
}

interface Slot<B, E> {
  outcome?: Effect.Effect<B, E>
  waiter?: (outcome: Effect.Effect<B, E>) => void
}

/**
 * A batcher over `run`, which gets a turn's inputs and answers each (`Either.left`: that input's
 * own failure); should `run` itself fail, every input of the batch fails with its cause. Batches
 * run on the runtime this is made in, concurrently with each other.
 */
export const makeTurnBatcher = <A, B, E>(
  run: (inputs: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Either.Either<B, E>>, E>,
  options: TurnBatcherOptions<A> = {}
): Effect.Effect<TurnBatcher<A, B, E>> =>
  Effect.map(Effect.runtime<never>(), (runtime) => makeTurnBatcherOn(runtime, run, options))

/**
 * `makeTurnBatcher` on a given runtime, made synchronously (for a resource opened outside an
 * Effect, such as `openSqliteStore`).
 */
export const makeTurnBatcherOn = <A, B, E>(
  runtime: Runtime.Runtime<never>,
  run: (inputs: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Either.Either<B, E>>, E>,
  options: TurnBatcherOptions<A> = {}
): TurnBatcher<A, B, E> => {
  const runFork = Runtime.runFork(runtime)
  const maxBatch = Math.max(1, options.maxBatch ?? 500)
  const pending: Array<Pending<A, B, E>> = []
  let scheduled = false
  let running = 0
  let idle: Array<() => void> = []

  const settle = (slot: Slot<B, E>, outcome: Effect.Effect<B, E>) => {
    slot.outcome = outcome
    slot.waiter?.(outcome)
  }
  const waitFor = (slot: Slot<B, E>): Effect.Effect<B, E> =>
    Effect.flatten(
      Effect.async<Effect.Effect<B, E>>((resume) => {
        if (slot.outcome !== undefined) resume(Effect.succeed(slot.outcome))
        else slot.waiter = (outcome) => resume(Effect.succeed(outcome))
      })
    )

  const runBatch = (batch: ReadonlyArray<Pending<A, B, E>>) => {
    const slots = batch.map((): Slot<B, E> => ({}))
    running++
    runFork(run(batch.map((p) => p.input))).addObserver((exit) => {
      running--
      if (Exit.isSuccess(exit)) {
        slots.forEach((slot, i) => {
          const answer = exit.value[i]
          settle(
            slot,
            answer === undefined
              ? Effect.die(new Error(`a batch answered ${exit.value.length} of ${batch.length} inputs`))
              : Either.isRight(answer)
                ? Effect.succeed(answer.right)
                : Effect.fail(answer.left)
          )
        })
      } else {
        const failed: Effect.Effect<B, E> = Effect.failCause(exit.cause as Cause.Cause<E>)
        for (const slot of slots) settle(slot, failed)
      }
      if (running === 0 && pending.length === 0) {
        const waiting = idle
        idle = []
        for (const done of waiting) done()
      }
    })
    batch.forEach((p, i) => p.handed(waitFor(slots[i]!)))
  }

  const flush = () => {
    scheduled = false
    while (pending.length > 0) runBatch(pending.splice(0, maxBatch))
  }

  const enqueue = (entry: Pending<A, B, E>) => {
    pending.push(entry)
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }

  /** A caller that takes its input back when interrupted before the hand-over. */
  const handOver = (input: A) =>
    Effect.async<Effect.Effect<B, E>>((resume) => {
      let handedWait: Effect.Effect<B, E> | undefined
      const entry: Pending<A, B, E> = {
        input,
        handed: (wait) => {
          handedWait = wait
          resume(Effect.succeed(wait))
        }
      }
      enqueue(entry)
      // Interrupted while pending: the input is taken back. Interrupted in the moment between
      // the hand-over and the caller's resumption: the interruption waits for the outcome, as
      // the caller would have once resumed.
      return Effect.suspend(() => {
        const i = pending.indexOf(entry)
        if (i >= 0) pending.splice(i, 1)
        return handedWait !== undefined ? Effect.ignore(handedWait) : Effect.void
      })
    })
  /** A caller that is not to take its input back: interrupted, it stops waiting; the input runs. */
  const join = (input: A) =>
    Effect.flatten(
      Effect.async<Effect.Effect<B, E>>((resume) => enqueue({ input, handed: (wait) => resume(Effect.succeed(wait)) }))
    )

  return {
    call: (input) =>
      options.withdrawable?.(input) === true
        ? Effect.uninterruptibleMask((restore) => Effect.flatten(restore(handOver(input))))
        : join(input),
    drain: Effect.suspend(() => {
      flush()
      return running === 0
        ? Effect.void
        : Effect.async<void>((resume) => {
            idle.push(() => resume(Effect.void))
          })
    }),
    flushNow: flush
  }
}
