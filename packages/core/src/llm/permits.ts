import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"

/**
 * An endpoint's concurrency limit: a counting semaphore whose free path is one synchronous step
 * (Effect's general Semaphore costs more per call; bench/llm.bench.mjs, docs/benchmarks.md).
 * Waiting is interruptible; a permit handed to a fiber interrupted meanwhile is passed on.
 */
export class Permits {
  readonly size: number
  private free: number
  private readonly waiters = new Set<{ granted: boolean; resume: (effect: Effect.Effect<void>) => void }>()
  constructor(permits: number) {
    this.size = Math.max(1, permits)
    this.free = this.size
  }
  /** Permits held now. */
  get inUse(): number {
    return this.size - this.free
  }
  private give(): void {
    for (const waiter of this.waiters) {
      this.waiters.delete(waiter)
      waiter.granted = true
      waiter.resume(Effect.void)
      return
    }
    this.free++
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
      if (this.free > 0) {
        this.free--
        return held
      }
      return Effect.zipRight(restore(this.wait), held)
    })
  }
}
