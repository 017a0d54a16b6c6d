import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { describe, expect, it } from "vitest"
import { ask, languageModelHarness } from "../test-support/languageModelHarness.js"
import { AdaptiveWindow } from "./adaptiveWindow.js"
import { Permits } from "./permits.js"

describe("AdaptiveWindow (additive increase, multiplicative decrease)", () => {
  it("grows by one per window of successes, up to its bound", () => {
    const w = new AdaptiveWindow({ min: 1, max: 6 }, 4)
    for (let i = 0; i < 3; i++) w.succeeded()
    expect(w.size).toBe(4)
    w.succeeded()
    expect(w.size).toBe(5)
    for (let i = 0; i < 5; i++) w.succeeded()
    expect(w.size).toBe(6)
    for (let i = 0; i < 50; i++) w.succeeded()
    expect(w.size).toBe(6)
  })

  it("halves once for a burst of 429s sent at the same window, and again for a later one", () => {
    const w = new AdaptiveWindow({ min: 2, max: 64 }, 32)
    const burst = w.sent()
    for (let i = 0; i < 10; i++) w.overloaded(burst)
    expect(w.size).toBe(16)
    expect(w.decreases).toBe(1)
    const later = w.sent()
    w.overloaded(later)
    expect(w.size).toBe(8)
    w.overloaded(w.sent())
    w.overloaded(w.sent())
    w.overloaded(w.sent())
    expect(w.size).toBe(2)
  })

  it("halves after a burst of timeouts, not after one", () => {
    const w = new AdaptiveWindow({ min: 1, max: 64 }, 20, 2)
    const epoch = w.sent()
    w.timedOut(epoch)
    expect(w.size).toBe(20)
    w.timedOut(epoch)
    expect(w.size).toBe(10)
    // Timeouts of requests sent before the decrease do not count against the new window.
    w.timedOut(epoch)
    w.timedOut(epoch)
    expect(w.size).toBe(10)
  })
})

describe("Permits.resize", () => {
  it("a smaller limit lets no one in until enough permits are back; a larger one lets waiters in at once", async () => {
    const permits = new Permits(4)
    let running = 0
    const trace: Array<number> = []
    const job = (ms: number) =>
      permits.with(
        Effect.sync(() => trace.push(++running)).pipe(
          Effect.zipRight(Effect.sleep(Duration.millis(ms))),
          Effect.ensuring(Effect.sync(() => void running--))
        )
      )
    await Effect.runPromise(
      Effect.gen(function* () {
        const first = yield* Effect.fork(Effect.all([job(60), job(60), job(60), job(60)], { concurrency: "unbounded" }))
        yield* Effect.sleep(Duration.millis(10))
        permits.resize(1)
        expect(permits.inUse).toBe(4)
        // Queued while four are held at a limit of one: none may start before all four are back.
        const queued = yield* Effect.fork(Effect.all([job(5), job(5)], { concurrency: "unbounded" }))
        yield* Fiber.join(first)
        yield* Fiber.join(queued)
        expect(trace.slice(4)).toEqual([1, 1])
        // Now the other way: three wait at a limit of one, and a larger limit lets them in together.
        trace.length = 0
        const waiting = yield* Effect.fork(
          Effect.all([job(40), job(40), job(40), job(40)], { concurrency: "unbounded" })
        )
        yield* Effect.sleep(Duration.millis(10))
        expect(running).toBe(1)
        permits.resize(4)
        yield* Effect.sleep(Duration.millis(5))
        expect(running).toBe(4)
        yield* Fiber.join(waiting)
      })
    )
    expect(permits.inUse).toBe(0)
  })
})

describe("an adaptive endpoint against a server behind a gateway (scripted loopback server)", () => {
  const { server, endpoint, withModel } = languageModelHarness({ timeoutMs: 5_000 })
  const retry = { maxAttempts: 20, backoffBaseMs: 5, backoffMaxMs: 50 }

  it("halves its window on 429s with no rate-limit headers, and grows it again when the server has room", async () => {
    // Phase one: 4 slots, and the gateway refuses a ninth request in flight. Phase two: 16 and 40.
    let capacity = { slots: 4, admit: 8 }
    const s = await server({ latencyMs: 15, capacity: () => capacity })
    const windows: Array<{ phase: number; window: number }> = []
    let phase = 1
    const stats = await withModel(
      {
        teacher: {
          ...retry,
          endpoints: [{ provider: endpoint(s), concurrency: 32, adaptive: { min: 1, max: 64 } }]
        }
      },
      (lm) =>
        Effect.gen(function* () {
          const sampler = yield* Effect.fork(
            Effect.forever(
              Effect.flatMap(lm.stats, (st) => Effect.sync(() => windows.push({ phase, window: st[0]!.window }))).pipe(
                Effect.zipRight(Effect.sleep(Duration.millis(2)))
              )
            )
          )
          const batch = (from: number, n: number) =>
            Effect.forEach(
              Array.from({ length: n }, (_, i) => ask(`q ${from + i}`)),
              (r) => lm.complete("teacher", r, { cache: "off" }),
              { concurrency: 64, discard: true }
            )
          yield* batch(0, 300)
          phase = 2
          capacity = { slots: 16, admit: 40 }
          yield* batch(300, 1200)
          yield* Fiber.interrupt(sampler)
          return yield* lm.stats
        })
    )
    const first = windows.filter((w) => w.phase === 1).map((w) => w.window)
    const second = windows.filter((w) => w.phase === 2).map((w) => w.window)
    // It started at 32; the gateway's 429s halved it to about what the server admits (8 in flight;
    // replies in transit let a few more through now and then, more so on a loaded machine).
    expect(first[0]).toBeLessThanOrEqual(32)
    expect(Math.max(...first.slice(-20))).toBeLessThan(16)
    // With room, it grew past the first phase's ceiling.
    expect(Math.max(...second)).toBeGreaterThan(16)
    expect(stats[0]!.succeeded).toBe(1500)
    // Every failed attempt was a gateway refusal, and was retried.
    expect(stats[0]!.rateLimited).toBe(s.gateway.refused)
    expect(stats[0]!.failed).toBe(s.gateway.refused)
    expect(stats[0]!.retries).toBe(s.gateway.refused)
    expect(s.gateway.refused).toBeGreaterThan(0)
    // Each halving answers one burst: the refused are a small share of what was sent.
    expect(s.gateway.refused / (s.gateway.admitted + s.gateway.refused)).toBeLessThan(0.05)
  })

  it("leaves the window alone once the server sends x-ratelimit headers: they govern", async () => {
    const s = await server({
      latencyMs: 10,
      capacity: () => ({ slots: 2, admit: 4 }),
      replyHeaders: () => ({ "x-ratelimit-remaining-requests": "1000", "x-ratelimit-remaining-tokens": "1000000" })
    })
    const crowd = await withModel(
      {
        teacher: {
          ...retry,
          maxAttempts: 100,
          endpoints: [{ provider: endpoint(s), concurrency: 12, adaptive: { min: 1, max: 64 } }]
        }
      },
      (lm) =>
        Effect.gen(function* () {
          // One reply with headers first, then a crowd the gateway refuses in part.
          yield* lm.complete("teacher", ask("first"), { cache: "off" })
          yield* Effect.forEach(
            Array.from({ length: 60 }, (_, i) => ask(`crowd ${i}`)),
            (r) => lm.complete("teacher", r, { cache: "off" }),
            { concurrency: 12, discard: true }
          )
          return yield* lm.stats
        })
    )
    expect(s.gateway.refused).toBeGreaterThan(0)
    expect(crowd[0]!.window).toBe(12)
    expect(crowd[0]!.succeeded).toBe(61)
  })
})
