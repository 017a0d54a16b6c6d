import { startScriptedServer } from "@fastcot/core/testing"
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { BIN, fastcot as run, scriptedFixture } from "./support.js"
import { RunEvent } from "@fastcot/core"
import * as Schema from "effect/Schema"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("fastcot run --json", () => {
  it("prints one JSON event per line, each decoding against the RunEvent schema", async () => {
    const fast = await startScriptedServer({
      script: (r) => ({ content: r.messages[0]!.content.includes("evaluator") ? "medium" : "Add. \\boxed{2}" })
    })
    const root = mkdtempSync(join(tmpdir(), "fastcot-e2e-json-"))
    try {
      writeFileSync(
        join(root, "p.jsonl"),
        JSON.stringify({ question: "1+1?", answer: "2" }) +
          "\n" +
          JSON.stringify({ question: "3-1?", answer: "2" }) +
          "\n"
      )
      const ws = join(root, "ws")
      spawnSync(process.execPath, [BIN, "import", join(root, "p.jsonl"), "--workspace", ws])
      const spec = `openai:s@${fast.baseUrl}`
      const out = (
        await run(["run", "--json", "--teacher", spec, "--rewriter", spec, "--judge", spec, "--workspace", ws])
      ).stdout
      const events = out
        .trim()
        .split("\n")
        .map((line) => Schema.decodeUnknownSync(RunEvent)(JSON.parse(line)))
      expect(events.filter((e) => e._tag === "stage-done").map((e) => (e as { stage: string }).stage)).toEqual(
        expect.arrayContaining(["teacher", "verify", "align"])
      )
      expect(events.filter((e) => e._tag === "item" && e.stage === "align")).toHaveLength(2)
    } finally {
      await fast.close()
      rmSync(root, { recursive: true, force: true })
    }
  })
})

describe("Ctrl-C during fastcot run", () => {
  // A teacher slow enough that calls are in flight when the interrupt comes.
  const fx = scriptedFixture({ latencyMs: 3_000 }, "fastcot-e2e-int-", {
    setup: (root) =>
      writeFileSync(
        join(root, "p.jsonl"),
        Array.from({ length: 20 }, (_, i) => JSON.stringify({ question: `What is ${i}?`, answer: String(i) })).join(
          "\n"
        ) + "\n"
      )
  })

  it("cancels in-flight requests, exits 130 and leaves a store the next run continues from", async () => {
    const ws = join(fx.root, "ws")
    expect(spawnSync(process.execPath, [BIN, "import", join(fx.root, "p.jsonl"), "--workspace", ws]).status).toBe(0)
    const child = spawn(process.execPath, [
      BIN,
      "run",
      "--stages",
      "teacher",
      "--teacher",
      `openai:t@${fx.server.baseUrl}`,
      "--concurrency",
      "4",
      "--workspace",
      ws
    ])
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    // Waits until the four calls are in flight (a loaded machine may take seconds to start the CLI).
    for (let i = 0; i < 1200 && fx.server.requests.length < 4; i++) await sleep(25)
    expect(fx.server.requests.length).toBe(4)
    const started = Date.now()
    child.kill("SIGINT")
    const code = await exited
    expect(code).toBe(130)
    expect(Date.now() - started).toBeLessThan(2_000)
    expect(stderr).toContain("interrupted: committed work is kept")
    const status = JSON.parse(
      spawnSync(process.execPath, [BIN, "status", "--json", "--workspace", ws], { encoding: "utf8" }).stdout
    )
    expect(status.items).toBe(0)
  })
})
