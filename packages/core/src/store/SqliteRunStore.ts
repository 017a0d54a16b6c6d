import * as Clock from "effect/Clock"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { ensureDirSync } from "../util/dirs.js"
import { dirname } from "node:path"
import { Item, makeItem } from "../schema/item.js"
import { Problem } from "../schema/problem.js"
import { Round } from "../schema/round.js"
import { StoreError, WorkspaceBusy } from "./errors.js"
import { describeHolder, holderAlive, holderOf, processStart, type RunLockRow } from "./runLock.js"
import { hostname } from "node:os"
import { migrate } from "./migrations.js"
import { type CacheKeyFilter, loadCacheKeyFilter } from "./cacheKeyFilter.js"
import { inlineCommitter, writerThreadCommitter } from "./committer.js"
import { makeGroupCommit } from "./groupCommit.js"
import { ITEM_SORT_SQL } from "./itemOrder.js"
import { reviewQueueIds } from "./reviewQueue.js"
import { SpendLedger } from "./spendLedger.js"
import {
  type CallRow,
  importProgressOf,
  countBy,
  REVIEW_ROWS,
  type ReviewRow,
  reviewStatsOf,
  TOKEN_COUNTS,
  statusOf,
  type LengthCount
} from "./statusQueries.js"
import {
  type BatchJobRecord,
  type CacheEntry,
  type ImportProgress,
  type ImportReject,
  type ProblemFlag,
  RunStore,
  type RunStoreShape,
  type StoreStatus
} from "./RunStore.js"

const decodeProblem = Schema.decodeUnknownSync(Problem)
const ItemRow = Schema.parseJson(Item.pipe(Schema.omit("rounds")))
// Records (items, rounds) have no transformations, so their encoded form is their JSON; reads are
// decoded (validated).
const encodeItemRow = (item: Item) => JSON.stringify({ ...item, rounds: undefined })
const decodeItemRow = Schema.decodeUnknownSync(ItemRow)
const decodeRound = Schema.decodeUnknownSync(Schema.parseJson(Round))

const ITEM_COLUMNS =
  "id, problem_id, stage, fate, kept_as, reason_code, review, reviewer, reasoning_tokens, original_reasoning_tokens, tokenizer, data, created_at, updated_at"
const ITEM_VALUES =
  "@id, @problemId, @stage, @fate, @keptAs, @reasonCode, @review, @reviewer, @reasoningTokens, @originalReasoningTokens, @tokenizer, @data, @createdAt, @updatedAt"

const attempt = <A>(what: string, f: () => A): Effect.Effect<A, StoreError> =>
  Effect.try({
    try: f,
    catch: (cause) =>
      new StoreError({ message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, cause })
  })

/** The connection settings, on this thread's connection and on the writer thread's. */
const CONNECTION_PRAGMAS = [
  // NORMAL in WAL mode survives a killed process (not a power cut) and is much faster than FULL.
  "synchronous = NORMAL",
  // A run's reads and upserts land on pages all over the items, rounds and cache tables (their keys
  // are hashes): a 64 MiB page cache instead of SQLite's 2 MiB keeps them in memory, and a WAL of up
  // to 10,000 pages before a checkpoint writes a page rewritten by many commits back once.
  "cache_size = -65536",
  "wal_autocheckpoint = 10000",
  "busy_timeout = 10000",
  "foreign_keys = ON"
]

/** The statements the group commit runs (by name), on either thread. */
const WRITE_STATEMENTS = {
  upsertItem: `INSERT INTO items (${ITEM_COLUMNS}) VALUES (${ITEM_VALUES})
      ON CONFLICT(id) DO UPDATE SET stage=excluded.stage, fate=excluded.fate, kept_as=excluded.kept_as,
        reason_code=excluded.reason_code, review=excluded.review, reviewer=excluded.reviewer,
        reasoning_tokens=excluded.reasoning_tokens, original_reasoning_tokens=excluded.original_reasoning_tokens,
        tokenizer=excluded.tokenizer, data=excluded.data, updated_at=excluded.updated_at`,
  insertRound: "INSERT OR IGNORE INTO rounds (item_id, idx, data, calls) VALUES (?, ?, ?, ?)",
  cachePut: "INSERT OR REPLACE INTO llm_cache (key, model, value, created_at) VALUES (?, ?, ?, ?)"
} as const

export interface SqliteStoreOptions {
  /**
   * Where item saves and cache entries are committed: `thread` (the default for a file), a writer
   * thread with its own connection, so that SQLite's work leaves the event loop; `inline`, this
   * thread (always for `:memory:`).
   */
  readonly writer?: "thread" | "inline" | undefined
}

/**
 * Opens (creating if needed) a SQLite store file in WAL mode and returns the service over it.
 * Records' times come from `clock` (the layer passes the Clock in context).
 */
export const openSqliteStore = (
  file: string,
  clock: Clock.Clock = Clock.make(),
  options: SqliteStoreOptions = {}
): { readonly store: RunStoreShape; readonly close: () => void } => {
  const now = () => new Date(clock.unsafeCurrentTimeMillis()).toISOString()
  if (file !== ":memory:") ensureDirSync(dirname(file))
  const db = new Database(file)
  db.pragma("journal_mode = WAL")
  for (const pragma of CONNECTION_PRAGMAS) db.pragma(pragma)
  migrate(db)

  const stmt = {
    getImport: db.prepare("SELECT * FROM imports WHERE key = ?"),
    putImport:
      db.prepare(`INSERT INTO imports (key, path, rows, offset, line, problems_added, items_added, duplicates, rejected, done, updated_at)
      VALUES (@key, @path, @rows, @offset, @line, @problemsAdded, @itemsAdded, @duplicates, @rejected, @done, @updatedAt)
      ON CONFLICT(key) DO UPDATE SET path=excluded.path,
        rows=MAX(imports.rows, excluded.rows),
        offset=CASE WHEN excluded.rows >= imports.rows THEN excluded.offset ELSE imports.offset END,
        line=CASE WHEN excluded.rows >= imports.rows THEN excluded.line ELSE imports.line END,
        rejected=CASE WHEN excluded.rows >= imports.rows THEN excluded.rejected ELSE imports.rejected END,
        problems_added=imports.problems_added + @batchProblemsAdded,
        items_added=imports.items_added + @batchItemsAdded,
        duplicates=CASE WHEN excluded.rows >= imports.rows
          THEN MAX(0, excluded.problems_added + excluded.duplicates - imports.problems_added - @batchProblemsAdded)
          ELSE imports.duplicates END,
        done=MAX(imports.done, excluded.done), updated_at=excluded.updated_at`),
    putReject: db.prepare("INSERT OR IGNORE INTO import_rejects (key, file, line, reason, raw) VALUES (?, ?, ?, ?, ?)"),
    rejects: db.prepare("SELECT file, line, reason, raw FROM import_rejects WHERE key = ? ORDER BY line"),
    insertProblem: db.prepare("INSERT OR IGNORE INTO problems (id, domain, data, created_at) VALUES (?, ?, ?, ?)"),
    getProblem: db.prepare("SELECT data FROM problems WHERE id = ?"),
    problemFlag: db.prepare("SELECT problem_id AS problemId, flag, detail FROM problem_flags WHERE problem_id = ?"),
    insertItem: db.prepare(`INSERT OR IGNORE INTO items (${ITEM_COLUMNS}) VALUES (${ITEM_VALUES})`),
    insertRound: db.prepare(WRITE_STATEMENTS.insertRound),
    getItem: db.prepare("SELECT data FROM items WHERE id = ?"),
    itemState: db.prepare("SELECT fate, reason_code FROM items WHERE id = ?"),
    getRounds: db.prepare("SELECT data FROM rounds WHERE item_id = ? ORDER BY idx"),
    getRunLock: db.prepare("SELECT pid, host, process_start, started_at, what FROM run_lock WHERE id = 1"),
    putRunLock: db.prepare(
      "INSERT OR REPLACE INTO run_lock (id, pid, host, process_start, started_at, what) VALUES (1, @pid, @host, @process_start, @started_at, @what)"
    ),
    dropRunLock: db.prepare("DELETE FROM run_lock WHERE id = 1 AND pid = ? AND host = ? AND started_at = ?"),
    cacheGet: db.prepare("SELECT key, model, value, created_at AS createdAt FROM llm_cache WHERE key = ?"),
    cacheCount: db.prepare("SELECT COUNT(*) AS n FROM llm_cache"),
    cacheKeys: db.prepare("SELECT key FROM llm_cache").pluck(),
    batchPut: db.prepare(
      `INSERT INTO batch_jobs (id, endpoint, state, file_id, batch_id, keys, remote_status, completed, failed, created_at, updated_at)
       VALUES (@id, @endpoint, @state, @fileId, @batchId, @keys, @remoteStatus, @completed, @failed, @createdAt, @updatedAt)
       ON CONFLICT (id) DO UPDATE SET state = CASE WHEN batch_jobs.state = 'done' THEN 'done' ELSE excluded.state END,
         file_id = excluded.file_id, batch_id = excluded.batch_id, remote_status = excluded.remote_status,
         completed = excluded.completed, failed = excluded.failed, updated_at = excluded.updated_at`
    ),
    batchList: db.prepare(
      `SELECT id, endpoint, state, file_id AS fileId, batch_id AS batchId, keys, remote_status AS remoteStatus,
         completed, failed, created_at AS createdAt, updated_at AS updatedAt
       FROM batch_jobs WHERE (@endpoint IS NULL OR endpoint = @endpoint) AND (@open = 0 OR state <> 'done')
       ORDER BY created_at, id`
    )
  }

  const itemParams = (item: Item) => ({
    id: item.id,
    problemId: item.problemId,
    stage: item.stage,
    fate: item.fate,
    keptAs: item.keptAs ?? null,
    reasonCode: item.reason?.code ?? null,
    review: item.review?.decision ?? null,
    reviewer: item.review?.reviewer ?? null,
    reasoningTokens: item.trace?.tokens?.reasoning ?? null,
    originalReasoningTokens: item.original?.tokens?.reasoning ?? null,
    tokenizer: item.trace?.tokens?.tokenizer ?? null,
    data: encodeItemRow(item),
    createdAt: item.createdAt,
    updatedAt: item.updatedAt
  })

  // Rounds are append-only and immutable: a round this store has committed for an item is not
  // encoded or written again when the item is saved with more rounds.
  const committedRounds = new WeakMap<object, string>()
  const insertRounds = (item: Item) => {
    for (const r of item.rounds) {
      if (committedRounds.get(r) !== item.id)
        stmt.insertRound.run(item.id, r.index, JSON.stringify(r), JSON.stringify(r.calls))
    }
  }
  const markCommitted = (item: Item) => {
    for (const r of item.rounds) committedRounds.set(r, item.id)
  }

  const insertItems = (items: ReadonlyArray<Item>): number => {
    let added = 0
    for (const item of items) {
      const info = stmt.insertItem.run(itemParams(item))
      if (info.changes > 0) {
        added++
        insertRounds(item)
      }
    }
    return added
  }

  const loadItem = (id: string): Item | undefined => {
    const row = stmt.getItem.get(id) as { data: string } | undefined
    if (row === undefined) return undefined
    const base = decodeItemRow(row.data)
    const rounds = (stmt.getRounds.all(id) as Array<{ data: string }>).map((r) => decodeRound(r.data))
    // Both parts were just decoded by their Schemas: no second validation.
    return makeItem({ ...base, rounds })
  }

  /** The items of these ids that exist, in the ids' order. */
  const loadItems = (ids: ReadonlyArray<string>): Array<Item> =>
    ids.flatMap((id) => {
      const item = loadItem(id)
      return item === undefined ? [] : [item]
    })

  const commitImport = db.transaction(
    (batch: {
      progress: ImportProgress
      problems: ReadonlyArray<Problem>
      items: ReadonlyArray<Item>
      rejects: ReadonlyArray<ImportReject>
    }) => {
      const createdAt = now()
      let problemsAdded = 0
      for (const p of batch.problems) {
        problemsAdded += stmt.insertProblem.run(p.id, p.domain, JSON.stringify(p), createdAt).changes
      }
      const itemsAdded = insertItems(batch.items)
      for (const r of batch.rejects) stmt.putReject.run(batch.progress.key, r.file, r.line, r.reason, r.raw)
      const p = batch.progress
      stmt.putImport.run({
        ...p,
        problemsAdded: p.problemsAdded + problemsAdded,
        itemsAdded: p.itemsAdded + itemsAdded,
        duplicates: p.duplicates + (batch.problems.length - problemsAdded),
        batchProblemsAdded: problemsAdded,
        batchItemsAdded: itemsAdded,
        done: p.done ? 1 : 0,
        updatedAt: createdAt
      })
      return { problemsAdded, itemsAdded }
    }
  )

  const addItemsTx = db.transaction((items: ReadonlyArray<Item>) => insertItems(items))

  // Item saves and cache entries of one event-loop turn share one transaction, committed on the
  // writer thread (or on this one for an in-memory store, or when the thread cannot start).
  const committer = (() => {
    if (file !== ":memory:" && options.writer !== "inline") {
      try {
        return writerThreadCommitter(file, WRITE_STATEMENTS, CONNECTION_PRAGMAS)
      } catch {
        // Worker threads unavailable: commit here.
      }
    }
    return inlineCommitter(db, WRITE_STATEMENTS)
  })()
  const commits = makeGroupCommit(committer)
  const cachePuts = commits.channel<CacheEntry>(
    () => "writing the LLM cache",
    (e) => [{ statement: "cachePut", params: [e.key, e.model, e.value, e.createdAt] }]
  )
  const itemSaves = commits.channel<Item>(
    (item) => `saving item ${item.id}`,
    (item) => [
      { statement: "upsertItem", params: itemParams(item) },
      ...item.rounds
        .filter((r) => committedRounds.get(r) !== item.id)
        .map((r) => ({
          statement: "insertRound",
          params: [item.id, r.index, JSON.stringify(r), JSON.stringify(r.calls)]
        }))
    ],
    { committed: markCommitted, withdrawable: true }
  )

  /**
   * The cache's keys while this process holds the run lock. A read on this thread costs tens of
   * microseconds once the writer thread has committed (SQLite then drops this connection's page
   * cache), and most of a fresh run's lookups miss: those are answered here.
   */
  let cacheKeys: CacheKeyFilter | undefined

  const ledger = new SpendLedger(db, now)
  /** The run lock's holder, when it may still be running (a lock a gone process left counts as free). */
  const liveLockHolder = (): RunLockRow | undefined => {
    const held = stmt.getRunLock.get() as RunLockRow | undefined
    return held !== undefined && holderAlive(held) ? held : undefined
  }

  const store: RunStoreShape = {
    location: file,
    shared: false,
    importProgress: (key) =>
      attempt("reading import progress", () => {
        const row = stmt.getImport.get(key) as Record<string, unknown> | undefined
        return row === undefined ? Option.none() : Option.some(importProgressOf(row))
      }),
    commitImportBatch: (batch) => attempt("committing an import batch", () => commitImport.immediate(batch)),
    importRejects: (key) => attempt("reading import rejects", () => stmt.rejects.all(key) as Array<ImportReject>),
    getProblem: (id) =>
      attempt(`reading problem ${id}`, () => {
        const row = stmt.getProblem.get(id) as { data: string } | undefined
        return row === undefined ? Option.none() : Option.some(decodeProblem(JSON.parse(row.data)))
      }),
    getProblems: (ids) =>
      attempt("reading problems", () =>
        ids.flatMap((id) => {
          const row = stmt.getProblem.get(id) as { data: string } | undefined
          return row === undefined ? [] : [decodeProblem(JSON.parse(row.data))]
        })
      ),
    listProblems: (filter) =>
      attempt("listing problems", () => {
        const unflagged = filter.unflagged === true ? "AND id NOT IN (SELECT problem_id FROM problem_flags)" : ""
        const rows = db
          .prepare(`SELECT data FROM problems WHERE id > ? ${unflagged} ORDER BY id LIMIT ?`)
          .all(filter.afterId ?? "", filter.limit ?? 1000) as Array<{ data: string }>
        return rows.map((r) => decodeProblem(JSON.parse(r.data)))
      }),
    setProblemFlags: (flags) =>
      attempt("writing problem flags", () => {
        const insert = db.prepare(
          "INSERT INTO problem_flags (problem_id, flag, detail, created_at) VALUES (?, ?, ?, ?)"
        )
        db.transaction(() => {
          db.exec("DELETE FROM problem_flags")
          const at = now()
          for (const f of flags) insert.run(f.problemId, f.flag, f.detail, at)
        }).immediate()
      }),
    problemFlag: (problemId) =>
      attempt("reading a problem flag", () => {
        const row = stmt.problemFlag.get(problemId) as ProblemFlag | undefined
        return Option.fromNullable(row)
      }),
    itemStates: (ids) =>
      attempt("reading item states", () => {
        const out = new Map<string, { fate: Item["fate"]; reasonCode: string | null }>()
        for (const id of ids) {
          const row = stmt.itemState.get(id) as { fate: Item["fate"]; reason_code: string | null } | undefined
          if (row !== undefined) out.set(id, { fate: row.fate, reasonCode: row.reason_code })
        }
        return out
      }),
    getItem: (id) => attempt(`reading item ${id}`, () => Option.fromNullable(loadItem(id))),
    addItems: (items) => attempt("adding items", () => addItemsTx.immediate(items)),
    saveItem: itemSaves.write,
    listItems: (filter) =>
      attempt("listing items", () => {
        const where: Array<string> = []
        const params: Array<string | number> = []
        if (typeof filter.fate === "string") {
          where.push("fate = ?")
          params.push(filter.fate)
        } else if (filter.fate !== undefined && filter.fate.length > 0) {
          where.push(`fate IN (${filter.fate.map(() => "?").join(", ")})`)
          params.push(...filter.fate)
        }
        if (filter.stage !== undefined) {
          where.push("stage = ?")
          params.push(filter.stage)
        }
        const order = filter.order ?? { by: "id", direction: "asc" }
        const key = ITEM_SORT_SQL[order.by]
        const direction = order.direction === "desc" ? "DESC" : "ASC"
        const beyond = order.direction === "desc" ? "<" : ">"
        if (order.by === "tokens") where.push("reasoning_tokens IS NOT NULL")
        if (filter.afterId !== undefined && (order.by === "id" || filter.afterValue === undefined)) {
          where.push(`id ${beyond} ?`)
          params.push(filter.afterId)
        } else if (filter.afterId !== undefined && filter.afterValue !== undefined) {
          where.push(`(${key}, id) ${beyond} (?, ?)`)
          params.push(filter.afterValue, filter.afterId)
        }
        if (filter.search !== undefined && filter.search !== "") {
          const needle = filter.search.toLowerCase()
          where.push(
            "(substr(id, 1, length(?)) = ? OR problem_id IN (SELECT id FROM problems WHERE instr(lower(json_extract(data, '$.question')), ?) > 0))"
          )
          params.push(needle, needle, needle)
        }
        if (filter.verdict !== undefined) {
          where.push(
            "EXISTS (SELECT 1 FROM rounds r WHERE r.item_id = items.id AND json_extract(r.data, '$.verdict.level') = ?)"
          )
          params.push(filter.verdict)
        }
        if (filter.minTokens !== undefined) {
          where.push("reasoning_tokens >= ?")
          params.push(filter.minTokens)
        }
        if (filter.maxTokens !== undefined) {
          where.push("reasoning_tokens <= ?")
          params.push(filter.maxTokens)
        }
        const orderBy = order.by === "id" ? `id ${direction}` : `${key} ${direction}, id ${direction}`
        const sql = `SELECT id FROM items ${where.length > 0 ? "WHERE " + where.join(" AND ") : ""} ORDER BY ${orderBy} LIMIT ?`
        params.push(filter.limit ?? 1000)
        return loadItems((db.prepare(sql).all(...params) as Array<{ id: string }>).map((r) => r.id))
      }),
    reviewCounts: attempt("counting reviews", () => ({
      kept: (db.prepare("SELECT COUNT(*) AS n FROM items WHERE fate = 'kept'").get() as { n: number }).n,
      reviews: reviewStatsOf(db.prepare(REVIEW_ROWS).all() as Array<ReviewRow>)
    })),
    reviewQueue: (filter) =>
      reviewQueueIds(filter, (q) =>
        attempt("reading the review queue", () => {
          const where = ["review IS NULL", "fate = 'kept'"]
          const params: Array<string | number> = []
          const when = (clause: string, value: string | undefined) => {
            if (value === undefined) return
            where.push(clause)
            params.push(value)
          }
          when("kept_as = ?", q.keptAs)
          when("json_extract(data, '$.trace.origin') = ?", q.origin)
          when("id >= ?", q.from)
          when("id < ?", q.before)
          const order = q.order === "longest" ? "reasoning_tokens DESC NULLS LAST, id" : "id"
          params.push(q.limit)
          const rows = db
            .prepare(`SELECT id FROM items WHERE ${where.join(" AND ")} ORDER BY ${order} LIMIT ?`)
            .all(...params) as Array<{ id: string }>
          return rows.map((r) => r.id)
        })
      ).pipe(Effect.flatMap((ids) => attempt("reading the review queue's items", () => loadItems(ids)))),
    status: attempt("reading status", (): StoreStatus => {
      const one = (sql: string) => (db.prepare(sql).get() as { n: number }).n
      const running = liveLockHolder()
      return statusOf({
        problems: one("SELECT COUNT(*) AS n FROM problems"),
        items: one("SELECT COUNT(*) AS n FROM items"),
        fates: countBy(db, "SELECT fate AS k, COUNT(*) AS n FROM items GROUP BY fate"),
        stages: countBy(db, "SELECT stage AS k, COUNT(*) AS n FROM items GROUP BY stage"),
        keptAs: countBy(db, "SELECT kept_as AS k, COUNT(*) AS n FROM items WHERE fate = 'kept' GROUP BY kept_as"),
        dropReasons: countBy(
          db,
          "SELECT reason_code AS k, COUNT(*) AS n FROM items WHERE fate = 'dropped' GROUP BY reason_code"
        ),
        failReasons: countBy(
          db,
          "SELECT reason_code AS k, COUNT(*) AS n FROM items WHERE fate = 'failed' GROUP BY reason_code"
        ),
        domains: countBy(db, "SELECT domain AS k, COUNT(*) AS n FROM problems GROUP BY domain"),
        flags: countBy(db, "SELECT flag AS k, COUNT(*) AS n FROM problem_flags GROUP BY flag"),
        reviews: db.prepare(REVIEW_ROWS).all() as Array<ReviewRow>,
        tokens: {
          after: db.prepare(TOKEN_COUNTS.after).all() as Array<LengthCount>,
          before: db.prepare(TOKEN_COUNTS.before).all() as Array<LengthCount>,
          tokenizer:
            (db.prepare(TOKEN_COUNTS.tokenizer).get() as { tokenizer: string | null } | undefined)?.tokenizer ?? null
        },
        // Kept per role by a trigger as rounds are written (migration 7).
        calls: db
          .prepare("SELECT role, calls, cached, prompt, completion, cost, paid FROM call_sums WHERE calls > 0")
          .all() as Array<CallRow>,
        ledger: ledger.totals(),
        imports: (db.prepare("SELECT * FROM imports ORDER BY updated_at").all() as Array<Record<string, unknown>>).map(
          importProgressOf
        ),
        running: running === undefined ? null : holderOf(running),
        workers: []
      })
    }),
    cacheGet: (key) =>
      Effect.suspend(() =>
        cacheKeys !== undefined && !cacheKeys.mightHave(key)
          ? Effect.succeed(Option.none())
          : attempt("reading the LLM cache", () =>
              Option.fromNullable(stmt.cacheGet.get(key) as CacheEntry | undefined)
            )
      ),
    cachePut: (entry) =>
      Effect.suspend(() => {
        cacheKeys?.add(entry.key)
        return cachePuts.write(entry)
      }),
    saveBatchJob: (job) =>
      attempt(`saving batch job ${job.id}`, () => {
        stmt.batchPut.run({ ...job, keys: JSON.stringify(job.keys) })
      }),
    batchJobs: (filter) =>
      attempt("reading batch jobs", () =>
        (
          stmt.batchList.all({ endpoint: filter.endpoint ?? null, open: filter.open === true ? 1 : 0 }) as Array<
            Omit<BatchJobRecord, "keys"> & { keys: string }
          >
        ).map((row) => ({ ...row, keys: JSON.parse(row.keys) as Array<string> }))
      ),
    // One process runs on a SQLite store at a time (its run lock): every key is its own.
    claim: (keys) => Effect.succeed(new Set(keys)),
    claimCall: (key) => Effect.map(store.cacheGet(key), (cached) => ({ cached, taken: Option.isNone(cached) })),
    release: () => {},
    heldByOthers: () => Effect.succeed(0),
    claimItems: (page) =>
      Effect.map(
        store.listItems({ stage: page.stage, fate: page.fates, afterId: page.afterId, limit: page.limit }),
        (items) => ({ listed: items.length, lastId: items.at(-1)?.id, items, heldElsewhere: 0 })
      ),
    workers: Effect.succeed([]),
    recordSpend: (spend) => ledger.record(spend),
    spending: attempt("reading the spending ledger", () => ledger.totals()),
    lockRun: (what, options = {}) => {
      const mine = {
        pid: process.pid,
        host: hostname(),
        process_start: processStart(process.pid) ?? null,
        started_at: now(),
        what
      }
      // One immediate transaction: two processes cannot both find the lock free.
      const take = db.transaction((): RunLockRow | undefined => {
        const held = options.takeOver === true ? undefined : liveLockHolder()
        if (held === undefined) stmt.putRunLock.run(mine)
        return held
      })
      return Effect.acquireRelease(
        Effect.flatMap(
          attempt("taking the workspace's run lock", () => take.immediate()),
          (held) => {
            // The run will write: the writer thread starts now, not at the first item's save; and
            // no other run writes the cache while this one holds the lock, so its keys are known
            // here from now on. Neither may fail a lock once taken: without them the first save
            // starts the thread and every lookup reads the file, as before.
            if (held === undefined)
              return attempt("starting the writer thread and loading the LLM cache's keys", () => {
                committer.start()
                cacheKeys = loadCacheKeyFilter(
                  (stmt.cacheCount.get() as { n: number }).n,
                  () => stmt.cacheKeys.iterate() as Iterable<string>
                )
              }).pipe(Effect.ignore)
            const holder = holderOf(held)
            return Effect.fail(
              new WorkspaceBusy({
                message: `another run is working on this workspace: ${describeHolder(holder)}; wait for it to end, or stop it`,
                holder
              })
            )
          }
        ),
        () =>
          attempt("releasing the workspace's run lock", () => {
            cacheKeys = undefined
            stmt.dropRunLock.run(mine.pid, mine.host, mine.started_at)
          }).pipe(Effect.ignore)
      )
    }
  }
  return {
    store,
    close: () => {
      ledger.flush()
      commits.flushNow()
      committer.close()
      db.close()
    }
  }
}

/** The SQLite run store as a scoped layer: the database closes when the scope does. */
export const SqliteRunStoreLive = (file: string): Layer.Layer<RunStore, StoreError> =>
  Layer.scoped(
    RunStore,
    Effect.acquireRelease(
      Effect.flatMap(Effect.clock, (clock) => attempt(`opening the store ${file}`, () => openSqliteStore(file, clock))),
      (opened) => Effect.sync(() => opened.close())
    ).pipe(Effect.map((opened) => opened.store))
  )
