import * as PgClient from "@effect/sql-pg/PgClient"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { hostname } from "node:os"
import { Item, makeItem } from "../schema/item.js"
import { Problem } from "../schema/problem.js"
import { Round } from "../schema/round.js"
import { StoreError, WorkspaceBusy } from "./errors.js"
import { ADVISORY, migratePg } from "./pgMigrations.js"
import { PgSpendLedger } from "./pgSpendLedger.js"
import { describeHolder, holderOf, processStart, type RunLockRow } from "./runLock.js"
import {
  type CacheEntry,
  type ImportProgress,
  type ImportReject,
  type ProblemFlag,
  RunStore,
  type RunStoreShape
} from "./RunStore.js"
import { type CallRow, countsOf, statusOf, type TokenRow } from "./statusQueries.js"

const decodeProblem = Schema.decodeUnknownSync(Schema.parseJson(Problem))
const encodeRound = Schema.encodeSync(Round)
const decodeItemRow = Schema.decodeUnknownSync(Schema.parseJson(Item.pipe(Schema.omit("rounds"))))
const decodeRound = Schema.decodeUnknownSync(Schema.parseJson(Round))
const encodeItemRow = (item: Item) => JSON.stringify({ ...item, rounds: undefined })

/** Rows per INSERT (PostgreSQL takes at most 65,535 parameters a statement). */
const CHUNK = 500

const chunks = <A>(xs: ReadonlyArray<A>): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < xs.length; i += CHUNK) out.push(xs.slice(i, i + CHUNK))
  return out
}

/** A store URL as it may be shown: the password (when the URL carries one) left out. */
export const displayStoreUrl = (url: string): string => {
  try {
    const u = new URL(url)
    u.password = ""
    return u.toString()
  } catch {
    return "<invalid PostgreSQL URL>"
  }
}

/** Whether a store location names a PostgreSQL database rather than a SQLite file. */
export const isPostgresUrl = (location: string): boolean => /^postgres(ql)?:\/\//i.test(location)

const toProgress = (row: Record<string, unknown>): ImportProgress => ({
  key: String(row["key"]),
  path: String(row["path"]),
  rows: Number(row["rows"]),
  offset: Number(row["offset"]),
  line: Number(row["line"]),
  problemsAdded: Number(row["problems_added"]),
  itemsAdded: Number(row["items_added"]),
  duplicates: Number(row["duplicates"]),
  rejected: Number(row["rejected"]),
  done: row["done"] === true
})

const itemRow = (item: Item) => ({
  id: item.id,
  problem_id: item.problemId,
  stage: item.stage,
  fate: item.fate,
  kept_as: item.keptAs ?? null,
  reason_code: item.reason?.code ?? null,
  reasoning_tokens: item.trace?.tokens?.reasoning ?? null,
  original_reasoning_tokens: item.original?.tokens?.reasoning ?? null,
  tokenizer: item.trace?.tokens?.tokenizer ?? null,
  data: encodeItemRow(item),
  created_at: item.createdAt,
  updated_at: item.updatedAt
})

const roundRow = (itemId: string, r: Round) => {
  const encoded = encodeRound(r)
  return { item_id: itemId, idx: r.index, data: JSON.stringify(encoded), calls: JSON.stringify(encoded.calls) }
}

/**
 * The run store on a PostgreSQL database, over @effect/sql-pg's pool: the same service as the
 * SQLite store, for workspaces that several machines share. The password comes from the URL,
 * PGPASSWORD or ~/.pgpass (the driver reads them); `location` never shows it. Every change of
 * state is one transaction; the run lock is a session advisory lock that the server releases
 * when the holder's connection ends, so a killed process frees it at once.
 */
export const makePgRunStore = (
  url: string
): Effect.Effect<RunStoreShape, StoreError, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql: SqlClient = yield* PgClient.PgClient
    const clock = yield* Effect.clock
    const location = displayStoreUrl(url)
    const now = () => new Date(clock.unsafeCurrentTimeMillis()).toISOString()
    const fail =
      (what: string) =>
      (e: SqlError | StoreError): StoreError =>
        e._tag === "StoreError" ? e : new StoreError({ message: `${what} (${location}): ${e.message}`, cause: e })
    const run = <A, E extends SqlError | StoreError, R>(what: string, effect: Effect.Effect<A, E, R>) =>
      Effect.mapError(effect, fail(what))
    const tx = <A, E extends SqlError | StoreError, R>(what: string, effect: Effect.Effect<A, E, R>) =>
      run(what, sql.withTransaction(effect))

    yield* migratePg(sql)
    const ledger = yield* PgSpendLedger.make(sql, now)

    // Rounds are append-only: a round this store has written for an item is not sent again.
    const committedRounds = new WeakMap<object, string>()
    const insertRounds = (item: Item) => {
      const fresh = item.rounds.filter((r) => committedRounds.get(r) !== item.id).map((r) => roundRow(item.id, r))
      return Effect.forEach(
        chunks(fresh),
        (rows) => sql`INSERT INTO rounds ${sql.insert(rows)} ON CONFLICT DO NOTHING`,
        { discard: true }
      )
    }
    const markCommitted = (item: Item) => {
      for (const r of item.rounds) committedRounds.set(r, item.id)
    }

    const insertItems = (items: ReadonlyArray<Item>) =>
      Effect.gen(function* () {
        let added = 0
        for (const part of chunks(items)) {
          const ids = yield* sql<{ id: string }>`INSERT INTO items ${sql.insert(part.map(itemRow))}
            ON CONFLICT DO NOTHING RETURNING id`
          const fresh = new Set(ids.map((r) => r.id))
          added += fresh.size
          for (const item of part) if (fresh.has(item.id)) yield* insertRounds(item)
        }
        return added
      })

    const loadItems = (ids: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        if (ids.length === 0) return []
        const rows = yield* sql<{ id: string; data: string }>`SELECT id, data FROM items WHERE ${sql.in("id", ids)}`
        const rounds = yield* sql<{ item_id: string; data: string }>`SELECT item_id, data FROM rounds
          WHERE ${sql.in("item_id", ids)} ORDER BY item_id, idx`
        const byItem = new Map<string, Array<Round>>()
        for (const r of rounds) {
          let list = byItem.get(r.item_id)
          if (list === undefined) byItem.set(r.item_id, (list = []))
          list.push(decodeRound(r.data))
        }
        const byId = new Map(rows.map((r) => [r.id, r.data]))
        return ids.flatMap((id) => {
          const data = byId.get(id)
          if (data === undefined) return []
          const item = makeItem({ ...decodeItemRow(data), rounds: byItem.get(id) ?? [] })
          markCommitted(item)
          return [item]
        })
      })

    const decodeAll = <A>(what: string, f: () => A): Effect.Effect<A, StoreError> =>
      Effect.try({
        try: f,
        catch: (cause) =>
          new StoreError({
            message: `${what} (${location}): ${cause instanceof Error ? cause.message : String(cause)}`,
            cause
          })
      })

    const runLockRow = sql<
      RunLockRow & { backend_pid: number }
    >`SELECT pid, host, process_start, started_at, what, backend_pid
      FROM run_lock WHERE id = 1`

    const store: RunStoreShape = {
      location,
      importProgress: (key) =>
        run(
          "reading import progress",
          Effect.map(sql<Record<string, unknown>>`SELECT * FROM imports WHERE key = ${key}`, (rows) =>
            rows[0] === undefined ? Option.none() : Option.some(toProgress(rows[0]))
          )
        ),
      commitImportBatch: (batch) =>
        tx(
          "committing an import batch",
          Effect.gen(function* () {
            const createdAt = now()
            let problemsAdded = 0
            for (const part of chunks(batch.problems)) {
              const rows = part.map((p) => ({
                id: p.id,
                domain: p.domain,
                data: JSON.stringify(p),
                created_at: createdAt
              }))
              const added = yield* sql`INSERT INTO problems ${sql.insert(rows)} ON CONFLICT DO NOTHING RETURNING id`
              problemsAdded += added.length
            }
            const itemsAdded = yield* insertItems(batch.items)
            for (const part of chunks(batch.rejects)) {
              const rows = part.map((r) => ({ key: batch.progress.key, ...r }))
              yield* sql`INSERT INTO import_rejects ${sql.insert(rows)} ON CONFLICT DO NOTHING`
            }
            const p = batch.progress
            const row = {
              key: p.key,
              path: p.path,
              rows: p.rows,
              offset: p.offset,
              line: p.line,
              problems_added: p.problemsAdded + problemsAdded,
              items_added: p.itemsAdded + itemsAdded,
              duplicates: p.duplicates + (batch.problems.length - problemsAdded),
              rejected: p.rejected,
              done: p.done,
              updated_at: createdAt
            }
            yield* sql`INSERT INTO imports ${sql.insert(row)} ON CONFLICT (key) DO UPDATE SET path = excluded.path,
              rows = excluded.rows, "offset" = excluded."offset", line = excluded.line,
              problems_added = excluded.problems_added, items_added = excluded.items_added,
              duplicates = excluded.duplicates, rejected = excluded.rejected, done = excluded.done,
              updated_at = excluded.updated_at`
            return { problemsAdded, itemsAdded }
          })
        ),
      importRejects: (key) =>
        run(
          "reading import rejects",
          Effect.map(
            sql<{ file: string; line: string | number; reason: string; raw: string }>`SELECT file, line, reason, raw
              FROM import_rejects WHERE key = ${key} ORDER BY line`,
            (rows): ReadonlyArray<ImportReject> => rows.map((r) => ({ ...r, line: Number(r.line) }))
          )
        ),
      getProblem: (id) =>
        run(
          `reading problem ${id}`,
          Effect.flatMap(sql<{ data: string }>`SELECT data FROM problems WHERE id = ${id}`, (rows) =>
            decodeAll(`reading problem ${id}`, () =>
              rows[0] === undefined ? Option.none() : Option.some(decodeProblem(rows[0].data))
            )
          )
        ),
      getProblems: (ids) =>
        ids.length === 0
          ? Effect.succeed([])
          : run(
              "reading problems",
              Effect.flatMap(
                sql<{ id: string; data: string }>`SELECT id, data FROM problems WHERE ${sql.in("id", ids)}`,
                (rows) =>
                  decodeAll("reading problems", () => {
                    const byId = new Map(rows.map((r) => [r.id, r.data]))
                    return ids.flatMap((id) => {
                      const data = byId.get(id)
                      return data === undefined ? [] : [decodeProblem(data)]
                    })
                  })
              )
            ),
      listProblems: (filter) =>
        run(
          "listing problems",
          Effect.flatMap(
            sql<{ data: string }>`SELECT data FROM problems WHERE id > ${filter.afterId ?? ""}
              ${filter.unflagged === true ? sql`AND id NOT IN (SELECT problem_id FROM problem_flags)` : sql``}
              ORDER BY id LIMIT ${filter.limit ?? 1000}`,
            (rows) => decodeAll("listing problems", () => rows.map((r) => decodeProblem(r.data)))
          )
        ),
      setProblemFlags: (flags) =>
        tx(
          "writing problem flags",
          Effect.gen(function* () {
            yield* sql`DELETE FROM problem_flags`
            const at = now()
            for (const part of chunks(flags)) {
              const rows = part.map((f) => ({
                problem_id: f.problemId,
                flag: f.flag,
                detail: f.detail,
                created_at: at
              }))
              yield* sql`INSERT INTO problem_flags ${sql.insert(rows)}`
            }
          })
        ),
      problemFlag: (problemId) =>
        run(
          "reading a problem flag",
          Effect.map(
            sql<ProblemFlag>`SELECT problem_id AS "problemId", flag, detail FROM problem_flags WHERE problem_id = ${problemId}`,
            (rows) => Option.fromNullable(rows[0])
          )
        ),
      itemStates: (ids) =>
        ids.length === 0
          ? Effect.succeed(new Map())
          : run(
              "reading item states",
              Effect.map(
                sql<{ id: string; fate: Item["fate"]; reason_code: string | null }>`SELECT id, fate, reason_code
                  FROM items WHERE ${sql.in("id", ids)}`,
                (rows) => new Map(rows.map((r) => [r.id, { fate: r.fate, reasonCode: r.reason_code }]))
              )
            ),
      getItem: (id) =>
        run(
          `reading item ${id}`,
          Effect.map(loadItems([id]), (items) => Option.fromNullable(items[0]))
        ),
      addItems: (items) => tx("adding items", insertItems(items)),
      saveItem: (item) =>
        tx(
          `saving item ${item.id}`,
          Effect.gen(function* () {
            const row = itemRow(item)
            yield* sql`INSERT INTO items ${sql.insert(row)} ON CONFLICT (id) DO UPDATE SET stage = excluded.stage,
              fate = excluded.fate, kept_as = excluded.kept_as, reason_code = excluded.reason_code,
              reasoning_tokens = excluded.reasoning_tokens, original_reasoning_tokens = excluded.original_reasoning_tokens,
              tokenizer = excluded.tokenizer, data = excluded.data, updated_at = excluded.updated_at`
            yield* insertRounds(item)
          })
        ).pipe(Effect.tap(() => markCommitted(item))),
      listItems: (filter) =>
        run(
          "listing items",
          Effect.gen(function* () {
            const fates = typeof filter.fate === "string" ? [filter.fate] : (filter.fate ?? [])
            const where = [
              ...(fates.length > 0 ? [sql.in("fate", fates)] : []),
              ...(filter.stage !== undefined ? [sql`stage = ${filter.stage}`] : []),
              ...(filter.afterId !== undefined ? [sql`id > ${filter.afterId}`] : [])
            ]
            const ids = yield* sql<{ id: string }>`SELECT id FROM items
              ${where.length > 0 ? sql`WHERE ${sql.and(where)}` : sql``}
              ORDER BY id LIMIT ${filter.limit ?? 1000}`
            return yield* loadItems(ids.map((r) => r.id))
          })
        ),
      status: run(
        "reading status",
        Effect.gen(function* () {
          type Count = { k: string | null; n: string }
          const one = (q: Effect.Effect<ReadonlyArray<{ n: string }>, SqlError>) =>
            Effect.map(q, (r) => Number(r[0]?.n ?? 0))
          const [problems, items, fates, stages, keptAs, dropReasons, failReasons, domains, flags] = yield* Effect.all([
            one(sql`SELECT COUNT(*) AS n FROM problems`),
            one(sql`SELECT COUNT(*) AS n FROM items`),
            sql<Count>`SELECT fate AS k, COUNT(*) AS n FROM items GROUP BY fate`,
            sql<Count>`SELECT stage AS k, COUNT(*) AS n FROM items GROUP BY stage`,
            sql<Count>`SELECT kept_as AS k, COUNT(*) AS n FROM items WHERE fate = 'kept' GROUP BY kept_as`,
            sql<Count>`SELECT reason_code AS k, COUNT(*) AS n FROM items WHERE fate = 'dropped' GROUP BY reason_code`,
            sql<Count>`SELECT reason_code AS k, COUNT(*) AS n FROM items WHERE fate = 'failed' GROUP BY reason_code`,
            sql<Count>`SELECT domain AS k, COUNT(*) AS n FROM problems GROUP BY domain`,
            sql<Count>`SELECT flag AS k, COUNT(*) AS n FROM problem_flags GROUP BY flag`
          ])
          const tokenRows = yield* sql<TokenRow>`SELECT reasoning_tokens AS after,
              COALESCE(original_reasoning_tokens, reasoning_tokens) AS before, tokenizer
            FROM items WHERE fate = 'kept' AND reasoning_tokens IS NOT NULL`
          const calls = yield* sql<CallRow>`SELECT c->>'role' AS role, COUNT(*) AS calls,
              SUM(CASE WHEN (c->>'cached')::boolean THEN 1 ELSE 0 END) AS cached,
              SUM((c->>'promptTokens')::bigint) AS prompt, SUM((c->>'completionTokens')::bigint) AS completion,
              SUM(COALESCE((c->>'costUsd')::double precision, 0)) AS cost,
              SUM(CASE WHEN (c->>'cached')::boolean THEN 0
                  ELSE (c->>'promptTokens')::bigint + (c->>'completionTokens')::bigint END) AS paid
            FROM rounds, jsonb_array_elements(rounds.calls) AS c GROUP BY 1`
          const imports = yield* sql<Record<string, unknown>>`SELECT * FROM imports ORDER BY updated_at`
          const held = yield* runLockRow
          const live = held[0] !== undefined && (yield* holderConnected(held[0].backend_pid))
          return statusOf({
            problems,
            items,
            fates: countsOf(fates),
            stages: countsOf(stages),
            keptAs: countsOf(keptAs),
            dropReasons: countsOf(dropReasons),
            failReasons: countsOf(failReasons),
            domains: countsOf(domains),
            flags: countsOf(flags),
            tokenRows,
            calls,
            ledger: yield* ledger.totals,
            imports: imports.map(toProgress),
            running: live ? holderOf(held[0]!) : null
          })
        })
      ),
      cacheGet: (key) =>
        run(
          "reading the LLM cache",
          Effect.map(
            sql<CacheEntry>`SELECT key, model, value, created_at AS "createdAt" FROM llm_cache WHERE key = ${key}`,
            (rows) => Option.fromNullable(rows[0])
          )
        ),
      cachePut: (e) =>
        run(
          "writing the LLM cache",
          sql`INSERT INTO llm_cache ${sql.insert({ key: e.key, model: e.model, value: e.value, created_at: e.createdAt })}
            ON CONFLICT (key) DO UPDATE SET model = excluded.model, value = excluded.value, created_at = excluded.created_at`
        ).pipe(Effect.asVoid),
      recordSpend: (spend) => ledger.record(spend),
      spending: ledger.totals,
      lockRun: (what, options = {}) =>
        Effect.gen(function* () {
          // The lock lives as long as this connection: reserved from the pool for the scope.
          const connection = yield* run("reserving a connection for the run lock", sql.reserve)
          const exec = (text: string, params: ReadonlyArray<unknown> = []) =>
            run("taking the workspace's run lock", connection.execute(text, params, undefined))
          const tryLock = Effect.map(
            exec("SELECT pg_try_advisory_lock($1, $2) AS ok", [ADVISORY.namespace, ADVISORY.run]),
            (rows) => rows[0]?.ok === true
          )
          let ok = yield* tryLock
          if (!ok && options.takeOver === true) {
            // Ends the session that holds the lock (a run on a machine that is gone but whose
            // connection the server still counts), then takes the lock.
            yield* exec(
              `SELECT pg_terminate_backend(pid) FROM pg_locks
               WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND granted AND pid <> pg_backend_pid()`,
              [ADVISORY.namespace, ADVISORY.run]
            )
            for (let i = 0; i < 50 && !ok; i++) {
              ok = yield* tryLock
              if (!ok) yield* Effect.sleep(Duration.millis(100))
            }
          }
          if (!ok) {
            const held = yield* run("reading the run lock", runLockRow)
            const holder =
              held[0] !== undefined
                ? holderOf(held[0])
                : { pid: 0, host: "unknown", startedAt: "unknown", what: "another fastcot process" }
            return yield* new WorkspaceBusy({
              message: `another run is working on this workspace: ${describeHolder(holder)}; wait for it to end, or stop it`,
              holder
            })
          }
          const mine = {
            id: 1,
            pid: process.pid,
            host: hostname(),
            process_start: processStart(process.pid) ?? null,
            started_at: now(),
            what
          }
          yield* exec(
            `INSERT INTO run_lock (id, pid, host, process_start, started_at, what, backend_pid)
             VALUES (1, $1, $2, $3, $4, $5, pg_backend_pid())
             ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host, process_start = excluded.process_start,
               started_at = excluded.started_at, what = excluded.what, backend_pid = excluded.backend_pid`,
            [mine.pid, mine.host, mine.process_start, mine.started_at, mine.what]
          )
          yield* Effect.addFinalizer(() =>
            Effect.ignore(
              Effect.zipRight(
                exec("DELETE FROM run_lock WHERE id = 1 AND backend_pid = pg_backend_pid()"),
                exec("SELECT pg_advisory_unlock($1, $2)", [ADVISORY.namespace, ADVISORY.run])
              )
            )
          )
        })
    }

    /** Whether the session that wrote the run lock's row still holds the lock. */
    const holderConnected = (backendPid: number) =>
      Effect.map(
        sql<{ n: string }>`SELECT COUNT(*) AS n FROM pg_locks WHERE locktype = 'advisory'
          AND classid = ${ADVISORY.namespace} AND objid = ${ADVISORY.run} AND granted AND pid = ${backendPid}`,
        (rows) => Number(rows[0]?.n ?? 0) > 0
      )

    return store
  })

/** Splits a store URL's password off, so that it travels as a redacted value and not in the URL. */
const clientConfig = (url: string): PgClient.PgClientConfig => {
  const parsed = new URL(url)
  const password = decodeURIComponent(parsed.password)
  parsed.password = ""
  return {
    url: Redacted.make(parsed.toString()),
    ...(password !== "" ? { password: Redacted.make(password) } : {}),
    applicationName: "fastcot",
    maxConnections: 8,
    connectTimeout: Duration.seconds(10)
  }
}

/**
 * The PostgreSQL run store as a scoped layer: the pool and the spending ledger close with the
 * scope (unsaved spending is written first).
 */
export const PgRunStoreLive = (url: string): Layer.Layer<RunStore, StoreError> =>
  Layer.scoped(RunStore, makePgRunStore(url)).pipe(
    Layer.provide(
      PgClient.layer(clientConfig(url)).pipe(
        Layer.mapError(
          (e) =>
            new StoreError({
              message: `connecting to ${displayStoreUrl(url)}: ${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ""}`,
              cause: e
            })
        )
      )
    )
  )
