import { type ScriptedRequest } from "@fastcot/core/testing"
import { type ChildProcess, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import Database from "better-sqlite3"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import {
  BIN,
  deterministicRoles,
  fastcot as run,
  postgresFixture,
  recipeRunArgs,
  scriptedFixture,
  writeSumProblems
} from "./support.js"

/** Problems in the run (FASTCOT_E2E_WORKERS_N for a quicker local try). */
const N = Number(process.env["FASTCOT_E2E_WORKERS_N"] ?? 2_000)
const WORKERS = 3
const LEASE_MS = 2_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/**
 * Tries per call. At 15 % faults, four in five of them failing a try (a slow reply still
 * answers), a call fails all of the default 6 tries with p = 0.12^6 = 3e-6: over the two runs'
 * ~12,000 calls, one test in 30 would end with a failed item (a run that exits 1, as it should).
 * With 12 tries, p = 9e-12 a call.
 */
const MAX_ATTEMPTS = 12

const requestKey = (r: ScriptedRequest) => createHash("sha256").update(JSON.stringify(r.messages)).digest("hex")

describe(`${WORKERS} workers share one run on PostgreSQL (real server on 127.0.0.1, scripted roles, 15% faults)`, () => {
  const fx = scriptedFixture(
    { script: deterministicRoles, latencyMs: 10, faultRate: 0.15, retryAfterSeconds: 0.02, slowMs: 800, seed: 21 },
    "fastcot-e2e-workers-",
    {
      setup: (root) => writeSumProblems(join(root, "problems.jsonl"), N)
    }
  )
  const cluster = postgresFixture()

  /** The recipe's run with the scripted roles, from a pipeline file that only raises their tries. */
  const runArgs = () => {
    const file = join(fx.root, "pipeline.yaml")
    const role = (name: string) =>
      `  ${name}:\n    maxAttempts: ${MAX_ATTEMPTS}\n    endpoints:\n      - model: openai:scripted@${fx.server.baseUrl}\n`
    writeFileSync(file, `name: workers-e2e\nmodels:\n${["teacher", "rewriter", "judge"].map(role).join("")}`)
    const [command, ...flags] = recipeRunArgs(fx.server.baseUrl, 8)
    return [command!, file, ...flags]
  }

  /** Items whose outcome differs between the shared run and the straight one, with each run's rounds: the
   * message a failed comparison shows. */
  const keptAsDifferences = (url: string, sqliteFile: string) => {
    const history =
      "string_agg(r.idx || ':' || (r.data::json->>'action') || '=' || coalesce(r.data::json->'verdict'->>'level', ''), ' ' ORDER BY r.idx)"
    const shared = new Map(
      cluster()
        .psql(
          new URL(url).pathname.slice(1),
          `SELECT i.id || '|' || coalesce(i.kept_as, i.fate) || '|' || ${history} FROM items i JOIN rounds r ON r.item_id = i.id GROUP BY i.id, i.kept_as, i.fate`
        )
        .trim()
        .split("\n")
        .map((line) => line.split("|") as [string, string, string])
        .map(([id, outcome, rounds]) => [id, { outcome, rounds }])
    )
    const db = new Database(sqliteFile, { readonly: true })
    const rows = db
      .prepare(
        `SELECT i.id AS id, coalesce(i.kept_as, i.fate) AS outcome,
           (SELECT group_concat(r.idx || ':' || json_extract(r.data, '$.action') || '=' || coalesce(json_extract(r.data, '$.verdict.level'), ''), ' ')
              FROM (SELECT idx, data FROM rounds WHERE item_id = i.id ORDER BY idx) r) AS rounds
         FROM items i ORDER BY i.id`
      )
      .all() as Array<{ id: string; outcome: string; rounds: string }>
    db.close()
    return rows
      .filter((row) => shared.get(row.id)?.outcome !== row.outcome)
      .map((row) => `${row.id}: shared ${JSON.stringify(shared.get(row.id))}, straight ${row.outcome} ${row.rounds}`)
      .join("\n")
  }

  it("finish every item, lose nothing to a worker killed with SIGKILL, re-pay no stored call, and export what one SQLite run exports", async () => {
    const url = cluster().createDatabase("workers")
    const env = { PGPASSWORD: cluster().password, FASTCOT_LEASE_MS: String(LEASE_MS) }
    const workspace = join(fx.root, "shared")
    const imported = await run(
      ["import", join(fx.root, "problems.jsonl"), "--workspace", workspace, "--store", url],
      env
    )
    expect(imported.status, imported.stderr).toBe(0)
    const doneCount = () => Number(cluster().psql("workers", "SELECT COUNT(*) FROM items WHERE stage = 'done'").trim())

    const exits: Array<Promise<number | null>> = []
    const workers: Array<ChildProcess> = []
    const stderrs: Array<string> = []
    for (let w = 0; w < WORKERS; w++) {
      const child = spawn(process.execPath, [BIN, ...runArgs(), "--workspace", workspace, "--store", url], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "ignore", "pipe"]
      })
      stderrs.push("")
      child.stderr!.on("data", (d) => (stderrs[w] += d))
      workers.push(child)
      exits.push(new Promise((resolve) => child.on("exit", (code) => resolve(code))))
    }
    // All three at work (each holds leases), then one is killed mid-run.
    let held = 0
    for (let i = 0; i < 2400 && (held < WORKERS || doneCount() < N / 4); i++) {
      await sleep(25)
      held = Number(
        cluster().psql("workers", "SELECT COUNT(DISTINCT worker) FROM work_leases WHERE expires_at > now()").trim()
      )
    }
    expect(held).toBe(WORKERS)
    workers[0]!.kill("SIGKILL")
    expect(await exits[0]).toBeNull()
    // Replies the killed worker may have been sent: every one finished before it was gone, or was
    // in flight then. The server may still complete one of those into the closed connection (a
    // reply timer that fires before it reads the end of the connection, or a slow reply, 800 ms),
    // so the count is read once they are all done.
    await sleep(1_500)
    const answeredAtDeath = fx.server.answered.length
    expect(doneCount()).toBeLessThan(N)
    const codes = await Promise.all(exits.slice(1))
    expect(codes, stderrs.join("\n")).toEqual([0, 0])

    const status = JSON.parse((await run(["status", "--json", "--workspace", workspace, "--store", url], env)).stdout)
    // What is unfinished, if anything: items not kept or dropped (with their stage, fate and
    // rounds) and problems no item came from.
    const unfinished = cluster()
      .psql(
        "workers",
        `SELECT 'item ' || i.id || ' ' || i.stage || ' ' || coalesce(i.fate, '') || ' rounds ' || (SELECT COUNT(*) FROM rounds r WHERE r.item_id = i.id)
           FROM items i WHERE coalesce(i.fate, '') NOT IN ('kept', 'dropped')
         UNION ALL SELECT 'problem ' || p.id || ' has no item' FROM problems p
           WHERE NOT EXISTS (SELECT 1 FROM items i WHERE i.problem_id = p.id)
             AND NOT EXISTS (SELECT 1 FROM problem_flags f WHERE f.problem_id = p.id)`
      )
      .trim()
    expect(status.kept + status.dropped, `${unfinished}\n${stderrs.join("\n")}`).toBe(N)
    expect(status.failed).toBe(0)
    expect(status.dropReasons["answer-mismatch"]).toBe(Math.floor(N / 9))
    expect(status.workers).toEqual([])

    // No stored call was sent again: a request answered twice was first answered before the
    // kill, to the killed worker, which died before storing it.
    const firstAnswer = new Map<string, number>()
    const repaid: Array<number> = []
    fx.server.answered.forEach((r, i) => {
      const key = requestKey(r)
      const first = firstAnswer.get(key)
      if (first === undefined) firstAnswer.set(key, i)
      else repaid.push(first)
    })
    expect(repaid.filter((first) => first >= answeredAtDeath)).toEqual([])
    // At most what the killed worker had in flight: 8 calls per role.
    expect(repaid.length).toBeLessThanOrEqual(3 * 8)

    const straight = join(fx.root, "sqlite")
    await run(["import", join(fx.root, "problems.jsonl"), "--workspace", straight])
    const reference = await run([...runArgs(), "--workspace", straight])
    expect(reference.status, reference.stderr).toBe(0)
    const b = JSON.parse((await run(["status", "--json", "--workspace", straight])).stdout)
    // Item by item, with each differing item's rounds in both runs when they disagree.
    expect(keptAsDifferences(url, join(straight, "fastcot.db"))).toBe("")
    expect(status.keptAs).toEqual(b.keptAs)
    expect(status.dropReasons).toEqual(b.dropReasons)
    const out = (ws: string, extra: Array<string>) =>
      run(["export", "--out", join(ws, "sft.jsonl"), "--val-fraction", "0.1", "--workspace", ws, ...extra], env)
    expect((await out(workspace, ["--store", url])).status).toBe(0)
    expect((await out(straight, [])).status).toBe(0)
    expect(readFileSync(join(workspace, "sft.jsonl"), "utf8")).toBe(readFileSync(join(straight, "sft.jsonl"), "utf8"))
  }, 900_000)
})
