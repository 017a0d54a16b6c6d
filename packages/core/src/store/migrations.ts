import type Database from "better-sqlite3"

/** The calls in `source`'s rounds (`c` a call), summed per role: what `call_sums` holds. */
const CALL_SUMS_OF = (source: string) => `SELECT json_extract(c.value, '$.role') AS role, COUNT(*),
    TOTAL(json_extract(c.value, '$.cached') = 1),
    TOTAL(json_extract(c.value, '$.promptTokens')), TOTAL(json_extract(c.value, '$.completionTokens')),
    TOTAL(json_extract(c.value, '$.costUsd')),
    TOTAL(CASE WHEN json_extract(c.value, '$.cached') = 1 THEN 0
        ELSE json_extract(c.value, '$.promptTokens') + json_extract(c.value, '$.completionTokens') END)
  FROM ${source} WHERE role IS NOT NULL GROUP BY role`

/**
 * Versioned schema migrations, applied in order inside one transaction each. `PRAGMA user_version`
 * records the last one applied. Never edit a published migration: add a new one.
 */
export const migrations: ReadonlyArray<{
  readonly version: number
  readonly name: string
  readonly sql: string
  /** A migration that rebuilds a table others reference runs with foreign keys off, checked after. */
  readonly rebuildsTables?: boolean
}> = [
  {
    version: 1,
    name: "initial",
    sql: `
CREATE TABLE problems (
  id TEXT PRIMARY KEY,
  domain TEXT NOT NULL,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE items (
  id TEXT PRIMARY KEY,
  problem_id TEXT NOT NULL REFERENCES problems(id),
  stage TEXT NOT NULL,
  fate TEXT NOT NULL,
  kept_as TEXT,
  reason_code TEXT,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX items_fate ON items(fate, id);
CREATE INDEX items_stage ON items(stage, id);
CREATE INDEX items_problem ON items(problem_id);
CREATE TABLE rounds (
  item_id TEXT NOT NULL REFERENCES items(id),
  idx INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (item_id, idx)
);
CREATE TABLE imports (
  key TEXT PRIMARY KEY,
  path TEXT NOT NULL,
  rows INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  line INTEGER NOT NULL,
  problems_added INTEGER NOT NULL,
  items_added INTEGER NOT NULL,
  duplicates INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  done INTEGER NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE import_rejects (
  key TEXT NOT NULL,
  file TEXT NOT NULL,
  line INTEGER NOT NULL,
  reason TEXT NOT NULL,
  raw TEXT NOT NULL,
  PRIMARY KEY (key, line)
);
CREATE TABLE stage_progress (
  stage TEXT NOT NULL,
  key TEXT NOT NULL,
  state TEXT NOT NULL,
  data TEXT,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (stage, key)
);
CREATE TABLE llm_cache (
  key TEXT PRIMARY KEY,
  model TEXT NOT NULL,
  value TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`
  },
  {
    version: 2,
    name: "problem flags (duplicates, contamination)",
    sql: `
CREATE TABLE problem_flags (
  problem_id TEXT PRIMARY KEY REFERENCES problems(id),
  flag TEXT NOT NULL,
  detail TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`
  },
  {
    version: 3,
    name: "the spending ledger (every call sent, whether or not an item recorded it)",
    sql: `
CREATE TABLE llm_spend (
  role TEXT NOT NULL,
  model TEXT NOT NULL,
  calls INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (role, model)
);
`
  },
  {
    version: 4,
    name: "the run lock (one pipeline run per workspace at a time)",
    sql: `
CREATE TABLE run_lock (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  process_start TEXT,
  started_at TEXT NOT NULL,
  what TEXT NOT NULL
);
`
  },
  {
    version: 5,
    name: "batch jobs at providers (batch mode)",
    sql: `
CREATE TABLE batch_jobs (
  id TEXT PRIMARY KEY,
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
    version: 6,
    name: "review decisions; reasoning-token and call columns ahead of the records, read without them",
    rebuildsTables: true,
    // The tables are rebuilt so that the small columns come before the record (`data`): a column
    // added after it is read past the record's overflow pages, which made status slow.
    sql: `
CREATE TABLE items_v6 (
  id TEXT PRIMARY KEY,
  problem_id TEXT NOT NULL REFERENCES problems(id),
  stage TEXT NOT NULL,
  fate TEXT NOT NULL,
  kept_as TEXT,
  reason_code TEXT,
  review TEXT,
  reviewer TEXT,
  reasoning_tokens INTEGER,
  original_reasoning_tokens INTEGER,
  tokenizer TEXT,
  data TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
INSERT INTO items_v6 SELECT id, problem_id, stage, fate, kept_as, reason_code, NULL, NULL,
  json_extract(data, '$.trace.tokens.reasoning'), json_extract(data, '$.original.tokens.reasoning'),
  json_extract(data, '$.trace.tokens.tokenizer'), data, created_at, updated_at FROM items;
CREATE TABLE rounds_v6 (
  item_id TEXT NOT NULL REFERENCES items(id),
  idx INTEGER NOT NULL,
  calls TEXT,
  data TEXT NOT NULL,
  PRIMARY KEY (item_id, idx)
);
INSERT INTO rounds_v6 SELECT item_id, idx, json_extract(data, '$.calls'), data FROM rounds;
DROP TABLE rounds;
DROP TABLE items;
ALTER TABLE items_v6 RENAME TO items;
ALTER TABLE rounds_v6 RENAME TO rounds;
CREATE INDEX items_fate ON items(fate, id);
CREATE INDEX items_stage ON items(stage, id);
CREATE INDEX items_problem ON items(problem_id);
CREATE INDEX items_review ON items(review, id);
CREATE INDEX items_tokens ON items(fate, reasoning_tokens, original_reasoning_tokens, tokenizer);
`
  },
  {
    version: 7,
    name: "LLM call sums per role kept as rounds are written; indexes for status's counts",
    // Status summed every round's calls (a JSON scan of all rounds: 220 ms at 100,000 items);
    // the sums are now kept per role by a trigger as rounds are inserted (they are never updated).
    sql: `
CREATE TABLE call_sums (
  role TEXT PRIMARY KEY,
  calls INTEGER NOT NULL,
  cached INTEGER NOT NULL,
  prompt INTEGER NOT NULL,
  completion INTEGER NOT NULL,
  cost REAL NOT NULL,
  paid INTEGER NOT NULL
);
INSERT INTO call_sums ${CALL_SUMS_OF("rounds r, json_each(r.calls) c")};
CREATE TRIGGER rounds_call_sums AFTER INSERT ON rounds BEGIN
  INSERT INTO call_sums ${CALL_SUMS_OF("json_each(NEW.calls) c")}
  ON CONFLICT(role) DO UPDATE SET calls = calls + excluded.calls, cached = cached + excluded.cached,
    prompt = prompt + excluded.prompt, completion = completion + excluded.completion,
    cost = cost + excluded.cost, paid = paid + excluded.paid;
END;
CREATE TRIGGER rounds_call_sums_gone AFTER DELETE ON rounds BEGIN
  UPDATE call_sums SET calls = calls - g.calls, cached = cached - g.cached, prompt = prompt - g.prompt,
    completion = completion - g.completion, cost = cost - g.cost, paid = paid - g.paid
  FROM (${CALL_SUMS_OF("json_each(OLD.calls) c")}) AS g WHERE call_sums.role = g.role;
END;
CREATE INDEX items_outcome ON items(fate, kept_as, reason_code);
CREATE INDEX problems_domain ON problems(domain);
`
  }
]

/** Applies pending migrations; refuses a store written by a newer fastcot. */
export const migrate = (db: Database.Database): void => {
  const current = db.pragma("user_version", { simple: true }) as number
  const latest = migrations[migrations.length - 1]?.version ?? 0
  if (current > latest) {
    throw new Error(
      `the store is at schema version ${current}, newer than this fastcot knows (${latest}); upgrade fastcot`
    )
  }
  for (const m of migrations) {
    if (m.version <= current) continue
    // Foreign keys can only be switched outside a transaction; the rebuilt tables are checked inside it.
    if (m.rebuildsTables === true) db.pragma("foreign_keys = OFF")
    try {
      db.transaction(() => {
        db.exec(m.sql)
        if (m.rebuildsTables === true && (db.pragma("foreign_key_check") as Array<unknown>).length > 0)
          throw new Error(`migration ${m.version} (${m.name}) would leave rows whose references are gone`)
        db.pragma(`user_version = ${m.version}`)
      }).immediate()
    } finally {
      if (m.rebuildsTables === true) db.pragma("foreign_keys = ON")
    }
  }
}
