import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { fastcot as run, scriptedFixture } from "./support.js"

const MATH500 = join(__dirname, "..", "..", "shared", "data", "math500", "test.jsonl")

describe("fastcot run with a spending budget (scripted loopback teacher)", () => {
  const fx = scriptedFixture({ latencyMs: 20 }, "fastcot-budget-")

  const pipelineFile = (usd: number) => {
    const file = join(fx.root, `pipeline-${usd}.yaml`)
    writeFileSync(
      file,
      [
        "name: budget-trial",
        `budget: { usd: ${usd} }`,
        "models:",
        "  teacher:",
        "    endpoints:",
        `      - model: openai:priced@${fx.server.baseUrl}`,
        "        concurrency: 4",
        "        price: { input: 1, output: 2 }",
        "    sampling: { max_tokens: 100 }",
        ""
      ].join("\n")
    )
    return file
  }
  const status = async (workspace: string) =>
    JSON.parse((await run(["status", "--json", "--workspace", workspace])).stdout) as {
      llm: {
        costUsd: number
        calls: number
        paidTokens: number
        ledger: { calls: number; tokens: number; costUsd: number }
      }
      pending: number
    }

  it("stops cleanly before the workspace's spending passes the budget, holds at it on a rerun, and goes on when it is raised", async () => {
    const ws = join(fx.root, "ws")
    expect((await run(["import", MATH500, "--workspace", ws])).status).toBe(0)
    const sent0 = fx.server.requests.length
    const first = await run(["run", pipelineFile(0.01), "--stages", "teacher", "--no-tui", "--workspace", ws])
    expect(first.status, first.stderr).toBe(3)
    expect(first.stderr).toMatch(/stopped at the budget \(\$0\.0\d+ of \$0\.01 spent by the workspace\)/)
    expect(first.stderr).toContain("more than is left; no call starts that the budget could not pay for")
    const sent = fx.server.requests.length - sent0
    expect(sent).toBeGreaterThan(10)
    expect(sent).toBeLessThan(500)
    // Every call sent is in the spending ledger, also those answered while the run stopped (their
    // items were not saved: the next run gets them from the cache).
    const after = await status(ws)
    expect(after.llm.ledger.calls).toBe(sent)
    expect(after.llm.calls).toBeLessThanOrEqual(sent)
    expect(after.llm.ledger.costUsd).toBeLessThanOrEqual(0.01)

    // The same budget again: what the workspace spent counts. Calls cost less than their worst
    // case, so the rest may pay for a few more, and the total still stays within the budget.
    const again = await run(["run", pipelineFile(0.01), "--stages", "teacher", "--no-tui", "--workspace", ws])
    expect(again.status, again.stderr).toBe(3)
    const total = fx.server.requests.length - sent0
    expect(total - sent).toBeLessThan(10)
    expect((await status(ws)).llm.ledger.costUsd).toBeLessThanOrEqual(0.01)

    // A larger budget on the command line goes on from where it stopped.
    const raised = await run([
      "run",
      pipelineFile(0.01),
      "--stages",
      "teacher",
      "--no-tui",
      "--budget-usd",
      "1",
      "--workspace",
      ws
    ])
    expect(raised.status, raised.stderr).toBe(0)
    expect(raised.stdout).toMatch(/teacher +\d+ sampled, 0 failed, \d+ already done \(of 500\)/)
    // Calls that finished while the run stopped were stored in the cache: no completion is paid twice.
    expect(fx.server.requests.length - sent0).toBe(500)
    const final = await status(ws)
    expect(final.llm.ledger.calls).toBe(500)
    expect(final.llm.ledger.costUsd).toBeLessThanOrEqual(1)
    // The text status shows what a token budget counts: the tokens of the calls sent.
    expect((await run(["status", "--workspace", ws])).stdout).toContain(
      `(${final.llm.ledger.tokens} sent, what a token budget counts)`
    )
  })

  it("refuses a budget in dollars when an endpoint that would be called has no price, and a budget that is not positive", async () => {
    const ws = join(fx.root, "refuse")
    expect((await run(["import", MATH500, "--workspace", ws])).status).toBe(0)
    const unpriced = await run([
      "run",
      "--stages",
      "teacher",
      "--teacher",
      `openai:free@${fx.server.baseUrl}`,
      "--budget-usd",
      "5",
      "--no-tui",
      "--workspace",
      ws
    ])
    expect(unpriced.status).toBe(2)
    expect(unpriced.stderr).toContain(`models.teacher.endpoints.[0] (openai:free@${fx.server.baseUrl}) has none`)
    const zero = await run([
      "run",
      "--stages",
      "teacher",
      "--teacher",
      `openai:free@${fx.server.baseUrl}`,
      "--budget-tokens",
      "0",
      "--no-tui",
      "--workspace",
      ws
    ])
    expect(zero.status).toBe(2)
    expect(zero.stderr).toContain("--budget-tokens must be at least 1")
  })

  it("fastcot eval with a budget: stops sending at it, scores what it has, and a rerun with a larger one pays only for the rest", async () => {
    const data = join(__dirname, "..", "..", "shared", "data")
    const ws = join(fx.root, "eval-ws")
    const args = (budget: string) => [
      "eval",
      "--model",
      `openai:evalled@${fx.server.baseUrl}`,
      "--bench",
      "aime24",
      "--data",
      data,
      "--max-tokens",
      "100",
      "--concurrency",
      "4",
      "--budget-tokens",
      budget,
      "--out",
      join(fx.root, "ev"),
      "--no-tui",
      "--workspace",
      ws
    ]
    const sent0 = fx.server.requests.length
    const first = await run(args("2000"))
    expect(first.status, first.stderr).toBe(3)
    expect(first.stderr).toMatch(
      /stopped at the budget \(\d+ of 2000 tokens spent\): \d+ of 30 generations are left out of the scores above/
    )
    const sent = fx.server.requests.length - sent0
    expect(sent).toBeGreaterThan(3)
    expect(sent).toBeLessThan(30)
    const results = JSON.parse(readFileSync(join(fx.root, "ev", "results.json"), "utf8")) as {
      benchmarks: Array<{ summary: { samples: number }; failed?: { samples: number; firstError: string } }>
    }
    expect(results.benchmarks[0]!.summary.samples).toBe(sent)
    expect(results.benchmarks[0]!.failed).toMatchObject({
      samples: 30 - sent,
      firstError: expect.stringContaining("BudgetExhausted from model: not sent: the spending budget cannot pay for it")
    })
    const again = await run(args("100000"))
    expect(again.status, again.stderr).toBe(0)
    expect(fx.server.requests.length - sent0).toBe(30)
  })
})
