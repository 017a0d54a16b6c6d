import * as PgClient from "@effect/sql-pg/PgClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import { Socket } from "node:net"
import Pg from "pg"
import { parseIntoClientConfig } from "pg-connection-string"
import { lookUpPassword } from "./pgPassword.js"
import { sqlState } from "./pgErrors.js"

const CONNECT_TIMEOUT = Duration.seconds(10)

/**
 * The connection pool behind a PostgreSQL store, open for the scope: at most 8 connections, each
 * named `session` (its application_name). The URL's fields and parameters are read as pg reads
 * them; its password, when it has one, is split off and, like PGPASSWORD and the password file, is
 * handed over only when the server asks for one (`lookUpPassword`), so that it never travels in a
 * connection string. Fails when no connection can be made within 10 s; a refused password says
 * which one was tried. Every socket the pool opened is closed with the scope, including one whose
 * sign-in failed on this side (pg leaves that one open until the server gives up on it, a minute
 * later, and the process with it).
 */
export const acquirePgPool = (url: string, session: string): Effect.Effect<Pg.Pool, SqlError, Scope.Scope> => {
  let passwordFrom: string | undefined
  const sockets = new Set<Socket>()
  const openSocket = () => {
    const socket = new Socket()
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
    return socket
  }
  return Effect.acquireRelease(
    Effect.sync(() => {
      const { password: urlPassword, ...fields } = parseIntoClientConfig(url)
      const pool = new Pg.Pool({
        ...fields,
        password: lookUpPassword(typeof urlPassword === "string" ? urlPassword : "", (source) => {
          passwordFrom = source
        }),
        application_name: session,
        stream: openSocket,
        max: 8,
        connectionTimeoutMillis: Duration.toMillis(CONNECT_TIMEOUT)
      })
      // An idle connection that the server closes is dropped by the pool; it is not an error of
      // any statement.
      pool.on("error", () => {})
      return pool
    }),
    (pool) =>
      Effect.promise(() => pool.end()).pipe(
        Effect.interruptible,
        Effect.timeoutOption(1000),
        Effect.ensuring(
          Effect.sync(() => {
            for (const socket of sockets) socket.destroy()
          })
        )
      )
  ).pipe(
    Effect.tap((pool) =>
      Effect.tryPromise({
        try: () => pool.query("SELECT 1"),
        catch: (cause) =>
          new SqlError({
            cause,
            message:
              (cause as { code?: unknown } | undefined)?.code === INVALID_PASSWORD && passwordFrom !== undefined
                ? `PgClient: Failed to connect with the password from ${passwordFrom}`
                : "PgClient: Failed to connect"
          })
      }).pipe(
        Effect.timeoutFail({
          duration: CONNECT_TIMEOUT,
          onTimeout: () =>
            new SqlError({ cause: new Error("Connection timed out"), message: "PgClient: Connection timed out" })
        })
      )
    )
  )
}

/** SQLSTATE 28P01: the server refused the password (or the user is unknown to it). */
const INVALID_PASSWORD = "28P01"

/** @effect/sql's client over a pool that the caller owns (and closes). */
export const pgClientOf = (pool: Pg.Pool, session: string) =>
  PgClient.fromPool({ acquire: Effect.succeed(pool), applicationName: session })

/** One connection of the pool used directly, for what @effect/sql cannot send (COPY). */
export interface RawConnection {
  readonly client: Pg.PoolClient
  readonly query: (text: string, params?: ReadonlyArray<unknown>) => Effect.Effect<ReadonlyArray<unknown>, SqlError>
}

const rawConnection = (client: Pg.PoolClient): RawConnection => ({
  client,
  query: (text, params) =>
    Effect.tryPromise({
      try: () => client.query(text, params === undefined ? undefined : [...params]).then((r) => r.rows),
      catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
    })
})

/**
 * Runs `use` in a transaction on one connection of the pool, committed when it succeeds; `tag`, a
 * comment before BEGIN and COMMIT, names them in pg_stat_activity. When it
 * fails with the server's answer the transaction is rolled back and the connection goes back to
 * the pool; when the connection failed, or the fiber was interrupted while a statement may still
 * be running, the connection is closed instead (the server then rolls back what was not
 * committed).
 */
export const inRawTransaction = <A>(
  pool: Pg.Pool,
  tag: string,
  use: (connection: RawConnection) => Effect.Effect<A, SqlError>
): Effect.Effect<A, SqlError> =>
  Effect.acquireUseRelease(
    Effect.tryPromise({
      try: () => pool.connect(),
      catch: (cause) => new SqlError({ cause, message: "Failed to acquire connection" })
    }).pipe(
      Effect.map((client) => {
        // A connection that breaks while held says so as an event too; the statement it was
        // running fails with the same error, which is what is reported.
        client.on("error", ignore)
        return { client, reusable: true }
      })
    ),
    (held) => {
      const connection = rawConnection(held.client)
      const unusable = Effect.sync(() => {
        held.reusable = false
      })
      return connection.query(`/* ${tag} */ BEGIN`).pipe(
        Effect.zipRight(use(connection)),
        Effect.zipLeft(connection.query(`/* ${tag} */ COMMIT`)),
        Effect.tapError((e) =>
          hasServerAnswer(e) ? Effect.catchAll(connection.query("ROLLBACK"), () => unusable) : unusable
        )
      )
    },
    (held, exit) =>
      Effect.sync(() => {
        held.client.off("error", ignore)
        held.client.release(
          Exit.isSuccess(exit) || (held.reusable && !Cause.isInterrupted(exit.cause)) ? undefined : true
        )
      })
  )

const ignore = () => {}

/** A failure that the server answered with a SQLSTATE: the connection itself is fine. */
const hasServerAnswer = (e: SqlError): boolean => sqlState(e) !== undefined
