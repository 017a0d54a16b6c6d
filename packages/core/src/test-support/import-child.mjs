// Imports one file into a store, as `fastcot import` does; the crash test kills this process.
import { Effect } from "effect"
import { importFile, SqliteRunStoreLive } from "../../dist/index.js"

const [db, file, batchSize] = process.argv.slice(2)
await Effect.runPromise(
  Effect.scoped(importFile(file, { batchSize: Number(batchSize) }).pipe(Effect.provide(SqliteRunStoreLive(db))))
)
process.stdout.write("finished\n")
