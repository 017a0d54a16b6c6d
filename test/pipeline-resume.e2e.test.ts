import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { BIN, deterministicRoles, fastcot as run, recipeRunArgs, scriptedFixture, writeSumProblems } from "./support.js"

const N = 150
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("the whole recipe killed with SIGKILL mid-run and resumed (scripted roles, 10% faults)", () => {
  const fx = scriptedFixture(
    { script: deterministicRoles, latencyMs: 15, faultRate: 0.1, retryAfterSeconds: 0.02, slowMs: 1_000, seed: 9 },
    "fastcot-e2e-pipeline-",
    {
      setup: (root) => writeSumProblems(join(root, "problems.jsonl"), N)
    }
  )

  const fastcot = (workspace: string, args: Array<string>) => run([...args, "--workspace", workspace])
  const runArgs = () => recipeRunArgs(fx.server.baseUrl)
  const doneCount = (workspace: string) => {
    const db = new Database(join(workspace, "fastcot.db"), { readonly: true })
    const n = (db.prepare("SELECT COUNT(*) AS n FROM items WHERE stage = 'done'").get() as { n: number }).n
    db.close()
    return n
  }

  it("ends with exactly the dataset of an uninterrupted run", async () => {
    const crashed = join(fx.root, "crashed")
    expect((await fastcot(crashed, ["import", join(fx.root, "problems.jsonl")])).status).toBe(0)
    const child = spawn(process.execPath, [BIN, ...runArgs(), "--workspace", crashed], { stdio: "ignore" })
    const exited = new Promise((r) => child.on("exit", r))
    let done = 0
    for (let i = 0; i < 1200 && done < 20; i++) {
      await sleep(25)
      try {
        done = doneCount(crashed)
      } catch {
        // Not created yet.
      }
    }
    child.kill("SIGKILL")
    await exited
    expect(done).toBeGreaterThanOrEqual(20)
    expect(doneCount(crashed)).toBeLessThan(N)
    const resumed = await fastcot(crashed, runArgs())
    expect(resumed.status, resumed.stderr).toBe(0)

    const straight = join(fx.root, "straight")
    await fastcot(straight, ["import", join(fx.root, "problems.jsonl")])
    expect((await fastcot(straight, runArgs())).status).toBe(0)

    const a = JSON.parse((await fastcot(crashed, ["status", "--json"])).stdout)
    const b = JSON.parse((await fastcot(straight, ["status", "--json"])).stdout)
    expect(a.keptAs).toEqual(b.keptAs)
    expect(a.dropReasons).toEqual(b.dropReasons)
    expect(a.dropReasons["answer-mismatch"]).toBe(Math.floor(N / 9))
    expect(a.kept + a.dropped).toBe(N)

    for (const ws of [crashed, straight])
      expect((await fastcot(ws, ["export", "--out", join(ws, "sft.jsonl"), "--val-fraction", "0.1"])).status).toBe(0)
    expect(readFileSync(join(crashed, "sft.jsonl"), "utf8")).toBe(readFileSync(join(straight, "sft.jsonl"), "utf8"))
    expect(readFileSync(join(crashed, "sft.validation.jsonl"), "utf8")).toBe(
      readFileSync(join(straight, "sft.validation.jsonl"), "utf8")
    )
  })
})
