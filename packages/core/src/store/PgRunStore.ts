import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import type { SqlClient } from "@effect/sql/SqlClient"
import type * as Statement from "@effect/sql/Statement"
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import type Pg from "pg"
import { Item, makeItem } from "../schema/item.js"
import { Problem } from "../schema/problem.js"
import { Round } from "../schema/round.js"
import { StoreError } from "./errors.js"
import { copyRows, type CopyValue } from "./pgCopy.js"
import { describeSqlError, isTransient, sqlState, transientRetry } from "./pgErrors.js"
import { displayStoreUrl } from "./storeUrl.js"
import { ADVISORY, hasFastcotTables, migratePg } from "./pgMigrations.js"
import { acquirePgPool, inRawTransaction, pgClientOf } from "./pgPool.js"
import { PgSpendLedger } from "./pgSpendLedger.js"
import { makeTurnBatcher } from "./turnBatcher.js"
import {
  type BatchJobRecord,
  type CacheEntry,
  type CallClaim,
  type ImportBatch,
  type ImportReject,
  type ProblemFlag,
  RunStore,
  type RunStoreShape,
  type WorkerView
} from "./RunStore.js"
import {
  type CallRow,
  importProgressOf,
  countsOf,
  REVIEW_ROWS,
  type ReviewRow,
  reviewStatsOf,
  statusOf,
  TOKEN_COUNTS,
  type LengthCount
} from "./statusQueries.js"
import { ITEM_SORT_SQL } from "./itemOrder.js"
import { reviewQueueIds } from "./reviewQueue.js"

const decodeProblem = Schema.decodeUnknownSync(Schema.parseJson(Problem))
const decodeItemRow = Schema.decodeUnknownSync(Schema.parseJson(Item.pipe(Schema.omit("rounds"))))
const decodeRound = Schema.decodeUnknownSync(Schema.parseJson(Round))
const encodeItemRow = (item: Item) => JSON.stringify({ ...item, rounds: undefined })

/**
 * @effect/sql turns a failed COMMIT or ROLLBACK into a defect; a connection lost at that moment
 * is as transient as any other, so it becomes a failure again (and the transaction is tried
 * again: every write here can be repeated).
 */
const failOnBrokenCommit = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | SqlError, R> =>
  Effect.catchSomeDefect(effect, (defect) =>
    defect instanceof SqlError ? Option.some(Effect.fail<E | SqlError>(defect)) : Option.none()
  )

/** Rows per INSERT (PostgreSQL takes at most 65,535 parameters a statement). */
const CHUNK = 500

const chunks = <A>(xs: ReadonlyArray<A>, size = CHUNK): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size))
  return out
}

/**
 * Items per statement when items are added (`addItems`): the rows travel as one JSON parameter
 * that the server unpacks (`json_to_recordset`).
 */
const BULK = 5_000

/** Names an import batch's statements in pg_stat_activity (a comment at their start). */
const IMPORT_TAG = "fastcot import batch"

/** The problems table's columns, as `problemRow` names them. */
const PROBLEM_COLUMNS: ReadonlyArray<keyof ReturnType<typeof problemRow>> = ["id", "domain", "data", "created_at"]
/** The items table's columns, as `itemRow` names them. */
const ITEM_COLUMNS: ReadonlyArray<keyof ReturnType<typeof itemRow>> = [
  "id",
  "problem_id",
  "stage",
  "fate",
  "kept_as",
  "reason_code",
  "review",
  "reviewer",
  "reasoning_tokens",
  "original_reasoning_tokens",
  "tokenizer",
  "data",
  "created_at",
  "updated_at"
]
/** The rounds table's columns, as `roundRow` names them. */
const ROUND_COLUMNS: ReadonlyArray<keyof ReturnType<typeof roundRow>> = ["item_id", "idx", "data", "calls"]

/** A row's values in `columns`' order, for COPY. */
const valuesIn = <R extends Readonly<Record<string, CopyValue>>>(
  row: R,
  columns: ReadonlyArray<keyof R>
): ReadonlyArray<CopyValue> => columns.map((column) => row[column])

/** The first of each id, in order. */
const uniqueById = <A extends { readonly id: string }>(xs: ReadonlyArray<A>): ReadonlyArray<A> => {
  const seen = new Set<string>()
  const unique: Array<A> = []
  for (const x of xs) {
    if (seen.has(x.id)) continue
    seen.add(x.id)
    unique.push(x)
  }
  return unique
}

export interface PgStoreOptions {
  /** How long a work lease lasts unless renewed (renewed every third of it): 30 s by default. */
  readonly leaseMs?: number | undefined
  /**
   * Open only a database that already holds a fastcot workspace (for commands that only read
   * one): a database without fastcot's tables is refused, not made into one.
   */
  readonly existing?: boolean | undefined
}

const problemRow = (problem: Problem, createdAt: string) => ({
  id: problem.id,
  domain: problem.domain,
  data: JSON.stringify(problem),
  created_at: createdAt
})

const itemRow = (item: Item) => ({
  id: item.id,
  problem_id: item.problemId,
  stage: item.stage,
  fate: item.fate,
  kept_as: item.keptAs ?? null,
  reason_code: item.reason?.code ?? null,
  review: item.review?.decision ?? null,
  reviewer: item.review?.reviewer ?? null,
  reasoning_tokens: item.trace?.tokens?.reasoning ?? null,
  original_reasoning_tokens: item.original?.tokens?.reasoning ?? null,
  tokenizer: item.trace?.tokens?.tokenizer ?? null,
  data: encodeItemRow(item),
  created_at: item.createdAt,
  updated_at: item.updatedAt
})

// Rounds have no transformations, so their encoded form is their JSON (as on SQLite); reads are
// decoded (validated).
const roundRow = (itemId: string, r: Round) => ({
  item_id: itemId,
  idx: r.index,
  data: JSON.stringify(r),
  calls: JSON.stringify(r.calls)
})

/**
 * The run store on a PostgreSQL database, over @effect/sql-pg's pool: the same service as the
 * SQLite store, for workspaces that several machines share. The password comes from the URL,
 * PGPASSWORD or the password file, in libpq's order (`acquirePgPool`); `location` never shows it. Every change of
 * state is one transaction; the run lock is a session advisory lock that the server releases
 * when the holder's connection ends, so a killed process frees it at once.
 */
export const makePgRunStore = (
  url: string,
  options: PgStoreOptions,
  session: string,
  pool: Pg.Pool
): Effect.Effect<RunStoreShape, StoreError, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql: SqlClient = yield* PgClient.PgClient
    const clock = yield* Effect.clock
    const location = displayStoreUrl(url)
    const now = () => new Date(clock.unsafeCurrentTimeMillis()).toISOString()
    const fail =
      (what: string) =>
      (e: SqlError | StoreError): StoreError =>
        e._tag === "StoreError"
          ? e
          : new StoreError({ message: `${what} (${location}): ${describeSqlError(e)}`, cause: e })
    // A statement (or a whole transaction, which the server rolled back) that failed because the
    // connection did is tried again, for about 30 s: a server restart or a short network cut.
    // The retry schedule's driver is made only once a try has failed (nearly every statement
    // succeeds at once, and this is the path of every one).
    const run = <A, E extends SqlError | StoreError, R>(what: string, effect: Effect.Effect<A, E, R>) => {
      const once = failOnBrokenCommit(effect)
      const transient = (e: E | SqlError) => e._tag === "SqlError" && isTransient(e)
      return Effect.mapError(
        Effect.catchIf(once, transient, () => Effect.retry(once, { schedule: transientRetry, while: transient })),
        fail(what)
      )
    }
    const tx = <A, E extends SqlError | StoreError, R>(what: string, effect: Effect.Effect<A, E, R>) =>
      run(what, sql.withTransaction(effect))

    if (options.existing === true && !(yield* run("reading the database", hasFastcotTables(sql))))
      return yield* new StoreError({
        message: `no fastcot workspace in ${location} (the database has no fastcot tables); make one with \`fastcot import FILE --store ${location}\` or \`fastcot run --store ${location}\``
      })
    yield* migratePg(sql, location)
    const leaseMs = options.leaseMs ?? 30_000
    const workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
    const held = new Set<string>()
    const released = new Set<string>()
    const ledger = yield* PgSpendLedger.make(sql, now)

    // Rounds are append-only: a round this store has written for an item is not sent again.
    const committedRounds = new WeakMap<object, string>()
    const markCommitted = (item: Item) => {
      for (const r of item.rounds) committedRounds.set(r, item.id)
    }

    /** `items` as rows of the items table's columns, in that order, from one JSON parameter. */
    const itemRowsSql = (items: ReadonlyArray<Item>) => sql`SELECT * FROM json_to_recordset(
        ${JSON.stringify(items.map(itemRow))}::json) AS r(id text, problem_id text,
        stage text, fate text, kept_as text, reason_code text, review text, reviewer text, reasoning_tokens integer,
        original_reasoning_tokens integer, tokenizer text, data text, created_at text, updated_at text)`
    const ITEM_INSERT = sql.literal(`INSERT INTO items (id, problem_id, stage, fate, kept_as, reason_code, review,
      reviewer, reasoning_tokens, original_reasoning_tokens, tokenizer, data, created_at, updated_at)`)
    /** What saving an item changes of a stored one (never its problem or creation). */
    const ITEM_UPDATE = sql.literal(`ON CONFLICT (id) DO UPDATE SET stage = excluded.stage, fate = excluded.fate,
      kept_as = excluded.kept_as, reason_code = excluded.reason_code, review = excluded.review,
      reviewer = excluded.reviewer, reasoning_tokens = excluded.reasoning_tokens,
      original_reasoning_tokens = excluded.original_reasoning_tokens, tokenizer = excluded.tokenizer,
      data = excluded.data, updated_at = excluded.updated_at`)
    /** An INSERT that adds those of `items` not there yet, as one JSON parameter (RETURNING is the caller's). */
    const insertItemsSql = (items: ReadonlyArray<Item>) =>
      sql`${ITEM_INSERT} ${itemRowsSql(items)} ON CONFLICT DO NOTHING`
    /**
     * The `added_rounds` CTE: the rounds of those of `items` that the statement's `added_items`
     * (`RETURNING id`) added. Calls travel apart from the round's data: only they are read as
     * JSONB, which refuses a NUL that a model's text may hold.
     */
    const addedRoundsSql = (items: ReadonlyArray<Item>) => sql`added_rounds AS (
        INSERT INTO rounds (item_id, idx, data, calls)
        SELECT r.item_id, r.idx, r.data, r.calls::jsonb
        FROM json_to_recordset(${JSON.stringify(items.flatMap((i) => i.rounds.map((r) => roundRow(i.id, r))))}::json)
          AS r(item_id text, idx integer, data text, calls text)
        WHERE r.item_id IN (SELECT id FROM added_items)
        ON CONFLICT DO NOTHING)`

    /** Adds the items not there yet, with their rounds; how many were new. */
    const insertItems = (items: ReadonlyArray<Item>) =>
      Effect.reduce(chunks(items, BULK), 0, (added, part) =>
        Effect.map(
          sql<{ n: string }>`WITH added_items AS (${insertItemsSql(part)} RETURNING id), ${addedRoundsSql(part)}
            SELECT COUNT(*) AS n FROM added_items`,
          (rows) => added + Number(rows[0]?.n ?? 0)
        )
      )

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

    // A worker is registered once, on its first claim or run, with a connection reserved for as
    // long as the store is open. Every connection of the pool carries the worker's session name
    // (`session`, its application_name): the worker is at work while any of them is open. The
    // server ends them when the worker's process dies, each once the statement it is running is
    // done, so its leases are free once nothing it sent can still commit (a save sent just before
    // a kill -9 lands before the items it holds are taken over; a worker cut off keeps its leases
    // until they expire).
    const storeScope = yield* Effect.scope
    const register = yield* Effect.cached(
      run(
        "registering this worker",
        Effect.gen(function* () {
          const connection = yield* Scope.extend(sql.reserve, storeScope)
          const rows = yield* connection.execute("SELECT pg_backend_pid() AS pid", [], undefined)
          yield* sql`INSERT INTO workers (id, host, pid, what, started_at, seen_at, backend_pid, session)
            VALUES (${workerId}, ${hostname()}, ${process.pid}, 'fastcot', ${now()}, now(), ${Number(rows[0]?.pid)}, ${session})`
          yield* Effect.addFinalizer(() => Effect.ignore(sql`DELETE FROM workers WHERE id = ${workerId}`)).pipe(
            Scope.extend(storeScope)
          )
        })
      )
    )
    /** Whether the worker a lease names still has a connection open on the server. */
    const workerConnected = (worker: Statement.Fragment) =>
      sql`EXISTS (SELECT 1 FROM workers w JOIN pg_stat_activity a ON a.application_name = w.session OR a.pid = w.backend_pid
        WHERE w.id = ${worker})`

    /**
     * Leases the keys `keys` selects (one text column) to this worker, each that no other worker
     * still connected holds unexpired, `RETURNING key` for those taken.
     */
    const takeLeasesSql = (keys: Statement.Fragment) => sql`INSERT INTO work_leases (key, worker, expires_at)
      SELECT k, ${workerId}, now() + ${leaseMs} * interval '1 millisecond' FROM (${keys}) AS wanted(k)
      ON CONFLICT (key) DO UPDATE SET worker = excluded.worker, expires_at = excluded.expires_at
      WHERE work_leases.expires_at < now() OR work_leases.worker = excluded.worker
        OR NOT ${workerConnected(sql`work_leases.worker`)}
      RETURNING key`
    /** Records leases taken: renewed from now on, and no longer to be given up. */
    const noteTaken = (keys: ReadonlyArray<string>): ReadonlySet<string> => {
      for (const k of keys) {
        held.add(k)
        released.delete(k)
      }
      return new Set(keys)
    }

    // A worker is at work while it renews: seen within the last three lease periods.
    const liveWorkers = Effect.map(
      sql<{
        id: string
        host: string
        pid: number
        what: string
        started_at: string
        holds: string
      }>`SELECT w.id, w.host, w.pid, w.what, w.started_at,
          (SELECT COUNT(*) FROM work_leases l WHERE l.worker = w.id AND l.expires_at > now()) AS holds
        FROM workers w WHERE w.what <> 'idle' AND w.seen_at > now() - ${3 * leaseMs} * interval '1 millisecond'
          AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = w.session OR a.pid = w.backend_pid)
        ORDER BY w.started_at, w.id`,
      (rows): ReadonlyArray<WorkerView> =>
        rows.map((w) => ({
          id: w.id,
          host: w.host,
          pid: w.pid,
          what: w.what,
          startedAt: w.started_at,
          holds: Number(w.holds)
        }))
    )

    /** Imports (by key) whose last batch met rows already stored: their next batch is not copied. */
    const overlapping = new Set<string>()

    /**
     * An import batch in one transaction: problems, items with their rounds, rejects and the
     * file's position. While an import's batches are new to the store they travel by COPY, the
     * fastest way in (rows repeated inside the batch are left out first); a batch that meets a
     * stored problem or item (a key the COPY refuses, or an import already in that state) goes as
     * one statement that skips what is there (`ON CONFLICT DO NOTHING`), and so does each next
     * batch of that import until one finds nothing stored. Tried again after a broken connection,
     * it first waits for the cut session's statements to end and reads whether the server
     * committed the batch: this session's last committed batch of the import (`import_commits`)
     * is this one, and then it answers the counts it had written. (The file's position alone
     * would not do: another worker importing the same file moves it too, and its batch's counts
     * would be counted twice.)
     */
    const commitImportBatch = (batch: ImportBatch) => {
      const p = batch.progress
      let attempts = 0
      // A connection cut while a statement ran leaves its server session running it until it is
      // done (committed or not): that is waited for (60 s at most) before the position is read.
      const earlierAttemptDone = Effect.repeat(
        sql<{ n: string }>`SELECT COUNT(*) AS n FROM pg_stat_activity WHERE application_name = ${session}
          AND pid <> pg_backend_pid() AND state <> 'idle' AND strpos(query, ${IMPORT_TAG}) > 0`,
        {
          schedule: Schedule.spaced(Duration.millis(50)).pipe(Schedule.upTo(Duration.seconds(60))),
          until: (rows) => Number(rows[0]?.n ?? 0) === 0
        }
      )
      const committedBefore = Effect.zipRight(
        earlierAttemptDone,
        sql<{ rows: string; done: boolean; problems_added: string; items_added: string }>`SELECT rows, done,
          problems_added, items_added FROM import_commits WHERE key = ${p.key} AND session = ${session}`
      ).pipe(
        Effect.map((rows) => {
          const r = rows[0]
          return r !== undefined && Number(r.rows) === p.rows && r.done === p.done
            ? Option.some({ problemsAdded: Number(r.problems_added), itemsAdded: Number(r.items_added) })
            : Option.none()
        })
      )
      const problems = uniqueById(batch.problems)
      const items = uniqueById(batch.items)
      const statement = Effect.tap(
        Effect.suspend(() => importStatement(batch)),
        (added) =>
          Effect.sync(() =>
            added.problemsAdded === problems.length && added.itemsAdded === items.length
              ? overlapping.delete(p.key)
              : overlapping.add(p.key)
          )
      )
      const copied = Effect.catchIf(
        inRawTransaction(pool, IMPORT_TAG, (connection) =>
          Effect.gen(function* () {
            const createdAt = now()
            const problemValues = problems.map((q) => valuesIn(problemRow(q, createdAt), PROBLEM_COLUMNS))
            const itemValues = items.map((i) => valuesIn(itemRow(i), ITEM_COLUMNS))
            const roundValues = items.flatMap((i) => i.rounds.map((r) => valuesIn(roundRow(i.id, r), ROUND_COLUMNS)))
            yield* copyRows(connection, "problems", PROBLEM_COLUMNS, problemValues, IMPORT_TAG)
            yield* copyRows(connection, "items", ITEM_COLUMNS, itemValues, IMPORT_TAG)
            yield* copyRows(connection, "rounds", ROUND_COLUMNS, roundValues, IMPORT_TAG)
            const [text, params] = sql`/* ${sql.literal(IMPORT_TAG)} */ WITH
              counts AS (SELECT ${problems.length}::bigint AS problems, ${items.length}::bigint AS items),
              ${rejectsAndPositionSql(batch)}
              SELECT 1`.compile()
            yield* connection.query(text, params)
            return { problemsAdded: problems.length, itemsAdded: items.length }
          })
        ),
        (e) => sqlState(e) === "23505",
        () => statement
      )
      return Effect.suspend(() =>
        attempts++ > 0
          ? Effect.flatMap(committedBefore, Option.match({ onNone: () => statement, onSome: Effect.succeed }))
          : overlapping.has(p.key) || (problems.length === 0 && items.length === 0)
            ? statement
            : copied
      )
    }

    /**
     * The CTEs that write a batch's rejects and the file's position, the counts of what the batch
     * added read from the CTE `counts` (problems, items).
     */
    const rejectsAndPositionSql = (batch: ImportBatch) => {
      const p = batch.progress
      const rejects = batch.rejects.map((r) => ({ key: p.key, ...r }))
      return sql`added_rejects AS (
            INSERT INTO import_rejects (key, file, line, reason, raw)
            SELECT * FROM json_to_recordset(${JSON.stringify(rejects)}::json)
              AS r(key text, file text, line bigint, reason text, raw text)
            ON CONFLICT DO NOTHING),
          position AS (
            INSERT INTO imports (key, path, rows, "offset", line, problems_added, items_added, duplicates, rejected, done, updated_at)
            SELECT ${p.key}, ${p.path}, ${p.rows}, ${p.offset}, ${p.line}, ${p.problemsAdded} + c.problems,
              ${p.itemsAdded} + c.items, ${p.duplicates} + (${batch.problems.length} - c.problems), ${p.rejected},
              ${p.done}, ${now()}
            FROM counts c
            ON CONFLICT (key) DO UPDATE SET path = excluded.path, rows = GREATEST(imports.rows, excluded.rows),
              "offset" = CASE WHEN excluded.rows >= imports.rows THEN excluded."offset" ELSE imports."offset" END,
              line = CASE WHEN excluded.rows >= imports.rows THEN excluded.line ELSE imports.line END,
              rejected = CASE WHEN excluded.rows >= imports.rows THEN excluded.rejected ELSE imports.rejected END,
              problems_added = imports.problems_added + (excluded.problems_added - ${p.problemsAdded}),
              items_added = imports.items_added + (excluded.items_added - ${p.itemsAdded}),
              duplicates = CASE WHEN excluded.rows >= imports.rows
                THEN GREATEST(0, excluded.duplicates - imports.problems_added + ${p.problemsAdded})
                ELSE imports.duplicates END,
              done = imports.done OR excluded.done, updated_at = excluded.updated_at),
          own_commit AS (
            INSERT INTO import_commits (key, session, rows, done, problems_added, items_added)
            SELECT ${p.key}, ${session}, ${p.rows}, ${p.done}, c.problems, c.items FROM counts c
            ON CONFLICT (key, session) DO UPDATE SET rows = excluded.rows, done = excluded.done,
              problems_added = excluded.problems_added, items_added = excluded.items_added)`
    }

    /**
     * A batch as one statement (its own transaction): problems, items with their rounds, rejects
     * and the file's position in data-modifying CTEs, each set of rows one JSON parameter, what
     * is stored already skipped. Foreign keys are checked at the statement's end, once the
     * problems are in.
     */
    const importStatement = (batch: ImportBatch) => {
      const createdAt = now()
      const problems = batch.problems.map((q) => problemRow(q, createdAt))
      return Effect.map(
        sql<{ problems: string; items: string }>`/* ${sql.literal(IMPORT_TAG)} */ WITH
          added_problems AS (
            INSERT INTO problems (id, domain, data, created_at)
            SELECT * FROM json_to_recordset(${JSON.stringify(problems)}::json)
              AS r(id text, domain text, data text, created_at text)
            ON CONFLICT DO NOTHING RETURNING 1),
          added_items AS (${insertItemsSql(batch.items)} RETURNING id),
          ${addedRoundsSql(batch.items)},
          counts AS (SELECT (SELECT COUNT(*) FROM added_problems) AS problems, (SELECT COUNT(*) FROM added_items) AS items),
          ${rejectsAndPositionSql(batch)}
        SELECT problems, items FROM counts`,
        (rows) => ({ problemsAdded: Number(rows[0]?.problems ?? 0), itemsAdded: Number(rows[0]?.items ?? 0) })
      )
    }

    // The per-call and per-item statements of a run (cache lookups, call leases, item saves and
    // cache entries) are made many at a time by the pipeline's concurrent fibers: those made in
    // the same turn of the event loop go to the server as one statement (a round trip and a
    // statement a call had kept the pipeline's thread busy writing to its sockets).
    const cacheLookups = yield* makeTurnBatcher((keys: ReadonlyArray<string>) =>
      run(
        "reading the LLM cache",
        Effect.map(
          sql<CacheEntry>`SELECT key, model, value, created_at AS "createdAt" FROM llm_cache
            WHERE key = ANY(ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb)))`,
          (rows) => {
            const byKey = new Map(rows.map((r) => [r.key, r]))
            return keys.map((k) => Either.right(Option.fromNullable(byKey.get(k))))
          }
        )
      )
    )
    const claims = yield* makeTurnBatcher(
      (wanted: ReadonlyArray<ReadonlyArray<string>>) =>
        run(
          "claiming work",
          Effect.zipRight(
            register,
            Effect.map(
              // In key order, so that two workers claiming overlapping keys take their locks alike.
              sql<{ key: string }>`${takeLeasesSql(sql`SELECT DISTINCT k FROM
              jsonb_array_elements_text(${JSON.stringify(wanted.flat())}::jsonb) AS w(k) ORDER BY k`)}`,
              (rows) => {
                const taken = noteTaken(rows.map((r) => r.key))
                return wanted.map((keys) =>
                  Either.right<ReadonlySet<string>>(new Set(keys.filter((k) => taken.has(k))))
                )
              }
            )
          )
        ),
      // A claim whose caller is interrupted before it is sent is not made: no lease is taken
      // that nobody would give up.
      { withdrawable: () => true }
    )
    // A model call's look at the cache and, on a miss, its lease: one statement for the turn's
    // calls. The look reads the statement's snapshot, taken before its claim (see `claimCall`).
    const callClaims = yield* makeTurnBatcher(
      (wanted: ReadonlyArray<{ readonly key: string; readonly lease: string }>) =>
        run(
          "claiming model calls",
          Effect.zipRight(
            register,
            Effect.map(
              sql<CacheEntry & { readonly lease: string | null }>`WITH wanted AS (
                  SELECT w->>'key' AS key, w->>'lease' AS lease FROM jsonb_array_elements(${JSON.stringify(wanted)}::jsonb) AS w),
                hits AS (SELECT key, model, value, created_at FROM llm_cache WHERE key IN (SELECT key FROM wanted)),
                taken AS (${takeLeasesSql(sql`SELECT DISTINCT lease FROM wanted
                  WHERE key NOT IN (SELECT key FROM hits) ORDER BY lease`)})
              SELECT key, model, value, created_at AS "createdAt", NULL AS lease FROM hits
              UNION ALL SELECT NULL, NULL, NULL, NULL, key FROM taken`,
              (rows) => {
                const hits = new Map<string, CacheEntry>()
                const leases: Array<string> = []
                for (const { lease, ...entry } of rows) {
                  if (lease !== null) leases.push(lease)
                  else hits.set(entry.key, entry)
                }
                const taken = noteTaken(leases)
                return wanted.map(({ key, lease }) =>
                  Either.right<CallClaim>({
                    cached: Option.fromNullable(hits.get(key)),
                    taken: !hits.has(key) && taken.has(lease)
                  })
                )
              }
            )
          )
        ),
      // As a claim of work: one whose caller is interrupted before it is sent is not made.
      { withdrawable: () => true }
    )
    /** Saves items (their new state and new rounds) and cache entries in one statement. */
    const saveAll = (items: ReadonlyArray<Item>, entries: ReadonlyArray<CacheEntry>) => {
      // One row per item and per cache key (the last saved: an upsert may not touch a row twice).
      const latest = [...new Map(items.map((i) => [i.id as string, i])).values()]
      const rounds = new Map<string, ReturnType<typeof roundRow>>()
      for (const item of items)
        for (const r of item.rounds)
          if (committedRounds.get(r) !== item.id) rounds.set(`${r.index} ${item.id}`, roundRow(item.id, r))
      const cached = [...new Map(entries.map((e) => [e.key, e])).values()].map((e) => ({
        key: e.key,
        model: e.model,
        value: e.value,
        created_at: e.createdAt
      }))
      return sql`WITH saved_items AS (${ITEM_INSERT} ${itemRowsSql(latest)} ORDER BY id ${ITEM_UPDATE}),
          saved_rounds AS (INSERT INTO rounds (item_id, idx, data, calls)
            SELECT r.item_id, r.idx, r.data, r.calls::jsonb
            FROM json_to_recordset(${JSON.stringify([...rounds.values()])}::json)
              AS r(item_id text, idx integer, data text, calls text)
            ON CONFLICT DO NOTHING),
          saved_entries AS (INSERT INTO llm_cache (key, model, value, created_at)
            SELECT * FROM json_to_recordset(${JSON.stringify(cached)}::json)
              AS r(key text, model text, value text, created_at text) ORDER BY key
            ON CONFLICT (key) DO UPDATE SET model = excluded.model, value = excluded.value,
              created_at = excluded.created_at)
        SELECT 1`.pipe(Effect.tap(() => items.forEach(markCommitted)))
    }
    type Write = { readonly item: Item; readonly entry?: never } | { readonly entry: CacheEntry; readonly item?: never }
    const describeWrite = (w: Write) => (w.item !== undefined ? `saving item ${w.item.id}` : "writing the LLM cache")
    const writeAlone = (w: Write): Effect.Effect<void, StoreError> =>
      run(describeWrite(w), w.item !== undefined ? saveAll([w.item], []) : saveAll([], [w.entry])).pipe(Effect.asVoid)
    // Durable when it returns; should a shared statement fail, each write is made on its own, so
    // that one bad write fails only its caller.
    const writes = yield* makeTurnBatcher(
      (batch: ReadonlyArray<Write>): Effect.Effect<ReadonlyArray<Either.Either<void, StoreError>>, StoreError> =>
        batch.length === 1
          ? Effect.as(writeAlone(batch[0]!), [Either.right<void>(undefined)])
          : run(
              `saving ${batch.length} items and cache entries`,
              saveAll(
                batch.flatMap((w) => (w.item !== undefined ? [w.item] : [])),
                batch.flatMap((w) => (w.entry !== undefined ? [w.entry] : []))
              )
            ).pipe(
              Effect.as(batch.map(() => Either.right<void>(undefined))),
              Effect.catchAll(() => Effect.forEach(batch, (w) => Effect.either(writeAlone(w))))
            ),
      // An item's save is taken back if its caller is interrupted first; a cache entry, whose
      // call was paid for, is written anyway (as on SQLite).
      { withdrawable: (w) => w.item !== undefined }
    )
    yield* Effect.addFinalizer(() =>
      Effect.all([writes.drain, claims.drain, callClaims.drain, cacheLookups.drain], { discard: true })
    )

    const store: RunStoreShape = {
      location,
      shared: true,
      importProgress: (key) =>
        run(
          "reading import progress",
          Effect.map(sql<Record<string, unknown>>`SELECT * FROM imports WHERE key = ${key}`, (rows) =>
            rows[0] === undefined ? Option.none() : Option.some(importProgressOf(rows[0]))
          )
        ),
      commitImportBatch: (batch) => run("committing an import batch", commitImportBatch(batch)),
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
            // Workers that filter at once replace the flags one after the other.
            yield* sql`SELECT pg_advisory_xact_lock(${ADVISORY.namespace}, ${ADVISORY.flags})`
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
      saveItem: (item) => writes.call({ item }),
      listItems: (filter) =>
        run(
          "listing items",
          Effect.gen(function* () {
            const fates = typeof filter.fate === "string" ? [filter.fate] : (filter.fate ?? [])
            const order = filter.order ?? { by: "id", direction: "asc" }
            const key = sql.literal(ITEM_SORT_SQL[order.by])
            const direction = sql.literal(order.direction === "desc" ? "DESC" : "ASC")
            const beyond = sql.literal(order.direction === "desc" ? "<" : ">")
            const where = [
              ...(fates.length > 0 ? [sql.in("fate", fates)] : []),
              ...(filter.stage !== undefined ? [sql`stage = ${filter.stage}`] : []),
              ...(order.by === "tokens" ? [sql`reasoning_tokens IS NOT NULL`] : []),
              ...(filter.afterId !== undefined && (order.by === "id" || filter.afterValue === undefined)
                ? [sql`id ${beyond} ${filter.afterId}`]
                : []),
              ...(filter.afterId !== undefined && order.by !== "id" && filter.afterValue !== undefined
                ? [sql`(${key}, id) ${beyond} (${filter.afterValue}, ${filter.afterId})`]
                : []),
              ...(filter.search !== undefined && filter.search !== ""
                ? [
                    sql`(starts_with(id, ${filter.search.toLowerCase()}) OR problem_id IN (SELECT id FROM problems
                      WHERE strpos(lower(data::json->>'question'), ${filter.search.toLowerCase()}) > 0))`
                  ]
                : []),
              ...(filter.verdict !== undefined
                ? [
                    sql`EXISTS (SELECT 1 FROM rounds r WHERE r.item_id = items.id
                      AND r.data::json->'verdict'->>'level' = ${filter.verdict})`
                  ]
                : []),
              ...(filter.minTokens !== undefined ? [sql`reasoning_tokens >= ${filter.minTokens}`] : []),
              ...(filter.maxTokens !== undefined ? [sql`reasoning_tokens <= ${filter.maxTokens}`] : [])
            ]
            const ids = yield* sql<{ id: string }>`SELECT id FROM items
              ${where.length > 0 ? sql`WHERE ${sql.and(where)}` : sql``}
              ORDER BY ${order.by === "id" ? sql`id ${direction}` : sql`${key} ${direction}, id ${direction}`}
              LIMIT ${filter.limit ?? 1000}`
            return yield* loadItems(ids.map((r) => r.id))
          })
        ),
      reviewCounts: run(
        "counting reviews",
        Effect.gen(function* () {
          const kept = yield* sql<{ n: string }>`SELECT COUNT(*) AS n FROM items WHERE fate = 'kept'`
          return {
            kept: Number(kept[0]?.n ?? 0),
            reviews: reviewStatsOf(yield* sql.unsafe<ReviewRow>(REVIEW_ROWS))
          }
        })
      ),
      reviewQueue: (filter) =>
        run(
          "reading the review queue",
          Effect.flatMap(
            reviewQueueIds(filter, (q) =>
              Effect.map(
                sql<{ id: string }>`SELECT id FROM items WHERE ${sql.and([
                  sql`review IS NULL`,
                  sql`fate = 'kept'`,
                  ...(q.keptAs !== undefined ? [sql`kept_as = ${q.keptAs}`] : []),
                  ...(q.origin !== undefined ? [sql`data::json->'trace'->>'origin' = ${q.origin}`] : []),
                  ...(q.from !== undefined ? [sql`id >= ${q.from}`] : []),
                  ...(q.before !== undefined ? [sql`id < ${q.before}`] : [])
                ])}
                ORDER BY ${q.order === "longest" ? sql`reasoning_tokens DESC NULLS LAST, id` : sql`id`} LIMIT ${q.limit}`,
                (rows) => rows.map((r) => r.id)
              )
            ),
            loadItems
          )
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
          const tokens = {
            after: yield* sql.unsafe<LengthCount>(TOKEN_COUNTS.after),
            before: yield* sql.unsafe<LengthCount>(TOKEN_COUNTS.before),
            tokenizer: (yield* sql.unsafe<{ tokenizer: string | null }>(TOKEN_COUNTS.tokenizer))[0]?.tokenizer ?? null
          }
          const calls = yield* sql<CallRow>`SELECT c->>'role' AS role, COUNT(*) AS calls,
              SUM(CASE WHEN (c->>'cached')::boolean THEN 1 ELSE 0 END) AS cached,
              SUM((c->>'promptTokens')::bigint) AS prompt, SUM((c->>'completionTokens')::bigint) AS completion,
              SUM(COALESCE((c->>'costUsd')::double precision, 0)) AS cost,
              SUM(CASE WHEN (c->>'cached')::boolean THEN 0
                  ELSE (c->>'promptTokens')::bigint + (c->>'completionTokens')::bigint END) AS paid
            FROM rounds, jsonb_array_elements(rounds.calls) AS c GROUP BY 1`
          const imports = yield* sql<Record<string, unknown>>`SELECT * FROM imports ORDER BY updated_at`
          const reviews = yield* sql.unsafe<ReviewRow>(REVIEW_ROWS)
          const workers = yield* liveWorkers
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
            reviews,
            tokens,
            calls,
            ledger: yield* ledger.totals,
            imports: imports.map(importProgressOf),
            running:
              workers[0] !== undefined
                ? {
                    pid: workers[0].pid,
                    host: workers[0].host,
                    startedAt: workers[0].startedAt,
                    what: workers.length > 1 ? `${workers.length} workers` : workers[0].what
                  }
                : null,
            workers
          })
        })
      ),
      cacheGet: (key) => cacheLookups.call(key),
      cachePut: (entry) => writes.call({ entry }),
      saveBatchJob: (job) =>
        run(
          `saving batch job ${job.id}`,
          sql`INSERT INTO batch_jobs ${sql.insert({
            id: job.id,
            endpoint: job.endpoint,
            state: job.state,
            file_id: job.fileId,
            batch_id: job.batchId,
            keys: JSON.stringify(job.keys),
            remote_status: job.remoteStatus,
            completed: job.completed,
            failed: job.failed,
            created_at: job.createdAt,
            updated_at: job.updatedAt
          })}
            ON CONFLICT (id) DO UPDATE SET
              state = CASE WHEN batch_jobs.state = 'done' THEN 'done' ELSE excluded.state END,
              file_id = excluded.file_id, batch_id = excluded.batch_id,
              remote_status = excluded.remote_status, completed = excluded.completed, failed = excluded.failed,
              updated_at = excluded.updated_at`
        ).pipe(Effect.asVoid),
      batchJobs: (filter) =>
        run(
          "reading batch jobs",
          Effect.map(
            sql<Omit<BatchJobRecord, "keys"> & { keys: string }>`SELECT id, endpoint, state, file_id AS "fileId",
                batch_id AS "batchId", keys, remote_status AS "remoteStatus", completed, failed,
                created_at AS "createdAt", updated_at AS "updatedAt"
              FROM batch_jobs
              WHERE (${filter.endpoint ?? null}::text IS NULL OR endpoint = ${filter.endpoint ?? null})
                AND (${filter.open === true} = false OR state <> 'done')
              ORDER BY created_at, id`,
            (rows) => rows.map((row) => ({ ...row, keys: JSON.parse(row.keys) as Array<string> }))
          )
        ),
      recordSpend: (spend) => ledger.record(spend),
      spending: ledger.totals,
      claim: (keys) => (keys.length === 0 ? Effect.succeed(new Set<string>()) : claims.call(keys)),
      claimCall: (key, lease) => callClaims.call({ key, lease }),
      claimItems: (page, keyPrefix) =>
        run(
          "claiming work",
          Effect.gen(function* () {
            yield* register
            const where = [
              sql`stage = ${page.stage}`,
              sql.in("fate", page.fates),
              ...(page.afterId !== undefined ? [sql`id > ${page.afterId}`] : [])
            ]
            // The page's rows are locked while they are leased (rows another worker is saving are
            // passed over); a lease is taken as `claim` takes one.
            const rows = yield* sql<{ listed: string; last: string | null; keys: string | null }>`WITH
              page AS (SELECT id FROM items WHERE ${sql.and(where)} ORDER BY id LIMIT ${page.limit}
                FOR UPDATE SKIP LOCKED),
              leased AS (${takeLeasesSql(sql`SELECT ${keyPrefix} || id FROM page`)})
              SELECT (SELECT COUNT(*) FROM page) AS listed, (SELECT MAX(id) FROM page) AS last,
                (SELECT json_agg(key)::text FROM leased) AS keys`
            const listed = Number(rows[0]?.listed ?? 0)
            const keys = [...noteTaken(JSON.parse(rows[0]?.keys ?? "[]") as Array<string>)]
            const ids = keys.map((k) => k.slice(keyPrefix.length)).sort()
            // Read once they are leased: what the rows held when they were locked, or later.
            const items = (yield* loadItems(ids)).filter((i) => i.stage === page.stage && page.fates.includes(i.fate))
            // An item another worker moved on between the lock and the read is given up.
            if (items.length < ids.length) {
              const still = new Set(items.map((i) => i.id as string))
              store.release(ids.filter((id) => !still.has(id)).map((id) => keyPrefix + id))
            }
            return { listed, lastId: rows[0]?.last ?? undefined, items, heldElsewhere: listed - keys.length }
          })
        ),
      release: (keys) => {
        for (const k of keys) if (held.delete(k)) released.add(k)
      },
      workers: run("reading the workers", liveWorkers),
      heldByOthers: (prefix) =>
        run(
          "reading other workers' leases",
          Effect.map(
            sql<{ n: string }>`SELECT COUNT(*) AS n FROM work_leases WHERE worker <> ${workerId}
              AND expires_at > now() AND starts_with(key, ${prefix}) AND ${workerConnected(sql`work_leases.worker`)}`,
            (rows) => Number(rows[0]?.n ?? 0)
          )
        ),
      lockRun: (what) =>
        Effect.acquireRelease(
          Effect.zipRight(
            register,
            run(
              "registering this worker",
              sql`UPDATE workers SET what = ${what}, seen_at = now() WHERE id = ${workerId}`
            )
          ),
          () => Effect.ignore(sql`UPDATE workers SET what = 'idle' WHERE id = ${workerId}`)
        ).pipe(Effect.asVoid)
    }

    // Gives up released leases a quarter second after release, and renews the rest (and the
    // worker's heartbeat) a third of a lease apart; closing the store gives up every lease.
    const dropReleased = Effect.suspend(() => {
      if (released.size === 0) return Effect.void
      const drop = [...released]
      released.clear()
      return sql`DELETE FROM work_leases WHERE worker = ${workerId}
        AND key IN (SELECT jsonb_array_elements_text(${JSON.stringify(drop)}::jsonb))`.pipe(
        Effect.tapError(() => Effect.sync(() => drop.forEach((k) => released.add(k)))),
        Effect.asVoid
      )
    })
    const renew = Effect.all([
      Effect.suspend(() =>
        held.size > 0
          ? sql`UPDATE work_leases SET expires_at = now() + ${leaseMs} * interval '1 millisecond' WHERE worker = ${workerId}`
          : Effect.void
      ),
      sql`UPDATE workers SET seen_at = now() WHERE id = ${workerId}`
    ])
    yield* Effect.forkScoped(Effect.repeat(Effect.ignore(dropReleased), Schedule.spaced(Duration.millis(250))))
    yield* Effect.forkScoped(
      Effect.repeat(Effect.ignore(renew), Schedule.spaced(Duration.millis(Math.max(50, Math.floor(leaseMs / 3)))))
    )
    yield* Effect.addFinalizer(() => Effect.ignore(sql`DELETE FROM work_leases WHERE worker = ${workerId}`))

    return store
  })

/** A worker's session names begin so (the rest is random); the server keeps 63 bytes of one. */
const SESSION_PREFIX = "fastcot "

/**
 * The PostgreSQL run store as a scoped layer: the pool and the spending ledger close with the
 * scope (unsaved spending is written first).
 */
export const PgRunStoreLive = (url: string, options: PgStoreOptions = {}): Layer.Layer<RunStore, StoreError> =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const session = SESSION_PREFIX + randomUUID()
      return pgStoreLayer(url, options, session)
    })
  )

const pgStoreLayer = (url: string, options: PgStoreOptions, session: string): Layer.Layer<RunStore, StoreError> =>
  Layer.scoped(
    RunStore,
    Effect.gen(function* () {
      const pool = yield* acquirePgPool(url, session).pipe(
        Effect.mapError(
          (e) =>
            new StoreError({
              message: `connecting to ${displayStoreUrl(url)}: ${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ""}`,
              cause: e
            })
        )
      )
      const client = yield* pgClientOf(pool, session).pipe(
        Effect.provide(Reactivity.layer),
        Effect.mapError(
          (e) => new StoreError({ message: `connecting to ${displayStoreUrl(url)}: ${e.message}`, cause: e })
        )
      )
      return yield* makePgRunStore(url, options, session, pool).pipe(Effect.provideService(PgClient.PgClient, client))
    })
  )
