// Holds a PostgreSQL workspace's run lock until killed; the lock tests kill this process.
import { Effect } from "effect"
import { PgRunStoreLive, RunStore } from "../../dist/index.js"

const [url] = process.argv.slice(2)
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* RunStore
      yield* store.lockRun("a held lock")
      process.stdout.write("locked\n")
      yield* Effect.never
    }).pipe(Effect.provide(PgRunStoreLive(url)))
  )
)
