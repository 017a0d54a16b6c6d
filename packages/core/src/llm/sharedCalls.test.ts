import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { describe, expect, it } from "vitest"
import { PgRunStoreLive } from "../store/PgRunStore.js"
import { RunStore } from "../store/RunStore.js"
import { startScriptedServer } from "../testing/scriptedServer.js"
import { ask } from "../test-support/languageModelHarness.js"
import { usePostgresCluster } from "../test-support/postgresHooks.js"
import { makeLanguageModel } from "./LanguageModel.js"
import { openAiProvider } from "./openai.js"

const cluster = usePostgresCluster()

describe("calls across workers on a shared store (a real PostgreSQL server, a scripted loopback endpoint)", () => {
  it("sends a request two workers make at once only once: the second waits for the first's answer", async () => {
    const server = await startScriptedServer({ latencyMs: 400 })
    const url = cluster().createDatabase("shared_calls")
    try {
      const roles = {
        teacher: {
          endpoints: [
            { provider: openAiProvider({ baseUrl: server.baseUrl, model: "m", timeoutMs: 5_000 }), concurrency: 4 }
          ]
        }
      }
      const worker = Effect.gen(function* () {
        const store = Context.get(yield* Layer.build(PgRunStoreLive(url, { leaseMs: 5_000 })), RunStore)
        return yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, store))
      })
      const answers = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const [a, b] = yield* Effect.all([worker, worker])
            const question = ask("What is 21 + 21?")
            return yield* Effect.all([a.complete("teacher", question), b.complete("teacher", question)], {
              concurrency: "unbounded"
            })
          })
        )
      )
      expect(server.requests).toHaveLength(1)
      expect(answers[0].text).toBe(answers[1].text)
      expect(answers.map((x) => x.cached).sort()).toEqual([false, true])
    } finally {
      await server.close()
    }
  })

  it("does not pay for a call whose answer reached the cache between its look there and its claim", async () => {
    const server = await startScriptedServer({ latencyMs: 5 })
    const url = cluster().createDatabase("answer_between")
    try {
      const roles = {
        teacher: {
          endpoints: [
            { provider: openAiProvider({ baseUrl: server.baseUrl, model: "m", timeoutMs: 5_000 }), concurrency: 4 }
          ]
        }
      }
      const outcome = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const storeOf = Effect.map(Layer.build(PgRunStoreLive(url, { leaseMs: 5_000 })), (ctx) =>
              Context.get(ctx, RunStore)
            )
            const question = ask("What is 21 + 21?")
            // One worker pays for the call; its answer is in the cache and its lease is given up.
            const first = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, yield* storeOf))
            const paid = yield* first.complete("teacher", question)
            yield* Effect.sleep("400 millis")
            // The other worker's first look at the cache was made just before that answer landed.
            const store = yield* storeOf
            let looks = 0
            const late: RunStore["Type"] = {
              ...store,
              cacheGet: (key) => (looks++ === 0 ? Effect.succeedNone : store.cacheGet(key))
            }
            const second = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, late))
            return { paid, again: yield* second.complete("teacher", question), looks }
          })
        )
      )
      expect(server.requests).toHaveLength(1)
      expect(outcome.looks).toBe(2)
      expect(outcome.again.cached).toBe(true)
      expect(outcome.again.text).toBe(outcome.paid.text)
    } finally {
      await server.close()
    }
  })

  it("gives up a call's lease when its caller is interrupted as the claim comes back: another worker then sends it", async () => {
    const server = await startScriptedServer({ latencyMs: 5 })
    const url = cluster().createDatabase("claim_interrupted")
    try {
      const roles = {
        teacher: {
          endpoints: [
            { provider: openAiProvider({ baseUrl: server.baseUrl, model: "m", timeoutMs: 5_000 }), concurrency: 4 }
          ]
        }
      }
      const outcome = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const storeOf = Effect.map(Layer.build(PgRunStoreLive(url, { leaseMs: 5_000 })), (ctx) =>
              Context.get(ctx, RunStore)
            )
            const question = ask("What is 21 + 21?")
            // The first worker's claim is answered while its caller is being interrupted (a claim
            // handed to the server is waited for uninterruptibly).
            const store = yield* storeOf
            const slow: RunStore["Type"] = {
              ...store,
              claim: (keys) => Effect.uninterruptible(Effect.zipLeft(store.claim(keys), Effect.sleep("300 millis")))
            }
            const first = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, slow))
            const call = yield* Effect.fork(first.complete("teacher", question))
            yield* Effect.sleep("100 millis")
            yield* Fiber.interrupt(call)
            // The first worker's store is still open and renews what it holds: only a lease it
            // gave up lets the second worker send the call.
            const second = yield* makeLanguageModel(roles).pipe(Effect.provideService(RunStore, yield* storeOf))
            return yield* Effect.either(Effect.timeout(second.complete("teacher", question), "3 seconds"))
          })
        )
      )
      expect(outcome._tag).toBe("Right")
      expect(server.requests).toHaveLength(1)
    } finally {
      await server.close()
    }
  })
})
