import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { BIN, fastcot as run, scriptedFixture } from "./support.js"

const MATH500 = join(__dirname, "..", "..", "shared", "data", "math500", "test.jsonl")
const KEY = "sk-e2e-never-on-disk-4242"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const filesUnder = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })

describe("fastcot run, killed with SIGKILL and resumed (scripted loopback teacher with 15% faults)", () => {
  const fx = scriptedFixture(
    { latencyMs: 40, faultRate: 0.15, retryAfterSeconds: 0.02, slowMs: 1_500, seed: 5 },
    "fastcot-e2e-"
  )

  const fastcot = (workspace: string, args: Array<string>) =>
    run([...args, "--workspace", workspace], { FASTCOT_E2E_KEY: KEY })
  const runArgs = () => [
    "run",
    "--stages",
    "teacher",
    "--teacher",
    `openai:e2e-teacher@${fx.server.baseUrl}`,
    "--api-key-env",
    "FASTCOT_E2E_KEY",
    "--concurrency",
    "8",
    "--no-tui"
  ]

  const storedQuestions = (workspace: string) => {
    const db = new Database(join(workspace, "fastcot.db"), { readonly: true })
    const rows = db
      .prepare("SELECT p.data AS data FROM items i JOIN problems p ON p.id = i.problem_id WHERE i.stage = 'verify'")
      .all() as Array<{ data: string }>
    db.close()
    return new Set(rows.map((r) => (JSON.parse(r.data) as { question: string }).question))
  }
  const itemIds = (workspace: string) => {
    const db = new Database(join(workspace, "fastcot.db"), { readonly: true })
    const ids = (
      db.prepare("SELECT id FROM items WHERE stage = 'verify' ORDER BY id").all() as Array<{ id: string }>
    ).map((r) => r.id)
    db.close()
    return ids
  }

  it("loses nothing, re-sends no stored completion, ends where an uninterrupted run ends, and never writes the key", async () => {
    const crashed = join(fx.root, "crashed")
    expect((await fastcot(crashed, ["import", MATH500])).status).toBe(0)

    const child = spawn(process.execPath, [BIN, ...runArgs(), "--workspace", crashed], {
      env: { ...process.env, FASTCOT_E2E_KEY: KEY },
      stdio: "ignore"
    })
    const exited = new Promise((r) => child.on("exit", r))
    let stored = 0
    for (let i = 0; i < 600 && stored < 120; i++) {
      await sleep(25)
      try {
        stored = storedQuestions(crashed).size
      } catch {
        // The store may be mid-creation.
      }
    }
    child.kill("SIGKILL")
    await exited
    const before = storedQuestions(crashed)
    expect(before.size).toBeGreaterThanOrEqual(120)
    expect(before.size).toBeLessThan(500)
    const sentBefore = fx.server.requests.length

    const resumed = await fastcot(crashed, runArgs())
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(resumed.stdout).toMatch(
      new RegExp(`teacher +${500 - before.size} sampled, 0 failed, ${before.size} already done`)
    )
    const resent = fx.server.requests
      .slice(sentBefore)
      .filter((r) => before.has(r.messages[1]!.content.split("\n\nPlease reason step by step")[0]!.trim()))
    expect(resent).toHaveLength(0)
    expect(fx.server.requests.slice(sentBefore).every((r) => r.headers["authorization"] === `Bearer ${KEY}`)).toBe(true)

    const status = JSON.parse((await fastcot(crashed, ["status", "--json"])).stdout)
    expect(status.stages.verify).toBe(500)
    expect(status.dropped).toBe(0)

    const straight = join(fx.root, "straight")
    await fastcot(straight, ["import", MATH500])
    expect((await fastcot(straight, runArgs())).status).toBe(0)
    expect(itemIds(crashed)).toEqual(itemIds(straight))

    for (const file of [...filesUnder(crashed), ...filesUnder(straight)]) {
      expect(readFileSync(file).includes(KEY), `${file} holds the key`).toBe(false)
    }
  })
})
