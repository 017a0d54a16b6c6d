import {
  arithmeticScript,
  type PostgresCluster,
  startPostgresCluster,
  startScriptedServer
} from "@fastcot/core/testing"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Backend } from "./backend.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Twelve "What is i + i?" problems, as a file the app imports. */
const TWELVE = Array.from({ length: 12 }, (_, i) =>
  JSON.stringify({ question: `What is ${i} + ${i}?`, answer: String(2 * i) })
).join("\n")

describe("the desktop backend on a shared PostgreSQL store (fastcot ui --store; a real server on 127.0.0.1)", () => {
  let cluster: PostgresCluster
  let root: string
  beforeAll(async () => {
    cluster = await startPostgresCluster()
    root = mkdtempSync(join(tmpdir(), "fastcot-desktop-pg-"))
  }, 60_000)
  afterAll(() => {
    cluster.stop()
    rmSync(root, { recursive: true, force: true })
  })

  /**
   * A SCRIPTED model server (no model behind it) and two backends, as two `fastcot ui` servers
   * would be (each its own store connection and leases), on one fresh database of the cluster.
   */
  const twoServers = async (database: string) => {
    const server = await startScriptedServer({ latencyMs: 5, script: arithmeticScript(() => "medium") })
    // The driver reads the password from the process's environment, as psql does.
    process.env["PGPASSWORD"] = cluster.password
    const env = { FASTCOT_STORE: cluster.createDatabase(database) }
    const one = new Backend(env)
    const other = new Backend(env)
    const close = async () => {
      await one.close()
      await other.close()
      await server.close()
      delete process.env["PGPASSWORD"]
    }
    return { server, one, other, close }
  }

  it("opens any folder on the shared store, runs there, and a second backend sees the same progress", async () => {
    const { server, one, other, close } = await twoServers("desktop")
    try {
      const ws = join(root, "ws")
      await one.handle("workspace.open", { path: ws, create: true })
      const imported = await one.handle("import.content", { name: "p.jsonl", content: TWELVE })
      expect(imported).toMatchObject({
        problemsAdded: 12
      })
      // No fastcot.db is made in the folder: the records live in the database.
      expect(existsSync(join(ws, "fastcot.db"))).toBe(false)
      const spec = `openai:scripted@${server.baseUrl}`
      await one.handle("run.start", { teacher: spec, rewriter: spec, judge: spec })
      let seen = { kept: 0 } as { kept: number; problems?: number }
      for (let i = 0; i < 400 && seen.kept < 12; i++) {
        await sleep(50)
        // Another person's window, on another folder, reads the same run.
        seen = (await other.handle("workspace.open", { path: join(root, "elsewhere"), create: true })) as typeof seen
      }
      expect(seen).toMatchObject({ problems: 12, kept: 12 })
    } finally {
      await close()
    }
  })

  it("two fastcot ui servers reviewing one shared run never hand out the same item, nor decide another's", async () => {
    // One reviewer on each server.
    const { server, one, other, close } = await twoServers("review")
    try {
      await one.handle("workspace.open", { path: join(root, "a"), create: true })
      await one.handle("import.content", { name: "p.jsonl", content: TWELVE })
      const spec = `openai:scripted@${server.baseUrl}`
      await one.handle("run.start", { teacher: spec, rewriter: spec, judge: spec })
      for (let i = 0; i < 400 && ((await one.handle("run.view", {})) as { state: string }).state !== "done"; i++)
        await sleep(50)
      await other.handle("workspace.open", { path: join(root, "b"), create: true })
      type Queue = { items: Array<{ id: string }>; waiting: number }
      // The same order on both servers: each would want the same longest items first.
      const ana = (await one.handle("review.queue", { reviewer: "ana", order: "longest", limit: 5 })) as Queue
      const ben = (await other.handle("review.queue", { reviewer: "ben", order: "longest", limit: 5 })) as Queue
      expect(ana.items).toHaveLength(5)
      expect(ben.items).toHaveLength(5)
      expect(ben.items.filter((b) => ana.items.some((a) => a.id === b.id))).toEqual([])
      // The rest: two left that nobody holds.
      const cara = (await other.handle("review.queue", { reviewer: "cara", order: "longest", limit: 5 })) as Queue
      expect(cara.items).toHaveLength(2)
      // Ben's server refuses a decision on an item that Ana's server handed out.
      expect(
        await other.handle("review.decide", { id: ana.items[0]!.id, reviewer: "ben", decision: "accept" })
      ).toMatchObject({ error: { kind: "bad-request", message: expect.stringContaining("another fastcot ui server") } })
      expect(
        await one.handle("review.decide", { id: ana.items[0]!.id, reviewer: "ana", decision: "accept" })
      ).toMatchObject({
        review: { decision: "accepted", reviewer: "ana" }
      })
      expect(
        await other.handle("review.decide", {
          id: ben.items[0]!.id,
          reviewer: "ben",
          decision: "reject",
          reason: "leaks the answer"
        })
      ).toMatchObject({ review: { decision: "rejected", reviewer: "ben" } })
      // Both decisions are in the one run: two of the twelve kept items reviewed, each by its reviewer.
      const after = (await one.handle("review.queue", { reviewer: "ana", limit: 1 })) as Queue & { mine: number }
      expect(after).toMatchObject({ waiting: 10, mine: 1 })
      expect(await other.handle("workspace.status", {})).toMatchObject({ kept: 12, reviewed: 2 })
    } finally {
      await close()
    }
  })
})
