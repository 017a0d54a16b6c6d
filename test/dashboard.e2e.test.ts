import { arithmeticScript } from "@fastcot/core/testing"
import { RunEvent } from "@fastcot/core"
import * as Schema from "effect/Schema"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { BIN, fastcot, scriptedFixture } from "./support.js"

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const SOCKET = `fastcot-e2e-${process.pid}`
const tmux = (...args: Array<string>) => execFileSync("tmux", ["-L", SOCKET, ...args], { encoding: "utf8" })
const screen = (session: string) => tmux("capture-pane", "-p", "-t", session)
const waitFor = async (session: string, test: (s: string) => boolean, what: string, ms = 30_000): Promise<string> => {
  const until = Date.now() + ms
  for (;;) {
    const s = screen(session)
    if (test(s)) return s
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}; the screen:\n${s}`)
    await sleep(100)
  }
}

/** SCRIPTED models (no model behind them): the teacher adds, the judge's verdicts follow a hash. */
const script = arithmeticScript(
  (_n, user) =>
    (["easy", "medium", "hard", "medium"] as const)[
      parseInt(createHash("sha256").update(user).digest("hex").slice(0, 4), 16) % 4
    ]!
)

describe("fastcot run's dashboard in a real terminal (tmux, 80x24) against scripted loopback models", () => {
  const fx = scriptedFixture({ latencyMs: 120, script }, "fastcot-tui-", {
    setup: async (root) => {
      writeFileSync(
        join(root, "p.jsonl"),
        Array.from({ length: 120 }, (_, i) =>
          JSON.stringify({ question: `What is ${i} + ${i}?`, answer: String(2 * i) })
        ).join("\n")
      )
      expect((await fastcot(["import", join(root, "p.jsonl"), "--workspace", workspace()])).status).toBe(0)
    },
    teardown: () => {
      try {
        tmux("kill-server")
      } catch {
        // already gone
      }
    }
  })
  const workspace = () => join(fx.root, "ws")

  const command = () =>
    `cd ${fx.root} && env -u CI -u CONTINUOUS_INTEGRATION NO_COLOR=1 ${process.execPath} ${BIN} run --workspace ${workspace()} --concurrency 4 ` +
    ["teacher", "rewriter", "judge"].map((r) => `--${r} openai:${r}@${fx.server.baseUrl}`).join(" ") +
    "; echo EXIT=$?; sleep 120"

  it("shows every stage, pauses on p, quits cleanly on q, and a resumed run finishes with the counts of status", async () => {
    tmux("new-session", "-d", "-s", "first", "-x", "80", "-y", "24", command())
    const first = await waitFor("first", (s) => /kept [1-9]/.test(s), "the first kept item")
    for (const stage of ["filter", "teacher", "long-to-short", "verify", "align"]) expect(first).toContain(stage)
    expect(first).toMatch(/teacher +\S+ +\d+%? +\d+\/120/)
    // -J joins lines the terminal wrapped: none of the dashboard's lines may be wider than 80.
    const joined = tmux("capture-pane", "-p", "-J", "-t", "first").split("\n")
    expect(joined.filter((l) => [...l].length > 80)).toEqual([])

    tmux("send-keys", "-t", "first", "p")
    await waitFor("first", (s) => s.includes("PAUSED"), "the paused state")
    // The calls in flight finish (however slow a loaded machine makes them): wait until none has arrived for 800 ms.
    let settled = fx.server.requests.length
    for (let quiet = 0, i = 0; quiet < 8 && i < 150; i++) {
      await sleep(100)
      quiet = fx.server.requests.length === settled ? quiet + 1 : 0
      settled = fx.server.requests.length
    }
    const calls = fx.server.requests.length
    await sleep(1_200)
    expect(fx.server.requests.length).toBe(calls) // no new call starts while paused
    tmux("send-keys", "-t", "first", "p")
    await waitFor("first", (s) => s.includes("running"), "running again")
    await sleep(500)
    expect(fx.server.requests.length).toBeGreaterThan(calls)

    tmux("send-keys", "-t", "first", "q")
    const stopped = await waitFor("first", (s) => s.includes("EXIT="), "the first run to stop")
    expect(stopped).toContain("EXIT=0")
    const line = /stopped \(q\): (\d+) kept, (\d+) dropped, (\d+) pending/.exec(stopped)
    expect(line, stopped).not.toBeNull()
    const statusAfterQuit = JSON.parse((await fastcot(["status", "--json", "--workspace", workspace()])).stdout) as {
      kept: number
      pending: number
      items: number
    }
    expect(Number(line![1])).toBe(statusAfterQuit.kept)
    expect(statusAfterQuit.pending).toBeGreaterThan(0) // it really stopped early
    // The dashboard's last frame counted what the store holds.
    const keptOnScreen = Number(/kept (\d+)/.exec(stopped.slice(0, stopped.indexOf("stopped (q)")))![1])
    expect(keptOnScreen).toBe(statusAfterQuit.kept)

    tmux("new-session", "-d", "-s", "second", "-x", "80", "-y", "24", command())
    const done = await waitFor("second", (s) => s.includes("EXIT="), "the resumed run to finish", 60_000)
    expect(done).toContain("EXIT=0")
    const status = JSON.parse((await fastcot(["status", "--json", "--workspace", workspace()])).stdout) as {
      kept: number
      dropped: number
      pending: number
      items: number
    }
    expect(status.pending).toBe(0)
    expect(status.items).toBe(120)
    expect(status.kept + status.dropped).toBe(120)
    expect(done).toContain(`${status.kept} kept`)
  })

  it("with CI set (Ink would draw only the last frame) a terminal gets the line output, not a blank screen", async () => {
    const ws = join(fx.root, "ci")
    expect((await fastcot(["import", join(fx.root, "p.jsonl"), "--workspace", ws])).status).toBe(0)
    const roles = ["teacher", "rewriter", "judge"].map((r) => `--${r} openai:${r}@${fx.server.baseUrl}`).join(" ")
    tmux(
      "new-session",
      "-d",
      "-s",
      "ci",
      "-x",
      "80",
      "-y",
      "24",
      `cd ${fx.root} && CI=true NO_COLOR=1 ${process.execPath} ${BIN} run --workspace ${ws} --limit 6 ${roles}; echo EXIT=$?; sleep 120`
    )
    const done = await waitFor("ci", (s) => s.includes("EXIT="), "the CI-mode run to finish")
    expect(done).toContain("EXIT=0")
    expect(done).not.toContain("p pause · q quit")
    expect(done).toMatch(/align +\d+ items/)
  })

  it("--json prints events that decode against the RunEvent schema", async () => {
    const ws = join(fx.root, "json")
    expect((await fastcot(["import", join(fx.root, "p.jsonl"), "--workspace", ws])).status).toBe(0)
    const r = await fastcot([
      "run",
      "--json",
      "--limit",
      "10",
      "--workspace",
      ws,
      "--concurrency",
      "4",
      ...["teacher", "rewriter", "judge"].flatMap((x) => [`--${x}`, `openai:${x}@${fx.server.baseUrl}`])
    ])
    expect(r.status, r.stderr).toBe(0)
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => Schema.decodeUnknownSync(RunEvent)(JSON.parse(l)))
    const tags = new Set(events.map((e) => e._tag))
    for (const t of ["progress", "item", "verdict", "stage-done"]) expect(tags).toContain(t)
  })
})
