import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { describe, expect, it } from "vitest"
import { PgRunStoreLive } from "../store/PgRunStore.js"
import { RunStore } from "../store/RunStore.js"
import { startScriptedServer } from "../testing/scriptedServer.js"
import { ask } from "../test-support/languageModelHarness.js"
import { usePostgresCluster } from "../test-support/postgresHooks.js"
import { type LanguageModelShape, makeLanguageModel } from "./LanguageModel.js"
import { openAiProvider } from "./openai.js"

const cluster = usePostgresCluster()
const question = ask("What is 21 + 21?")

/** A worker's store on the database at `url`: a store of its own, as another process would open. */
const workerStore = (url: string) =>
  Effect.map(Layer.build(PgRunStoreLive(url, { leaseMs: 5_000 })), (ctx) => Context.get(ctx, RunStore))

/** A worker's language model over its own store; one teacher endpoint, four calls at a time. */
type Workers = (store: RunStore["Type"]) => Effect.Effect<LanguageModelShape, never, Scope.Scope>

/**
 * Runs `body` against a scripted teacher endpoint on loopback (replies after `latencyMs`) and a
 * fresh database `name`; says what `body` returned and how many requests reached the endpoint.
 */
const againstEndpoint = async <A>(
  name: string,
  latencyMs: number,
  body: (workerOn: Workers, url: string) => Effect.Effect<A, unknown, Scope.Scope>
) => {
  const server = await startScriptedServer({ latencyMs })
  try {
    const roles = {
      teacher: {
        endpoints: [
          { provider: openAiProvider({ baseUrl: server.baseUrl, model: "m", timeoutMs: 5_000 }), concurrency: 4 }
        ]
      }
    }
    const workerOn: Workers = (store) => makeLanguageModel(roles).pipe(Effect.provideService(RunStore, store))
    const outcome = await Effect.runPromise(Effect.scoped(body(workerOn, cluster().createDatabase(name))))
    return { outcome, requests: server.requests.length }
  } finally {
    await server.close()
  }
}

describe("calls across workers on a shared store (a real PostgreSQL server, a scripted loopback endpoint)", () => {
  it("sends a request two workers make at once only once: the second waits for the first's answer", async () => {
    const { outcome: answers, requests } = await againstEndpoint("shared_calls", 400, (workerOn, url) =>
      Effect.gen(function* () {
        const [a, b] = yield* Effect.all([workerOn(yield* workerStore(url)), workerOn(yield* workerStore(url))])
        return yield* Effect.all([a.complete("teacher", question), b.complete("teacher", question)], {
          concurrency: "unbounded"
        })
      })
    )
    expect(requests).toBe(1)
    expect(answers[0].text).toBe(answers[1].text)
    expect(answers.map((x) => x.cached).sort()).toEqual([false, true])
  })

  it("does not pay for a call whose answer reached the cache between its look there and its claim", async () => {
    const { outcome, requests } = await againstEndpoint("answer_between", 5, (workerOn, url) =>
      Effect.gen(function* () {
        // One worker pays for the call; its answer is in the cache and its lease is given up.
        const paid = yield* (yield* workerOn(yield* workerStore(url))).complete("teacher", question)
        yield* Effect.sleep("400 millis")
        // The other worker's first look at the cache was made just before that answer landed (the
        // look of its claim's statement, whose snapshot came first): it missed, and the lease was
        // taken.
        const store = yield* workerStore(url)
        let claims = 0
        let looks = 0
        const late: RunStore["Type"] = {
          ...store,
          claimCall: (_key, lease) =>
            Effect.suspend(() => {
              claims++
              return Effect.map(store.claim([lease]), (taken) => ({ cached: Option.none(), taken: taken.has(lease) }))
            }),
          cacheGet: (key) => Effect.suspend(() => (looks++, store.cacheGet(key)))
        }
        return { paid, again: yield* (yield* workerOn(late)).complete("teacher", question), claims, looks }
      })
    )
    expect(requests).toBe(1)
    // One claim, then a look of its own before paying.
    expect([outcome.claims, outcome.looks]).toEqual([1, 1])
    expect(outcome.again.cached).toBe(true)
    expect(outcome.again.text).toBe(outcome.paid.text)
  })

  it("gives up a call's lease when its caller is interrupted as the claim comes back: another worker then sends it", async () => {
    const { outcome, requests } = await againstEndpoint("claim_interrupted", 5, (workerOn, url) =>
      Effect.gen(function* () {
        // The first worker's claim is answered while its caller is being interrupted (a claim
        // handed to the server is waited for uninterruptibly).
        const store = yield* workerStore(url)
        const slow: RunStore["Type"] = {
          ...store,
          claimCall: (key, lease) =>
            Effect.uninterruptible(Effect.zipLeft(store.claimCall(key, lease), Effect.sleep("300 millis")))
        }
        const call = yield* Effect.fork((yield* workerOn(slow)).complete("teacher", question))
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(call)
        // The first worker's store is still open and renews what it holds: only a lease it gave
        // up lets the second worker send the call.
        const second = yield* workerOn(yield* workerStore(url))
        return yield* Effect.either(Effect.timeout(second.complete("teacher", question), "3 seconds"))
      })
    )
    expect(outcome._tag).toBe("Right")
    expect(requests).toBe(1)
  })
})
