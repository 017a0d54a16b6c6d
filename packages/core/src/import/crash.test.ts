import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import { existsSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { RunStore } from "../store/RunStore.js"
import { tempDir, withStore } from "../test-support/fixtures.js"
import { sha256Hex } from "../util/hash.js"
import { importFile } from "./importFile.js"

const CHILD = join(__dirname, "..", "test-support", "import-child.mjs")
const TOTAL = 60_000
const BAD_EVERY = 997

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const problemIds = (db: string) => {
  const conn = new Database(db, { readonly: true })
  const ids = (conn.prepare("SELECT id FROM problems ORDER BY id").all() as Array<{ id: string }>).map((r) => r.id)
  const rejects = (conn.prepare("SELECT COUNT(*) AS n FROM import_rejects").get() as { n: number }).n
  conn.close()
  return { count: ids.length, digest: sha256Hex(ids.join(",")), rejects }
}

describe("an import killed with SIGKILL", () => {
  let tmp: ReturnType<typeof tempDir>
  beforeEach(() => {
    tmp = tempDir()
  })
  afterEach(() => tmp.cleanup())

  it("resumes to exactly the store an uninterrupted import makes: nothing lost, nothing doubled", async () => {
    expect(existsSync(join(__dirname, "..", "..", "dist", "index.js")), "build @fastcot/core first").toBe(true)
    const lines: Array<string> = []
    let bad = 0
    for (let i = 0; i < TOTAL; i++) {
      if (i % BAD_EVERY === 0) {
        lines.push(`{"question": "row ${i} is cut off`)
        bad++
      } else {
        // Every 10th row repeats an earlier question: duplicates must be counted once.
        const n = i % 10 === 0 ? i - 1 : i
        lines.push(
          JSON.stringify({
            question: `What is ${n} + ${n}?`,
            answer: String(2 * n),
            solution: `${n} + ${n} = \\boxed{${2 * n}}`
          })
        )
      }
    }
    const file = join(tmp.dir, "big.jsonl")
    writeFileSync(file, lines.join("\n") + "\n")

    const crashed = join(tmp.dir, "crashed", "fastcot.db")
    const child = spawn(process.execPath, [CHILD, crashed, file, "250"], { stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()))
    // Wait until some batches are committed, then kill without warning.
    let rowsAtKill = 0
    for (let tries = 0; tries < 2000; tries++) {
      await sleep(5)
      if (!existsSync(crashed)) continue
      try {
        const conn = new Database(crashed, { readonly: true, fileMustExist: true })
        const row = conn.prepare("SELECT rows FROM imports").get() as { rows: number } | undefined
        conn.close()
        if (row !== undefined && row.rows >= 5000) {
          rowsAtKill = row.rows
          break
        }
      } catch {
        // The schema may not exist yet.
      }
    }
    child.kill("SIGKILL")
    await exited
    expect(stderr).toBe("")
    expect(rowsAtKill).toBeGreaterThan(0)
    const atKill = problemIds(crashed)
    expect(atKill.count).toBeLessThan(TOTAL - bad - TOTAL / 10)
    const storedAtKill = new Database(crashed, { readonly: true })
    const rowsRead = (storedAtKill.prepare("SELECT rows FROM imports").get() as { rows: number }).rows
    storedAtKill.close()

    const resumed = await withStore(crashed, importFile(file, { batchSize: 250 }))
    expect(resumed.resumed).toBe(true)
    expect(resumed.rows).toBe(TOTAL)
    expect(resumed.rejected).toBe(bad)

    const clean = join(tmp.dir, "clean", "fastcot.db")
    const straight = await withStore(clean, importFile(file, { batchSize: 250 }))
    expect(straight.resumed).toBe(false)
    // The file's counts are the straight import's; the resumed import's own share is what the
    // killed one had not committed.
    expect({ ...resumed, resumed: false, rejects: resumed.rejects.length, byThisRun: null }).toEqual({
      ...straight,
      rejects: straight.rejects.length,
      byThisRun: null
    })
    expect(straight.byThisRun).toMatchObject({ rows: TOTAL, problemsAdded: straight.problemsAdded })
    expect(resumed.byThisRun).toMatchObject({
      rows: TOTAL - rowsRead,
      problemsAdded: straight.problemsAdded - atKill.count
    })

    const a = problemIds(crashed)
    const b = problemIds(clean)
    expect(a).toEqual(b)
    expect(a.rejects).toBe(bad)
    const items = await withStore(
      crashed,
      Effect.flatMap(RunStore, (s) => s.status)
    )
    expect(items.items).toBe(a.count)
  })
})
