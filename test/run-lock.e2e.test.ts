import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { BIN, fastcot as run, scriptedFixture } from "./support.js"

const AIME = join(__dirname, "..", "..", "shared", "data", "aime24", "test.jsonl")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("one run per workspace (scripted loopback teacher, 1 s replies)", () => {
  const fx = scriptedFixture({ latencyMs: 1_000 }, "fastcot-e2e-lock-")
  const runArgs = (ws: string, concurrency: number, model = "t") => [
    "run",
    "--stages",
    "teacher",
    "--teacher",
    `openai:${model}@${fx.server.baseUrl}`,
    "--concurrency",
    String(concurrency),
    "--no-tui",
    "--workspace",
    ws
  ]
  const holder = (ws: string): number | undefined => {
    try {
      const db = new Database(join(ws, "fastcot.db"), { readonly: true })
      const row = db.prepare("SELECT pid FROM run_lock").get() as { pid: number } | undefined
      db.close()
      return row?.pid
    } catch {
      return undefined
    }
  }

  it("refuses a second run while one works, and takes over the lock of a run that was killed", async () => {
    const ws = join(fx.root, "ws")
    expect((await run(["import", AIME, "--workspace", ws])).status).toBe(0)
    // The first run: 30 problems, two at a time, a second each: it works for about 15 s.
    const first = spawn(process.execPath, [BIN, ...runArgs(ws, 2)], { stdio: "ignore" })
    const exited = new Promise((r) => first.on("exit", r))
    for (let i = 0; i < 400 && holder(ws) !== first.pid; i++) await sleep(25)
    expect(holder(ws)).toBe(first.pid)

    const second = await run(runArgs(ws, 2, "second"))
    expect(second.status).toBe(1)
    expect(second.stderr).toContain(`another run is working on this workspace: fastcot run (pid ${first.pid}, since `)
    expect(second.stderr).toContain("--take-over")
    // status names the run at work.
    const status = await run(["status", "--workspace", ws])
    expect(status.stdout).toMatch(new RegExp(`run in progress +fastcot run \\(pid ${first.pid}, since 20`))
    expect(JSON.parse((await run(["status", "--json", "--workspace", ws])).stdout).running).toMatchObject({
      pid: first.pid,
      what: "fastcot run"
    })
    // It sent nothing.
    expect(fx.server.requests.filter((r) => r.model === "second")).toHaveLength(0)

    // Killed, the first run leaves its lock behind; the next run sees its holder is gone and goes on.
    first.kill("SIGKILL")
    await exited
    expect(holder(ws)).toBe(first.pid)
    const resumed = await run(runArgs(ws, 32))
    expect(resumed.status, resumed.stderr).toBe(0)
    expect(resumed.stdout).toMatch(/teacher +\d+ sampled, 0 failed, \d+ already done \(of 30\)/)
    // A run that ends releases the lock.
    expect(holder(ws)).toBeUndefined()
    expect((await run(["status", "--workspace", ws])).stdout).not.toContain("run in progress")
  }, 90_000)
})
