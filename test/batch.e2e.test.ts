import { spawn } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { BIN, deterministicRoles, fastcot as run, scriptedFixture, writeSumProblems } from "./support.js"

const N = 500
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A pipeline with every role on the scripted server; batch timings short enough for a test. */
const pipelineYaml = (baseUrl: string) => {
  const endpoint = (extra: string) =>
    [
      `      - model: openai:scripted@${baseUrl}`,
      "        concurrency: 8",
      "        price: { input: 2, output: 8 }",
      `        batch: { gatherSeconds: 0.3, pollSeconds: 0.1, pollMaxSeconds: 0.3, resubmit: 3${extra} }`
    ].join("\n")
  return [
    "name: batch-e2e",
    "models:",
    "  teacher:",
    "    endpoints:",
    endpoint(""),
    "  rewriter:",
    "    endpoints:",
    endpoint(""),
    "  judge:",
    "    endpoints:",
    endpoint(""),
    ""
  ].join("\n")
}

describe("fastcot run with teacher and judge in batch mode (scripted batch API: a failed line, an expired batch, kill -9)", () => {
  const failedLines = new Set<string>()
  let expired = false
  const fx = scriptedFixture(
    {
      script: deterministicRoles,
      latencyMs: 5,
      batches: {
        // The first batch (the teacher's) completes slowly: the run is killed while it is in progress.
        completeMs: (batch) => (batch === 0 ? 2_500 : 150),
        // One line of the first batch fails; the first later batch of ten lines or more expires half-way.
        failLine: (id, batch) => {
          if (batch !== 0 || failedLines.size > 0) return false
          failedLines.add(id)
          return true
        },
        expire: (batch, lines) => {
          if (batch === 0 || lines < 10 || expired) return false
          expired = true
          return true
        }
      }
    },
    "fastcot-e2e-batch-",
    {
      setup: (root) => {
        writeSumProblems(join(root, "problems.jsonl"), N)
      }
    }
  )

  const fastcot = (workspace: string, args: Array<string>) => run([...args, "--workspace", workspace])
  const runArgs = (batch: boolean) => [
    "run",
    join(fx.root, "pipeline.yaml"),
    ...(batch ? ["--batch", "teacher,judge"] : []),
    "--no-tui"
  ]

  it("keeps the items a live run keeps, and submits no request twice but those whose line failed", async () => {
    writeFileSync(join(fx.root, "pipeline.yaml"), pipelineYaml(fx.server.baseUrl))
    const batched = join(fx.root, "batched")
    expect((await fastcot(batched, ["import", join(fx.root, "problems.jsonl")])).status).toBe(0)

    // Killed between submit and completion: once the teacher's batch is in progress.
    const child = spawn(process.execPath, [BIN, ...runArgs(true), "--workspace", batched], { stdio: "ignore" })
    const exited = new Promise((r) => child.on("exit", r))
    for (let i = 0; i < 400 && fx.server.batches()[0]?.status !== "in_progress"; i++) await sleep(25)
    expect(fx.server.batches()[0]?.status).toBe("in_progress")
    child.kill("SIGKILL")
    await exited
    expect(fx.server.batches()).toHaveLength(1)

    const resumed = await fastcot(batched, runArgs(true))
    expect(resumed.status, resumed.stderr).toBe(0)
    // The restarted run took up the batch it had made: the teacher's requests went out once.
    const batches = fx.server.batches()
    expect(batches[0]!.request_counts.total).toBe(N)
    expect(batches.map((b) => b.status)).toContain("expired")
    expect(failedLines.size).toBe(1)

    // Every line submitted more than once had failed or expired in an earlier batch.
    const expiredLines = new Set<string>()
    for (const b of batches.filter((x) => x.status === "expired")) {
      const lines = fx.server.batchLog().filter((l) => l.batch === b.id)
      for (const l of lines.slice(Math.ceil(lines.length / 2))) expiredLines.add(l.customId)
    }
    const counts = new Map<string, number>()
    for (const { customId } of fx.server.batchLog()) counts.set(customId, (counts.get(customId) ?? 0) + 1)
    for (const [id, n] of counts) expect(n, id).toBe(1 + (failedLines.has(id) ? 1 : 0) + (expiredLines.has(id) ? 1 : 0))
    expect(expiredLines.size).toBeGreaterThan(0)
    // Teacher and judge calls all went in batches; the rewriter's went live.
    const liveSystems = fx.server.requests.filter((r) => r.url !== "batch").map((r) => r.messages[0]!.content)
    for (const system of liveSystems) expect(system).toMatch(/extending|simplifying/)

    const straight = join(fx.root, "straight")
    await fastcot(straight, ["import", join(fx.root, "problems.jsonl")])
    const live = await fastcot(straight, runArgs(false))
    expect(live.status, live.stderr).toBe(0)

    const a = JSON.parse((await fastcot(batched, ["status", "--json"])).stdout)
    const b = JSON.parse((await fastcot(straight, ["status", "--json"])).stdout)
    expect(a.keptAs).toEqual(b.keptAs)
    expect(a.dropReasons).toEqual(b.dropReasons)
    expect(a.kept + a.dropped).toBe(N)
    // The judge worked in rounds: its first batch held every item verification passed; then one
    // batch for each of the (up to 3) rounds after a rewrite, and one more for the expired lines.
    const judgeBatches = batches.slice(2)
    expect(judgeBatches[0]!.request_counts.total).toBe(N - a.dropReasons["answer-mismatch"])
    expect(judgeBatches.length).toBeLessThanOrEqual(1 + 3 + 1)
    expect(a.batches.open).toBe(0)
    expect(a.batches.jobs).toBeGreaterThanOrEqual(3)
    for (const ws of [batched, straight])
      expect((await fastcot(ws, ["export", "--out", join(ws, "sft.jsonl"), "--val-fraction", "0.1"])).status).toBe(0)
    expect(readFileSync(join(batched, "sft.jsonl"), "utf8")).toBe(readFileSync(join(straight, "sft.jsonl"), "utf8"))
  })
})
