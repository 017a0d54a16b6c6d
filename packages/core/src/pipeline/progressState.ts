import type { BudgetState } from "../llm/budget.js"
import type { EndpointStats } from "../llm/LanguageModel.js"
import type { RunEvent } from "../recipe/events.js"
import type { WorkerView } from "../store/RunStore.js"

/** One stage's row on the dashboard. */
export interface StageRow {
  readonly name: string
  /** Known for the teacher (problems × samples); item stages count what reached them. */
  total: number | undefined
  done: number
  dropped: number
  failed: number
  skipped: number
  cached: number
  startedAt: number | undefined
  finishedAt: number | undefined
}

export interface LogLine {
  readonly at: number
  readonly level: "info" | "warn" | "error"
  readonly message: string
  readonly itemId?: string | undefined
}

/** Everything a run dashboard shows (terminal or desktop), folded from the run's events and the model stats. */
export interface DashboardState {
  readonly title: string
  readonly startedAt: number
  stages: Array<StageRow>
  models: ReadonlyArray<EndpointStats>
  /** Completion tokens per second over the last few seconds, per role. */
  tokensPerSecond: Record<string, number>
  verdicts: { easy: number; medium: number; hard: number; unparseable: number }
  /**
   * Where aligned items went by the judge's first verdict on them (`none` when it never gave one):
   * kept or dropped, counted as each item ends at the align stage.
   */
  flow: Record<"easy" | "medium" | "hard" | "none", { kept: number; dropped: number }>
  /** The first verdict of items still being aligned (forgotten as each ends). */
  firstVerdicts: Map<string, "easy" | "medium" | "hard">
  kept: Record<string, number>
  dropped: Record<string, number>
  tokensBefore: Array<number>
  tokensAfter: Array<number>
  log: Array<LogLine>
  /** Items seen most recently, newest first: what the cursor moves over. */
  recentItems: Array<{ readonly id: string; readonly stage: string; readonly what: string }>
  paused: boolean
  quitting: boolean
  finished: boolean
  message: string | undefined
  /** The spending limit, when the run has one. */
  budget?: BudgetState | undefined
  /** The workers sharing the run, on a shared store (empty otherwise). */
  workers: ReadonlyArray<WorkerView>
}

const LOG_KEEP = 200
const RECENT_KEEP = 50

/** A stage's row before any of its events. */
const newStageRow = (name: string): StageRow => ({
  name,
  total: undefined,
  done: 0,
  dropped: 0,
  failed: 0,
  skipped: 0,
  cached: 0,
  startedAt: undefined,
  finishedAt: undefined
})

export const initialState = (title: string, stages: ReadonlyArray<string>, now = Date.now()): DashboardState => ({
  title,
  startedAt: now,
  stages: stages.map(newStageRow),
  models: [],
  tokensPerSecond: {},
  verdicts: { easy: 0, medium: 0, hard: 0, unparseable: 0 },
  flow: {
    easy: { kept: 0, dropped: 0 },
    medium: { kept: 0, dropped: 0 },
    hard: { kept: 0, dropped: 0 },
    none: { kept: 0, dropped: 0 }
  },
  firstVerdicts: new Map(),
  kept: {},
  dropped: {},
  tokensBefore: [],
  tokensAfter: [],
  log: [],
  recentItems: [],
  workers: [],
  paused: false,
  quitting: false,
  finished: false,
  message: undefined
})

const row = (s: DashboardState, name: string, now: number): StageRow => {
  let r = s.stages.find((x) => x.name === name)
  if (r === undefined) {
    r = newStageRow(name)
    s.stages.push(r)
  }
  r.startedAt ??= now
  return r
}

const pushLog = (s: DashboardState, line: LogLine) => {
  s.log.push(line)
  if (s.log.length > LOG_KEEP) s.log.splice(0, s.log.length - LOG_KEEP)
}

/** Folds one run event into the state (in place: the dashboard renders snapshots at a bounded rate). */
export const applyEvent = (s: DashboardState, e: RunEvent, now = Date.now()): DashboardState => {
  switch (e._tag) {
    case "progress": {
      const r = row(s, e.stage, now)
      r.total = e.total
      r.done = e.done
      r.failed = e.failed
      r.skipped = e.skipped
      r.cached = e.cached
      break
    }
    case "item": {
      if (e.stage === "teacher") break
      const r = row(s, e.stage, now)
      if (e.outcome === "ok") r.done++
      else if (e.outcome === "dropped") r.dropped++
      else r.failed++
      if (e.fate === "kept" && e.keptAs !== undefined) s.kept[e.keptAs] = (s.kept[e.keptAs] ?? 0) + 1
      if (e.fate === "dropped") {
        const code = e.reasonCode ?? e.reason?.split(":")[0] ?? "unknown"
        s.dropped[code] = (s.dropped[code] ?? 0) + 1
      }
      if (e.stage === "align" && (e.fate === "kept" || e.fate === "dropped")) {
        s.flow[s.firstVerdicts.get(e.itemId) ?? "none"][e.fate]++
        s.firstVerdicts.delete(e.itemId)
      }
      if (e.tokensBefore !== undefined) s.tokensBefore.push(e.tokensBefore)
      if (e.tokensAfter !== undefined) s.tokensAfter.push(e.tokensAfter)
      if (e.outcome === "failed")
        pushLog(s, { at: now, level: "warn", message: `${e.stage}: ${e.reason ?? "failed"}`, itemId: e.itemId })
      const what =
        e.fate === "kept"
          ? `kept ${e.keptAs ?? ""}`
          : e.fate === "dropped"
            ? `dropped ${e.reasonCode ?? ""}`
            : e.outcome
      s.recentItems.unshift({ id: e.itemId, stage: e.stage, what })
      if (s.recentItems.length > RECENT_KEEP) s.recentItems.length = RECENT_KEEP
      break
    }
    case "verdict":
      s.verdicts[e.level]++
      if (e.round === 0 && e.level !== "unparseable" && !s.firstVerdicts.has(e.itemId))
        s.firstVerdicts.set(e.itemId, e.level)
      break
    case "log":
      pushLog(s, { at: now, level: e.level, message: e.message, itemId: e.itemId })
      break
    case "stage-done": {
      const r = row(s, e.stage, now)
      r.finishedAt = now
      if (e.stage !== "teacher" && e.stage !== "filter") r.total = r.done + r.dropped + r.failed
      break
    }
    case "pipeline-done":
      s.finished = true
      for (const r of s.stages) if (r.startedAt !== undefined) r.finishedAt ??= now
      break
  }
  return s
}

/** New model stats: tokens per second per role from the change since the last snapshot. */
export const applyStats = (
  s: DashboardState,
  stats: ReadonlyArray<EndpointStats>,
  elapsedMs: number
): DashboardState => {
  const before = new Map<string, number>()
  for (const m of s.models) before.set(m.role, (before.get(m.role) ?? 0) + m.completionTokens)
  const after = new Map<string, number>()
  for (const m of stats) after.set(m.role, (after.get(m.role) ?? 0) + m.completionTokens)
  for (const [role, tokens] of after) {
    const rate = elapsedMs > 0 ? ((tokens - (before.get(role) ?? 0)) * 1000) / elapsedMs : 0
    // A short moving average keeps the number readable.
    s.tokensPerSecond[role] = (s.tokensPerSecond[role] ?? rate) * 0.6 + rate * 0.4
  }
  s.models = stats
  return s
}

/** Finished / total, items per second and time left for a stage row. */
export const stageFigures = (r: StageRow, now: number) => {
  const finished = r.done + r.dropped + r.failed
  const elapsed = r.startedAt === undefined ? 0 : ((r.finishedAt ?? now) - r.startedAt) / 1000
  const rate = elapsed > 0 ? finished / elapsed : 0
  const total = r.total
  const remaining = total === undefined ? undefined : Math.max(0, total - r.skipped - finished)
  const fraction =
    total === undefined || total === 0 ? (r.finishedAt !== undefined ? 1 : undefined) : (finished + r.skipped) / total
  const etaSeconds = remaining !== undefined && rate > 0 && r.finishedAt === undefined ? remaining / rate : undefined
  return { finished, rate, fraction, etaSeconds, elapsed }
}

export const formatDuration = (seconds: number): string => {
  const s = Math.round(seconds)
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`
}

export const bar = (fraction: number | undefined, width: number): string => {
  if (fraction === undefined) return "·".repeat(width)
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width)
  return "█".repeat(full) + "░".repeat(width - full)
}

const SPARK = "▁▂▃▄▅▆▇█"

/** Counts of values in shared buckets (powers of two from 32 tokens), as one sparkline per series. */
export const histograms = (
  a: ReadonlyArray<number>,
  b: ReadonlyArray<number>,
  buckets = 10
): { edges: Array<number>; a: string; b: string } => {
  const edges = Array.from({ length: buckets }, (_, i) => 32 * 2 ** i)
  const count = (xs: ReadonlyArray<number>) => {
    const c = new Array<number>(buckets).fill(0)
    for (const x of xs) {
      let i = edges.findIndex((e) => x <= e)
      if (i < 0) i = buckets - 1
      c[i]!++
    }
    return c
  }
  const ca = count(a)
  const cb = count(b)
  const max = Math.max(1, ...ca, ...cb)
  const line = (c: Array<number>) =>
    c
      .map((n) => (n === 0 ? " " : SPARK[Math.min(SPARK.length - 1, Math.floor((n / max) * (SPARK.length - 1)))]))
      .join("")
  return { edges, a: line(ca), b: line(cb) }
}

export const median = (xs: ReadonlyArray<number>): number | undefined => {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]
}
