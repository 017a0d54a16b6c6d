import { type ItemId, makeItem, makeRound, type ProblemId, Trace } from "@fastcot/core"
import { render } from "ink-testing-library"
import { afterEach, describe, expect, it, vi } from "vitest"
import { Dashboard } from "./Dashboard.js"
import { ItemView } from "./ItemView.js"
import { applyEvent, applyStats, histograms, initialState } from "@fastcot/core"

const tick = () => new Promise((r) => setTimeout(r, 60))
const ESC = String.fromCharCode(27)

const sampleState = () => {
  const s = initialState("recipe · 40 problems", ["teacher", "verify", "align"], 1_000)
  applyEvent(
    s,
    {
      _tag: "progress",
      stage: "teacher",
      total: 40,
      done: 30,
      failed: 1,
      skipped: 0,
      cached: 5,
      promptTokens: 900,
      completionTokens: 1200,
      costUsd: 0.0123,
      elapsedMs: 3000
    },
    1_000
  )
  for (let i = 0; i < 12; i++)
    applyEvent(
      s,
      {
        _tag: "item",
        stage: "verify",
        itemId: `i_v${i}`,
        problemId: "p",
        outcome: i < 10 ? "ok" : "dropped",
        fate: i < 10 ? "pending" : "dropped",
        reasonCode: i < 10 ? undefined : "answer-mismatch"
      },
      2_000
    )
  applyEvent(s, { _tag: "verdict", itemId: "i_v1", level: "easy", round: 0 })
  applyEvent(s, { _tag: "verdict", itemId: "i_v1", level: "medium", round: 1 })
  applyEvent(s, { _tag: "verdict", itemId: "i_v2", level: "hard", round: 0 })
  applyEvent(
    s,
    {
      _tag: "item",
      stage: "align",
      itemId: "i_v1",
      problemId: "p",
      outcome: "ok",
      fate: "kept",
      keptAs: "easy-to-medium",
      tokensBefore: 120,
      tokensAfter: 300
    },
    2_500
  )
  applyEvent(
    s,
    {
      _tag: "item",
      stage: "align",
      itemId: "i_v2",
      problemId: "p",
      outcome: "failed",
      reason: "judge: Timeout: no reply in 600 s"
    },
    2_600
  )
  applyStats(
    s,
    [
      {
        role: "teacher",
        endpoint: "http://127.0.0.1:1/v1",
        model: "teacher-m",
        inFlight: 3,
        window: 12,
        requests: 31,
        succeeded: 30,
        failed: 1,
        retries: 4,
        rateLimited: 2,
        cacheHits: 5,
        promptTokens: 900,
        completionTokens: 1200,
        costUsd: 0.0123,
        latencyMsTotal: 1,
        setAside: false
      }
    ],
    1000
  )
  return s
}

const noop = () => {}
const controls = { onPause: noop, onQuit: noop, onInspect: noop, onCloseInspector: noop }

describe("the run dashboard", () => {
  afterEach(() => vi.unstubAllEnvs())

  it("shows every stage with counts, the models, verdicts, fates, tokens and the log, in 80x24", () => {
    const { lastFrame } = render(<Dashboard state={sampleState()} width={80} height={23} now={4_000} {...controls} />)
    const frame = lastFrame()!
    const lines = frame.split("\n")
    expect(lines.length).toBeLessThanOrEqual(24)
    expect(Math.max(...lines.map((l) => l.replace(/\u001b\[[0-9;]*m/g, "").length))).toBeLessThanOrEqual(80)
    expect(frame).toMatch(/teacher .* 78% +31\/40/)
    expect(frame).toMatch(/verify .* 12 +2 +0/)
    expect(frame).toMatch(/teacher +teacher-m +3\/12 +4 +1 +5/)
    expect(frame).toContain("easy 1")
    expect(frame).toContain("medium 1")
    expect(frame).toContain("hard 1")
    expect(frame).toContain("kept 1: easy-to-medium 1")
    expect(frame).toContain("dropped 2: answer-mismatch 2")
    expect(frame).toContain("median 120")
    expect(frame).toContain("i_v2 align: judge: Timeout")
  })

  it("shows the budget, when the run has one, and still fits 80x24", () => {
    const s = sampleState()
    s.budget = {
      limits: { usd: 20, tokens: 100_000 },
      spentUsd: 1.5,
      spentTokens: 12_345,
      reservedUsd: 0.25,
      reservedTokens: 8_000,
      reached: false
    }
    const lines = render(<Dashboard state={s} width={80} height={23} now={4_000} {...controls} />)
      .lastFrame()!
      .split("\n")
    expect(lines.length).toBeLessThanOrEqual(24)
    expect(lines.find((l) => l.startsWith("budget"))).toBe(
      "budget $1.5000/$20.00 · 12345/100000 tokens · in flight ≤ $0.2500, 8000 tokens"
    )
    s.budget = { ...s.budget, reached: true }
    expect(render(<Dashboard state={s} width={80} height={23} now={4_000} {...controls} />).lastFrame()).toContain(
      "12345/100000 tokens · reached: no new calls"
    )
    expect(
      render(<Dashboard state={sampleState()} width={80} height={23} now={4_000} {...controls} />).lastFrame()
    ).not.toContain("budget")
  })

  it("shows batch-mode endpoints' jobs, requests waiting and the money saved, and still fits 80x24", () => {
    const s = sampleState()
    s.models = s.models.map((m) => ({
      ...m,
      batch: {
        submitted: 4,
        running: 1,
        done: 2,
        failed: 1,
        linesWaiting: 120,
        gathering: 0,
        resubmitted: 3,
        live: 0,
        savedUsd: 0.42
      }
    }))
    const lines = render(<Dashboard state={s} width={100} height={23} now={4_000} {...controls} />)
      .lastFrame()!
      .split("\n")
    expect(lines.length).toBeLessThanOrEqual(24)
    expect(lines.find((l) => l.startsWith("batches"))).toBe(
      "batches 4 sent · 1 at the provider · 2 done · 1 failed or expired · 120 waiting · $0.4200 saved"
    )
    expect(
      render(<Dashboard state={sampleState()} width={80} height={23} now={4_000} {...controls} />).lastFrame()
    ).not.toContain("batches")
  })

  it("shows the workers sharing the run and what each holds, and still fits 80x24", () => {
    const s = sampleState()
    const worker = (host: string, pid: number, holds: number) => ({
      id: `${host}:${pid}:x`,
      host,
      pid,
      what: "fastcot run",
      startedAt: "2026-12-03T20:00:00Z",
      holds
    })
    s.workers = [worker("gpu-a", 101, 8), worker("gpu-b", 202, 7), worker("gpu-c", 303, 0)]
    const lines = render(<Dashboard state={s} width={80} height={23} now={4_000} {...controls} />)
      .lastFrame()!
      .split("\n")
    expect(lines.length).toBeLessThanOrEqual(24)
    expect(lines.find((l) => l.startsWith("workers"))).toBe(
      "workers 3 gpu-a:101 holds 8 · gpu-b:202 holds 7 · gpu-c:303 holds 0"
    )
    expect(
      render(<Dashboard state={sampleState()} width={80} height={23} now={4_000} {...controls} />).lastFrame()
    ).not.toContain("workers")
  })

  it("p pauses, q quits, ? shows the keys, i opens the item under the cursor", async () => {
    const onPause = vi.fn()
    const onQuit = vi.fn()
    const onInspect = vi.fn()
    const { stdin, lastFrame } = render(
      <Dashboard
        state={sampleState()}
        width={100}
        height={30}
        now={4_000}
        {...controls}
        onPause={onPause}
        onQuit={onQuit}
        onInspect={onInspect}
      />
    )
    await tick()
    stdin.write("p")
    await tick()
    expect(onPause).toHaveBeenCalledTimes(1)
    stdin.write("?")
    await tick()
    expect(lastFrame()).toContain("quit cleanly")
    stdin.write("x")
    await tick()
    expect(lastFrame()).toContain("recent items")
    stdin.write(`${ESC}[B`) // down: the second most recent item
    await tick()
    stdin.write("i")
    await tick()
    expect(onInspect).toHaveBeenCalledWith("i_v1")
    stdin.write("q")
    await tick()
    expect(onQuit).toHaveBeenCalledTimes(1)
  })

  it("honours NO_COLOR", () => {
    vi.stubEnv("NO_COLOR", "1")
    vi.stubEnv("FORCE_COLOR", "0")
    const { lastFrame } = render(<Dashboard state={sampleState()} width={80} height={23} now={4_000} {...controls} />)
    expect(lastFrame()).not.toMatch(/\u001b\[3[0-9]m/)
  })

  it("the inspector shows rounds, the judge's raw reply and a word-level diff", () => {
    const t0 = new Trace({ reasoning: "Add the two numbers to get four.", finalAnswer: "4", origin: "teacher" })
    const t1 = new Trace({
      reasoning: "First add the two numbers carefully to get four.",
      finalAnswer: "4",
      origin: "expand"
    })
    const at = "2026-01-01T00:00:00.000Z"
    const item = makeItem({
      id: "i_abc",
      problemId: "p_1",
      stage: "done",
      fate: "kept",
      keptAs: "easy-to-medium",
      trace: t1,
      original: t0,
      rounds: [
        makeRound({
          index: 0,
          action: "judge",
          input: t0,
          verdict: { level: "easy", raw: "easy", model: "j", promptVersion: "judge/v1" } as never,
          calls: [],
          startedAt: at,
          finishedAt: at
        }),
        makeRound({ index: 1, action: "expand", input: t0, output: t1, calls: [], startedAt: at, finishedAt: at })
      ],
      createdAt: at,
      updatedAt: at
    } as never)
    const { lastFrame } = render(<ItemView item={item} round={1} width={100} />)
    const frame = lastFrame()!
    expect(frame).toContain("fate kept (easy-to-medium)")
    expect(frame).toContain('verdict easy (raw "easy")')
    expect(frame).toContain("teacher → expand")
    expect(frame).toContain("carefully")
  })

  it("token histograms share buckets", () => {
    const h = histograms([10, 40, 40, 5000], [100])
    expect(h.a.length).toBe(10)
    expect(h.a[0]).not.toBe(" ")
    expect(h.b[2]).not.toBe(" ")
    expect(h.b[0]).toBe(" ")
  })
})

describe("the inspect browser", () => {
  it("lists items by fate, switches fate, opens one and goes back", async () => {
    const at = "2026-01-01T00:00:00.000Z"
    const t = new Trace({ reasoning: "Two and two make four.", finalAnswer: "4", origin: "teacher" })
    const item = makeItem({
      id: "i_kept1" as ItemId,
      problemId: "p_1" as ProblemId,
      stage: "done",
      fate: "kept",
      keptAs: "initial-medium",
      trace: t,
      rounds: [makeRound({ index: 0, action: "collect", output: t, calls: [], startedAt: at, finishedAt: at })],
      createdAt: at,
      updatedAt: at
    })
    const lists = {
      kept: [{ id: "i_kept1", what: "initial-medium", rounds: 1, question: "2+2?" }],
      dropped: [{ id: "i_drop1", what: "answer-mismatch", rounds: 2, question: "3+3?" }],
      pending: [],
      failed: []
    }
    const opened: Array<string> = []
    const { InspectBrowser } = await import("./InspectBrowser.js")
    const { stdin, lastFrame } = render(
      <InspectBrowser
        counts={{ kept: 1, dropped: 1, pending: 0, failed: 0 }}
        width={90}
        height={20}
        list={async (fate) => lists[fate]}
        open={async (id) => {
          opened.push(id)
          return id === "i_kept1" ? { item } : undefined
        }}
      />
    )
    await tick()
    expect(lastFrame()).toContain("1 kept (1)")
    expect(lastFrame()).toContain("i_kept1")
    stdin.write("2")
    await tick()
    expect(lastFrame()).toContain("i_drop1")
    expect(lastFrame()).not.toContain("i_kept1")
    stdin.write("1")
    await tick()
    stdin.write("\r")
    await tick()
    expect(opened).toEqual(["i_kept1"])
    expect(lastFrame()).toContain("fate kept (initial-medium)")
    expect(lastFrame()).toContain("Two and two make four.")
    stdin.write(ESC)
    await tick()
    expect(lastFrame()).toContain("enter open")
  })
})
