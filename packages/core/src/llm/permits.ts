import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"

/**
 * An endpoint's concurrency limit: a counting semaphore whose free path is one synchronous step
 * (Effect's general Semaphore costs more per call; bench/llm.bench.mjs, docs/benchmarks.md).
 * Waiting is interruptible; a permit handed to a fiber interrupted meanwhile is passed on. The
 * limit can be changed while permits are held (`resize`): a smaller one lets no new holder in
 * until enough permits come back, a larger one lets waiters in at once.
 */
export class Permits {
  private limit: number
  private held = 0
  private readonly waiters = new Set<{ granted: boolean; resume: (effect: Effect.Effect<void>) => void }>()
  constructor(permits: number) {
    this.limit = Math.max(1, Math.floor(permits))
  }
  /** The most permits held at once. */
  get size(): number {
    return this.limit
  }
  /** Permits held now (more than `size` for a while after the limit was lowered). */
  get inUse(): number {
    return this.held
  }
  /** Sets the limit (at least 1); waiters the new limit has room for go in at once. */
  resize(permits: number): void {
    this.limit = Math.max(1, Math.floor(permits))
    this.admit()
  }
  private admit(): void {
    for (const waiter of this.waiters) {
      if (this.held >= this.limit) return
      this.waiters.delete(waiter)
      this.held++
      waiter.granted = true
      waiter.resume(Effect.void)
    }
  }
  private give(): void {
    this.held--
    this.admit()
  }
  private readonly wait = Effect.async<void>((resume) => {
    const waiter = { granted: false, resume }
    this.waiters.add(waiter)
    return Effect.sync(() => {
      if (waiter.granted) this.give()
      else this.waiters.delete(waiter)
    })
  })
  // Gives the permit back however `self` ends: the match is made while interruption is masked, so
  // its failure half runs for an interruption too (what Effect.onExit does, with one mask less).
  private readonly giveBack = {
    onFailure: <E>(cause: Cause.Cause<E>) => {
      this.give()
      return Effect.failCause(cause)
    },
    onSuccess: <A>(value: A) => {
      this.give()
      return Effect.succeed(value)
    }
  }
  /** Runs `self` holding one permit. */
  with<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) => {
      const giveBack: {
        onFailure: (cause: Cause.Cause<E>) => Effect.Effect<A, E>
        onSuccess: (value: A) => Effect.Effect<A, E>
      } = this.giveBack
      const held = Effect.matchCauseEffect(restore(self), giveBack)
      if (this.held < this.limit && this.waiters.size === 0) {
        this.held++
        return held
      }
      return Effect.zipRight(restore(this.wait), held)
    })
  }
}
