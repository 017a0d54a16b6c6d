import * as Effect from "effect/Effect"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { StoreError } from "./errors.js"
import { describeSqlError, sqlState } from "./pgErrors.js"

/**
 * The PostgreSQL store's versioned migrations, applied in order, each in one transaction, under
 * an advisory lock so that workers starting together migrate once. `fastcot_schema` records each
 * version applied. Never edit a published migration: add a new one. Record bodies are kept as the
 * same JSON text SQLite keeps (text keeps what JSONB cannot, such as an escaped NUL in a model's
 * reply); what `status` sums is written to columns of its own.
 */
export const pgMigrations: ReadonlyArray<{ readonly version: number; readonly name: string; readonly sql: string }> = [
  {
    version: 1,
    name: "the run store: problems, items and rounds, imports, flags, the LLM cache, spending, workers and their leases",
    sql: `
CREATE TABLE problems (
  id TEXT COLLATE "C" PRIMARY KEY,
  domain TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE items (
  id TEXT COLLATE "C" PRIMARY KEY,
  problem_id TEXT COLLATE "C" NOT NULL REFERENCES problems(id),
  stage TEXT NOT NULL,
  fate TEXT NOT NULL,
  kept_as TEXT,
  reason_code TEXT,
  reasoning_tokens INTEGER,
  original_reasoning_tokens INTEGER,
  tokenizer TEXT,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX items_fate ON items(fate, id);
CREATE INDEX items_stage ON items(stage, id);
CREATE INDEX items_problem ON items(problem_id);
CREATE TABLE rounds (
  item_id TEXT COLLATE "C" NOT NULL REFERENCES items(id),
  idx INTEGER NOT NULL,
  data TEXT NOT NULL,
  calls JSONB NOT NULL,
  PRIMARY KEY (item_id, idx)
);
CREATE TABLE imports (
  key TEXT PRIMARY KEY,
  path TEXT NOT NULL,
  rows BIGINT NOT NULL,
  "offset" BIGINT NOT NULL,
  line BIGINT NOT NULL,
  problems_added BIGINT NOT NULL,
  items_added BIGINT NOT NULL,
  duplicates BIGINT NOT NULL,
  rejected BIGINT NOT NULL,
  done BOOLEAN NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE import_rejects (
  key TEXT NOT NULL,
  file TEXT NOT NULL,
  line BIGINT NOT NULL,
  reason TEXT NOT NULL,
  raw TEXT NOT NULL,
  PRIMARY KEY (key, line)
);
CREATE TABLE problem_flags (
  problem_id TEXT COLLATE "C" PRIMARY KEY REFERENCES problems(id),
  flag TEXT NOT NULL,
  detail TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE llm_cache (
  key TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  value TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE llm_spend (
  role TEXT NOT NULL,
  model TEXT NOT NULL,
  calls BIGINT NOT NULL,
  prompt_tokens BIGINT NOT NULL,
  completion_tokens BIGINT NOT NULL,
  cost_usd DOUBLE PRECISION NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (role, model)
);
CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  what TEXT NOT NULL,
  started_at TEXT NOT NULL,
  seen_at TIMESTAMPTZ NOT NULL,
  backend_pid INTEGER NOT NULL
);
CREATE TABLE work_leases (
  key TEXT COLLATE "C" PRIMARY KEY,
  worker TEXT NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX work_leases_worker ON work_leases(worker);
`
  },
  {
    version: 2,
    name: "batch jobs at providers (batch mode)",
    sql: `
CREATE TABLE batch_jobs (
  id TEXT COLLATE "C" PRIMARY KEY,
  endpoint TEXT NOT NULL,
  state TEXT NOT NULL,
  file_id TEXT NOT NULL,
  batch_id TEXT,
  keys TEXT NOT NULL,
  remote_status TEXT,
  completed INTEGER NOT NULL,
  failed INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX batch_jobs_endpoint ON batch_jobs(endpoint, state, created_at);
`
  },
  {
    version: 3,
    name: "review decisions on items (who and what, for status and review queues)",
    sql: `
ALTER TABLE items ADD COLUMN review TEXT;
ALTER TABLE items ADD COLUMN reviewer TEXT;
CREATE INDEX items_review ON items(review, id);
`
  },
  {
    version: 4,
    name: "a worker's session name: it is at work while any of its connections is open",
    sql: `
ALTER TABLE workers ADD COLUMN session TEXT;
`
  },
  {
    version: 5,
    name: "each session's last committed import batch (a retried batch finds its own, not another worker's)",
    sql: `
CREATE TABLE import_commits (
  key TEXT NOT NULL,
  session TEXT NOT NULL,
  rows BIGINT NOT NULL,
  done BOOLEAN NOT NULL,
  problems_added BIGINT NOT NULL,
  items_added BIGINT NOT NULL,
  PRIMARY KEY (key, session)
);
`
  }
]

/** The advisory-lock keys fastcot uses (two 32-bit halves: fastcot's, then which lock). */
export const ADVISORY = { namespace: 0x66637374, migrate: 1, flags: 2 } as const

/**
 * A migration's failure as a person reads it: where, the server's reason and SQLSTATE, and for a
 * user who lacks a right there (42501), which rights fastcot needs.
 */
const migrationFailed = (location: string, e: SqlError): StoreError => {
  const cause = e.cause instanceof Error ? e.cause.message : ""
  const hint =
    sqlState(e) !== "42501"
      ? ""
      : cause.includes("for schema")
        ? "; the first command on a database creates fastcot's tables: run it as the database's owner, or as a user granted CREATE on the schema"
        : "; a user who did not create fastcot's tables needs SELECT, INSERT, UPDATE and DELETE on them, and USAGE on their sequences (GRANT ... ON ALL TABLES IN SCHEMA public), or to be their owner"
  return new StoreError({ message: `migrating the database (${location}): ${describeSqlError(e)}${hint}`, cause: e })
}

/** Whether the database holds fastcot's tables (its migrations' record, `fastcot_schema`). */
export const hasFastcotTables = (sql: SqlClient): Effect.Effect<boolean, SqlError> =>
  Effect.map(sql<{ t: string | null }>`SELECT to_regclass('fastcot_schema') AS t`, (rows) => rows[0]?.t != null)

/** Applies pending migrations; refuses a database written by a newer fastcot. `location` names it in errors. */
export const migratePg = (sql: SqlClient, location: string): Effect.Effect<void, StoreError> => {
  const latest = pgMigrations[pgMigrations.length - 1]?.version ?? 0
  return sql
    .withTransaction(
      Effect.gen(function* () {
        yield* sql`SELECT pg_advisory_xact_lock(${ADVISORY.namespace}, ${ADVISORY.migrate})`
        // Made only where it is missing: a user granted the tables' rights but not CREATE (a
        // team's worker role) opens a database that its owner migrated.
        if (!(yield* hasFastcotTables(sql)))
          yield* sql`CREATE TABLE fastcot_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`
        const rows = yield* sql<{ v: number | null }>`SELECT MAX(version) AS v FROM fastcot_schema`
        const current = Number(rows[0]?.v ?? 0)
        if (current > latest)
          return yield* new StoreError({
            message: `the database is at schema version ${current}, newer than this fastcot knows (${latest}); upgrade fastcot`
          })
        for (const m of pgMigrations) {
          if (m.version <= current) continue
          yield* sql.unsafe(m.sql)
          yield* sql`INSERT INTO fastcot_schema (version, name) VALUES (${m.version}, ${m.name})`
        }
      })
    )
    .pipe(Effect.mapError((e) => (e._tag === "StoreError" ? e : migrationFailed(location, e))))
}
