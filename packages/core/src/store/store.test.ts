import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { readdirSync, readlinkSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { tempDir, withStore } from "../test-support/fixtures.js"
import { call, item, problem, round } from "../test-support/storeRecords.js"
import { contentId } from "../util/hash.js"
import { finishedImport } from "../testing/workspaceRecords.js"
import { migrations } from "./migrations.js"
import { RunStore } from "./RunStore.js"
import { processStart } from "./runLock.js"
import { openSqliteStore } from "./SqliteRunStore.js"

/** What only the SQLite store does; what every store does is in storeContract.test.ts. */
describe("SQLite run store", () => {
  let dir: ReturnType<typeof tempDir>
  let file: string
  beforeEach(() => {
    dir = tempDir()
    file = join(dir.dir, "ws", "fastcot.db")
  })
  afterEach(() => dir.cleanup())

  it("creates the file in WAL mode at the latest schema version", () => {
    const { close } = openSqliteStore(file)
    close()
    const db = new Database(file, { readonly: true })
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
    expect(db.pragma("user_version", { simple: true })).toBe(migrations[migrations.length - 1]!.version)
    db.close()
    // Reopening applies nothing twice.
    openSqliteStore(file).close()
  })

  it("moves a store written before the token and call columns, and the call sums, to them: status reads the same", async () => {
    // A workspace at schema 5, its rows as that version wrote them.
    const old = new Database((file = join(dir.dir, "old.db")))
    for (const m of migrations.filter((m) => m.version <= 5)) old.exec(m.sql)
    old.pragma("user_version = 5")
    const p = problem("q?")
    const kept = {
      ...item(p, [round(0, "x", [call("judge", false)])], "kept"),
      stage: "done",
      keptAs: "initial-medium"
    }
    old
      .prepare("INSERT INTO problems (id, domain, data, created_at) VALUES (?, 'math', ?, 't')")
      .run(p.id, JSON.stringify(p))
    old
      .prepare(
        "INSERT INTO items (id, problem_id, stage, fate, kept_as, data, created_at, updated_at) VALUES (?, ?, 'done', 'kept', 'initial-medium', ?, 't', 't')"
      )
      .run(kept.id, p.id, JSON.stringify({ ...kept, rounds: undefined }))
    old.prepare("INSERT INTO rounds (item_id, idx, data) VALUES (?, 0, ?)").run(kept.id, JSON.stringify(kept.rounds[0]))
    old.close()
    const status = await withStore(
      file,
      Effect.flatMap(RunStore, (store) => store.status)
    )
    expect(status.tokens).toMatchObject({ tokenizer: "qwen2.5", ratio: 1, after: { count: 1, mean: 40 } })
    expect(status.llm).toMatchObject({
      calls: 1,
      promptTokens: 10,
      completionTokens: 5,
      byRole: { judge: { calls: 1 } }
    })
  })

  it("commits item saves and cache entries on a writer thread, or on this thread (inline): the same rows, durable on return, every one in by close", async () => {
    const rows = async (writer: "thread" | "inline") => {
      const path = join(dir.dir, `${writer}.db`)
      const p = problem("q?")
      const saved = item(p, [round(0, "x", [call("judge", false)])], "kept")
      const { store, close } = openSqliteStore(path, undefined, { writer })
      await Effect.runPromise(store.commitImportBatch(finishedImport([p], [])))
      // Durable when the save returns: another connection reads it at once.
      await Effect.runPromise(store.saveItem(saved))
      const reader = new Database(path, { readonly: true })
      const seen = reader.prepare("SELECT id, fate FROM items").all()
      reader.close()
      // Written and not awaited: the close commits them all before it returns.
      for (let i = 0; i < 50; i++)
        void Effect.runPromise(store.cachePut({ key: `k${i}`, model: "m", value: "{}", createdAt: "t" }))
      close()
      const after = new Database(path, { readonly: true })
      const counts = after
        .prepare("SELECT (SELECT COUNT(*) FROM llm_cache) AS cache, (SELECT COUNT(*) FROM rounds) AS rounds")
        .get()
      const sums = after.prepare("SELECT role, calls FROM call_sums").all()
      after.close()
      return { seen, counts, sums }
    }
    const thread = await rows("thread")
    expect(thread).toEqual({
      seen: [{ id: expect.any(String), fate: "kept" }],
      counts: { cache: 50, rounds: 1 },
      sums: [{ role: "judge", calls: 1 }]
    })
    expect(await rows("inline")).toEqual(thread)
  })

  it("starts its writer thread when a run takes the lock, not at the first save; a store that only reads never starts it", async () => {
    // The writer thread's connection is a second descriptor open on the file (Linux's /proc).
    const openOnFile = (path: string) =>
      readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`) === path
        } catch {
          return false
        }
      }).length
    const connectionsWithin = async (path: string, ms: number, wanted: number) => {
      for (const until = Date.now() + ms; openOnFile(path) < wanted && Date.now() < until;)
        await new Promise((r) => setTimeout(r, 20))
      return openOnFile(path)
    }
    const reading = openSqliteStore(file)
    await Effect.runPromise(reading.store.status)
    expect(await connectionsWithin(file, 500, 2)).toBe(1)
    reading.close()

    const running = openSqliteStore(file)
    await Effect.runPromise(Effect.scoped(running.store.lockRun("test")))
    expect(await connectionsWithin(file, 10_000, 2)).toBe(2)
    running.close()
    expect(openOnFile(file)).toBe(0)
  })

  it("answers the cache's misses from its keys while it holds the run lock, and reads the file again once it lets go", async () => {
    const entry = (key: string) => ({ key, model: "m", value: "{}", createdAt: "t" })
    const { store, close } = openSqliteStore(file)
    const writeElsewhere = async (key: string) => {
      const o = openSqliteStore(file)
      await Effect.runPromise(o.store.cachePut(entry(key)))
      o.close()
    }
    const found = async (key: string) => Option.isSome(await Effect.runPromise(store.cacheGet(key)))
    await writeElsewhere("before")
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          yield* store.lockRun("test")
          // Written before the lock: loaded with it. Written by this store: added as it writes.
          yield* store.cachePut(entry("mine"))
          expect(yield* Effect.promise(() => found("before"))).toBe(true)
          expect(yield* Effect.promise(() => found("mine"))).toBe(true)
          expect(yield* Effect.promise(() => found("absent"))).toBe(false)
          // What a process without the lock writes meanwhile is not seen by the holder (no
          // other run writes its cache): the file is not read for a key it never saw.
          yield* Effect.promise(() => writeElsewhere("meanwhile"))
          expect(yield* Effect.promise(() => found("meanwhile"))).toBe(false)
        })
      )
    )
    // The lock let go: every lookup reads the file again.
    expect(await found("meanwhile")).toBe(true)
    close()
  })

  it("refuses a store written by a newer fastcot", () => {
    openSqliteStore(file).close()
    const db = new Database(file)
    db.pragma("user_version = 999")
    db.close()
    expect(() => openSqliteStore(file)).toThrow(/schema version 999/)
  })

  it("keeps a spending ledger: calls summed per role and model, written shortly after and on close, and kept across opens", async () => {
    const first = openSqliteStore(file)
    first.store.recordSpend({ role: "teacher", model: "m", promptTokens: 10, completionTokens: 20, costUsd: 0.5 })
    first.store.recordSpend({ role: "teacher", model: "m", promptTokens: 1, completionTokens: 2, costUsd: 0.25 })
    first.store.recordSpend({ role: "judge", model: "j", promptTokens: 5, completionTokens: 0, costUsd: 0 })
    // Within a quarter second the sums are on disk, whatever the reader.
    await new Promise((r) => setTimeout(r, 400))
    const reader = new Database(file, { readonly: true })
    expect(
      reader
        .prepare(
          "SELECT role, model, calls, prompt_tokens AS p, completion_tokens AS c, cost_usd AS usd FROM llm_spend ORDER BY role"
        )
        .all()
    ).toEqual([
      { role: "judge", model: "j", calls: 1, p: 5, c: 0, usd: 0 },
      { role: "teacher", model: "m", calls: 2, p: 11, c: 22, usd: 0.75 }
    ])
    reader.close()
    // A call recorded just before the store closes is written by the close.
    first.store.recordSpend({ role: "teacher", model: "m", promptTokens: 100, completionTokens: 0, costUsd: 1 })
    first.close()
    const again = openSqliteStore(file)
    expect(await Effect.runPromise(again.store.spending)).toEqual({ calls: 4, tokens: 138, costUsd: 1.75 })
    expect((await Effect.runPromise(again.store.status)).llm.ledger).toEqual({ calls: 4, tokens: 138, costUsd: 1.75 })
    again.close()
  })

  it("holds one run lock per workspace across connections; a dead holder's lock is taken over, a release drops only its own", async () => {
    const a = openSqliteStore(file)
    const b = openSqliteStore(file)
    // Whether a lock is taken: held until a timeout ends its scope ("held"), or refused.
    const lock = (store: typeof a.store, what: string) =>
      Effect.runPromise(
        store.lockRun(what).pipe(
          Effect.zipRight(Effect.never),
          Effect.scoped,
          Effect.timeout(50),
          Effect.catchTag("TimeoutException", () => Effect.succeed("held")),
          Effect.catchTag("WorkspaceBusy", () => Effect.succeed("refused"))
        )
      )
    const holding = Effect.runPromise(Effect.scoped(Effect.zipRight(a.store.lockRun("run a"), Effect.sleep(300))))
    await new Promise((r) => setTimeout(r, 50))
    const busy = await Effect.runPromise(Effect.either(Effect.scoped(b.store.lockRun("run b"))))
    expect(busy._tag === "Left" && busy.left._tag === "WorkspaceBusy" && busy.left.message).toMatch(
      new RegExp(`another run is working on this workspace: run a \\(pid ${process.pid}, since 20`)
    )
    await holding
    // Released when its scope closed: b takes it (and gives it back).
    expect((await Effect.runPromise(Effect.either(Effect.scoped(b.store.lockRun("run b")))))._tag).toBe("Right")

    const raw = new Database(file)
    const put = (pid: number, host: string, processStart: string | null) =>
      raw
        .prepare(
          "INSERT OR REPLACE INTO run_lock (id, pid, host, process_start, started_at, what) VALUES (1, ?, ?, ?, '2026-01-01T00:00:00Z', 'gone')"
        )
        .run(pid, host, processStart)
    // A pid that no process has (a killed run's): taken over.
    const child = (await import("node:child_process")).spawnSync(process.execPath, ["-e", "0"])
    put(child.pid!, hostname(), null)
    expect(await lock(b.store, "run b")).toBe("held")
    // A live pid that the system gave to another process since (its start time differs): taken over.
    put(process.pid, hostname(), "1")
    expect(await lock(b.store, "run b")).toBe("held")
    // The same live process as it started: refused.
    put(process.pid, hostname(), processStart(process.pid) ?? null)
    expect(await lock(b.store, "run b")).toBe("refused")
    // A live holder on another machine cannot be checked: refused, unless taken over on purpose.
    put(4242, "another-host", null)
    const other = await Effect.runPromise(Effect.either(Effect.scoped(b.store.lockRun("run b"))))
    expect(other._tag === "Left" && other.left.message).toContain(
      "gone (pid 4242 on another-host, since 2026-01-01T00:00:00Z)"
    )
    const taken = Effect.runPromise(
      Effect.scoped(Effect.zipRight(b.store.lockRun("run b", { takeOver: true }), Effect.sleep(100)))
    )
    await new Promise((r) => setTimeout(r, 30))
    expect((raw.prepare("SELECT what FROM run_lock").get() as { what: string }).what).toBe("run b")
    // The holder it was taken from ends later: its release leaves the new holder's lock alone.
    put(process.pid, hostname(), null)
    raw.prepare("UPDATE run_lock SET what = 'run c', started_at = '2026-02-02T00:00:00Z'").run()
    await taken
    expect((raw.prepare("SELECT what FROM run_lock").get() as { what: string }).what).toBe("run c")
    raw.close()
    a.close()
    b.close()
  })

  it("takes back an item save interrupted before its commit, so that what a stopped run reports is what is stored; a cache write still lands", async () => {
    const [p, q] = [problem("4+0?"), problem("5+0?")]
    const result = await withStore(
      file,
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(finishedImport([p, q]))
        yield* store.saveItem(item(p, [], "pending"))
        // Both wait for the shared commit (the next turn of the event loop); both are interrupted.
        const itemSave = yield* Effect.fork(store.saveItem(item(p, [round(0, "easy")], "kept")))
        const cacheWrite = yield* Effect.fork(
          store.cachePut({ key: "k1", model: "m", value: "{}", createdAt: "2026-01-01T00:00:00Z" })
        )
        // Interrupted while they wait for the commit, after they have asked (the cache entry that
        // lands below shows they had).
        for (let i = 0; i < 3; i++) yield* Effect.yieldNow()
        yield* Fiber.interrupt(itemSave)
        yield* Fiber.interrupt(cacheWrite)
        yield* store.saveItem(item(q, [], "kept"))
        yield* Effect.sleep("20 millis") // the cache's own commit
        return {
          p: yield* store.getItem(contentId("i_", p.id)),
          q: yield* store.getItem(contentId("i_", q.id)),
          cached: yield* store.cacheGet("k1"),
          status: yield* store.status
        }
      })
    )
    expect(Option.getOrThrow(result.p).fate).toBe("pending")
    expect(Option.getOrThrow(result.p).rounds).toHaveLength(0)
    expect(Option.getOrThrow(result.q).fate).toBe("kept")
    expect(Option.isSome(result.cached)).toBe(true)
    expect(result.status).toMatchObject({ kept: 1, pending: 1 })
  })

  it("waits for an item save handed to the writer thread before its caller was interrupted: the save is stored", async () => {
    const p = problem("6+0?")
    // Another connection (opened once the store has made the file) holds the file's write lock,
    // so that the writer thread's commit waits.
    let blocker: Database.Database | undefined
    try {
      const result = await withStore(
        file,
        Effect.gen(function* () {
          const store = yield* RunStore
          yield* store.lockRun("test")
          yield* store.commitImportBatch(finishedImport([p]))
          yield* store.saveItem(item(p, [], "pending"))
          blocker = new Database(file)
          blocker.exec("BEGIN IMMEDIATE")
          const itemSave = yield* Effect.fork(store.saveItem(item(p, [round(0, "easy")], "kept")))
          // The save has asked (the forked fiber has run); the turn's writes are handed to the
          // writer thread by an immediate queued before this one.
          for (let i = 0; i < 3; i++) yield* Effect.yieldNow()
          yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
          const interrupting = yield* Effect.fork(Fiber.interrupt(itemSave))
          yield* Effect.sleep("100 millis")
          const whileBlocked = yield* Fiber.poll(interrupting)
          blocker.exec("ROLLBACK")
          const exit = yield* Fiber.join(interrupting)
          return { whileBlocked, exit, stored: yield* store.getItem(contentId("i_", p.id)) }
        }).pipe(Effect.scoped)
      )
      // Interrupted after the hand-over, the caller waited for the commit before it ended.
      expect(Option.isNone(result.whileBlocked)).toBe(true)
      expect(Exit.isInterrupted(result.exit)).toBe(true)
      expect(Option.getOrThrow(result.stored).fate).toBe("kept")
      expect(Option.getOrThrow(result.stored).rounds).toHaveLength(1)
    } finally {
      blocker?.close()
    }
  })

  it("writes each round once per item across saves, and the same round object for another item too", async () => {
    const [p, q] = [problem("2+0?"), problem("3+0?")]
    const shared = round(0, "easy")
    const counted = await withStore(
      file,
      Effect.gen(function* () {
        const store = yield* RunStore
        yield* store.commitImportBatch(finishedImport([p, q]))
        yield* store.saveItem(item(p, [shared]))
        yield* store.saveItem(item(p, [shared, round(1, "hard")]))
        yield* store.saveItem(item(p, [shared, round(1, "hard"), round(2, "medium")], "kept"))
        // Another item that happens to hold the same Round object still gets its own row.
        yield* store.saveItem(item(q, [shared]))
        return [
          Option.getOrThrow(yield* store.getItem(contentId("i_", p.id))),
          Option.getOrThrow(yield* store.getItem(contentId("i_", q.id)))
        ]
      })
    )
    expect(counted[0]!.rounds.map((r) => r.verdict?.raw)).toEqual(["easy", "hard", "medium"])
    expect(counted[1]!.rounds.map((r) => r.verdict?.raw)).toEqual(["easy"])
    const db = new Database(file, { readonly: true })
    expect((db.prepare("SELECT COUNT(*) AS n FROM rounds").get() as { n: number }).n).toBe(4)
    db.close()
  })
})
