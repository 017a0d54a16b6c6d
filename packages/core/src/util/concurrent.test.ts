import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { describe, expect, it } from "vitest"
import { drainConcurrently } from "./concurrent.js"

const failure = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

const sleep = (ms: number) => Effect.promise(() => new Promise<void>((r) => setTimeout(r, ms)))

describe("drainConcurrently", () => {
  it("runs every element once, at most `concurrency` at a time, and fills every slot", async () => {
    let inFlight = 0
    let most = 0
    const seen: Array<number> = []
    await Effect.runPromise(
      drainConcurrently(
        Stream.range(0, 199).pipe(Stream.rechunk(7)),
        (i) =>
          Effect.gen(function* () {
            inFlight++
            most = Math.max(most, inFlight)
            yield* sleep(i % 5)
            seen.push(i)
            inFlight--
          }),
        16
      )
    )
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i))
    expect(most).toBe(16)
  })

  it("reads past empty chunks and takes a stream that yields nothing", async () => {
    const seen: Array<number> = []
    // Filtering keeps chunk boundaries: the first three chunks come out empty.
    const chunks = Stream.range(0, 9).pipe(
      Stream.rechunk(2),
      Stream.filter((i) => i >= 6)
    )
    const sizes = await Effect.runPromise(Stream.runCollect(Stream.mapChunks(chunks, (c) => Chunk.of(c.length))))
    expect(Chunk.toReadonlyArray(sizes)).toEqual([0, 0, 0, 2, 2])
    await Effect.runPromise(drainConcurrently(chunks, (i) => Effect.sync(() => seen.push(i)), 1))
    expect(seen.sort()).toEqual([6, 7, 8, 9])
    await Effect.runPromise(drainConcurrently(Stream.empty, () => Effect.die("never"), 4))
    // A concurrency that is not a positive number still runs everything, one at a time.
    for (const bad of [0, -3, Number.NaN]) {
      const got: Array<number> = []
      await Effect.runPromise(drainConcurrently(Stream.make(1, 2), (i) => Effect.sync(() => got.push(i)), bad))
      expect(got).toEqual([1, 2])
    }
  })

  it("ends with the first failure and interrupts the calls in flight", async () => {
    const interrupted: Array<number> = []
    const started: Array<number> = []
    const exit = await Effect.runPromiseExit(
      drainConcurrently(
        Stream.range(0, 99),
        (i) =>
          i === 3
            ? Effect.zipRight(sleep(5), Effect.fail(`item ${i} failed`))
            : Effect.sync(() => started.push(i)).pipe(
                Effect.zipRight(sleep(1_000)),
                Effect.onInterrupt(() => Effect.sync(() => interrupted.push(i)))
              ),
        4
      )
    )
    expect(failure(exit)).toBe("item 3 failed")
    expect(started.sort()).toEqual([0, 1, 2])
    expect(interrupted.sort()).toEqual([0, 1, 2])
  })

  it("fails with the stream's own failure", async () => {
    const exit = await Effect.runPromiseExit(
      drainConcurrently(Stream.concat(Stream.make(1, 2), Stream.fail("upstream broke")), () => Effect.void, 2)
    )
    expect(failure(exit)).toBe("upstream broke")
  })

  it("interrupting the run interrupts its calls and pulls nothing more", async () => {
    let pulled = 0
    const interrupted: Array<number> = []
    const fiber = Effect.runFork(
      drainConcurrently(
        Stream.range(0, 1_000).pipe(
          Stream.tap(() => Effect.sync(() => pulled++)),
          Stream.rechunk(1)
        ),
        (i) => sleep(10_000).pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push(i)))),
        3
      )
    )
    await new Promise((r) => setTimeout(r, 50))
    await Effect.runPromise(Fiber.interrupt(fiber))
    expect(interrupted.sort()).toEqual([0, 1, 2])
    const after = pulled
    await new Promise((r) => setTimeout(r, 20))
    expect(pulled).toBe(after)
    expect(pulled).toBeLessThan(10)
  })
})
