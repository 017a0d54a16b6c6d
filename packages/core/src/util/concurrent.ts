import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/**
 * Runs `f` on every element of `stream`, `concurrency` at a time, each started as soon as a
 * worker is free (completion order not kept). The first failure, of the stream or of `f`, ends the
 * run with that failure and interrupts the calls in flight; interrupting the run interrupts them
 * too. It is what `Stream.mapEffect(f, { concurrency, unordered: true })` then `Stream.runDrain`
 * does, at a fraction of the cost: `concurrency` fibers pull the stream in turn, where
 * Stream.mapEffect forks a fiber, a deferred and a queue hand-off per element
 * (bench/concurrent.bench.mjs compares the two; docs/benchmarks.md has the figures).
 */
export const drainConcurrently = <A, E, R, E2, R2>(
  stream: Stream.Stream<A, E, R>,
  f: (a: A) => Effect.Effect<unknown, E2, R2>,
  concurrency: number
): Effect.Effect<void, E | E2, R | R2> =>
  Effect.scoped(
    Effect.gen(function* () {
      const pull = yield* Stream.toPull(stream)
      const lock = yield* Effect.makeSemaphore(1)
      let buffer: ReadonlyArray<A> = []
      let index = 0
      let done = false
      // Under the lock: the next element, pulling chunks (which may be empty) until there is one.
      const take = (): Effect.Effect<Option.Option<A>, E, R> => {
        if (index < buffer.length) return Effect.succeed(Option.some(buffer[index++]!))
        if (done) return Effect.succeed(Option.none())
        return Effect.matchEffect(pull, {
          onFailure: (e) =>
            Option.isNone(e) ? ((done = true), Effect.succeed(Option.none<A>())) : Effect.fail(e.value),
          onSuccess: (chunk) => {
            buffer = Chunk.toReadonlyArray(chunk)
            index = 0
            return take()
          }
        })
      }
      // Elements already pulled are handed out without the lock.
      const next = Effect.suspend(() =>
        index < buffer.length
          ? Effect.succeed(Option.some(buffer[index++]!))
          : lock.withPermits(1)(Effect.suspend(take))
      )
      // Workers are started as elements come, up to `concurrency`: a stage allowed thousands of
      // calls in flight (batch mode) runs as many fibers as it has elements, not its allowance.
      const most = Number.isFinite(concurrency) && concurrency >= 1 ? Math.floor(concurrency) : 1
      const fibers = yield* FiberSet.make<void, E | E2>()
      let started = 0
      const another: Effect.Effect<void, never, R | R2> = Effect.suspend(() => {
        started++
        return Effect.asVoid(FiberSet.run(fibers, worker))
      })
      const worker: Effect.Effect<void, E | E2, R | R2> = Effect.flatMap(next, (a) =>
        Option.isNone(a)
          ? Effect.void
          : Effect.zipRight(
              started < most && (index < buffer.length || !done) ? Effect.zipRight(another, f(a.value)) : f(a.value),
              worker
            )
      )
      yield* another
      // Done when every worker is (the first failure ends it at once).
      yield* Effect.raceFirst(FiberSet.join(fibers), FiberSet.awaitEmpty(fibers))
    })
  )
