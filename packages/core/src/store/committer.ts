import type Database from "better-sqlite3"
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"

/** One statement of a write: a statement the committer prepared (by name) and its parameters. */
export interface WriteOp {
  readonly statement: string
  readonly params: ReadonlyArray<unknown> | Readonly<Record<string, unknown>>
}

/**
 * Runs a turn's writes: every entry's statements in one transaction or, should that fail, each
 * entry in a transaction of its own; then reports each entry's failure (undefined: committed).
 */
export interface Committer {
  readonly commit: (
    entries: ReadonlyArray<ReadonlyArray<WriteOp>>,
    done: (failures: ReadonlyArray<Error | undefined>) => void
  ) => void
  /**
   * Makes ready to commit now rather than on the first commit (a writer thread takes tens of
   * milliseconds to start): for a store about to be written.
   */
  readonly start: () => void
  /** Blocks until every commit handed over has finished. */
  readonly drain: () => void
  readonly close: () => void
}

/** A committer on this thread, over its connection: `done` is called before `commit` returns. */
export const inlineCommitter = (db: Database.Database, statements: Readonly<Record<string, string>>): Committer => {
  const prepared = new Map(Object.entries(statements).map(([name, sql]) => [name, db.prepare(sql)]))
  const run = (ops: ReadonlyArray<WriteOp>) => {
    for (const op of ops) {
      const statement = prepared.get(op.statement)!
      if (Array.isArray(op.params)) statement.run(...(op.params as Array<unknown>))
      else statement.run(op.params)
    }
  }
  const all = db.transaction((entries: ReadonlyArray<ReadonlyArray<WriteOp>>) => entries.forEach(run))
  const one = db.transaction(run)
  return {
    commit: (entries, done) => {
      try {
        all.immediate(entries)
        done(entries.map(() => undefined))
      } catch {
        done(
          entries.map((ops) => {
            try {
              one.immediate(ops)
              return undefined
            } catch (e) {
              return e instanceof Error ? e : new Error(String(e))
            }
          })
        )
      }
    },
    start: () => {},
    drain: () => {},
    close: () => {}
  }
}

// The writer thread: its own connection to the file, the same statements, the same transactions
// as `inlineCommitter`. CommonJS, evaluated (no file to resolve from sources or from dist).
const WRITER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.driver)
const db = new Database(workerData.file)
for (const pragma of workerData.pragmas) db.pragma(pragma)
const prepared = new Map(Object.entries(workerData.statements).map(([name, sql]) => [name, db.prepare(sql)]))
const run = (ops) => {
  for (const op of ops) {
    const statement = prepared.get(op.statement)
    if (Array.isArray(op.params)) statement.run(...op.params)
    else statement.run(op.params)
  }
}
const all = db.transaction((entries) => entries.forEach(run))
const one = db.transaction(run)
const counters = new Int32Array(workerData.counters)
parentPort.on("message", (m) => {
  if (m.close) {
    db.close()
    Atomics.store(counters, 1, 1)
    Atomics.notify(counters, 1)
    return
  }
  let failures
  try {
    all.immediate(m.entries)
    failures = m.entries.map(() => null)
  } catch {
    failures = m.entries.map((ops) => {
      try {
        one.immediate(ops)
        return null
      } catch (e) {
        return e instanceof Error ? e.message : String(e)
      }
    })
  }
  parentPort.postMessage({ id: m.id, failures })
  Atomics.add(counters, 0, 1)
  Atomics.notify(counters, 0)
})
`

/**
 * A committer on a thread of its own, with its own connection to the store's file (WAL lets this
 * thread's connection read while it writes): SQLite's work on each commit (most of a run's store
 * time) leaves the event loop, which goes on with the run meanwhile. `done` is called on this
 * thread once the transaction has committed. `pragmas` are the connection settings to apply.
 */
export const writerThreadCommitter = (
  file: string,
  statements: Readonly<Record<string, string>>,
  pragmas: ReadonlyArray<string>
): Committer => {
  // counters[0]: commits finished; counters[1]: the connection closed.
  const counters = new Int32Array(new SharedArrayBuffer(8))
  let handed = 0
  let nextId = 0
  const waiting = new Map<number, (failures: ReadonlyArray<Error | undefined>) => void>()
  let broken: Error | undefined
  // Started by `start` (a run taking the lock) or on the first commit: a store that only reads
  // (status, export) never starts it.
  let started: Worker | undefined
  const worker = (): Worker => {
    if (started !== undefined) return started
    const w = new Worker(WRITER_SOURCE, {
      eval: true,
      workerData: {
        file,
        statements,
        pragmas,
        counters: counters.buffer,
        driver: createRequire(import.meta.url).resolve("better-sqlite3")
      }
    })
    // The thread never keeps the process alive by itself; the store's close ends it.
    w.unref()
    w.on("message", (m: { id: number; failures: ReadonlyArray<string | null> }) => {
      const done = waiting.get(m.id)
      waiting.delete(m.id)
      done?.(m.failures.map((f) => (f === null ? undefined : new Error(f))))
    })
    w.on("error", (e) => {
      broken = e
      for (const done of waiting.values()) done([new Error(`the store's writer thread stopped: ${e.message}`)])
      waiting.clear()
    })
    return (started = w)
  }
  // A thread that died cannot say so while this one waits: the waits are bounded.
  const waitFor = (index: number, reached: (value: number) => boolean, what: string) => {
    const until = Date.now() + 60_000
    for (let value = Atomics.load(counters, index); !reached(value); value = Atomics.load(counters, index)) {
      if (Date.now() > until) throw new Error(`the store's writer thread did not ${what} within 60 s`)
      Atomics.wait(counters, index, value, 1000)
    }
  }
  const drain = () => {
    if (broken === undefined) waitFor(0, (finished) => finished >= handed, "finish its commits")
  }
  return {
    commit: (entries, done) => {
      if (broken !== undefined) return done(entries.map(() => broken))
      const id = nextId++
      waiting.set(id, done)
      handed++
      worker().postMessage({ id, entries })
    },
    start: () => {
      if (broken === undefined) worker()
    },
    drain,
    close: () => {
      if (started === undefined) return
      drain()
      if (broken === undefined) {
        started.postMessage({ close: true })
        waitFor(1, (closed) => closed === 1, "close its connection")
      }
      void started.terminate()
    }
  }
}
