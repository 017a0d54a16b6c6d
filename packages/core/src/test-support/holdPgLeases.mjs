// A worker on a PostgreSQL store that claims work and holds it until killed; the lease tests
// kill this process.
import { Effect } from "effect"
import { PgRunStoreLive, RunStore } from "../../dist/index.js"

const [url, leaseMs, ...keys] = process.argv.slice(2)
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* RunStore
      yield* store.lockRun("a worker that holds its leases")
      const taken = yield* store.claim(keys)
      process.stdout.write(`claimed ${taken.size}\n`)
      yield* Effect.never
    }).pipe(Effect.provide(PgRunStoreLive(url, { leaseMs: Number(leaseMs) })))
  )
)
