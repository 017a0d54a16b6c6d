import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { describe, expect, it } from "vitest"
import { makeTurnBatcher, makeTurnBatcherOn, type TurnBatcherOptions } from "./turnBatcher.js"

const failure = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined

/** Waits for the next turn of the event loop (after a batcher's flush). */
const nextTurn = Effect.promise(() => new Promise<void>((r) => setImmediate(r)))

/** A batcher whose run records each batch it gets in `batches` and answers every input with success. */
const recordingBatcher = (batches: Array<ReadonlyArray<string>>, options: TurnBatcherOptions<string>) =>
  makeTurnBatcher(
    (inputs: ReadonlyArray<string>) =>
      Effect.sync(() => {
        batches.push(inputs)
        return inputs.map(() => Either.right<void>(undefined))
      }),
    options
  )

describe("makeTurnBatcher", () => {
  it("runs the calls of one turn as one batch and answers each caller with its own outcome", async () => {
    const batches: Array<ReadonlyArray<number>> = []
    const outcomes = await Effect.runPromise(
      Effect.gen(function* () {
        const batcher = yield* makeTurnBatcher((inputs: ReadonlyArray<number>) =>
          Effect.sync(() => {
            batches.push(inputs)
            return inputs.map((n) => (n % 3 === 0 ? Either.left(`no ${n}`) : Either.right(n * 10)))
          })
        )
        const first = yield* Effect.all(
          [1, 2, 3, 4].map((n) => Effect.either(batcher.call(n))),
          { concurrency: "unbounded" }
        )
        const second = yield* Effect.either(batcher.call(5))
        return [...first, second]
      })
    )
    expect(batches).toEqual([[1, 2, 3, 4], [5]])
    expect(outcomes).toEqual([
      Either.right(10),
      Either.right(20),
      Either.left("no 3"),
      Either.right(40),
      Either.right(50)
    ])
  })

  it("splits a turn into batches of at most maxBatch, and a failed batch fails each of its callers", async () => {
    const sizes: Array<number> = []
    const outcomes = await Effect.runPromise(
      Effect.gen(function* () {
        const batcher = yield* makeTurnBatcher(
          (inputs: ReadonlyArray<number>) =>
            Effect.suspend(() => {
              sizes.push(inputs.length)
              return inputs.includes(6)
                ? Effect.fail("the batch with 6 failed")
                : Effect.succeed(inputs.map((n): Either.Either<number, string> => Either.right(n)))
            }),
          { maxBatch: 3 }
        )
        return yield* Effect.all(
          [1, 2, 3, 4, 5, 6, 7].map((n) => Effect.either(batcher.call(n))),
          { concurrency: "unbounded" }
        )
      })
    )
    expect(sizes).toEqual([3, 3, 1])
    expect(outcomes.map((o) => (Either.isRight(o) ? o.right : o.left))).toEqual([
      1,
      2,
      3,
      "the batch with 6 failed",
      "the batch with 6 failed",
      "the batch with 6 failed",
      7
    ])
  })

  it("withdrawable: a caller interrupted before the flush takes its input back", async () => {
    const batches: Array<ReadonlyArray<string>> = []
    await Effect.runPromise(
      Effect.gen(function* () {
        const batcher = yield* recordingBatcher(batches, { withdrawable: () => true })
        const kept = yield* Effect.fork(batcher.call("kept"))
        const withdrawn = yield* Effect.fork(batcher.call("withdrawn"))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(withdrawn)
        yield* Fiber.join(kept)
      })
    )
    expect(batches).toEqual([["kept"]])
  })

  it("withdrawable: a caller interrupted once its input is handed over waits for the outcome", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const release = yield* Deferred.make<void>()
        let written = false
        let caller: Fiber.RuntimeFiber<void> | undefined
        const batcher = yield* makeTurnBatcher(
          (inputs: ReadonlyArray<string>) =>
            // The interruption reaches the caller in the moment between the hand-over and its
            // resumption: the hardest case.
            Effect.sync(() => caller?.unsafeInterruptAsFork(FiberId.none)).pipe(
              Effect.zipRight(Deferred.await(release)),
              Effect.map(() => {
                written = true
                return inputs.map(() => Either.right<void>(undefined))
              })
            ),
          { withdrawable: () => true }
        )
        caller = yield* Effect.fork(batcher.call("write"))
        yield* nextTurn
        yield* nextTurn
        const doneBeforeRelease = caller.unsafePoll() !== null
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.await(caller)
        return { doneBeforeRelease, writtenWhenDone: written }
      })
    )
    expect(result).toEqual({ doneBeforeRelease: false, writtenWhenDone: true })
  })

  it("not withdrawable: a caller interrupted before the flush stops waiting, and its input still runs", async () => {
    const batches: Array<ReadonlyArray<string>> = []
    const interrupted = await Effect.runPromise(
      Effect.gen(function* () {
        const batcher = yield* recordingBatcher(batches, { withdrawable: (input) => input === "withdrawn" })
        const lands = yield* Effect.fork(batcher.call("lands"))
        const withdrawn = yield* Effect.fork(batcher.call("withdrawn"))
        yield* Effect.yieldNow()
        const exits = [yield* Fiber.interrupt(lands), yield* Fiber.interrupt(withdrawn)]
        yield* nextTurn
        return exits.every(Exit.isInterrupted)
      })
    )
    expect(interrupted).toBe(true)
    expect(batches).toEqual([["lands"]])
  })

  it("not withdrawable: an interrupted caller stops waiting at once", async () => {
    const interrupted = await Effect.runPromise(
      Effect.gen(function* () {
        const batcher = yield* makeTurnBatcher((_: ReadonlyArray<string>) =>
          Effect.never.pipe(Effect.as<ReadonlyArray<Either.Either<void>>>([]))
        )
        const caller = yield* Effect.fork(batcher.call("read"))
        yield* nextTurn
        const exit = yield* Fiber.interrupt(caller)
        return Exit.isInterrupted(exit)
      })
    )
    expect(interrupted).toBe(true)
  })

  it("drain runs what is pending and waits for every batch handed over", async () => {
    const log: Array<string> = []
    await Effect.runPromise(
      Effect.gen(function* () {
        const batcher = yield* makeTurnBatcher((inputs: ReadonlyArray<string>) =>
          Effect.sleep("20 millis").pipe(
            Effect.map(() => {
              log.push(`ran ${inputs.join(",")}`)
              return inputs.map(() => Either.right<void>(undefined))
            })
          )
        )
        yield* Effect.fork(batcher.call("a"))
        yield* Effect.fork(batcher.call("b"))
        yield* Effect.yieldNow()
        yield* batcher.drain
        log.push("drained")
      })
    )
    expect(log).toEqual(["ran a,b", "drained"])
  })

  it("answers a batch that returns fewer outcomes than inputs with a defect, not a hang", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.gen(function* () {
        const batcher = yield* makeTurnBatcher((_: ReadonlyArray<number>) =>
          Effect.succeed<ReadonlyArray<Either.Either<number>>>([])
        )
        return yield* batcher.call(1)
      })
    )
    expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
    expect(failure(exit)).toBeUndefined()
  })

  it("flushNow hands what is pending to run before it returns, and a turn of any size is one run at maxBatch Infinity", async () => {
    const batches: Array<ReadonlyArray<number>> = []
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const batcher = makeTurnBatcherOn(
          Runtime.defaultRuntime,
          (inputs: ReadonlyArray<number>) =>
            Effect.sync(() => {
              batches.push(inputs)
              return inputs.map((n) => Either.right(n))
            }),
          { maxBatch: Infinity }
        )
        const callers = yield* Effect.forEach(
          Array.from({ length: 700 }, (_, i) => i),
          (n) => Effect.fork(batcher.call(n))
        )
        yield* Effect.yieldNow()
        const before = batches.length
        batcher.flushNow()
        const after = batches.length
        return { before, after, answers: yield* Fiber.join(Fiber.all(callers)) }
      })
    )
    expect(result).toMatchObject({ before: 0, after: 1 })
    expect(batches.map((b) => b.length)).toEqual([700])
    expect(result.answers).toEqual(Array.from({ length: 700 }, (_, i) => i))
  })
})
