import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Cause from "effect/Cause"
import { describe, expect, it } from "vitest"
import { importFile } from "../import/importFile.js"
import { usePostgresCluster } from "../test-support/postgresHooks.js"
import { PgRunStoreLive } from "./PgRunStore.js"
import { RunStore } from "./RunStore.js"

const cluster = usePostgresCluster()

/**
 * Opens the store at `url` as `password`'s user, imports `file` when given, and counts its
 * problems; the failure's message when it cannot.
 */
const problemsAs = (url: string, password: string, file?: string) => {
  const saved = process.env["PGPASSWORD"]
  process.env["PGPASSWORD"] = password
  return Effect.runPromiseExit(
    Effect.scoped(
      Effect.zipRight(
        file === undefined ? Effect.void : importFile(file, { batchSize: 2 }),
        Effect.flatMap(RunStore, (store) => Effect.map(store.status, (s) => s.problems))
      ).pipe(Effect.provide(PgRunStoreLive(url)))
    )
  )
    .then((exit) =>
      Exit.isSuccess(exit) ? exit.value : (Cause.squash(exit.cause) as { readonly message: string }).message
    )
    .finally(() => {
      process.env["PGPASSWORD"] = saved
    })
}

describe("the PostgreSQL store's migrations and a user's rights (a real server on 127.0.0.1)", () => {
  it("lets a worker role with the tables' rights alone open a database its owner migrated, and says which rights are missing", async () => {
    const url = cluster().createDatabase("rights")
    cluster().psql("postgres", "CREATE ROLE worker LOGIN PASSWORD 'worker-pw'")
    const asWorker = url.replace(`${cluster().user}@`, "worker@")

    // No table yet, and no CREATE on the schema (PostgreSQL 15's default for others than the owner).
    expect(await problemsAs(asWorker, "worker-pw")).toMatch(
      /^migrating the database \(postgres:\/\/worker@127\.0\.0\.1:\d+\/rights\): .*permission denied for schema public \(SQLSTATE 42501\); the first command on a database creates fastcot's tables: run it as the database's owner/
    )

    // The owner's first command migrates; the worker, granted nothing on the tables, is told what it needs.
    expect(await problemsAs(url, cluster().password)).toBe(0)
    expect(await problemsAs(asWorker, "worker-pw")).toContain(
      "permission denied for table fastcot_schema (SQLSTATE 42501); a user who did not create fastcot's tables needs SELECT, INSERT, UPDATE and DELETE on them"
    )

    cluster().psql(
      "rights",
      "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO worker; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO worker"
    )
    // What a worker does: an import (COPY through a temporary table) and the store's reads.
    const file = join(mkdtempSync(join(tmpdir(), "fastcot-rights-")), "q.jsonl")
    writeFileSync(file, ["1+1", "2+2", "3+3"].map((q) => JSON.stringify({ question: q, answer: "x" })).join("\n"))
    expect(await problemsAs(asWorker, "worker-pw", file)).toBe(3)
    rmSync(dirname(file), { recursive: true })
  })
})
