import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { from as copyFrom } from "pg-copy-streams"
import type { RawConnection } from "./pgPool.js"

/** A value of one column: text, a number, or NULL. */
export type CopyValue = string | number | null

const SPECIAL = /[\\\n\r\t]/
const SPECIALS = /[\\\n\r\t]/g
const ESCAPED: Readonly<Record<string, string>> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" }

/** One value in COPY's text format: NULL as \N, backslash, newline, return and tab escaped. */
const field = (value: CopyValue): string =>
  value === null
    ? "\\N"
    : typeof value === "number"
      ? String(value)
      : SPECIAL.test(value)
        ? value.replace(SPECIALS, (c) => ESCAPED[c]!)
        : value

/** Rows in COPY's text format: tab between values, a newline after each row. */
export const copyText = (rows: ReadonlyArray<ReadonlyArray<CopyValue>>): string => {
  let text = ""
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) text += (i === 0 ? "" : "\t") + field(row[i]!)
    text += "\n"
  }
  return text
}

/**
 * Sends `rows` into `table`'s `columns` with COPY FROM STDIN, in the connection's transaction.
 * `tag`, a comment, names the statement in pg_stat_activity. A row the table refuses (a key that
 * is there already: SQLSTATE 23505) fails the whole COPY with the server's error.
 */
export const copyRows = (
  connection: RawConnection,
  table: string,
  columns: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<CopyValue>>,
  tag: string
): Effect.Effect<void, SqlError> =>
  rows.length === 0
    ? Effect.void
    : Effect.tryPromise({
        try: () =>
          pipeline(
            Readable.from([copyText(rows)]),
            connection.client.query(copyFrom(`/* ${tag} */ COPY ${table} (${columns.join(", ")}) FROM STDIN`))
          ),
        catch: (cause) => new SqlError({ cause, message: `Failed to copy rows into ${table}` })
      })
