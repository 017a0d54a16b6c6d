// A worker on a PostgreSQL store that claims work and holds it until killed; the lease tests
// kill this process. With FASTCOT_HOLDER_SAVES set, it then saves the store's first item as
// kept (and says "saving"), as a worker finishing its work would: a save the test can hold up.
import { Effect } from "effect"
import { Item, PgRunStoreLive, RunStore } from "../../dist/index.js"

const [url, leaseMs, ...keys] = process.argv.slice(2)
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* RunStore
      yield* store.lockRun("a worker that holds its leases")
      const taken = yield* store.claim(keys)
      process.stdout.write(`claimed ${taken.size}\n`)
      if (process.env.FASTCOT_HOLDER_SAVES !== undefined) {
        const [first] = yield* store.listItems({ limit: 1 })
        process.stdout.write("saving\n")
        yield* store.saveItem(new Item({ ...first, stage: "done", fate: "kept", keptAs: "initial-medium" }))
        process.stdout.write("saved\n")
      }
      yield* Effect.never
    }).pipe(Effect.provide(PgRunStoreLive(url, { leaseMs: Number(leaseMs) })))
  )
)
