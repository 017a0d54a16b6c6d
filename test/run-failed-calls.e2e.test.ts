import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { fastcot as run, scriptedFixture, writeSumProblems } from "./support.js"

describe("fastcot run whose calls fail every try (scripted loopback teacher answering 500), then run again", () => {
  const failing = scriptedFixture({ faultRate: 1, faults: ["500"] }, "fastcot-e2e-failing-", {
    setup: (root) => writeSumProblems(join(root, "problems.jsonl"), 3)
  })
  const healthy = scriptedFixture({}, "fastcot-e2e-healthy-")

  it("exits 1 naming the failed calls and how to retry, tries each call maxAttempts times, and a rerun retries them", async () => {
    const ws = join(failing.root, "ws")
    expect((await run(["import", join(failing.root, "problems.jsonl"), "--workspace", ws])).status).toBe(0)
    const file = join(failing.root, "pipeline.yaml")
    writeFileSync(
      file,
      `name: failing\nmodels:\n  teacher:\n    maxAttempts: 2\n    endpoints:\n      - model: openai:t@${failing.server.baseUrl}\n`
    )
    const teacherOnly = ["--stages", "teacher", "--no-tui", "--workspace", ws]
    const first = await run(["run", file, ...teacherOnly])
    expect(first.status, first.stderr).toBe(1)
    expect(first.stderr).toContain("error: 3 model calls failed after their retries; run again to retry them")
    expect(first.stderr).toContain("`fastcot inspect --fate failed` shows why")
    expect(first.stderr).toContain("a role's `maxAttempts` in the pipeline file sets its tries")
    // Two tries a call, as the pipeline file says.
    expect(failing.server.requests).toHaveLength(6)
    expect(first.stdout).toContain("3 failed")

    // The same file with the teacher on a server that answers: the failed samples are sampled.
    const second = await run(["run", file, "--teacher", `openai:t@${healthy.server.baseUrl}`, ...teacherOnly])
    expect(second.status, second.stderr).toBe(0)
    expect(healthy.server.answered).toHaveLength(3)
    const status = JSON.parse((await run(["status", "--json", "--workspace", ws])).stdout)
    expect(status.failed).toBe(0)
  }, 120_000)
})
