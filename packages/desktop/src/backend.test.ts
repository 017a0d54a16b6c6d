import { arithmeticScript, startScriptedServer, type ScriptedServer } from "@fastcot/core/testing"
import { openSqliteStore } from "@fastcot/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Backend, type BackendPush } from "./backend.js"
import { CHANNELS } from "./contract.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const failure = (x: unknown) => (x as { error?: { kind: string; message: string } }).error

/** SCRIPTED models (no model behind them): the teacher adds, the judge rates by a marker. */
const script = arithmeticScript((_n, user) => (user.includes("3 +") ? "easy" : "medium"))

describe("the desktop backend (the channels Electron's IPC and fastcot ui serve)", () => {
  let root: string
  let server: ScriptedServer
  const backend = new Backend({})
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "fastcot-desktop-"))
    server = await startScriptedServer({ latencyMs: 20, script })
  })
  afterAll(async () => {
    await backend.close()
    await server.close()
    rmSync(root, { recursive: true, force: true })
  })

  it("rejects malformed input on every channel with a message naming the field", async () => {
    expect(failure(await backend.handle("no.such.channel", {}))).toMatchObject({ kind: "bad-request" })
    for (const channel of CHANNELS) {
      const r = failure(
        await backend.handle(channel, {
          path: 42,
          name: "../x",
          content: 7,
          id: "nope",
          format: "xml",
          fate: "lost",
          limit: -1,
          teacher: "gpt4"
        })
      )
      const emptyOk = [
        "workspace.status",
        "run.pause",
        "run.resume",
        "run.stop",
        "run.view",
        "eval.runs",
        "eval.state",
        "items.list",
        "run.start"
      ].includes(channel)
      // Channels without required fields ignore unknown ones, but a wrong type in a known one is refused.
      if (!emptyOk) expect(r, channel).toMatchObject({ kind: "bad-request", message: expect.stringContaining(channel) })
    }
    expect(failure(await backend.handle("items.list", { fate: "lost" }))!.message).toContain("fate")
    expect(failure(await backend.handle("run.start", { teacher: "gpt4" }))!.message).toContain("teacher")
    expect(
      failure(await backend.handle("import.content", { name: "../../etc/passwd", content: "x" }))!.message
    ).toContain("name")
    expect(failure(await backend.handle("items.get", { id: "i_zz" }))!.kind).toBe("bad-request")
    // before a workspace is open
    expect(failure(await backend.handle("workspace.status", {}))!.message).toContain("no workspace is open")
  })

  it("opens a workspace, imports with a reject report, runs, pauses, resumes and stops, lists and shows items, exports", async () => {
    const ws = join(root, "ws")
    const opened = (await backend.handle("workspace.open", { path: ws })) as { problems: number }
    expect(opened.problems).toBe(0)
    const rows = Array.from({ length: 30 }, (_, i) =>
      JSON.stringify({ question: `What is ${i} + ${i}?`, answer: String(2 * i) })
    )
    const imported = (await backend.handle("import.content", {
      name: "p.jsonl",
      content: [
        ...rows,
        "{broken",
        JSON.stringify({ answer: "1" }),
        // Left out by the run's filter before any call: a duplicate question, and one without an answer.
        JSON.stringify({ question: "What is 1 + 1?", answer: "2.0" }),
        JSON.stringify({ question: "Name a prime number." })
      ].join("\n")
    })) as { problemsAdded: number; rejected: number; rejects: Array<{ line: number; reason: string }> }
    expect(imported.problemsAdded).toBe(32)
    expect(imported.rejects.map((r) => r.line)).toEqual([31, 32])

    const pushes: Array<BackendPush> = []
    const off = backend.subscribe((p) => pushes.push(p))
    const spec = `openai:scripted@${server.baseUrl}`
    expect(
      failure(
        await backend.handle("run.start", { teacher: spec, rewriter: spec, judge: `onnx:${join(root, "no-model")}` })
      )
    ).toMatchObject({ kind: "bad-request", message: expect.stringContaining("no-model") })
    // A `fastcot run` working on the same workspace (its lock taken through another connection): Run is refused, naming it.
    const cli = openSqliteStore(join(ws, "fastcot.db"))
    const cliScope = Effect.runSync(Scope.make())
    await Effect.runPromise(cli.store.lockRun("fastcot run").pipe(Scope.extend(cliScope)))
    expect(failure(await backend.handle("run.start", { teacher: spec, rewriter: spec, judge: spec }))).toMatchObject({
      kind: "bad-request",
      message: expect.stringContaining(`another run is working on this workspace: fastcot run (pid ${process.pid}`)
    })
    expect(((await backend.handle("workspace.status", {})) as { running: unknown }).running).toMatchObject({
      what: "fastcot run",
      pid: process.pid
    })
    await Effect.runPromise(Scope.close(cliScope, Exit.void))
    cli.close()
    expect(((await backend.handle("workspace.status", {})) as { running: unknown }).running).toBeNull()
    // The runs below start one after another: each releases the lock when it ends (the same live process would be refused).
    const started = (await backend.handle("run.start", {
      teacher: spec,
      rewriter: spec,
      judge: spec,
      concurrency: 2
    })) as { state: string }
    expect(started.state).toBe("running")
    await sleep(300)
    expect(((await backend.handle("run.pause", {})) as { state: string }).state).toBe("paused")
    // The calls in flight finish (however slow a loaded machine makes them): wait until none has arrived for 500 ms.
    let settled = server.requests.length
    for (let quiet = 0, i = 0; quiet < 5 && i < 100; i++) {
      await sleep(100)
      quiet = server.requests.length === settled ? quiet + 1 : 0
      settled = server.requests.length
    }
    const requestsWhilePaused = server.requests.length
    await sleep(400)
    expect(server.requests.length).toBe(requestsWhilePaused)
    // Still paused with work left (a pause that did not hold would have let the run finish meanwhile).
    expect(((await backend.handle("run.view", {})) as { state: string }).state).toBe("paused")
    expect(((await backend.handle("run.resume", {})) as { state: string }).state).toBe("running")
    for (let i = 0; i < 200 && ((await backend.handle("run.view", {})) as { state: string }).state !== "done"; i++)
      await sleep(100)
    const view = (await backend.handle("run.view", {})) as {
      state: string
      verdicts: { easy: number; medium: number }
      kept: Record<string, number>
      timeline: Array<unknown>
    }
    expect(view.state).toBe("done")
    expect(((await backend.handle("workspace.status", {})) as { leftOut: unknown }).leftOut).toEqual({
      duplicate: 1,
      "no-reference": 1
    })
    expect(view.verdicts.easy).toBeGreaterThan(0)
    expect(view.kept["easy-to-medium"]).toBeGreaterThan(0)
    expect(pushes.some((p) => p._tag === "event" && p.event._tag === "verdict")).toBe(true)
    off()

    // Stop: calls in flight finish, the run ends early, and starting again finishes the rest.
    const more = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({ question: `What is ${100 + i} + ${100 + i}?`, answer: String(2 * (100 + i)) })
    )
    await backend.handle("import.content", { name: "more.jsonl", content: more.join("\n") })
    await backend.handle("run.start", { teacher: spec, rewriter: spec, judge: spec, concurrency: 1 })
    await sleep(200)
    expect(((await backend.handle("run.stop", {})) as { state: string }).state).toBe("idle")
    const stopped = (await backend.handle("workspace.status", {})) as { kept: number; items: number; problems: number }
    expect(stopped.kept).toBeLessThan(70)
    // A token budget stops the run the same way, before the workspace's calls pass it (the
    // recipe asks with max_tokens 4096 and 8192: a 9,000-token budget lets a few calls run at once).
    const spentBefore = ((await backend.handle("workspace.status", {})) as { paidTokens: number }).paidTokens
    await backend.handle("run.start", {
      teacher: spec,
      rewriter: spec,
      judge: spec,
      concurrency: 2,
      budgetTokens: spentBefore + 9000
    })
    let budgeted = (await backend.handle("run.view", {})) as { state: string; message?: string }
    for (let i = 0; i < 200 && budgeted.message === undefined; i++) {
      await sleep(100)
      budgeted = (await backend.handle("run.view", {})) as { state: string; message?: string }
    }
    expect(budgeted.state).toBe("idle")
    expect(budgeted.message).toMatch(/^stopped at the token budget: \d+ of \d+ tokens spent by the workspace/)
    const afterBudget = (await backend.handle("workspace.status", {})) as { paidTokens: number }
    expect(afterBudget.paidTokens).toBeGreaterThan(spentBefore)
    expect(afterBudget.paidTokens).toBeLessThanOrEqual(spentBefore + 9000)
    await backend.handle("run.start", { teacher: spec, rewriter: spec, judge: spec, concurrency: 4 })
    for (let i = 0; i < 300 && ((await backend.handle("run.view", {})) as { state: string }).state !== "done"; i++)
      await sleep(100)

    const status = (await backend.handle("workspace.status", {})) as { kept: number; pending: number }
    expect(status.pending).toBe(0)
    expect(status.kept).toBe(70)
    type Page = { rows: Array<{ id: string; what: string; tokensAfter: number | null }>; next: unknown }
    const list = async (request: object) => (await backend.handle("items.list", request)) as Page
    const easy = (await list({ verdict: "easy" })).rows
    expect(easy.length).toBeGreaterThan(0)
    expect(easy.every((i) => i.what === "easy-to-medium")).toBe(true)
    const found = (await list({ search: "What is 3 +" })).rows
    expect(found).toHaveLength(1)
    expect((await list({ maxTokens: 1 })).rows).toHaveLength(0)
    expect((await list({ minTokens: 1, limit: 5000 })).rows).toHaveLength(70)
    // Pages of a sorted list follow each other through the reply's `next`, with nothing twice.
    const order = { by: "tokens", direction: "desc" }
    const first = await list({ order, limit: 40 })
    const second = await list({ order, after: first.next, limit: 40 })
    expect(second.next).toBeNull()
    const lengths = [...first.rows, ...second.rows].map((r) => r.tokensAfter!)
    expect(new Set([...first.rows, ...second.rows].map((r) => r.id)).size).toBe(70)
    expect(lengths).toEqual([...lengths].sort((a, b) => b - a))
    expect(
      failure(await backend.handle("items.list", { order: { by: "question", direction: "asc" } }))!.message
    ).toContain("order")
    const detail = (await backend.handle("items.get", { id: found[0]!.id })) as {
      rounds: Array<{ action: string; before: string | null; after: string | null }>
      original: string
      final: string
    }
    expect(detail.rounds.map((r) => r.action)).toContain("expand")
    expect(detail.final).toContain("Rewritten")
    const exported = (await backend.handle("export.run", { format: "openai", valFraction: 0.1 })) as {
      files: Array<string>
      train: number
      validation: number
    }
    expect(exported.train + exported.validation).toBe(70)
    expect(existsSync(exported.files[0]!)).toBe(true)
    expect(readFileSync(exported.files[0]!, "utf8").split("\n")[0]).toContain('"messages"')
  })
})
