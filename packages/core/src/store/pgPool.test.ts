import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { usePostgresCluster } from "../test-support/postgresHooks.js"
import { acquirePgPool } from "./pgPool.js"

const cluster = usePostgresCluster()

/** Who the pool signs in as, asked of the server. */
const signIn = (url: string) =>
  Effect.scoped(
    Effect.flatMap(acquirePgPool(url, "fastcot test"), (pool) =>
      Effect.promise(() => pool.query<{ user: string }>("SELECT current_user AS user"))
    )
  ).pipe(Effect.map((r) => r.rows[0]!.user))

/** A failed sign-in's message and its driver's (as the store reports them). */
const failure = (exit: Exit.Exit<string, SqlError>): string => {
  if (Exit.isSuccess(exit)) return "signed in"
  const e = Cause.squash(exit.cause) as SqlError
  return `${e.message} (${e.cause instanceof Error ? e.cause.message : ""})`
}

/** How many TCP sockets this process holds open (Node's own count of its active resources). */
const openSockets = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length

describe("the PostgreSQL store's sign-in (a real server on 127.0.0.1 that asks for a password)", () => {
  let folder: string
  let saved: NodeJS.ProcessEnv
  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), "fastcot-pgpass-"))
    saved = { ...process.env }
    // A user who set neither PGPASSWORD nor a password file.
    delete process.env["PGPASSWORD"]
    process.env["PGPASSFILE"] = join(folder, "pgpass")
  })
  afterEach(() => {
    process.env = saved
    rmSync(folder, { recursive: true, force: true })
  })

  it("says what to set when no password is found, and leaves no socket open", async () => {
    const before = openSockets()
    const exit = await Effect.runPromiseExit(signIn(cluster().url("postgres")))
    expect(failure(exit)).toContain(
      `the server asks for a password for fastcot@127.0.0.1:${cluster().port}/postgres and none was found: set PGPASSWORD, or add the line`
    )
    // The driver kept such a socket open until the server gave up on it (a minute); the pool's
    // scope closes it. A socket's handle goes once its close has run. (This test runs first, so
    // that no other test's sockets are still closing.)
    for (let i = 0; i < 50 && openSockets() > before; i++) await new Promise((r) => setTimeout(r, 20))
    expect(openSockets()).toBe(before)
  })

  it("takes the password written in the URL", async () => {
    const url = cluster().url("postgres").replace("fastcot@", `fastcot:${cluster().password}@`)
    expect(await Effect.runPromise(signIn(url))).toBe("fastcot")
  })

  it("reads the password file as psql does, without the driver's deprecation warning", async () => {
    writeFileSync(
      process.env["PGPASSFILE"]!,
      `127.0.0.1:${cluster().port}:other:fastcot:wrong\n*:*:postgres:fastcot:${cluster().password}\n`,
      { mode: 0o600 }
    )
    const warnings: Array<string> = []
    const onWarning = (w: Error) => warnings.push(w.message)
    process.on("warning", onWarning)
    try {
      expect(await Effect.runPromise(signIn(cluster().url("postgres")))).toBe("fastcot")
      // A warning is emitted on the next tick.
      await new Promise((r) => setImmediate(r))
    } finally {
      process.off("warning", onWarning)
    }
    expect(warnings.filter((w) => w.includes("pgpass"))).toEqual([])
  })

  it("reads the password file when PGPASSWORD is set but empty, as libpq does", async () => {
    writeFileSync(process.env["PGPASSFILE"]!, `*:*:postgres:fastcot:${cluster().password}\n`, { mode: 0o600 })
    process.env["PGPASSWORD"] = ""
    expect(await Effect.runPromise(signIn(cluster().url("postgres")))).toBe("fastcot")
  })

  it("says which password the server refused, never the password", async () => {
    process.env["PGPASSWORD"] = "not-the-password"
    const exit = await Effect.runPromiseExit(signIn(cluster().url("postgres")))
    const message = failure(exit)
    expect(message).toContain("Failed to connect with the password from PGPASSWORD")
    expect(message).not.toContain("not-the-password")
  })
})
