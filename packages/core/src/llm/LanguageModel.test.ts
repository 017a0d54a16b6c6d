import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import { readFileSync, readdirSync } from "node:fs"
import { createServer, type IncomingMessage } from "node:http"
import { type AddressInfo, connect, type Socket } from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { ask, languageModelHarness } from "../test-support/languageModelHarness.js"
import type { BudgetOptions, BudgetState } from "./budget.js"
import { type CallOptions, Permits, type RoleConfig } from "./LanguageModel.js"
import { durationMs, proxyFor, rateLimitOf, retryAfterMs } from "./openai.js"

describe("LanguageModel over an OpenAI-compatible endpoint (scripted loopback server)", () => {
  const harness = languageModelHarness({
    model: "teacher-model",
    timeoutMs: 2_000,
    firstTokenTimeoutMs: 2_000,
    stallTimeoutMs: 400
  })
  const { server, endpoint, withModel } = harness

  const fast = { maxAttempts: 8, backoffBaseMs: 5, backoffMaxMs: 200 }

  it("returns text, separated reasoning, usage and finish reason, streaming or not", async () => {
    const s = await server({
      script: (r) =>
        r.messages[0]!.content === "think"
          ? { content: "<think>inner steps</think>\n\nSo \\boxed{2}", finishReason: "stop" }
          : {
              content: "answer",
              reasoning: "via reasoning_content",
              finishReason: "length",
              promptTokens: 11,
              completionTokens: 7
            }
    })
    for (const stream of [true, false]) {
      const [a, b] = await withModel(
        { teacher: { endpoints: [{ provider: endpoint(s, { stream }), concurrency: 2 }] } },
        (lm) =>
          Effect.all([
            lm.complete("teacher", ask("think"), { cache: "off" }),
            lm.complete("teacher", ask("other"), { cache: "off" })
          ])
      )
      expect(a).toMatchObject({
        text: "So \\boxed{2}",
        reasoning: "inner steps",
        finishReason: "stop",
        cached: false,
        attempts: 1
      })
      expect(b).toMatchObject({
        text: "answer",
        reasoning: "via reasoning_content",
        finishReason: "length",
        usage: { promptTokens: 11, completionTokens: 7 }
      })
    }
    expect(s.requests[0]!.body).toMatchObject({
      model: "teacher-model",
      temperature: 0.6,
      max_tokens: 256,
      stream: true
    })
  })

  it("completes every request with 15% injected faults (429, 500, slow, dropped, truncated) and counts the retries", async () => {
    const s = await server({ faultRate: 0.15, slowMs: 3_000, retryAfterSeconds: 0.02, seed: 11 })
    const n = 200
    const { results, stats } = await withModel(
      {
        teacher: {
          // Well under the slow fault (3 s) and well over a loaded machine's normal reply: only injected faults time out.
          ...fast,
          endpoints: [{ provider: endpoint(s, { timeoutMs: 1500, firstTokenTimeoutMs: 1500 }), concurrency: 32 }]
        }
      },
      (lm) =>
        Effect.gen(function* () {
          const results = yield* Effect.forEach(
            Array.from({ length: n }, (_, i) => ask(`question ${i}`)),
            (r) => lm.complete("teacher", r),
            { concurrency: 32 }
          )
          return { results, stats: yield* lm.stats }
        })
    )
    expect(results).toHaveLength(n)
    for (const [i, r] of results.entries()) expect(r.text).toContain(`question ${i}`)
    const injected = Object.values(s.faultsInjected).reduce((a, b) => a + b, 0)
    expect(injected).toBeGreaterThan(15)
    for (const kind of ["429", "500", "slow", "drop", "truncate"] as const)
      expect(s.faultsInjected[kind]).toBeGreaterThan(0)
    expect(stats[0]!.retries).toBe(injected)
    expect(stats[0]!.rateLimited).toBe(s.faultsInjected["429"])
    expect(stats[0]!.succeeded).toBe(n)
  })

  it("waits as long as Retry-After says", async () => {
    const s = await server({ faultFirst: 1, faults: ["429"], retryAfterSeconds: 0.4 })
    const started = Date.now()
    const c = await withModel({ teacher: { ...fast, endpoints: [{ provider: endpoint(s), concurrency: 1 }] } }, (lm) =>
      lm.complete("teacher", ask("x"))
    )
    expect(Date.now() - started).toBeGreaterThanOrEqual(390)
    expect(c.attempts).toBe(2)
  })

  it("never retries a 4xx other than 429, and fails a truncated stream instead of returning a short answer", async () => {
    const bad = await server({ script: () => ({ content: "unknown model", status: 404 }) })
    const result = await withModel(
      { teacher: { ...fast, endpoints: [{ provider: endpoint(bad), concurrency: 1 }] } },
      (lm) => Effect.either(lm.complete("teacher", ask("x")))
    )
    expect(Either.isLeft(result) && result.left._tag).toBe("BadRequest")
    expect(bad.requests).toHaveLength(1)
    const cut = await server({
      faultFirst: 1,
      faults: ["truncate"],
      script: () => ({ content: "a long answer ".repeat(20) })
    })
    const truncated = await withModel(
      { teacher: { maxAttempts: 1, endpoints: [{ provider: endpoint(cut), concurrency: 1 }] } },
      (lm) => Effect.either(lm.complete("teacher", ask("x")))
    )
    expect(Either.isLeft(truncated) && truncated.left).toMatchObject({
      _tag: "ConnectionError",
      message: expect.stringMatching(/ended before the reply was complete|connection failed/)
    })
  })

  it("caches by content: a repeat is free, another sample index or --refresh calls again, --no-cache stores nothing", async () => {
    const s = await server()
    const roles = { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 4 }] } }
    const call = (options: CallOptions) => withModel(roles, (lm) => lm.complete("teacher", ask("cache me"), options))
    expect((await call({})).cached).toBe(false)
    const again = await call({})
    expect(again.cached).toBe(true)
    expect(again.costUsd).toBe(0)
    expect(s.requests).toHaveLength(1)
    expect((await call({ sampleIndex: 1 })).cached).toBe(false)
    expect((await call({ cache: "refresh" })).cached).toBe(false)
    expect(s.requests).toHaveLength(3)
    await withModel(roles, (lm) => lm.complete("teacher", ask("not stored"), { cache: "off" }))
    expect((await withModel(roles, (lm) => lm.complete("teacher", ask("not stored")))).cached).toBe(false)
    expect(s.requests).toHaveLength(5)
  })

  describe("a spending budget", () => {
    // Every reply reports 10 prompt and 20 completion tokens; every request's worst case is its
    // prompt (40 characters: 10 tokens) plus max_tokens 20: 30 tokens, the same as it costs.
    const question = (i: number) => ask(`question ${String(i).padStart(31, "0")}`, { max_tokens: 20 })
    const scripted = () =>
      server({ latencyMs: 50, script: () => ({ content: "ok", promptTokens: 10, completionTokens: 20 }) })
    /** Sends `count` different calls `concurrency` at a time until the budget says it is reached. */
    const untilReached = (
      roles: Record<string, RoleConfig>,
      budget: Omit<BudgetOptions, "onReached">,
      count: number,
      concurrency: number,
      db = "fastcot.db"
    ) => {
      const reached = Deferred.unsafeMake<BudgetState>(FiberId.none)
      return withModel(
        roles,
        (lm) =>
          Effect.gen(function* () {
            const calls = yield* Effect.fork(
              Effect.forEach(
                Array.from({ length: count }, (_, i) => i),
                (i) => lm.complete("teacher", question(i)),
                { concurrency }
              )
            )
            const atReach = yield* Deferred.await(reached).pipe(Effect.timeout(Duration.seconds(10)))
            // The calls in flight when it was reached still finish; none starts after.
            yield* Effect.sleep(Duration.millis(300))
            const after = yield* lm.budget!
            yield* Fiber.interrupt(calls)
            return { atReach, after }
          }),
        { budget: { ...budget, onReached: (state) => Deferred.unsafeDone(reached, Exit.succeed(state)) } },
        db
      )
    }

    it("never starts a call whose worst case would pass the token limit, with calls in flight counted", async () => {
      const s = await scripted()
      const roles = { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 8 }] } }
      // 8 at a time against 100 tokens: three fit (90 reserved), the fourth does not.
      const { atReach, after } = await untilReached(roles, { limits: { tokens: 100 } }, 8, 8)
      expect(s.requests).toHaveLength(3)
      expect(atReach).toMatchObject({ reached: true, spentTokens: 0, reservedTokens: 90 })
      expect(after).toMatchObject({ reached: true, spentTokens: 90, reservedTokens: 0 })
    })

    it("counts earlier spending and prices calls at the role's highest price", async () => {
      const s = await scripted()
      // $1 and $2 per million: the worst case is 10 × 1 + 20 × 2 = 50 µ$ at the dearer endpoint.
      const cheap = { provider: endpoint(s), concurrency: 1, price: { input: 0.5, output: 0.5 } }
      const dear = { provider: endpoint(s), concurrency: 1, price: { input: 1, output: 2 } }
      const roles = { teacher: { endpoints: [cheap, dear] } }
      const { atReach, after } = await untilReached(roles, { limits: { usd: 1 }, spent: { usd: 1 - 120e-6 } }, 5, 5)
      // Two fit in the 120 µ$ left (each reserved at 50 µ$, then charged what it cost), a third does not.
      expect(s.requests).toHaveLength(2)
      expect(atReach.reservedUsd).toBeCloseTo(100e-6, 12)
      expect(after.reached).toBe(true)
      expect(after.reservedUsd).toBe(0)
      expect(after.spentUsd).toBeLessThanOrEqual(1)
      const none = await scripted()
      const spent = await untilReached(
        { teacher: { endpoints: [{ ...dear, provider: endpoint(none) }] } },
        { limits: { tokens: 1000 }, spent: { tokens: 990 } },
        2,
        2,
        "other.db"
      )
      expect(none.requests).toHaveLength(0)
      expect(spent.atReach).toMatchObject({ reached: true, spentTokens: 990 })
    })

    it("fails calls past the budget with BudgetExhausted when asked to, instead of holding them", async () => {
      const s = await scripted()
      const roles = { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 1 }] } }
      const exits = await withModel(
        roles,
        (lm) => Effect.forEach([1, 2, 3], (i) => Effect.exit(lm.complete("teacher", question(i)))),
        {
          budget: { limits: { tokens: 70 }, whenReached: "fail" }
        }
      )
      // 30 tokens each: two fit in 70, the third is not sent.
      expect(
        exits.map((e) =>
          Exit.isSuccess(e)
            ? "ok"
            : Cause.failureOption(e.cause).pipe(
                Option.map((x) => x._tag),
                Option.getOrElse(() => "other")
              )
        )
      ).toEqual(["ok", "ok", "BudgetExhausted"])
      expect(s.requests).toHaveLength(2)
    })

    it("keeps to one budget with other workers: what the workspace's ledger shows spent elsewhere counts", async () => {
      const s = await scripted()
      const roles = { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 1 }] } }
      // Another worker has spent 60 tokens since this one started (its ledger shows 60 more than
      // this worker's own calls); with 100 allowed, this worker's first call (30) fits, the second
      // does not.
      let elsewhere = 0
      const exits = await withModel(
        roles,
        (lm) =>
          Effect.forEach([1, 2], (i) =>
            Effect.exit(lm.complete("teacher", question(i))).pipe(
              Effect.tap(() => Effect.sync(() => (elsewhere = 60))),
              Effect.zipLeft(Effect.sleep(Duration.millis(1_100)))
            )
          ),
        {
          budget: {
            limits: { tokens: 100 },
            whenReached: "fail",
            workspaceSpending: Effect.sync(() => ({ usd: 0, tokens: 30 * s.requests.length + elsewhere }))
          }
        }
      )
      expect(exits.map((e) => e._tag)).toEqual(["Success", "Failure"])
      expect(s.requests).toHaveLength(1)
    })

    it("lets cache hits through: they cost nothing", async () => {
      const s = await scripted()
      const roles = { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 1 }] } }
      const answers = await withModel(
        roles,
        (lm) =>
          Effect.gen(function* () {
            const first = yield* lm.complete("teacher", question(1))
            const again = yield* lm.complete("teacher", question(1))
            return { first, again, state: yield* lm.budget! }
          }),
        { budget: { limits: { tokens: 30 } } }
      )
      expect([answers.first.cached, answers.again.cached]).toEqual([false, true])
      expect(answers.state).toMatchObject({ spentTokens: 30, reached: false })
      expect(s.requests).toHaveLength(1)
    })
  })

  it("sends identical concurrent requests once", async () => {
    const s = await server({ latencyMs: 100 })
    const results = await withModel({ teacher: { endpoints: [{ provider: endpoint(s), concurrency: 8 }] } }, (lm) =>
      Effect.forEach(Array.from({ length: 8 }), () => lm.complete("teacher", ask("same")), { concurrency: 8 })
    )
    expect(s.requests).toHaveLength(1)
    expect(results.filter((r) => r.cached)).toHaveLength(7)
  })

  it("interrupts in-flight requests cleanly: the server sees the connection close", async () => {
    const s = await server({ latencyMs: 5_000 })
    const started = Date.now()
    const exit = await withModel(
      { teacher: { endpoints: [{ provider: endpoint(s, { timeoutMs: 60_000 }), concurrency: 4 }] } },
      (lm) =>
        Effect.gen(function* () {
          const fiber = yield* Effect.fork(
            Effect.forEach([1, 2, 3], (i) => lm.complete("teacher", ask(`slow ${i}`)), { concurrency: 3 })
          )
          yield* Effect.sleep(Duration.millis(150))
          return yield* Fiber.interrupt(fiber)
        })
    )
    expect(Exit.isInterrupted(exit)).toBe(true)
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(s.requests).toHaveLength(3)
    // The server sees each call's connection close before its reply.
    await expect.poll(() => s.abandoned(), { timeout: 2_000 }).toBe(3)
  })

  it("a call cut by a timeout or lost race around it is aborted too, and a finished call's fiber carries on", async () => {
    const s = await server({ latencyMs: 5_000 })
    const quick = await server({ latencyMs: 5 })
    const provider = endpoint(s, { timeoutMs: 60_000 })
    const started = Date.now()
    const timedOut = await Effect.runPromise(
      Effect.either(Effect.timeout(provider.call(ask("slow")), Duration.millis(150)))
    )
    expect(Either.isLeft(timedOut)).toBe(true)
    const raced = await Effect.runPromise(
      Effect.race(provider.call(ask("slow too")), Effect.as(Effect.sleep(Duration.millis(100)), "sleep won"))
    )
    expect(raced).toBe("sleep won")
    expect(Date.now() - started).toBeLessThan(2_000)
    await expect.poll(() => s.abandoned(), { timeout: 2_000 }).toBe(2)
    // One fiber making many calls one after another keeps nothing of the finished ones: an
    // interruption later aborts only the call in flight.
    const fast = endpoint(quick)
    const fiber = Effect.runFork(
      Effect.zipRight(
        Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => fast.call(ask(`q ${i}`)),
          { discard: true }
        ),
        provider.call(ask("slow last"))
      )
    )
    await expect.poll(() => s.requests.length, { timeout: 5_000 }).toBe(3)
    expect(quick.requests).toHaveLength(50)
    await Effect.runPromise(Fiber.interrupt(fiber))
    await expect.poll(() => s.abandoned(), { timeout: 2_000 }).toBe(3)
  })

  it("balances across endpoints and sets a failing one aside", async () => {
    const broken = await server({ script: () => ({ content: "down", status: 503 }) })
    const healthy = await server()
    const stats = await withModel(
      {
        teacher: {
          ...fast,
          setAsideMs: 60_000,
          endpoints: [
            { provider: endpoint(broken), concurrency: 4 },
            { provider: endpoint(healthy), concurrency: 4 }
          ]
        }
      },
      (lm) =>
        Effect.gen(function* () {
          yield* Effect.forEach(
            Array.from({ length: 40 }, (_, i) => ask(`q${i}`)),
            (r) => lm.complete("teacher", r),
            { concurrency: 8 }
          )
          return yield* lm.stats
        })
    )
    expect(stats.find((x) => x.endpoint.includes(healthy.url.split(":")[2]!))!.succeeded).toBe(40)
    expect(broken.requests.length).toBeLessThan(12)
    expect(stats.some((x) => x.setAside)).toBe(true)
  })

  it("keeps to a requests-per-minute limit", async () => {
    const s = await server()
    const started = Date.now()
    await withModel(
      { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 8, requestsPerMinute: 600 }] } },
      (lm) =>
        Effect.forEach(
          Array.from({ length: 5 }, (_, i) => ask(`r${i}`)),
          (r) => lm.complete("teacher", r),
          { concurrency: 5 }
        )
    )
    expect(Date.now() - started).toBeGreaterThanOrEqual(390)
  })

  it("holds an endpoint while the server's x-ratelimit headers say its window is used up, streaming or not", async () => {
    for (const stream of [false, true]) {
      // The first reply says no request (then: too few tokens) is left until 400 ms from now.
      const s = await server({
        replyHeaders: (n): Record<string, string> =>
          n === 0
            ? {
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "400ms",
                "x-ratelimit-remaining-tokens": "90000"
              }
            : n === 1
              ? {
                  "x-ratelimit-remaining-requests": "50",
                  "x-ratelimit-remaining-tokens": "10",
                  "x-ratelimit-reset-tokens": "0.4s"
                }
              : {}
      })
      const stats = await withModel(
        { teacher: { endpoints: [{ provider: endpoint(s, { stream }), concurrency: 1 }] } },
        (lm) =>
          Effect.forEach([1, 2, 3], (i) => lm.complete("teacher", ask(`held ${i} ${stream}`))).pipe(
            Effect.zipRight(lm.stats)
          )
      )
      // By the server's clock: a request came at least the window's 400 ms after the one whose
      // reply closed the window (the client read that reply after the server received its request);
      // less a millisecond or two of timer rounding.
      expect(s.requests).toHaveLength(3)
      const at = s.requests.map((r) => r.receivedAt)
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(398)
      expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(398)
      expect(stats[0]).toMatchObject({ rateLimited: 2, failed: 0, retries: 0 })
    }
  })

  it("reads rate-limit windows as servers write them", () => {
    expect([
      durationMs("1s"),
      durationMs("6m0s"),
      durationMs("59.5ms"),
      durationMs("1h2m3s"),
      durationMs("20"),
      durationMs("soon")
    ]).toEqual([1000, 360_000, 59.5, 3_723_000, 20_000, undefined])
    expect(
      rateLimitOf(["Content-Type", "x", "X-RateLimit-Remaining-Requests", "0", "x-ratelimit-reset-requests", "2s"])
    ).toEqual({ remainingRequests: 0, resetRequestsMs: 2000 })
    expect(rateLimitOf([Buffer.from("content-length"), Buffer.from("12")])).toBeUndefined()
  })

  it("reads Retry-After as seconds, an HTTP date or milliseconds", () => {
    const h = (values: Record<string, string>) => (name: string) => values[name]
    expect(retryAfterMs(h({ "retry-after": "2" }))).toBe(2000)
    expect(retryAfterMs(h({ "retry-after-ms": "150" }))).toBe(150)
    const inFive = new Date(Date.now() + 5000).toUTCString()
    expect(retryAfterMs(h({ "retry-after": inFive }))).toBeGreaterThan(3000)
    expect(retryAfterMs(h({}))).toBeUndefined()
  })

  it("keeps to a tokens-per-minute budget: a request over the minute's budget waits for the next window", async () => {
    const s = await server()
    const started = Date.now()
    const fiber = withModel(
      { teacher: { endpoints: [{ provider: endpoint(s), concurrency: 4, tokensPerMinute: 600 }] } },
      (lm) =>
        Effect.forEach(
          [ask("a", { max_tokens: 500 }), ask("b", { max_tokens: 500 })],
          (r) => lm.complete("teacher", r),
          { concurrency: 2 }
        ).pipe(Effect.timeout(Duration.millis(1_500)), Effect.either)
    )
    const result = await fiber
    // The second request must wait for the next minute, so the pair cannot finish in 1.5 s.
    expect(Either.isLeft(result)).toBe(true)
    expect(s.requests).toHaveLength(1)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400)
  })

  it("keeps a base URL's path and query, and sends its credentials as Basic authorization, not in the URL", async () => {
    const s = await server()
    const base = s.baseUrl.replace("http://", "http://ann:p%40ss@") + "?api-version=2024-10-21"
    const c = await withModel(
      { teacher: { endpoints: [{ provider: endpoint(s, { baseUrl: base }), concurrency: 1 }] } },
      (lm) => lm.complete("teacher", ask("q"))
    )
    expect(c.text).toContain("boxed")
    expect(s.requests[0]!.url).toBe("/v1/chat/completions?api-version=2024-10-21")
    expect(s.requests[0]!.headers["authorization"]).toBe(`Basic ${Buffer.from("ann:p@ss").toString("base64")}`)
  })

  it("goes through HTTP_PROXY (CONNECT, with the proxy's credentials) to a non-loopback endpoint, and straight to a loopback one", async () => {
    const s = await server()
    const connects: Array<{ target: string; auth: string | undefined }> = []
    const tunnels: Array<Socket> = []
    const proxy = createServer((_req, res) => res.writeHead(405).end())
    proxy.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
      connects.push({ target: req.url ?? "", auth: req.headers["proxy-authorization"] })
      tunnels.push(client)
      // The proxy resolves the endpoint's name; here every name is this machine.
      const upstream = connect(Number((req.url ?? "").split(":").pop()), "127.0.0.1", () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n")
        upstream.write(head)
        upstream.pipe(client)
        client.pipe(upstream)
      })
      upstream.on("error", () => client.destroy())
      client.on("error", () => upstream.destroy())
    })
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()))
    const saved = {
      HTTP_PROXY: process.env["HTTP_PROXY"],
      http_proxy: process.env["http_proxy"],
      NO_PROXY: process.env["NO_PROXY"],
      no_proxy: process.env["no_proxy"]
    }
    try {
      for (const k of Object.keys(saved)) delete process.env[k]
      process.env["HTTP_PROXY"] = `http://ann:pr0xy-pw@127.0.0.1:${(proxy.address() as AddressInfo).port}`
      const port = new URL(s.baseUrl).port
      const viaProxy = await withModel(
        {
          teacher: {
            endpoints: [
              { provider: endpoint(s, { baseUrl: `http://models.internal.test:${port}/v1` }), concurrency: 2 }
            ]
          }
        },
        (lm) => Effect.forEach(["a", "b", "c"], (q) => lm.complete("teacher", ask(q)), { concurrency: 3 })
      )
      expect(viaProxy.every((c) => c.text.includes("boxed"))).toBe(true)
      expect(connects.length).toBeGreaterThan(0)
      expect(connects[0]!.target).toBe(`models.internal.test:${port}`)
      expect(connects[0]!.auth).toBe(`Basic ${Buffer.from("ann:pr0xy-pw").toString("base64")}`)
      // A proxy that is not there: the error names it, without its password.
      const dead = createServer()
      await new Promise<void>((r) => dead.listen(0, "127.0.0.1", () => r()))
      const deadPort = (dead.address() as AddressInfo).port
      await new Promise((r) => dead.close(r))
      process.env["HTTP_PROXY"] = `http://ann:pr0xy-pw@127.0.0.1:${deadPort}`
      const refused = await withModel(
        {
          teacher: {
            maxAttempts: 1,
            endpoints: [
              { provider: endpoint(s, { baseUrl: `http://models.internal.test:${port}/v1` }), concurrency: 1 }
            ]
          }
        },
        (lm) => Effect.either(lm.complete("teacher", ask("d")))
      )
      const message = Either.isLeft(refused) ? refused.left.message : ""
      expect(message).toContain(`through the proxy http://127.0.0.1:${deadPort}`)
      expect(message).not.toContain("pr0xy-pw")
      const before = connects.length
      await withModel({ teacher: { endpoints: [{ provider: endpoint(s), concurrency: 1 }] } }, (lm) =>
        lm.complete("teacher", ask("direct"))
      )
      expect(connects.length).toBe(before) // 127.0.0.1 never goes through the proxy
      // NO_PROXY, as curl reads it.
      process.env["NO_PROXY"] = "localhost, .internal.test"
      expect(proxyFor(new URL("http://models.internal.test:8000/v1"))).toBeUndefined()
      expect(proxyFor(new URL("http://api.example.com/v1"))?.hostname).toBe("127.0.0.1")
      process.env["NO_PROXY"] = "api.example.com:8443"
      expect(proxyFor(new URL("https://api.example.com/v1"))).toBeDefined()
      expect(proxyFor(new URL("https://api.example.com:8443/v1"))).toBeUndefined()
      process.env["NO_PROXY"] = "*"
      expect(proxyFor(new URL("http://api.example.com/v1"))).toBeUndefined()
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      for (const t of tunnels) t.destroy()
      await new Promise((r) => proxy.close(r))
    }
  })

  it("keeps the API key out of errors, the store and the cache", async () => {
    const key = "sk-test-SECRET-0123456789"
    const s = await server({ script: (r) => ({ content: `echo ${String(r.headers["authorization"])}`, status: 401 }) })
    const ok = await server()
    const result = await withModel(
      {
        teacher: {
          ...fast,
          endpoints: [
            {
              provider: endpoint(s, { apiKey: key, baseUrl: s.baseUrl.replace("http://", "http://user:pw@") }),
              concurrency: 1
            }
          ]
        }
      },
      (lm) => Effect.either(lm.complete("teacher", ask("x")))
    )
    expect(s.requests[0]!.headers["authorization"]).toBe(`Bearer ${key}`)
    const error = JSON.stringify(Either.isLeft(result) ? result.left : {})
    expect(error).toContain("[redacted]")
    expect(error).not.toContain(key)
    expect(error).not.toContain("pw@")
    await withModel({ teacher: { endpoints: [{ provider: endpoint(ok, { apiKey: key }), concurrency: 1 }] } }, (lm) =>
      lm.complete("teacher", ask("stored"))
    )
    for (const f of readdirSync(harness.dir())) expect(readFileSync(join(harness.dir(), f)).includes(key)).toBe(false)
  })
})

describe("Permits (an endpoint's concurrency limit)", () => {
  it("never lets more than its size run at once, and every waiter runs", async () => {
    const permits = new Permits(3)
    let running = 0
    let most = 0
    const job = Effect.acquireUseRelease(
      Effect.sync(() => (most = Math.max(most, ++running))),
      () => Effect.sleep(Duration.millis(5)),
      () => Effect.sync(() => void running--)
    )
    await Effect.runPromise(
      Effect.forEach(Array.from({ length: 40 }), () => permits.with(job), { concurrency: "unbounded" })
    )
    expect(most).toBe(3)
    expect(permits.inUse).toBe(0)
  })

  it("lets an interrupted waiter go without losing its place's permit, under a storm of interruptions", async () => {
    const permits = new Permits(2)
    const ran: Array<number> = []
    await Effect.runPromise(
      Effect.gen(function* () {
        const holder = yield* Effect.fork(permits.with(Effect.sleep(Duration.millis(30))))
        yield* Effect.sleep(Duration.millis(1))
        const fibers = yield* Effect.forEach(
          Array.from({ length: 60 }, (_, i) => i),
          (i) =>
            Effect.fork(
              permits.with(Effect.sleep(Duration.millis(i % 3)).pipe(Effect.tap(() => Effect.sync(() => ran.push(i)))))
            )
        )
        // Interrupt every third waiter, some while waiting and some just as a permit reaches them.
        for (const [i, f] of fibers.entries())
          if (i % 3 === 0) yield* Fiber.interrupt(f).pipe(Effect.delay(Duration.millis(i % 2)), Effect.fork)
        yield* Fiber.join(holder)
        yield* Effect.forEach(fibers, (f) => Fiber.await(f), { discard: true })
      })
    )
    expect(permits.inUse).toBe(0)
    // Every waiter that was not interrupted ran.
    for (let i = 0; i < 60; i++) if (i % 3 !== 0) expect(ran).toContain(i)
    // And the limit still holds afterwards: two at once, no more.
    let running = 0
    let most = 0
    await Effect.runPromise(
      Effect.forEach(
        Array.from({ length: 10 }),
        () =>
          permits.with(
            Effect.sync(() => (most = Math.max(most, ++running))).pipe(
              Effect.zipRight(Effect.sleep(Duration.millis(3))),
              Effect.ensuring(Effect.sync(() => void running--))
            )
          ),
        { concurrency: "unbounded" }
      )
    )
    expect(most).toBe(2)
  })
})
